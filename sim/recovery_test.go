package sim_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
	"github.com/goshim6/goshim6/wire"
)

// RFC 5533 §4: "There is a recovery message defined to be able to signal
// when there is no context state, which can be used to detect and recover
// from both premature garbage collection as well as from complete state
// loss (crash and reboot) of a peer." The context runs on an alternative
// pair, so the data packets carry the payload extension header; B crashes
// and reboots; A's next packets hit an unknown tag at B, which answers
// R1bis; A sends I2bis; B answers R2 and the context is back (RFC 5533
// §7.5, §7.17-§7.20), with a fresh tag at B (§7.20: SHOULD NOT reuse the
// Packet Context Tag) that A learns from the R2.
func TestPeerRestartRecovery(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 40, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(time.Second)
	s.w.CutBoth(s.a.ULID(), s.b.ULID())
	s.w.Run(40 * time.Second)
	ca, cb := s.ctx(s.a, s.b), s.ctx(s.b, s.a)
	if ca.LocalLocator == ca.LocalULID && ca.PeerLocator == ca.PeerULID {
		t.Fatal("precondition: A should run on an alternative pair")
	}
	r1bis, i2bis := s.countType(uint8(wire.TypeR1bis)), s.countType(uint8(wire.TypeI2bis))
	if err := s.b.Restart(false); err != nil {
		t.Fatal(err)
	}
	restart := s.w.Now()
	if len(s.b.Engine().Contexts()) != 0 || s.b.DataPlane().Len() != 0 {
		t.Fatal("restart kept state")
	}
	ok := s.w.RunUntilTrue(30*time.Second, func() bool {
		c, ok := s.b.Context(s.b.ULID(), s.a.ULID())
		a, _ := s.a.Context(s.a.ULID(), s.b.ULID())
		return ok && c.State == engine.StateEstablished && a.State == engine.StateEstablished && a.PeerTag == c.LocalTag
	})
	if !ok {
		t.Fatal("B did not recover the context")
	}
	t.Logf("recovered %v after the restart", s.w.Now().Sub(restart))
	if *r1bis == 0 || *i2bis == 0 {
		t.Errorf("R1bis %d, I2bis %d: recovery did not use them", *r1bis, *i2bis)
	}
	nb, na := s.ctx(s.b, s.a), s.ctx(s.a, s.b)
	if nb.PeerTag != ca.LocalTag || na.PeerTag != nb.LocalTag || nb.LocalTag == cb.LocalTag {
		t.Errorf("recovered tags: B %#x/%#x (old %#x), A %#x/%#x", nb.LocalTag, nb.PeerTag, cb.LocalTag, na.LocalTag, na.PeerTag)
	}
	if len(nb.PeerLocators) < 2 {
		t.Errorf("B relearnt only %d of A's locators", len(nb.PeerLocators))
	}
	if s.a.CountEvents(engine.EventRecovery) == 0 {
		t.Error("A reported no recovery event")
	}
	s.delivering(5 * time.Second)
}

// A restart while the context runs on the ULID pair: the data packets are
// plain, so nothing at B looks unknown; REAP and B's own trigger must sort
// it out. At the end both have one established, matching context.
func TestPeerRestartOnULIDPair(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 41, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	s.w.Run(2 * time.Second)
	if err := s.b.Restart(false); err != nil {
		t.Fatal(err)
	}
	ok := s.w.RunUntilTrue(time.Minute, func() bool {
		ca, okA := s.a.Context(s.a.ULID(), s.b.ULID())
		cb, okB := s.b.Context(s.b.ULID(), s.a.ULID())
		return okA && okB && ca.State == engine.StateEstablished && cb.State == engine.StateEstablished &&
			ca.PeerTag == cb.LocalTag && cb.PeerTag == ca.LocalTag
	})
	if !ok {
		t.Fatal("no matching context pair after B's restart")
	}
	s.delivering(5 * time.Second)
	// And it still fails over afterwards.
	s.w.CutLocator(s.a.ULID())
	s.w.Run(45 * time.Second)
	s.delivering(5 * time.Second)
}

// B loses its state while A's Update Request (A dropped a locator) is in
// flight: the Update meets an unknown tag, B answers R1bis, the context is
// recovered with I2bis (which carries A's current locator list), and B ends
// up knowing A's new locator set.
func TestRestartDuringUpdate(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 42, flow: &sim.FlowOptions{}, path: sim.Path{Delay: 50 * time.Millisecond}})
	s.established(5 * time.Second)
	s.w.Run(time.Second)
	upd := s.countType(uint8(wire.TypeUpdateRequest))
	if err := s.a.RemoveLocator(s.a.Locator(1)); err != nil {
		t.Fatal(err)
	}
	if *upd == 0 {
		t.Fatal("no Update Request sent")
	}
	s.w.Run(10 * time.Millisecond) // the Update is on its way
	r1bis := s.countType(uint8(wire.TypeR1bis))
	if err := s.b.Restart(false); err != nil {
		t.Fatal(err)
	}
	ok := s.w.RunUntilTrue(time.Minute, func() bool {
		cb, okB := s.b.Context(s.b.ULID(), s.a.ULID())
		ca, okA := s.a.Context(s.a.ULID(), s.b.ULID())
		return okA && okB && cb.State == engine.StateEstablished && !ca.UpdatePending && len(cb.PeerLocators) > 0
	})
	if !ok {
		t.Fatal("not recovered with the update done")
	}
	if *r1bis == 0 {
		t.Error("the Update to the rebooted B drew no R1bis")
	}
	cb := s.ctx(s.b, s.a)
	for _, l := range cb.PeerLocators {
		if l.Addr == s.a.Locator(1) && l.Flags&engine.PrefBroken == 0 {
			t.Errorf("B still believes in A's removed locator: %+v", cb.PeerLocators)
		}
	}
	s.delivering(5 * time.Second)
}
