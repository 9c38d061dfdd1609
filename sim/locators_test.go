package sim_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
	"github.com/goshim6/goshim6/wire"
)

func peerAddrs(c engine.ContextInfo) []netip.Addr {
	var out []netip.Addr
	for _, l := range c.PeerLocators {
		if l.Flags&engine.PrefBroken == 0 {
			out = append(out, l.Addr)
		}
	}
	return out
}

// RFC 5533 §4.5: "the set of locators might be dynamic. For this reason,
// there are Update Request and Update Acknowledgement messages". A starts
// with one provider, gets a second one (B learns it through an Update),
// then loses the first: B moves to the new locator.
func TestLocalLocatorAddedThenOldRemoved(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 50, flow: &sim.FlowOptions{}, aOffer: []int{0}})
	_, cb := s.established(5 * time.Second)
	if got := peerAddrs(cb); !slices.Equal(got, []netip.Addr{s.a.ULID()}) {
		t.Fatalf("B knows %v, want only A's ULID", got)
	}
	upd, ack := s.countType(uint8(wire.TypeUpdateRequest)), s.countType(uint8(wire.TypeUpdateAck))
	a2 := s.a.Locator(1)
	if err := s.a.AddLocator(a2); err != nil {
		t.Fatal(err)
	}
	s.w.Run(2 * time.Second)
	cb = s.ctx(s.b, s.a)
	if !slices.Contains(peerAddrs(cb), a2) || *upd == 0 || *ack == 0 {
		t.Fatalf("after AddLocator: B knows %v; %d updates, %d acks", peerAddrs(cb), *upd, *ack)
	}
	for _, l := range cb.PeerLocators {
		if l.Addr == a2 && !l.Verified {
			t.Errorf("new locator not verified: %+v", l)
		}
	}
	// The first provider goes away: the address is gone from A.
	if err := s.a.RemoveLocator(s.a.ULID()); err != nil {
		t.Fatal(err)
	}
	gone := s.w.Now()
	s.w.Run(20 * time.Second)
	if l, _ := s.current(s.a, s.b); l != a2 {
		t.Errorf("A sends from %s, want %s", l, a2)
	}
	if _, p := s.current(s.b, s.a); p != a2 {
		t.Errorf("B sends to %s, want %s", p, a2)
	}
	// No Send Timeout needed: A knows at once and explores; B learns from
	// the Update Request (sent from a locator A still has, with the new
	// list) and moves within a few probes.
	for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
		if o := st.LongestOutage(gone, s.w.Now(), s.f.Gap()); o > 5*time.Second {
			t.Errorf("%s outage %v after the locator was removed, want < 5 s", name, o)
		}
	}
	s.delivering(5 * time.Second)
}

// Removing a locator that is not in use changes B's view and nothing else.
func TestUnusedLocatorRemoved(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 51, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	if err := s.a.RemoveLocator(s.a.Locator(1)); err != nil {
		t.Fatal(err)
	}
	s.w.Run(3 * time.Second)
	if got := peerAddrs(s.ctx(s.b, s.a)); slices.Contains(got, s.a.Locator(1)) {
		t.Errorf("B still offers itself A's removed locator: %v", got)
	}
	if s.b.CountEvents(engine.EventLocatorSwitch) != 0 || s.a.CountEvents(engine.EventLocatorSwitch) != 0 {
		t.Error("a switch happened")
	}
	s.delivering(3 * time.Second)
}

// RFC 5533 §5.15.3: "The intent of the BROKEN flag is to inform the peer
// that a given locator is known to be not working." A marks its first
// locator BROKEN (still reachable in the simulation): both ends move away
// from it, and B sends nothing to it any more.
func TestLocatorPreferencesBroken(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 52, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(time.Second)
	if err := s.a.SetPreference(s.a.ULID(), engine.PrefBroken, 0, 0); err != nil {
		t.Fatal(err)
	}
	s.w.Run(10 * time.Second)
	cb := s.ctx(s.b, s.a)
	broken := false
	for _, l := range cb.PeerLocators {
		if l.Addr == s.a.ULID() {
			broken = l.Flags&engine.PrefBroken != 0
		}
	}
	if !broken {
		t.Fatalf("B did not record BROKEN: %+v", cb.PeerLocators)
	}
	if _, p := s.current(s.b, s.a); p == s.a.ULID() {
		t.Errorf("B still sends to the BROKEN locator")
	}
	if l, _ := s.current(s.a, s.b); l == s.a.ULID() {
		t.Errorf("A still sends from its BROKEN locator")
	}
	toBroken := 0
	s.w.Tap(func(p sim.Packet) {
		if p.Dst == s.a.ULID() {
			toBroken++
		}
	})
	s.delivering(10 * time.Second)
	if toBroken != 0 {
		t.Errorf("%d packets sent to the BROKEN locator", toBroken)
	}
}

// Peer priorities (RFC 5533 §5.15.3): when A says its second locator is
// preferred, B moves its traffic there (through the same switching
// procedure as after a failure, RFC 5533 §4).
func TestLocatorPreferencesPriority(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 53, flow: &sim.FlowOptions{}, engine: engine.Config{}})
	s.established(5 * time.Second)
	s.w.Run(time.Second)
	if err := s.a.SetPreference(s.a.ULID(), 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.a.SetPreference(s.a.Locator(1), 0, 1, 0); err != nil {
		t.Fatal(err)
	}
	ok := s.w.RunUntilTrue(3*time.Minute, func() bool {
		_, p := s.current(s.b, s.a)
		return p == s.a.Locator(1)
	})
	if !ok {
		t.Fatal("B did not move to A's preferred locator")
	}
	s.delivering(5 * time.Second)
}
