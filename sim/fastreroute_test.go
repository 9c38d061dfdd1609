package sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// Fast reroute (docs/dataplane.md): the lab's bulk failover with the data
// plane moving traffic on its own. A bulk transfer A->B with ACKs, a 1 s
// Send Timeout, TCP-like retransmission timeouts at A (200 ms); A's
// provider-1 locator (its ULID) is cut both ways. A's first RTO hint makes
// A's data plane send on the backup pair a2>b2 at once; B's data plane sees
// A's payload arrive on it and sends its ACKs on the reverse pair. Both
// directions deliver within a few milliseconds of the hint, REAP then
// confirms the pair on both ends (installing it ends the data planes'
// moves), and nothing is left pending.
func TestFastRerouteBulkFailover(t *testing.T) {
	for seed := uint64(500); seed < 506; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { fastRerouteFailover(t, seed) })
	}
}

func fastRerouteFailover(t *testing.T, seed uint64) {
	const rto, interval = 200 * time.Millisecond, 10 * time.Millisecond
	s := newScene(t, sceneOpts{
		seed:   seed,
		engine: engine.Config{SendTimeout: time.Second, FastReroute: true},
		poll:   100 * time.Millisecond,
		jitter: 20 * time.Microsecond,
		flow:   &sim.FlowOptions{Interval: interval, Acks: true, RTO: rto},
	})
	s.established(5 * time.Second)
	s.w.Run(3 * time.Second)
	a1, a2, b2 := s.a.ULID(), s.a.Locator(1), s.b.Locator(1)
	ca := s.ctx(s.a, s.b)
	s.w.CutLocator(a1)
	cut := s.w.Now()
	hints := s.f.AtoB().Hints
	if !s.w.RunUntilTrue(2*rto, func() bool { return s.f.AtoB().Hints > hints }) {
		t.Fatal("no retransmission timeout at A")
	}
	hint := s.w.Now()
	if m, ok := s.a.DataPlane().Moved(ca.LocalTag); !ok || m.Local != a2 || m.Peer != b2 {
		t.Fatalf("A's data plane did not move to a2>b2 at the hint: %v %v", m, ok)
	}
	// Both directions deliver again within a few milliseconds (the next
	// packet, a flow interval later, and a round trip of 20 ms), long
	// before REAP could have switched.
	if !s.w.RunUntilTrue(interval+30*time.Millisecond, func() bool {
		return s.f.AtoB().LastReceived.After(hint) && s.f.BtoA().LastReceived.After(hint)
	}) {
		t.Fatalf("hint at +%v; A->B last +%v, B->A last +%v", hint.Sub(cut), s.f.AtoB().LastReceived.Sub(cut), s.f.BtoA().LastReceived.Sub(cut))
	}
	resumed := s.w.Now().Sub(hint)
	// REAP confirms: both ends install the pair (which ends the moves).
	s.w.Run(2 * time.Second)
	if l, p := s.current(s.a, s.b); l != a2 || p != b2 {
		t.Errorf("A on %v>%v, want a2>b2", l, p)
	}
	if l, p := s.current(s.b, s.a); l != b2 || p != a2 {
		t.Errorf("B on %v>%v, want b2>a2", l, p)
	}
	sa, sb := s.a.Engine().Stats(), s.b.Engine().Stats()
	if sa.FastReroutesEngaged != 1 || sa.FastReroutesConfirmed != 1 || sa.FastReroutesUndone != 0 {
		t.Errorf("A: engaged %d confirmed %d undone %d", sa.FastReroutesEngaged, sa.FastReroutesConfirmed, sa.FastReroutesUndone)
	}
	if sb.PeerMovesFollowed != 1 || sb.FastReroutesConfirmed != 1 || sb.FastReroutesUndone != 0 {
		t.Errorf("B: followed %d confirmed %d undone %d", sb.PeerMovesFollowed, sb.FastReroutesConfirmed, sb.FastReroutesUndone)
	}
	for _, h := range []*sim.Host{s.a, s.b} {
		for _, m := range h.DataPlane().Mappings() {
			if p, ok := h.DataPlane().Moved(m.LocalTag); ok {
				t.Errorf("%s: data plane still moved to %v", h.Name, p)
			}
		}
	}
	// One outage each way, about one RTO long.
	s.w.Run(5 * time.Second)
	for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
		if o := st.LongestOutage(cut, s.w.Now(), s.f.Gap()); o > rto+4*interval {
			t.Errorf("%s outage %v, want about one RTO (%v)", name, o, rto)
		}
	}
	if s.a.Misdelivered+s.b.Misdelivered != 0 {
		t.Errorf("misdelivered: A %d B %d", s.a.Misdelivered, s.b.Misdelivered)
	}
	t.Logf("hint +%v after the cut, both directions again %v after the hint", hint.Sub(cut), resumed)
}

// A spurious hint (nothing failed): A's data plane moves to the backup
// pair, which works too, so REAP confirms it and B follows; traffic never
// stops. After REAP's return interval the context goes back to its best
// pair, the ULIDs, on both ends.
func TestFastRerouteSpuriousHintReturns(t *testing.T) {
	s := newScene(t, sceneOpts{
		seed:   77,
		engine: engine.Config{SendTimeout: time.Second, FastReroute: true},
		poll:   100 * time.Millisecond,
		flow:   &sim.FlowOptions{Interval: 20 * time.Millisecond, Acks: true},
	})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	a1, b1 := s.a.ULID(), s.b.ULID()
	start := s.w.Now()
	s.a.DataPlane().ReportULPTrouble(a1, b1)
	s.w.Run(time.Second)
	if l, _ := s.current(s.a, s.b); l == a1 {
		t.Fatalf("A did not take the backup pair")
	}
	if st := s.a.Engine().Stats(); st.FastReroutesEngaged != 1 || st.FastReroutesConfirmed != 1 {
		t.Fatalf("A stats %+v", st)
	}
	// REAP's return interval (30 s by default) brings both back.
	s.w.Run(45 * time.Second)
	if l, p := s.current(s.a, s.b); l != a1 || p != b1 {
		t.Errorf("A on %v>%v, want the ULIDs", l, p)
	}
	if l, p := s.current(s.b, s.a); l != b1 || p != a1 {
		t.Errorf("B on %v>%v, want the ULIDs", l, p)
	}
	for name, st := range map[string]sim.FlowStats{"A->B": s.f.AtoB(), "B->A": s.f.BtoA()} {
		if o := st.LongestOutage(start, s.w.Now(), s.f.Gap()); o != 0 {
			t.Errorf("%s outage %v: a move between working pairs loses nothing", name, o)
		}
	}
	if s.a.Misdelivered+s.b.Misdelivered != 0 {
		t.Errorf("misdelivered: A %d B %d", s.a.Misdelivered, s.b.Misdelivered)
	}
}

// Without fast reroute the engine installs no backup: the same hint is a
// plain ULP hint and the data plane does not move.
func TestFastRerouteOff(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 78, engine: engine.Config{SendTimeout: time.Second},
		flow: &sim.FlowOptions{Interval: 20 * time.Millisecond, Acks: true}})
	s.established(5 * time.Second)
	ca := s.ctx(s.a, s.b)
	s.a.DataPlane().ReportULPTrouble(s.a.ULID(), s.b.ULID())
	if _, ok := s.a.DataPlane().Moved(ca.LocalTag); ok {
		t.Fatal("moved without fast reroute")
	}
	if st := s.a.Engine().Stats(); st.FastReroutesEngaged != 0 {
		t.Fatalf("stats %+v", st)
	}
}
