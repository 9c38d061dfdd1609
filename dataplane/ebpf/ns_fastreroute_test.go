package ebpf

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/internal/netns"
)

// frContextPair is contextPair (on the ULIDs) with the fast-reroute fields
// an engine would install: the four pairs, the backup that avoids both
// provider-1 locators.
func frContextPair(a, b *host, ta, tb uint64) (dataplane.Mapping, dataplane.Mapping) {
	ma, mb := contextPair(a, b, ta, tb, false)
	ma.Pairs = []dataplane.Pair{{Local: a.ulid, Peer: b.ulid}, {Local: a.alt, Peer: b.alt}, {Local: a.ulid, Peer: b.alt}, {Local: a.alt, Peer: b.ulid}}
	ma.Backup = dataplane.Pair{Local: a.alt, Peer: b.alt}
	mb.Pairs = []dataplane.Pair{{Local: b.ulid, Peer: a.ulid}, {Local: b.alt, Peer: a.alt}, {Local: b.ulid, Peer: a.alt}, {Local: b.alt, Peer: a.ulid}}
	mb.Backup = dataplane.Pair{Local: b.alt, Peer: a.alt}
	return ma, mb
}

// pairsHaveMAC reports whether every pair_map entry of x has its next
// hop's link-layer address.
func pairsHaveMAC(t testing.TB, x *host) bool {
	t.Helper()
	var k shim6PairKey
	var v shim6PairVal
	n := 0
	it := x.dp.objs.PairMap.Iterate()
	for it.Next(&k, &v) {
		if v.Flags&pairFlagMAC == 0 {
			return false
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestFastReroute: a byte-exact TCP stream a -> b over the ULIDs (not
// shimmed, so its packets go straight to the provider-1 uplink); a's
// provider-1 link is blackholed both ways. TCP's first retransmission
// timeout on a moves the pair to its backup (the provider-2 locators) in
// the sock_ops program, before the retransmission is sent, and marks the
// socket into the shim device: the retransmission already leaves on the
// backup pair, shimmed. b sees a's payload on the other pair and follows:
// its ACKs are rewritten by the uplink egress program. The stream resumes
// after the first RTO, not the backed-off second one. Then the "engine"
// installs the new pair on both, which ends the move (and a's socket is
// unmarked again).
func TestFastReroute(t *testing.T) {
	topo, a, b := twoHosts(t, func(c *Config) { c.FastReroute = true })
	ma, mb := frContextPair(a, b, 0x1111_2222_3333, 0x4444_5555_6666)
	a.install(ma)
	b.install(mb)
	eva, evb := collectEvents(t, a), collectEvents(t, b)
	// Install started resolving the backup pairs' next hops; once they
	// answered, the upkeep records their link-layer addresses, with which
	// a move sends directly (shim6.c fr_redirect).
	for _, x := range []*host{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for !pairsHaveMAC(t, x) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: next hops of the backup pairs not resolved", x.h.Name)
			}
			time.Sleep(20 * time.Millisecond)
			if err := x.dp.KeepNeighbours(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := startStream(t, a, b)
	s.progress(t, 8<<20, "on the ULIDs")
	for _, x := range []*host{a, b} {
		if st := x.stats(); st["fr_out"] != 0 || st["fr_rerouted"] != 0 || st["out_pass"] != 0 {
			t.Fatalf("%s: moves before any failure: %v", x.h.Name, st)
		}
	}

	if err := topo.Fail("a-p1", netns.Blackhole, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	failed := time.Now()
	stalled := s.received.Load()
	e := eva.wait(t, "fast reroute", func(e dataplane.Event) bool { return e.Kind == dataplane.EventFastReroute })
	if e.Src != a.ulid || e.Dst != b.ulid || e.Tag != ma.LocalTag || e.Pair != ma.Backup {
		t.Fatalf("fast reroute event %+v", e)
	}
	f := evb.wait(t, "peer moved", func(e dataplane.Event) bool { return e.Kind == dataplane.EventPeerMoved })
	if f.Src != b.ulid || f.Dst != a.ulid || f.Tag != mb.LocalTag || f.Pair != mb.Backup {
		t.Fatalf("peer moved event %+v", f)
	}
	// The stream flows again without any mapping installed.
	for s.received.Load() < stalled+(4<<20) {
		if time.Since(failed) > 10*time.Second {
			t.Fatalf("stream stalled at %d bytes after the move; a %v; b %v", s.received.Load(), a.stats(), b.stats())
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("RTO move at +%v, peer followed at +%v, 4 MiB more delivered +%v after the failure",
		e.Time.Sub(failed).Round(time.Millisecond), f.Time.Sub(failed).Round(time.Millisecond), time.Since(failed).Round(time.Millisecond))
	sa, sb := a.stats(), b.stats()
	for k, v := range map[string]uint64{"fr_rerouted": sa["fr_rerouted"], "fr_marked": sa["fr_marked"], "fr_out_shim": sa["fr_out_shim"],
		"b fr_followed": sb["fr_followed"], "b fr_out": sb["fr_out"]} {
		if v == 0 {
			t.Errorf("%s = 0; a %v; b %v", k, sa, sb)
		}
	}
	// The retransmission of the first RTO went out on the backup pair:
	// only one RTO happened before the stream resumed (a second one
	// would mean the first retransmission was lost on the dead path).
	if n := eva.count(func(e dataplane.Event) bool { return e.Kind == dataplane.EventULPTrouble }); n > 1 {
		t.Errorf("%d further RTOs after the move", n)
	}

	// The engine's part: REAP confirms the pair and installs it.
	ma2, mb2 := contextPair(a, b, ma.LocalTag, mb.LocalTag, true)
	a.install(ma2)
	b.install(mb2)
	s.progress(t, 16<<20, "on the installed pair")
	deadline := time.Now().Add(5 * time.Second)
	for a.stats()["fr_unmarked"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("socket not unmarked after the install: %v", a.stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*host{a, b} {
		st := x.stats()
		for _, k := range []string{"out_drop_no_mapping", "out_drop_adjust", "in_drop_adjust", "in_drop_malformed", "in_unknown_tag", "fr_no_pair"} {
			if st[k] != 0 {
				t.Errorf("%s: %s = %d", x.h.Name, k, st[k])
			}
		}
		t.Logf("%s: %v", x.h.Name, st)
	}
}
