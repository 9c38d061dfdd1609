package ebpf

import (
	"testing"

	"github.com/goshim6/goshim6/internal/netns"
)

// TestSwitchLocators: a byte-exact TCP stream over the ULIDs keeps flowing
// while the context moves to the provider-2 locators (with provider 1
// broken, so only the shimmed path can carry it) and back.
func TestSwitchLocators(t *testing.T) {
	topo, a, b := twoHosts(t, nil)
	ma, mb := contextPair(a, b, 0x1111_2222_3333, 0x4444_5555_6666, false)
	a.install(ma)
	b.install(mb)
	s := startStream(t, a, b)
	s.progress(t, 4<<20, "on the ULIDs")

	ma2, mb2 := contextPair(a, b, 0x1111_2222_3333, 0x4444_5555_6666, true)
	a.install(ma2)
	b.install(mb2)
	if err := topo.Fail("a-p1", netns.Blackhole, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	s.progress(t, 64<<20, "shimmed over provider 2")
	if err := a.dp.RefreshRoutes(); err != nil {
		t.Fatal(err)
	}
	s.progress(t, 4<<20, "after RefreshRoutes")
	for _, x := range []*host{a, b} {
		st := x.stats()
		if st["out_shimmed"] == 0 || st["in_stripped"] == 0 {
			t.Errorf("%s: nothing shimmed/stripped: %v", x.h.Name, st)
		}
		for _, k := range []string{"out_drop_gso", "out_drop_no_mapping", "out_drop_adjust", "in_drop_adjust", "in_drop_malformed", "in_unknown_tag"} {
			if st[k] != 0 {
				t.Errorf("%s: %s = %d", x.h.Name, k, st[k])
			}
		}
	}

	if err := topo.Heal("a-p1"); err != nil {
		t.Fatal(err)
	}
	a.install(ma)
	b.install(mb)
	if err := topo.Fail("a-p2", netns.Blackhole, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	s.progress(t, 16<<20, "back on the ULIDs")

	ac := a.activity(ma.LocalTag)
	if ac.TxPackets == 0 || ac.RxPackets == 0 || ac.LastSent.IsZero() || ac.LastReceived.IsZero() {
		t.Errorf("activity on a: %+v", ac)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stream carried %d bytes; a: %v", s.received.Load(), a.stats())
}
