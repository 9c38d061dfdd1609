package sim_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
	"github.com/goshim6/goshim6/wire"
)

// RFC 5533 §4.5: "Should both ends attempt to set up context state at the
// same time (for the same ULID pair), then their I1 messages might cross in
// flight, and result in an immediate R2 message." Both hosts' data planes
// trigger at the same instant: one context per side, no R1 needed.
func TestSimultaneousInitiation(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 30})
	i1, r1 := s.countType(uint8(wire.TypeI1)), s.countType(uint8(wire.TypeR1))
	if _, err := s.a.Engine().CreateContext(s.w.Now(), s.a.ULID(), s.b.ULID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.b.Engine().CreateContext(s.w.Now(), s.b.ULID(), s.a.ULID()); err != nil {
		t.Fatal(err)
	}
	ca, cb := s.established(5 * time.Second)
	if ca.PeerTag != cb.LocalTag || cb.PeerTag != ca.LocalTag {
		t.Errorf("tags cross-wired: A %#x/%#x B %#x/%#x", ca.LocalTag, ca.PeerTag, cb.LocalTag, cb.PeerTag)
	}
	if *i1 != 2 || *r1 != 0 {
		t.Errorf("I1 %d R1 %d, want 2 crossing I1s and no R1", *i1, *r1)
	}
	if n := len(s.a.Engine().Contexts()) + len(s.b.Engine().Contexts()); n != 2 {
		t.Errorf("%d contexts in total, want 2", n)
	}
	s.f = s.w.NewFlow(s.a, s.a.ULID(), s.b, s.b.ULID(), sim.FlowOptions{})
	s.delivering(3 * time.Second)
	if s.a.CountEvents(engine.EventContextUp) != 1 || s.b.CountEvents(engine.EventContextUp) != 1 {
		t.Error("context-up events")
	}
}
