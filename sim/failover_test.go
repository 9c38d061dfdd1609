package sim_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// RFC 5533 §4: "At some point in time, something fails ... one or both ends
// of the communication need to probe the different alternate locator pairs
// until a working pair is found, and then switch to using that locator
// pair." Every alternative pair of the 2x2 topology in turn is the only one
// left working.
func TestFailoverOntoEachAlternativePair(t *testing.T) {
	for _, alt := range [][2]int{{0, 1}, {1, 0}, {1, 1}} {
		t.Run(fmt.Sprintf("a%d-b%d", alt[0]+1, alt[1]+1), func(t *testing.T) {
			s := newScene(t, sceneOpts{seed: 10 + uint64(alt[0]*2+alt[1]), flow: &sim.FlowOptions{}})
			s.established(5 * time.Second)
			s.w.Run(2 * time.Second)
			la, lb := s.a.Locator(alt[0]), s.b.Locator(alt[1])
			for i := range 2 {
				for j := range 2 {
					if i != alt[0] || j != alt[1] {
						s.w.CutBoth(s.a.Locator(i), s.b.Locator(j))
					}
				}
			}
			cut := s.w.Now()
			s.w.Run(45 * time.Second)
			if l, p := s.current(s.a, s.b); l != la || p != lb {
				t.Errorf("A uses %s->%s, want %s->%s", l, p, la, lb)
			}
			if l, p := s.current(s.b, s.a); l != lb || p != la {
				t.Errorf("B uses %s->%s, want %s->%s", l, p, lb, la)
			}
			// The data plane now rewrites: locators and payload extension
			// header, restored at the other end (delivering checks the
			// addresses the ULP sees).
			s.delivering(5 * time.Second)
			if s.a.DataPlane().Stats().Rewritten == 0 || s.b.DataPlane().Stats().Restored == 0 {
				t.Error("no shimmed packets after failover")
			}
			// Detection takes a Send Timeout (15 s); exploration a few
			// probes more.
			for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
				if o := st.LongestOutage(cut, s.w.Now(), s.f.Gap()); o < 10*time.Second || o > 25*time.Second {
					t.Errorf("%s outage %v, want 10-25 s", name, o)
				}
			}
			if s.a.CountEvents(engine.EventLocatorSwitch) == 0 || s.b.CountEvents(engine.EventLocatorSwitch) == 0 {
				t.Error("no locator-switch events")
			}
		})
	}
}

// RFC 5534 Appendix A example 5: only A->B breaks on the current pair. B
// notices (its packets get no answer), explores; A answers in state
// InboundOk; A moves to another pair. B probes the pair sharing no locator
// with its current one first (reap afterDiverse: after a Send Timeout the
// current pair is the least likely to work), which works both ways, and
// takes it; the RFC's example, probing the current pair first, would keep B
// on its working direction. Either way both end on working pairs.
func TestUnidirectionalFailure(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 20, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.Cut(s.a.ULID(), s.b.ULID())
	s.w.Run(40 * time.Second)
	if l, p := s.current(s.a, s.b); l == s.a.ULID() && p == s.b.ULID() {
		t.Errorf("A still sends on the broken direction")
	}
	if l, p := s.current(s.b, s.a); l == s.b.ULID() || p == s.a.ULID() {
		t.Errorf("B on %s->%s, want the pair sharing no locator with its ULIDs", l, p)
	}
	if !hasReap(s.a, "inbound-ok") {
		t.Error("A never was in InboundOk")
	}
	if !hasReap(s.b, "exploring") {
		t.Error("B never explored")
	}
	s.delivering(5 * time.Second)
}

func hasReap(h *sim.Host, state string) bool {
	for _, e := range h.Events() {
		if e.Kind == engine.EventReapState && strings.Contains(e.Reason, "-> "+state) {
			return true
		}
	}
	return false
}

// Both directions of the current pair fail at once (RFC 5534 Appendix A
// example 4): the end whose Send Timer fires first explores, the other
// answers in InboundOk (or explores too, when its timer fires before the
// first probe arrives), and they meet on a working pair.
func TestBothDirectionsFail(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 21, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.CutLocator(s.a.ULID()) // A's first provider is down
	cut := s.w.Now()
	s.w.Run(40 * time.Second)
	if l, _ := s.current(s.a, s.b); l == s.a.ULID() {
		t.Errorf("A still sends from its dead locator")
	}
	if _, p := s.current(s.b, s.a); p == s.a.ULID() {
		t.Errorf("B still sends to A's dead locator")
	}
	explored := hasReap(s.a, "exploring") || hasReap(s.b, "exploring")
	answered := hasReap(s.a, "inbound-ok") || hasReap(s.b, "inbound-ok") ||
		hasReap(s.a, "exploring") && hasReap(s.b, "exploring")
	if !explored || !answered {
		t.Error("no exploration met by the peer")
	}
	s.delivering(5 * time.Second)
	if o := s.f.AtoB().LongestOutage(cut, s.w.Now(), s.f.Gap()); o > 25*time.Second {
		t.Errorf("outage %v", o)
	}
}

// RFC 5533 §4 NOTE 1: "If, subsequently, the original ULIDs are selected
// as the active locator pair, then the tagging of packets with the Shim6
// Extension header is no longer necessary." After the path heals, the ends
// go back to the ULID pair.
func TestPathHealingReturnsToULIDPair(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 22, flow: &sim.FlowOptions{}})
	ca, _ := s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.CutBoth(s.a.ULID(), s.b.ULID())
	s.w.Run(40 * time.Second)
	if m, _ := s.a.DataPlane().Lookup(ca.LocalTag); !m.Shimmed() {
		t.Fatalf("A did not fail over: %+v", m)
	}
	s.w.HealBoth(s.a.ULID(), s.b.ULID())
	healed := s.w.Now()
	ok := s.w.RunUntilTrue(5*time.Minute, func() bool {
		ma, _ := s.a.DataPlane().Lookup(ca.LocalTag)
		cb := s.ctx(s.b, s.a)
		mb, _ := s.b.DataPlane().Lookup(cb.LocalTag)
		return !ma.Shimmed() && !mb.Shimmed()
	})
	if !ok {
		la, pa := s.current(s.a, s.b)
		lb, pb := s.current(s.b, s.a)
		t.Fatalf("not back on the ULID pair 5 min after healing: A %s->%s B %s->%s", la, pa, lb, pb)
	}
	t.Logf("back on the ULID pair %v after healing", s.w.Now().Sub(healed))
	before := s.f.AtoB().Outages
	s.delivering(5 * time.Second)
	if len(s.f.AtoB().Outages) != len(before) {
		t.Error("going back caused an outage")
	}
}

// 30% loss on every link, both ways: the handshake retransmits, REAP's
// keepalives and probes get through often enough, and a failure is still
// repaired.
func TestThirtyPercentLoss(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 23, flow: &sim.FlowOptions{}, path: sim.Path{Delay: 10 * time.Millisecond, Loss: 0.3}})
	s.established(2 * time.Minute)
	s.w.Run(10 * time.Second)
	s.w.CutLocator(s.b.ULID())
	s.w.Run(90 * time.Second)
	if _, p := s.current(s.a, s.b); p == s.b.ULID() {
		t.Fatalf("A still sends to B's dead locator")
	}
	ab, ba := s.f.AtoB(), s.f.BtoA()
	s.w.Run(20 * time.Second)
	gotAB := float64(s.f.AtoB().Received-ab.Received) / 200
	gotBA := float64(s.f.BtoA().Received-ba.Received) / 200
	if gotAB < 0.6 || gotAB > 0.8 || gotBA < 0.6 || gotBA > 0.8 {
		t.Errorf("delivery ratio A->B %.2f B->A %.2f, want ~0.7", gotAB, gotBA)
	}
}

// Jitter, duplication and reordering do not confuse anything.
func TestJitterDuplicationReordering(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 24, flow: &sim.FlowOptions{}, path: sim.Path{Delay: 20 * time.Millisecond, Jitter: 30 * time.Millisecond, Dup: 0.2, Reorder: 0.2}})
	s.established(10 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.CutLocator(s.a.ULID())
	s.w.Run(45 * time.Second)
	s.delivering(5 * time.Second)
	if s.f.AtoB().Duplicates == 0 {
		t.Error("the path duplicated nothing?")
	}
	if s.w.NetStats().Reordered == 0 {
		t.Error("nothing reordered")
	}
}

// RFC 5534 §3.3 "negative feedback from upper-layer protocols": the ULP
// behaves like TCP and reports trouble after a 1 s retransmission timeout;
// the engine explores at once instead of waiting for the Send Timeout.
func TestULPHintFastFailover(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 25, flow: &sim.FlowOptions{RTO: time.Second}})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.CutLocator(s.a.ULID())
	cut := s.w.Now()
	s.w.Run(20 * time.Second)
	for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
		if o := st.LongestOutage(cut, s.w.Now(), s.f.Gap()); o > 4*time.Second {
			t.Errorf("%s outage %v with a 1 s ULP hint, want < 4 s", name, o)
		}
		if st.Hints == 0 {
			t.Errorf("%s: no ULP hint was given", name)
		}
	}
	s.delivering(3 * time.Second)
}

// A host also has an address outside its HBA set (Method 0, listed first).
// RFC 5533 §7.2: the peer cannot verify it, so it is not in the peer's
// Ls(peer) and anything sent from it would draw an R1bis (§10.4, §12.4).
// REAP never probes from it, no control message leaves from it, and the
// failover onto A's second provider completes as without it.
func TestUnverifiableLocalAddressNeverUsed(t *testing.T) {
	plain := netip.MustParseAddr("2001:db8:a3::1")
	s := newScene(t, sceneOpts{seed: 26, aPlain: []netip.Addr{plain}, flow: &sim.FlowOptions{RTO: time.Second}})
	fromPlain := 0
	s.w.Tap(func(p sim.Packet) {
		if p.Src == plain {
			fromPlain++
		}
	})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	s.w.CutLocator(s.a.ULID())
	cut := s.w.Now()
	s.w.Run(20 * time.Second)
	if fromPlain != 0 {
		t.Errorf("%d packets sent from the unverifiable %s", fromPlain, plain)
	}
	if l, _ := s.current(s.a, s.b); l != s.a.Locator(1) {
		t.Errorf("A sends from %s, want %s", l, s.a.Locator(1))
	}
	for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
		if o := st.LongestOutage(cut, s.w.Now(), s.f.Gap()); o > 4*time.Second {
			t.Errorf("%s outage %v", name, o)
		}
	}
	s.delivering(3 * time.Second)
}
