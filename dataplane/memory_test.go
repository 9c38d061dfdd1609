package dataplane_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

var (
	ulidA = netip.MustParseAddr("2001:db8:a1::1")
	ulidB = netip.MustParseAddr("2001:db8:b1::1")
	locA2 = netip.MustParseAddr("2001:db8:a2::1")
	locB2 = netip.MustParseAddr("2001:db8:b2::1")
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newMem(t *testing.T, opts dataplane.MemoryOptions) (*dataplane.Memory, *clock) {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	opts.Now = c.now
	return dataplane.NewMemory(opts), c
}

func TestMemoryUnshimmedPassesAndCounts(t *testing.T) {
	d, c := newMem(t, dataplane.MemoryOptions{})
	m := dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: ulidA, PeerLocator: ulidB, LocalTag: 7, PeerTag: 9}
	if err := d.Install(m); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Second)
	out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 17, Payload: make([]byte, 100)})
	if out.Shim || out.Src != ulidA || out.Dst != ulidB {
		t.Fatalf("unshimmed context rewrote the packet: %+v", out)
	}
	c.t = c.t.Add(time.Second)
	in, ok := d.Input(dataplane.Packet{Src: ulidB, Dst: ulidA, Proto: 17, Payload: make([]byte, 60)})
	if !ok || in.Src != ulidB {
		t.Fatalf("input dropped or changed: %+v %v", in, ok)
	}
	a, _ := d.Activity(7)
	if a.TxPackets != 1 || a.TxBytes != 140 || a.RxPackets != 1 || a.RxBytes != 100 {
		t.Errorf("counters %+v", a)
	}
	if !a.LastSent.Equal(c.t.Add(-time.Second)) || !a.LastReceived.Equal(c.t) {
		t.Errorf("times %v %v", a.LastSent, a.LastReceived)
	}
	// FirstSent: the first send after the last receive.
	for i := range 3 {
		c.t = c.t.Add(time.Second)
		d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 17, Payload: make([]byte, 10)})
		if a, _ := d.Activity(7); !a.FirstSent.Equal(c.t.Add(-time.Duration(i) * time.Second)) {
			t.Errorf("send %d: first send %v, want %v", i, a.FirstSent, c.t.Add(-time.Duration(i)*time.Second))
		}
	}
}

func TestMemoryShimmedRewriteAndRestore(t *testing.T) {
	d, _ := newMem(t, dataplane.MemoryOptions{})
	// A's view: ULIDs A->B, locators A2->B2, B allocated tag 9.
	if err := d.Install(dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: locA2, PeerLocator: locB2, LocalTag: 7, PeerTag: 9}); err != nil {
		t.Fatal(err)
	}
	out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 6, Payload: []byte("x")})
	if !out.Shim || out.Tag != 9 || out.Src != locA2 || out.Dst != locB2 || out.Len() != 49 {
		t.Fatalf("output %+v", out)
	}
	in, ok := d.Input(dataplane.Packet{Src: locB2, Dst: locA2, Shim: true, Tag: 7, Proto: 6, Payload: []byte("y")})
	if !ok || in.Shim || in.Src != ulidB || in.Dst != ulidA || string(in.Payload) != "y" {
		t.Fatalf("input %+v %v", in, ok)
	}
	if s := d.Stats(); s.Rewritten != 1 || s.Restored != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestMemoryUnknownTagEvent(t *testing.T) {
	var got []dataplane.Event
	d, _ := newMem(t, dataplane.MemoryOptions{OnEvent: func(e dataplane.Event) { got = append(got, e) }})
	if _, ok := d.Input(dataplane.Packet{Src: locB2, Dst: locA2, Shim: true, Tag: 0x1234}); ok {
		t.Fatal("unknown tag delivered")
	}
	if len(got) != 1 || got[0].Kind != dataplane.EventUnknownTag || got[0].Tag != 0x1234 || got[0].Src != locB2 || got[0].Dst != locA2 {
		t.Fatalf("events %+v", got)
	}
}

func TestMemoryTriggerOnceAndQueueBound(t *testing.T) {
	d, _ := newMem(t, dataplane.MemoryOptions{TriggerPackets: 3, MaxQueuedEvents: 2})
	for range 10 {
		d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB})
	}
	d.Input(dataplane.Packet{Src: locB2, Dst: ulidA, Shim: true, Tag: 1})
	d.Input(dataplane.Packet{Src: locB2, Dst: ulidA, Shim: true, Tag: 2})
	var kinds []dataplane.EventKind
	d.DrainEvents(func(e dataplane.Event) { kinds = append(kinds, e.Kind) })
	if len(kinds) != 2 || kinds[0] != dataplane.EventTrigger || kinds[1] != dataplane.EventUnknownTag {
		t.Fatalf("events %v", kinds)
	}
	if s := d.Stats(); s.DroppedEvents != 1 {
		t.Errorf("dropped %d, want 1", s.DroppedEvents)
	}
	d.ReportULPTrouble(ulidA, ulidB)
	d.DrainEvents(func(e dataplane.Event) { kinds = append(kinds, e.Kind) })
	if kinds[len(kinds)-1] != dataplane.EventULPTrouble {
		t.Errorf("events %v", kinds)
	}
}

func TestMemoryInstallRules(t *testing.T) {
	d, _ := newMem(t, dataplane.MemoryOptions{})
	base := dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: ulidA, PeerLocator: ulidB, LocalTag: 7, PeerTag: 9}
	for name, m := range map[string]dataplane.Mapping{
		"zero tag":   func() dataplane.Mapping { x := base; x.LocalTag = 0; return x }(),
		"wide tag":   func() dataplane.Mapping { x := base; x.LocalTag = 1 << 47; return x }(),
		"no locator": func() dataplane.Mapping { x := base; x.PeerLocator = netip.Addr{}; return x }(),
	} {
		if err := d.Install(m); !errors.Is(err, dataplane.ErrInvalidMapping) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	if err := d.Install(base); err != nil {
		t.Fatal(err)
	}
	d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB})
	other := base
	other.LocalTag = 8
	if err := d.Install(other); !errors.Is(err, dataplane.ErrConflict) {
		t.Errorf("same ULIDs+FII, other tag: %v", err)
	}
	forked := other
	forked.FII = 1
	if err := d.Install(forked); err != nil {
		t.Errorf("forked context: %v", err)
	}
	// Replacing keeps the activity and moves the locators.
	moved := base
	moved.LocalLocator, moved.PeerLocator = locA2, locB2
	if err := d.Install(moved); err != nil {
		t.Fatal(err)
	}
	if a, _ := d.Activity(7); a.TxPackets != 1 {
		t.Errorf("replace lost activity: %+v", a)
	}
	d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, FII: 1})
	if a, _ := d.Activity(8); a.TxPackets != 1 {
		t.Errorf("FII 1 output not counted on the forked context: %+v", a)
	}
	if out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB}); !out.Shim || out.Src != locA2 {
		t.Errorf("moved context output: %+v", out)
	}
	var tags []uint64
	_ = d.ReadActivity(func(a dataplane.Activity) { tags = append(tags, a.LocalTag) })
	if len(tags) != 2 || tags[0] != 7 || tags[1] != 8 {
		t.Errorf("activity tags %v", tags)
	}
	if ms := d.Mappings(); len(ms) != 2 || ms[1].FII != 1 {
		t.Errorf("mappings %+v", ms)
	}
	if _, ok := d.LookupULID(ulidA, ulidB, 1); !ok {
		t.Error("LookupULID fii 1")
	}
	boom := errors.New("boom")
	d.FailWith(boom)
	if err := d.Install(base); !errors.Is(err, boom) {
		t.Errorf("FailWith: %v", err)
	}
	if err := d.Remove(7); !errors.Is(err, boom) {
		t.Errorf("FailWith remove: %v", err)
	}
	d.FailWith(nil)
	if err := d.Remove(7); err != nil || d.Len() != 1 {
		t.Errorf("remove: %v len %d", err, d.Len())
	}
	if err := d.Remove(12345); err != nil {
		t.Errorf("remove unknown: %v", err)
	}
	if _, ok := d.Lookup(7); ok {
		t.Error("removed mapping still there")
	}
}

// Fast reroute in the double behaves like the eBPF data plane: a ULP hint
// moves outbound traffic to the Backup pair (once per Install, not before
// BackupAfter), payload of the peer on another listed pair moves it to the
// reverse of that pair, and Install ends either move.
func TestMemoryFastReroute(t *testing.T) {
	d, c := newMem(t, dataplane.MemoryOptions{})
	p11 := dataplane.Pair{Local: ulidA, Peer: ulidB}
	p22 := dataplane.Pair{Local: locA2, Peer: locB2}
	p12 := dataplane.Pair{Local: ulidA, Peer: locB2}
	m := dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: ulidA, PeerLocator: ulidB, LocalTag: 7, PeerTag: 9,
		Backup: p22, BackupAfter: c.t.Add(time.Second), Pairs: []dataplane.Pair{p11, p22, p12}}
	if err := d.Install(m); err != nil {
		t.Fatal(err)
	}
	var evs []dataplane.Event
	drain := func() { evs = evs[:0]; d.DrainEvents(func(ev dataplane.Event) { evs = append(evs, ev) }) }
	// Before BackupAfter: a plain hint.
	d.ReportULPTrouble(ulidA, ulidB)
	drain()
	if len(evs) != 1 || evs[0].Kind != dataplane.EventULPTrouble {
		t.Fatalf("hint before BackupAfter: %+v", evs)
	}
	c.t = c.t.Add(2 * time.Second)
	d.ReportULPTrouble(ulidA, ulidB)
	drain()
	if len(evs) != 1 || evs[0].Kind != dataplane.EventFastReroute || evs[0].Pair != p22 || evs[0].Tag != 7 {
		t.Fatalf("hint: %+v", evs)
	}
	if out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 6}); !out.Shim || out.Src != locA2 || out.Dst != locB2 || out.Tag != 9 {
		t.Fatalf("rerouted output %+v", out)
	}
	d.ReportULPTrouble(ulidA, ulidB) // moved already: a plain hint
	drain()
	if len(evs) != 1 || evs[0].Kind != dataplane.EventULPTrouble {
		t.Fatalf("second hint: %+v", evs)
	}
	if err := d.Install(m); err != nil { // the engine undoes it
		t.Fatal(err)
	}
	if out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 6}); out.Shim || out.Dst != ulidB {
		t.Fatalf("output after Install %+v", out)
	}

	// Following: the peer's payload arrives on b2 -> a1 (our pair a1 > b2).
	in := func(src, dst netip.Addr) {
		t.Helper()
		if _, ok := d.Input(dataplane.Packet{Src: src, Dst: dst, Shim: true, Tag: 7, Proto: 6}); !ok {
			t.Fatal("input dropped")
		}
	}
	in(locB2, ulidA)
	drain()
	if len(evs) != 1 || evs[0].Kind != dataplane.EventPeerMoved || evs[0].Pair != p12 {
		t.Fatalf("peer moved: %+v", evs)
	}
	if out := d.Output(dataplane.Packet{Src: ulidA, Dst: ulidB, Proto: 6}); !out.Shim || out.Src != ulidA || out.Dst != locB2 {
		t.Fatalf("following output %+v", out)
	}
	in(locB2, ulidA) // there already
	// Not a listed pair (an address the peer has not verifiably got).
	in(netip.MustParseAddr("2001:db8:ff::1"), ulidA)
	drain()
	if len(evs) != 0 {
		t.Fatalf("events for a known or unlisted pair: %+v", evs)
	}
	// PeerPair: the engine knows the peer sends on it; not followed.
	m.PeerPair = p12
	if err := d.Install(m); err != nil {
		t.Fatal(err)
	}
	in(locB2, ulidA)
	drain()
	if len(evs) != 0 {
		t.Fatalf("followed PeerPair: %+v", evs)
	}
	// Until PeerPairUntil only.
	m.PeerPairUntil = c.t.Add(time.Second)
	if err := d.Install(m); err != nil {
		t.Fatal(err)
	}
	in(locB2, ulidA)
	c.t = c.t.Add(2 * time.Second)
	in(locB2, ulidA)
	drain()
	if len(evs) != 1 || evs[0].Kind != dataplane.EventPeerMoved {
		t.Fatalf("after PeerPairUntil: %+v", evs)
	}
	if st := d.Stats(); st.FastReroutes != 1 || st.PeerMoves != 2 {
		t.Fatalf("stats %+v", st)
	}
}
