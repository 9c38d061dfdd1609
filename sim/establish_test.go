package sim_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// RFC 5533 §4, first steps: the applications talk over the ULIDs; after
// some packets the data plane's heuristic asks the shim to set up a
// context; the 4-way handshake runs; both ends learn each other's
// locators; the ULP packets pass unchanged.
func TestEstablishHBA(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 1, flow: &sim.FlowOptions{}})
	ca, cb := s.established(5 * time.Second)
	if ca.PeerTag != cb.LocalTag || cb.PeerTag != ca.LocalTag {
		t.Errorf("tags do not match: A %#x/%#x B %#x/%#x", ca.LocalTag, ca.PeerTag, cb.LocalTag, cb.PeerTag)
	}
	if len(ca.PeerLocators) != 2 || len(cb.PeerLocators) != 2 {
		t.Fatalf("locators learnt: A %v, B %v", ca.PeerLocators, cb.PeerLocators)
	}
	for _, l := range append(ca.PeerLocators, cb.PeerLocators...) {
		if !l.Verified || l.Method != engine.MethodHBA {
			t.Errorf("peer locator %v not HBA-verified", l)
		}
	}
	// The ULID pair is the current pair: no rewriting, no extension header.
	m, ok := s.a.DataPlane().Lookup(ca.LocalTag)
	if !ok || m.Shimmed() || m.PeerTag != cb.LocalTag {
		t.Errorf("A's mapping %+v %v", m, ok)
	}
	s.delivering(5 * time.Second)
	if st := s.a.DataPlane().Stats(); st.Rewritten != 0 {
		t.Errorf("%d packets rewritten on the ULID pair", st.Rewritten)
	}
	if s.f.AtoB().Duplicates+s.f.BtoA().Duplicates != 0 {
		t.Error("duplicates")
	}
}
