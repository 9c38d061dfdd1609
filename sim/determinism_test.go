package sim_test

import (
	"slices"
	"testing"
	"time"

	"github.com/goshim6/goshim6/sim"
)

// The same seed gives the same run, packet for packet.
func TestDeterministic(t *testing.T) {
	run := func() []string {
		var trace []string
		w := sim.New(sim.Options{Seed: 99, Verbose: true, Default: sim.Path{Delay: 10 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.05},
			Trace: func(l string) { trace = append(trace, l) }})
		idA, _ := sim.HBAIdentity(1, aPfx...)
		idB, _ := sim.HBAIdentity(2, bPfx...)
		a := w.MustAddHost(sim.HostConfig{Name: "A", Identity: idA, TriggerPackets: 5})
		b := w.MustAddHost(sim.HostConfig{Name: "B", Identity: idB, TriggerPackets: 5})
		w.NewFlow(a, a.ULID(), b, b.ULID(), sim.FlowOptions{RTO: 2 * time.Second})
		w.Run(5 * time.Second)
		w.CutLocator(a.ULID())
		w.Run(30 * time.Second)
		return trace
	}
	one, two := run(), run()
	if len(one) < 100 {
		t.Fatalf("trace too short (%d lines)", len(one))
	}
	if !slices.Equal(one, two) {
		for i := range min(len(one), len(two)) {
			if one[i] != two[i] {
				t.Fatalf("runs differ at line %d:\n%s\n%s", i, one[i], two[i])
			}
		}
		t.Fatalf("runs differ in length: %d vs %d", len(one), len(two))
	}
}

// Three hosts: A talks to B and to C. A's first provider fails; both of
// A's contexts move, each on its own, and B<->C traffic is untouched.
func TestThreeHostsIndependentContexts(t *testing.T) {
	w := sim.New(sim.Options{Seed: 98})
	idA, _ := sim.HBAIdentity(1, aPfx...)
	idB, _ := sim.HBAIdentity(2, bPfx...)
	idC, _ := sim.HBAIdentity(3, "2001:db8:c1::/64", "2001:db8:c2::/64")
	a := w.MustAddHost(sim.HostConfig{Name: "A", Identity: idA, TriggerPackets: 5})
	b := w.MustAddHost(sim.HostConfig{Name: "B", Identity: idB, TriggerPackets: 5})
	c := w.MustAddHost(sim.HostConfig{Name: "C", Identity: idC, TriggerPackets: 5})
	ab := w.NewFlow(a, a.ULID(), b, b.ULID(), sim.FlowOptions{})
	ac := w.NewFlow(a, a.ULID(), c, c.ULID(), sim.FlowOptions{})
	bc := w.NewFlow(b, b.ULID(), c, c.ULID(), sim.FlowOptions{})
	w.Run(5 * time.Second)
	if n := len(a.Engine().Contexts()); n != 2 {
		t.Fatalf("A has %d contexts, want 2", n)
	}
	w.CutLocator(a.ULID())
	cut := w.Now()
	w.Run(45 * time.Second)
	for name, f := range map[string]*sim.Flow{"A-B": ab, "A-C": ac} {
		r := f.AtoB().Received
		w.Run(2 * time.Second)
		if f.AtoB().Received-r < 15 || f.BtoA().LastReceived.Before(w.Now().Add(-time.Second)) {
			t.Errorf("%s does not deliver after A's failover", name)
		}
	}
	if o := bc.AtoB().LongestOutage(cut, w.Now(), bc.Gap()); o != 0 {
		t.Errorf("B-C had an outage of %v", o)
	}
	for _, ci := range a.Engine().Contexts() {
		if ci.LocalLocator == a.ULID() {
			t.Errorf("context with %s still on A's dead locator", ci.PeerULID)
		}
	}
}
