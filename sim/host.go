package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine"
)

// HostConfig describes one simulated host.
type HostConfig struct {
	Name     string
	Identity Identity
	// Offer lists the locators (a subset of the identity's) the host has
	// at start; nil: all of them.
	Offer []netip.Addr
	// Engine is the engine configuration; PDS, PrivateKey and
	// LocalLocators are filled in from the identity.
	Engine engine.Config
	// ActivityPoll is how often the host feeds the data plane's activity
	// to the engine, as the daemon's loop does (default 200 ms).
	ActivityPoll time.Duration
	// ActivityClockJitter models a data plane whose activity instants are
	// converted from another clock at every poll (the eBPF data plane adds
	// time.Now() - CLOCK_MONOTONIC, read a few microseconds apart): each
	// poll shifts every reported instant by the same random offset in
	// [0, ActivityClockJitter), so the same packet can look newer at the
	// next poll. Packet counters are exact. 0: exact instants.
	ActivityClockJitter time.Duration
	// TriggerPackets: the data plane asks the engine to set up a context
	// after this many packets between a ULID pair (0 = only on request).
	TriggerPackets uint64
	// Claim lists locators the host advertises without owning them: an
	// attacker announcing someone else's address (RFC 4218 §4.1.1).
	Claim []engine.LocalLocator
	// Plain lists addresses the host has outside its identity (no
	// verification method: a plain SLAAC or static address); the engine
	// is told about them first, with Method 0.
	Plain []netip.Addr
}

// Host is a simulated multihomed host: a real engine.Engine, the memory
// data plane, the addresses it has, and the upper-layer endpoints of flows.
type Host struct {
	Name string

	w     *World
	cfg   HostConfig
	addrs []engine.LocalLocator // locators it has now, with preferences
	eng   *engine.Engine
	dp    *dataplane.Memory
	up    bool
	gen   int

	events    []engine.Event
	endpoints map[uint32]*endpoint
	polling   bool

	// Misdelivered counts ULP packets that reached the wrong host or
	// arrived with addresses other than the flow's ULIDs.
	Misdelivered uint64
	// Received counts packets handed to the host by the network.
	Received uint64
	// NoSource counts ULP packets dropped because their (rewritten)
	// source address is not one the host has.
	NoSource uint64
}

// ErrUnknownLocator: a locator that is not part of the host's identity.
var ErrUnknownLocator = errors.New("sim: locator not in the host's identity")

// AddHost creates a host and starts its engine.
func (w *World) AddHost(cfg HostConfig) (*Host, error) {
	if cfg.ActivityPoll <= 0 {
		cfg.ActivityPoll = 200 * time.Millisecond
	}
	h := &Host{Name: cfg.Name, w: w, cfg: cfg, endpoints: map[uint32]*endpoint{}}
	for _, a := range cfg.Plain {
		h.addrs = append(h.addrs, engine.LocalLocator{Addr: a})
	}
	for _, l := range cfg.Identity.Locators {
		if cfg.Offer == nil || slices.Contains(cfg.Offer, l.Addr) {
			h.addrs = append(h.addrs, l)
		}
	}
	owned := append(cfg.Identity.Addrs(), cfg.Plain...)
	for _, a := range owned {
		if o := w.owner[a]; o != nil {
			return nil, fmt.Errorf("sim: %s already belongs to %s", a, o.Name)
		}
	}
	if err := h.boot(); err != nil {
		return nil, err
	}
	for _, a := range owned {
		w.owner[a] = h
	}
	w.hosts = append(w.hosts, h)
	return h, nil
}

// MustAddHost is AddHost that panics on error (tests).
func (w *World) MustAddHost(cfg HostConfig) *Host {
	h, err := w.AddHost(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

// boot starts a fresh engine and data plane: all protocol state is new.
func (h *Host) boot() error {
	h.gen++
	cfg := h.cfg.Engine
	cfg.PDS = h.cfg.Identity.PDS
	cfg.PrivateKey = h.cfg.Identity.Key
	cfg.LocalLocators = append(slices.Clone(h.addrs), h.cfg.Claim...)
	h.dp = dataplane.NewMemory(dataplane.MemoryOptions{
		Now:            h.w.Now,
		OnEvent:        h.dataPlaneEvent,
		TriggerPackets: h.cfg.TriggerPackets,
	})
	eng, err := engine.New(cfg, engine.Deps{
		Sender:    h,
		DataPlane: h.dp,
		Rand:      chachaReader{rand.NewChaCha8(h.w.seedFor(h.Name, h.gen))},
		Events:    h.event,
	})
	if err != nil {
		return err
	}
	h.eng = eng
	h.up = true
	if !h.polling {
		h.polling = true
		h.w.After(h.cfg.ActivityPoll, h.poll)
	}
	return nil
}

// Engine returns the host's current engine (a new one after Restart).
func (h *Host) Engine() *engine.Engine { return h.eng }

// DataPlane returns the host's current data plane.
func (h *Host) DataPlane() *dataplane.Memory { return h.dp }

// ULID returns the host's first identity locator, its usual ULID.
func (h *Host) ULID() netip.Addr { return h.cfg.Identity.Locators[0].Addr }

// Locator returns the i-th locator of the identity.
func (h *Host) Locator(i int) netip.Addr { return h.cfg.Identity.Locators[i].Addr }

// Addrs returns the locators the host has now.
func (h *Host) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(h.addrs))
	for i, l := range h.addrs {
		out[i] = l.Addr
	}
	return out
}

func (h *Host) hasAddr(a netip.Addr) bool {
	return slices.ContainsFunc(h.addrs, func(l engine.LocalLocator) bool { return l.Addr == a })
}

// Events returns every engine event the host reported (all boots).
func (h *Host) Events() []engine.Event { return h.events }

// CountEvents counts the events of kind k.
func (h *Host) CountEvents(k engine.EventKind) int {
	n := 0
	for _, e := range h.events {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func (h *Host) event(ev engine.Event) {
	h.events = append(h.events, ev)
	h.w.tracef("%s: %s tag %#x %s->%s %s %s->%s %s", h.Name, ev.Kind, ev.LocalTag, ev.LocalULID, ev.PeerULID, ev.State, ev.Local, ev.Peer, ev.Reason)
}

func (h *Host) dataPlaneEvent(ev dataplane.Event) {
	if h.up {
		h.eng.HandleDataPlaneEvent(h.w.now, ev)
	}
}

// Send implements engine.Sender: a control message from one of the host's
// locators.
func (h *Host) Send(src, dst netip.Addr, msg []byte) error {
	if !h.up {
		return errors.New("sim: host is down")
	}
	if !h.hasAddr(src) {
		return fmt.Errorf("sim: %s does not have %s", h.Name, src)
	}
	h.w.transmit(Packet{Src: src, Dst: dst, Control: slices.Clone(msg)})
	return nil
}

func (h *Host) deadline() (time.Time, bool) {
	if !h.up {
		return time.Time{}, false
	}
	return h.eng.NextDeadline()
}

func (h *Host) timer() { h.eng.HandleTimer(h.w.now) }

// poll feeds the data plane's activity to the engine, like the daemon's
// activity poll.
func (h *Host) poll() {
	if h.up {
		var off time.Duration
		if j := h.cfg.ActivityClockJitter; j > 0 {
			off = time.Duration(h.w.rng.Int64N(int64(j)))
		}
		_ = h.dp.ReadActivity(func(a dataplane.Activity) {
			if off != 0 {
				a.LastSent, a.LastReceived = shift(a.LastSent, off), shift(a.LastReceived, off)
			}
			h.eng.HandleActivity(h.w.now, a)
		})
	}
	h.w.After(h.cfg.ActivityPoll, h.poll)
}

func shift(t time.Time, d time.Duration) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Add(d)
}

func (h *Host) receive(p Packet) {
	h.Received++
	if p.IsControl() {
		h.eng.HandlePacket(h.w.now, p.Src, p.Dst, p.Control)
		return
	}
	out, ok := h.dp.Input(p.Data)
	if !ok {
		return
	}
	h.deliverULP(out)
}

// SendULP sends an upper-layer packet (addresses: the ULIDs) through the
// host's data plane.
func (h *Host) SendULP(p dataplane.Packet) {
	if !h.up {
		return
	}
	out := h.dp.Output(p)
	if !h.hasAddr(out.Src) {
		// The kernel cannot send from an address the host no longer has.
		h.NoSource++
		return
	}
	h.w.transmit(Packet{Src: out.Src, Dst: out.Dst, Data: out})
}

// Restart models a crash and reboot: the engine and the data plane lose all
// state (RFC 5533 §7.5). With sameSeed the new engine draws the same random
// numbers as the first boot did (to provoke context confusion, §7.15).
func (h *Host) Restart(sameSeed bool) error {
	h.w.tracef("%s: restart (state lost)", h.Name)
	if sameSeed {
		h.gen = 0
	}
	return h.boot()
}

// PowerOff stops the host: it drops everything until PowerOn.
func (h *Host) PowerOff() {
	h.up = false
	h.w.tracef("%s: power off", h.Name)
}

// PowerOn boots the host with fresh state.
func (h *Host) PowerOn() error {
	h.w.tracef("%s: power on", h.Name)
	return h.boot()
}

func (h *Host) setLocators(ls []engine.LocalLocator) error {
	h.addrs = ls
	if !h.up {
		return nil
	}
	return h.eng.SetLocalLocators(h.w.now, append(slices.Clone(ls), h.cfg.Claim...))
}

// RemoveLocator takes an address away from the host (an interface went
// down, a prefix was withdrawn); the engine sends Update Requests.
func (h *Host) RemoveLocator(a netip.Addr) error {
	i := slices.IndexFunc(h.addrs, func(l engine.LocalLocator) bool { return l.Addr == a })
	if i < 0 {
		return ErrUnknownLocator
	}
	h.w.tracef("%s: locator %s removed", h.Name, a)
	return h.setLocators(slices.Delete(slices.Clone(h.addrs), i, i+1))
}

// AddLocator gives the host one more address of its identity.
func (h *Host) AddLocator(a netip.Addr) error {
	i := slices.IndexFunc(h.cfg.Identity.Locators, func(l engine.LocalLocator) bool { return l.Addr == a })
	if i < 0 {
		return ErrUnknownLocator
	}
	if h.hasAddr(a) {
		return nil
	}
	h.w.tracef("%s: locator %s added", h.Name, a)
	return h.setLocators(append(slices.Clone(h.addrs), h.cfg.Identity.Locators[i]))
}

// SetPreference changes the Locator Preferences of one of the host's
// locators (e.g. flags engine.PrefBroken); the engine tells its peers.
func (h *Host) SetPreference(a netip.Addr, flags, priority, weight uint8) error {
	ls := slices.Clone(h.addrs)
	i := slices.IndexFunc(ls, func(l engine.LocalLocator) bool { return l.Addr == a })
	if i < 0 {
		return ErrUnknownLocator
	}
	ls[i].Flags, ls[i].Priority, ls[i].Weight = flags, priority, weight
	h.w.tracef("%s: locator %s preference flags %#x priority %d weight %d", h.Name, a, flags, priority, weight)
	return h.setLocators(ls)
}

// Context returns the host's context for a ULID pair (FII 0).
func (h *Host) Context(local, peer netip.Addr) (engine.ContextInfo, bool) {
	return h.eng.LookupULIDs(local, peer, 0)
}
