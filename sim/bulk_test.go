package sim_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// The lab's failover (issue 7, two shim6d with the eBPF data plane): a bulk
// TCP-like transfer A->B with ACK-like packets B->A, tuned Send Timeout 1 s,
// the data plane's activity polled every 100 ms with instants converted
// from the kernel's clock at each poll (jittered), TCP retransmission
// timeouts hinted at A only (B, the receiver, has no RTO). A's link on
// provider 1 goes down both ways.
//
// RFC 5534 §6.1: only a payload packet received while Exploring moves to
// InboundOk; an activity report that repeats an old packet with a newer
// looking instant is not one (A would claim InboundOk with nothing
// received, and B, never told to explore, would keep sending to the dead
// a1). RFC 5534 §4.2, §6.7-§6.9: A's Probe(Exploring) on a working pair
// makes B explore too, and the exchange ends with both ends on the new
// pair: both directions deliver again within about one RTO of A's switch.
// Without the hint, A's Send Timer detects the failure within its Send
// Timeout: reports that repeat old packets do not stop it.
func TestBulkTransferFailoverBothEndsSwitch(t *testing.T) {
	for _, hint := range []bool{true, false} {
		for seed := uint64(300); seed < 306; seed++ {
			t.Run(fmt.Sprintf("hint=%v/%d", hint, seed), func(t *testing.T) { bulkFailover(t, seed, hint) })
		}
	}
}

func bulkFailover(t *testing.T, seed uint64, hint bool) {
	const rto = 200 * time.Millisecond
	flowRTO, detect := rto, 1500*time.Millisecond // first RTO, then exploration
	if !hint {
		flowRTO, detect = 0, 2500*time.Millisecond // Send Timeout, then exploration
	}
	s := newScene(t, sceneOpts{
		seed:   seed,
		engine: engine.Config{SendTimeout: time.Second},
		poll:   100 * time.Millisecond,
		jitter: 20 * time.Microsecond,
		flow:   &sim.FlowOptions{Interval: 20 * time.Millisecond, Acks: true, RTO: flowRTO},
	})
	s.established(5 * time.Second)
	s.w.Run(3 * time.Second)
	a1 := s.a.ULID()
	s.w.CutLocator(a1)
	cut := s.w.Now()
	nA := len(s.a.Events())
	var switched time.Time
	if !s.w.RunUntilTrue(detect, func() bool {
		for _, e := range s.a.Events()[nA:] {
			if e.Kind == engine.EventLocatorSwitch {
				switched = e.Time
				return true
			}
		}
		return false
	}) {
		t.Fatalf("A did not switch within %v", detect)
	}
	for _, e := range s.a.Events()[nA:] {
		if e.Kind == engine.EventReapState && strings.Contains(e.Reason, "exploring -> inbound-ok (inbound)") {
			t.Errorf("A went InboundOk at +%v although nothing from B can reach a1", e.Time.Sub(cut))
		}
	}
	// Both directions deliver again within about one RTO.
	ok := s.w.RunUntilTrue(rto, func() bool {
		return s.f.AtoB().LastReceived.After(switched) && s.f.BtoA().LastReceived.After(switched)
	})
	if !ok {
		lb, pb := s.current(s.b, s.a)
		t.Errorf("A switched at +%v; %v later A->B last +%v, B->A last +%v (B on %s->%s)", switched.Sub(cut), rto,
			s.f.AtoB().LastReceived.Sub(cut), s.f.BtoA().LastReceived.Sub(cut), lb, pb)
	}
	if _, p := s.current(s.b, s.a); p == a1 {
		t.Errorf("B still sends to the dead %s", a1)
	}
	// The sender's backed-off retransmission timer fires once more after
	// the switch: a stale hint, ignored (the peer just confirmed the new
	// pair), not a new exploration.
	hints := s.f.AtoB().Hints
	nA = len(s.a.Events())
	s.w.Run(10 * time.Second)
	if o := s.f.BtoA().LongestOutage(cut, s.w.Now(), s.f.Gap()); o > detect+rto {
		t.Errorf("B->A outage %v", o)
	}
	for _, e := range s.a.Events()[nA:] {
		if e.Kind == engine.EventReapState {
			t.Errorf("A after the switch: %s", e.Reason)
		}
	}
	if hint && s.f.AtoB().Hints == hints {
		t.Error("no hint after the switch: the scenario lost its point")
	}
	if got := s.a.Engine().Stats().ULPHintsIgnored; hint && got == 0 {
		t.Error("no stale hint counted")
	}
}
