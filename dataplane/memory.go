package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Errors returned by Memory.
var (
	// ErrInvalidMapping: a mapping with a zero or too wide tag or invalid
	// addresses.
	ErrInvalidMapping = errors.New("dataplane: invalid mapping")
	// ErrConflict: another context already maps the same ULID pair and FII.
	ErrConflict = errors.New("dataplane: ULID pair and FII already mapped by another context")
)

// Packet is a simulated IPv6 packet as the memory data plane sees it: the
// addresses, whether a Shim6 payload extension header (RFC 5533 §5.2) is
// present and its tag, the upper-layer protocol and payload. FII selects a
// forked context on output (RFC 5533 §4.2; 0 = the default context).
type Packet struct {
	Src, Dst netip.Addr
	Shim     bool   // payload extension header present
	Tag      uint64 // its context tag (47 bits)
	Proto    uint8  // upper-layer protocol
	FII      uint32 // output only: which forked context to use
	Payload  []byte
}

// Len is the packet's size on the wire: IPv6 header, payload extension
// header if present, payload.
func (p Packet) Len() int {
	n := 40 + len(p.Payload)
	if p.Shim {
		n += 8
	}
	return n
}

// MemoryOptions configure a Memory data plane.
type MemoryOptions struct {
	// Now stamps activity and events (a virtual clock in the simulator).
	// Required.
	Now func() time.Time
	// OnEvent, if set, receives every event at once (from within the call
	// that caused it); otherwise events queue until DrainEvents.
	OnEvent func(Event)
	// TriggerPackets: an EventTrigger is raised once when this many packets
	// have gone between a ULID pair that has no context (0 = never).
	TriggerPackets uint64
	// MaxQueuedEvents bounds the event queue like a ring buffer: events
	// beyond it are dropped and counted (default 1024).
	MaxQueuedEvents int
}

type ulidKey struct {
	local, peer netip.Addr
	fii         uint32
}

type pairKey struct{ local, peer netip.Addr }

type memEntry struct {
	m Mapping
	a Activity
	// fr is the pair outbound traffic moved to on its own (fast reroute),
	// until the next Install.
	fr *memMove
}

type memMove struct {
	pair   Pair
	follow bool // EventPeerMoved (else EventFastReroute)
}

// MemoryStats counts what a Memory data plane did.
type MemoryStats struct {
	Installs, Removes         uint64
	Rewritten, PassedOut      uint64 // output: shimmed, untouched
	Restored, PassedIn        uint64 // input: stripped, untouched
	UnknownTag, DroppedEvents uint64
	Events                    uint64
	// FastReroutes and PeerMoves count the moves of outbound traffic the
	// data plane made on its own (EventFastReroute, EventPeerMoved).
	FastReroutes, PeerMoves uint64
}

// Memory is the in-memory double of the data plane: it holds the mappings
// the engine installs, applies them to simulated packets the way the eBPF
// data plane applies them to real ones (rewrite and tag on output, strip and
// restore on input), counts per-context activity for REAP, and raises the
// same events (unknown tag, trigger, ULP trouble). It implements DataPlane
// and ActivitySource and is safe for concurrent use.
type Memory struct {
	opts MemoryOptions

	mu      sync.Mutex
	byTag   map[uint64]*memEntry
	byULID  map[ulidKey]*memEntry
	counts  map[pairKey]uint64 // unmapped traffic per ULID pair, for triggers
	events  []Event
	stats   MemoryStats
	failure error
}

var (
	_ DataPlane      = (*Memory)(nil)
	_ ActivitySource = (*Memory)(nil)
)

// NewMemory returns an empty memory data plane.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.Now == nil {
		panic("dataplane: MemoryOptions.Now is required")
	}
	if opts.MaxQueuedEvents <= 0 {
		opts.MaxQueuedEvents = 1024
	}
	return &Memory{
		opts:   opts,
		byTag:  map[uint64]*memEntry{},
		byULID: map[ulidKey]*memEntry{},
		counts: map[pairKey]uint64{},
	}
}

// FailWith makes Install and Remove fail with err from now on (nil heals),
// to test how the engine copes with a failing data plane.
func (d *Memory) FailWith(err error) {
	d.mu.Lock()
	d.failure = err
	d.mu.Unlock()
}

// Install implements DataPlane.
func (d *Memory) Install(m Mapping) error {
	if m.LocalTag == 0 || m.LocalTag > TagMask || m.PeerTag > TagMask ||
		!m.LocalULID.IsValid() || !m.PeerULID.IsValid() || !m.LocalLocator.IsValid() || !m.PeerLocator.IsValid() {
		return fmt.Errorf("%w: %+v", ErrInvalidMapping, m)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failure != nil {
		return d.failure
	}
	k := ulidKey{m.LocalULID, m.PeerULID, m.FII}
	if o, ok := d.byULID[k]; ok && o.m.LocalTag != m.LocalTag {
		return fmt.Errorf("%w: tag %#x holds %s->%s fii %d", ErrConflict, o.m.LocalTag, m.LocalULID, m.PeerULID, m.FII)
	}
	e, ok := d.byTag[m.LocalTag]
	if ok {
		delete(d.byULID, ulidKey{e.m.LocalULID, e.m.PeerULID, e.m.FII})
	} else {
		e = &memEntry{a: Activity{LocalTag: m.LocalTag}}
		d.byTag[m.LocalTag] = e
	}
	e.m = m
	e.fr = nil // any Install ends a fast reroute
	d.byULID[k] = e
	delete(d.counts, pairKey{m.LocalULID, m.PeerULID})
	d.stats.Installs++
	return nil
}

// Remove implements DataPlane.
func (d *Memory) Remove(localTag uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failure != nil {
		return d.failure
	}
	if e, ok := d.byTag[localTag]; ok {
		delete(d.byTag, localTag)
		delete(d.byULID, ulidKey{e.m.LocalULID, e.m.PeerULID, e.m.FII})
		d.stats.Removes++
	}
	return nil
}

// ReadActivity implements ActivitySource, in increasing tag order.
func (d *Memory) ReadActivity(fn func(Activity)) error {
	d.mu.Lock()
	as := make([]Activity, 0, len(d.byTag))
	for _, e := range d.byTag {
		as = append(as, e.a)
	}
	d.mu.Unlock()
	slices.SortFunc(as, func(a, b Activity) int {
		switch {
		case a.LocalTag < b.LocalTag:
			return -1
		case a.LocalTag > b.LocalTag:
			return 1
		}
		return 0
	})
	for _, a := range as {
		fn(a)
	}
	return nil
}

// Lookup returns the mapping installed for a local tag.
func (d *Memory) Lookup(localTag uint64) (Mapping, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byTag[localTag]
	if !ok {
		return Mapping{}, false
	}
	return e.m, true
}

// LookupULID returns the mapping of a ULID pair and FII.
func (d *Memory) LookupULID(local, peer netip.Addr, fii uint32) (Mapping, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byULID[ulidKey{local, peer, fii}]
	if !ok {
		return Mapping{}, false
	}
	return e.m, true
}

// Activity returns the activity of one context.
func (d *Memory) Activity(localTag uint64) (Activity, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.byTag[localTag]
	if !ok {
		return Activity{}, false
	}
	return e.a, true
}

// Mappings returns every installed mapping, in increasing tag order.
func (d *Memory) Mappings() []Mapping {
	d.mu.Lock()
	out := make([]Mapping, 0, len(d.byTag))
	for _, e := range d.byTag {
		out = append(out, e.m)
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b Mapping) int {
		switch {
		case a.LocalTag < b.LocalTag:
			return -1
		case a.LocalTag > b.LocalTag:
			return 1
		}
		return 0
	})
	return out
}

// Len returns the number of installed mappings.
func (d *Memory) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.byTag)
}

// Stats returns the counters.
func (d *Memory) Stats() MemoryStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Output applies the data plane to a packet the upper layer sends (source
// and destination are the ULIDs): if a context maps the pair (and FII), its
// activity is counted and, when its locators differ from the ULIDs, the
// addresses are rewritten to the locators and a payload extension header
// with the peer's tag is added (RFC 5533 §11). Other packets pass untouched
// and count towards the trigger threshold.
func (d *Memory) Output(p Packet) Packet {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	e, ok := d.byULID[ulidKey{p.Src, p.Dst, p.FII}]
	if !ok {
		d.stats.PassedOut++
		d.countUnmapped(p.Src, p.Dst, now)
		return p
	}
	if !e.a.FirstSent.After(e.a.LastReceived) {
		e.a.FirstSent = now
	}
	e.a.LastSent = now
	e.a.TxPackets++
	e.a.TxBytes += uint64(p.Len())
	cur := e.m.Current()
	if e.fr != nil {
		cur = e.fr.pair
	}
	if cur != e.m.ULIDs() {
		p.Src, p.Dst = cur.Local, cur.Peer
		p.Shim, p.Tag = true, e.m.PeerTag
		d.stats.Rewritten++
	} else {
		d.stats.PassedOut++
	}
	p.FII = 0
	return p
}

// Input applies the data plane to a packet that arrived from the network.
// A packet with a payload extension header whose tag is installed is
// stripped and its addresses restored to the ULIDs (RFC 5533 §12.2); an
// unknown tag raises EventUnknownTag and the packet is dropped (ok false).
// A packet without the header counts as activity of the default context of
// its address pair, if any, and passes untouched (RFC 5533 §12.1).
func (d *Memory) Input(p Packet) (out Packet, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	if p.Shim {
		e, found := d.byTag[p.Tag]
		if !found {
			d.stats.UnknownTag++
			d.emit(Event{Kind: EventUnknownTag, Src: p.Src, Dst: p.Dst, Tag: p.Tag, Time: now})
			return Packet{}, false
		}
		e.a.LastReceived = now
		e.a.RxPackets++
		e.a.RxBytes += uint64(p.Len())
		d.follow(e, Pair{p.Dst, p.Src}, now)
		p.Src, p.Dst = e.m.PeerULID, e.m.LocalULID
		p.Shim, p.Tag = false, 0
		d.stats.Restored++
		return p, true
	}
	d.stats.PassedIn++
	if e, found := d.byULID[ulidKey{p.Dst, p.Src, 0}]; found {
		e.a.LastReceived = now
		e.a.RxPackets++
		e.a.RxBytes += uint64(p.Len())
		if e.m.Shimmed() {
			d.follow(e, Pair{p.Dst, p.Src}, now)
		}
	} else {
		d.countUnmapped(p.Dst, p.Src, now)
	}
	return p, true
}

// ReportULPTrouble reports that the upper layer sees trouble between a
// ULID pair (e.g. a TCP retransmission timeout), as the eBPF data plane's
// sock_ops program does: when the pair's default context has a Backup pair
// (and BackupAfter has passed) and its traffic has not moved yet, outbound
// traffic moves to the Backup pair at once and EventFastReroute is raised;
// otherwise EventULPTrouble.
func (d *Memory) ReportULPTrouble(local, peer netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	e := d.byULID[ulidKey{local, peer, 0}]
	if e != nil && e.fr == nil && e.m.Backup.IsValid() && !now.Before(e.m.BackupAfter) {
		e.fr = &memMove{pair: e.m.Backup}
		d.stats.FastReroutes++
		d.emit(Event{Kind: EventFastReroute, Src: local, Dst: peer, Tag: e.m.LocalTag, Pair: e.m.Backup, Time: now})
		return
	}
	d.emit(Event{Kind: EventULPTrouble, Src: local, Dst: peer, Time: now})
}

// follow moves the outbound traffic of a default context to pair (ours
// first), the reverse of the pair a payload packet of the peer arrived on,
// if that is another pair than the current one, one of the context's
// Pairs, not PeerPair (before PeerPairUntil), and the traffic has not moved there (or by fast
// reroute) already; it raises EventPeerMoved. Called with d.mu held.
func (d *Memory) follow(e *memEntry, pair Pair, now time.Time) {
	m := &e.m
	if m.FII != 0 || pair == m.Current() || !slices.Contains(m.Pairs, pair) {
		return
	}
	if pair == m.PeerPair && (m.PeerPairUntil.IsZero() || now.Before(m.PeerPairUntil)) {
		return
	}
	if e.fr != nil && (e.fr.pair == pair || !e.fr.follow) {
		return // there already, or moved by our own fast reroute
	}
	e.fr = &memMove{pair: pair, follow: true}
	d.stats.PeerMoves++
	d.emit(Event{Kind: EventPeerMoved, Src: m.LocalULID, Dst: m.PeerULID, Tag: m.LocalTag, Pair: pair, Time: now})
}

// Moved returns the pair the outbound traffic of a context moved to on the
// data plane's own (fast reroute or following the peer), if it did since
// the last Install.
func (d *Memory) Moved(localTag uint64) (Pair, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.byTag[localTag]
	if e == nil || e.fr == nil {
		return Pair{}, false
	}
	return e.fr.pair, true
}

// DrainEvents hands the queued events to fn, oldest first, and empties the
// queue (only used without OnEvent).
func (d *Memory) DrainEvents(fn func(Event)) {
	d.mu.Lock()
	evs := d.events
	d.events = nil
	d.mu.Unlock()
	for _, ev := range evs {
		fn(ev)
	}
}

func (d *Memory) countUnmapped(local, peer netip.Addr, now time.Time) {
	if d.opts.TriggerPackets == 0 {
		return
	}
	k := pairKey{local, peer}
	n := d.counts[k] + 1
	d.counts[k] = n
	if n == d.opts.TriggerPackets {
		d.emit(Event{Kind: EventTrigger, Src: local, Dst: peer, Packets: n, Time: now})
	}
}

// emit is called with d.mu held. OnEvent runs with the lock released so that
// it may call back into the data plane.
func (d *Memory) emit(ev Event) {
	d.stats.Events++
	if d.opts.OnEvent != nil {
		d.mu.Unlock()
		d.opts.OnEvent(ev)
		d.mu.Lock()
		return
	}
	if len(d.events) >= d.opts.MaxQueuedEvents {
		d.stats.DroppedEvents++
		return
	}
	d.events = append(d.events, ev)
}
