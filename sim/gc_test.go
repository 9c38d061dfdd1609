package sim_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// RFC 5533 §4: "When the shim thinks that the context state is no longer
// used, it can garbage collect the state; there is no coordination
// necessary with the peer host before the state is removed." The
// applications stop; after the idle time (default 5 minutes, fed by the
// data plane's activity) both ends drop the context and its mapping. When
// the application talks again, a new context is set up.
func TestGarbageCollection(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 80, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(time.Minute)
	s.f.Stop()
	stopped := s.w.Now()
	// Still there well within the idle time: activity kept it alive.
	s.w.Run(4 * time.Minute)
	if _, ok := s.a.Context(s.a.ULID(), s.b.ULID()); !ok {
		t.Fatal("context collected before the idle time")
	}
	ok := s.w.RunUntilTrue(3*time.Minute, func() bool {
		return len(s.a.Engine().Contexts()) == 0 && len(s.b.Engine().Contexts()) == 0
	})
	if !ok {
		t.Fatalf("contexts not collected 7 min after the traffic stopped:\n%s", s.w.Summary())
	}
	// The last packets went out up to one flow interval before Stop.
	idle := s.w.Now().Sub(stopped) + 100*time.Millisecond
	if idle < engine.DefaultIdleTimeout {
		t.Errorf("collected after %v idle, before the %v idle time", idle, engine.DefaultIdleTimeout)
	}
	if s.a.DataPlane().Len() != 0 || s.b.DataPlane().Len() != 0 {
		t.Error("mappings left in the data plane")
	}
	if s.a.CountEvents(engine.EventContextDown) == 0 {
		t.Error("no context-down event")
	}
	// Talking again sets up a fresh context.
	s.f.Start()
	s.established(5 * time.Second)
	s.delivering(2 * time.Second)
}

// A context that never reaches ESTABLISHED (the peer never answers) does
// not live forever either.
func TestHalfOpenContextsCollected(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 81, noTrigger: true})
	s.w.CutLocator(s.b.ULID())
	if _, err := s.a.Engine().CreateContext(s.w.Now(), s.a.ULID(), s.b.ULID()); err != nil {
		t.Fatal(err)
	}
	s.w.Run(10 * time.Minute)
	for _, c := range s.a.Engine().Contexts() {
		if c.State != engine.StateEFailed && c.State != engine.StateNoSupport {
			t.Errorf("context still %s after 10 minutes", c.State)
		}
	}
	s.w.Run(20 * time.Minute)
	if n := len(s.a.Engine().Contexts()); n != 0 {
		t.Errorf("%d contexts left after 30 minutes:\n%s", n, s.w.Summary())
	}
}

// RFC 5534 §4.3: probing at Max Probe Timeout is a garbage-collection
// hint. B is switched off for good while A's application keeps sending
// (its packets keep the context from being idle): A collects the context
// once it probes at Max Probe Timeout and heard nothing from B for the idle
// time, and removes the mapping.
func TestUnreachablePeerCollected(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 82, flow: &sim.FlowOptions{OneWay: true}})
	s.established(5 * time.Second)
	s.w.Run(10 * time.Second)
	s.b.PowerOff()
	off := s.w.Now()
	ok := s.w.RunUntilTrue(10*time.Minute, func() bool { return len(s.a.Engine().Contexts()) == 0 })
	d := s.w.Now().Sub(off)
	if !ok || d < engine.DefaultIdleTimeout || d > engine.DefaultIdleTimeout+70*time.Second {
		t.Fatalf("collected %v after %v", ok, d)
	}
	if s.a.Engine().Stats().ContextsUnreachable != 1 || s.a.DataPlane().Len() != 0 {
		t.Errorf("stats %+v, %d mappings", s.a.Engine().Stats().ContextsUnreachable, s.a.DataPlane().Len())
	}
}
