package sim_test

import (
	"os"
	"testing"
	"time"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

func loadKey(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Establishment with CGA (RFC 3972): each ULID is a CGA of the host's RSA
// key; the other locators are vouched for by the CGA Signature option
// (RFC 5533 §5.15.5). After a failure the ends move onto the signed
// locators.
func TestEstablishCGA(t *testing.T) {
	var ids [2]sim.Identity
	for i, n := range []string{"a", "b"} {
		key, err := cga.ParsePrivateKeyPEM(loadKey(t, "cga-key-"+n+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		pfx := aPfx
		if n == "b" {
			pfx = bPfx
		}
		if ids[i], err = sim.CGAIdentity(key, uint64(i+1), pfx...); err != nil {
			t.Fatal(err)
		}
	}
	var log []string
	w := sim.New(sim.Options{Seed: 60, Trace: func(l string) { log = append(log, l) }})
	a := w.MustAddHost(sim.HostConfig{Name: "A", Identity: ids[0], TriggerPackets: 5})
	b := w.MustAddHost(sim.HostConfig{Name: "B", Identity: ids[1], TriggerPackets: 5})
	s := &scene{t: t, w: w, a: a, b: b}
	s.f = w.NewFlow(a, a.ULID(), b, b.ULID(), sim.FlowOptions{})
	if err := cga.Verify(a.ULID(), ids[0].PDS); err != nil {
		t.Fatalf("A's ULID is not a CGA of its PDS: %v", err)
	}
	ca, cb := s.established(5 * time.Second)
	for _, c := range []engine.ContextInfo{ca, cb} {
		if len(c.PeerLocators) != 2 {
			t.Fatalf("peer locators %+v", c.PeerLocators)
		}
		for _, l := range c.PeerLocators {
			if !l.Verified || l.Method != engine.MethodCGA {
				t.Errorf("peer locator %+v not CGA-verified", l)
			}
		}
	}
	s.delivering(2 * time.Second)
	w.CutLocator(a.ULID())
	w.Run(40 * time.Second)
	if l, _ := s.current(a, b); l != a.Locator(1) {
		t.Errorf("A did not move to its signed locator: %v", l)
	}
	s.delivering(5 * time.Second)
	if t.Failed() {
		t.Log(log)
	}
}

// RFC 5533 §7.6 context confusion: B loses its state and then allocates,
// for another ULID pair, the very tag A still holds as CT(peer) of the old
// context (here provoked by rebooting B with the same random seed). A
// detects it on the I2 (§7.15), drops the old context and accepts the new
// one; it never keeps two established contexts with B under one CT(peer).
func TestContextConfusion(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 61, noTrigger: true})
	if _, err := s.b.Engine().CreateContext(s.w.Now(), s.b.ULID(), s.a.ULID()); err != nil {
		t.Fatal(err)
	}
	_, cb := s.established(5 * time.Second)
	x := cb.LocalTag
	if err := s.b.Restart(true); err != nil { // same seed: same tags again
		t.Fatal(err)
	}
	a3 := s.a.Locator(1)
	if _, err := s.b.Engine().CreateContext(s.w.Now(), s.b.ULID(), a3); err != nil {
		t.Fatal(err)
	}
	ok := s.w.RunUntilTrue(10*time.Second, func() bool {
		c, ok := s.b.Context(s.b.ULID(), a3)
		return ok && c.State == engine.StateEstablished
	})
	if !ok {
		t.Fatal("the new context was not established")
	}
	nb, _ := s.b.Context(s.b.ULID(), a3)
	if nb.LocalTag != x {
		t.Fatalf("precondition: B reused tag %#x, want %#x (same seed)", nb.LocalTag, x)
	}
	s.w.Run(time.Second)
	if s.a.CountEvents(engine.EventContextConfusion) == 0 {
		t.Error("A did not report context confusion")
	}
	established := 0
	for _, c := range s.a.Engine().Contexts() {
		if c.PeerTag == x && c.State == engine.StateEstablished {
			established++
			if c.LocalULID != a3 {
				t.Errorf("the old context %s->%s still uses CT(peer) %#x", c.LocalULID, c.PeerULID, x)
			}
		}
	}
	if established != 1 {
		t.Errorf("%d established contexts at A with CT(peer) %#x, want 1", established, x)
	}
}

// RFC 5533 §4.2: a context can be forked; the forked-off context has a
// non-zero FII and its own tags, locator pair and REAP. Two flows, one per
// context, keep going through a failure.
func TestForkedContexts(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 62, flow: &sim.FlowOptions{}})
	ca, _ := s.established(5 * time.Second)
	fi, err := s.a.Engine().ForkContext(s.w.Now(), ca.LocalTag)
	if err != nil {
		t.Fatal(err)
	}
	if fi.FII == 0 {
		t.Fatalf("fork has FII 0: %+v", fi)
	}
	ok := s.w.RunUntilTrue(5*time.Second, func() bool {
		a, okA := s.a.Engine().LookupULIDs(s.a.ULID(), s.b.ULID(), fi.FII)
		b, okB := s.b.Engine().LookupULIDs(s.b.ULID(), s.a.ULID(), fi.FII)
		return okA && okB && a.State == engine.StateEstablished && b.State == engine.StateEstablished
	})
	if !ok {
		t.Fatal("forked context not established at both ends")
	}
	fa, _ := s.a.Engine().LookupULIDs(s.a.ULID(), s.b.ULID(), fi.FII)
	fb, _ := s.b.Engine().LookupULIDs(s.b.ULID(), s.a.ULID(), fi.FII)
	if fa.LocalTag == ca.LocalTag || fa.PeerTag != fb.LocalTag {
		t.Errorf("fork tags: %#x/%#x vs default %#x", fa.LocalTag, fa.PeerTag, ca.LocalTag)
	}
	f2 := s.w.NewFlow(s.a, s.a.ULID(), s.b, s.b.ULID(), sim.FlowOptions{FII: fi.FII})
	s.w.Run(2 * time.Second)
	if act, _ := s.a.DataPlane().Activity(fa.LocalTag); act.TxPackets == 0 {
		t.Error("the FII flow did not use the forked context")
	}
	s.w.CutLocator(s.a.ULID())
	s.w.Run(45 * time.Second)
	s.delivering(5 * time.Second)
	r := f2.AtoB().Received
	s.w.Run(5 * time.Second)
	if f2.AtoB().Received-r < 40 {
		t.Errorf("forked flow delivered %d in 5 s after the failure", f2.AtoB().Received-r)
	}
	fa, _ = s.a.Engine().LookupULIDs(s.a.ULID(), s.b.ULID(), fi.FII)
	if fa.LocalLocator == s.a.ULID() {
		t.Error("forked context did not move")
	}
}
