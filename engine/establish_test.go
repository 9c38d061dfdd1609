package engine

import (
	"testing"
)

func TestEstablishHBA(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	if ca.peerTag != cb.localTag || cb.peerTag != ca.localTag {
		t.Fatalf("tags: A local %x peer %x, B local %x peer %x", ca.localTag, ca.peerTag, cb.localTag, cb.peerTag)
	}
	// Both learnt and verified the other's two locators.
	for _, x := range []struct {
		c    *Context
		peer *host
	}{{ca, b}, {cb, a}} {
		if len(x.c.peerLocs) != 2 {
			t.Fatalf("peer locators %v", x.c.peerLocs)
		}
		for i, l := range x.c.peerLocs {
			if !l.verified || l.addr != x.peer.addrs[i] || l.method != MethodHBA {
				t.Errorf("locator %d: %+v", i, l)
			}
		}
	}
	// Exactly I1, R1, I2, R2 went over the wire.
	var types []uint8
	for _, p := range n.sent {
		types = append(types, p.b[2]&0x7f)
	}
	if want := []uint8{typeI1, typeR1, typeI2, typeR2}; string(types) != string(want) {
		t.Fatalf("exchange %v, want %v", types, want)
	}
	// Mappings are in both data planes, ULIDs as locators.
	m, ok := a.dp.maps[ca.localTag]
	if !ok || m.PeerTag != cb.localTag || m.LocalLocator != a.addrs[0] || m.PeerLocator != b.addrs[0] || m.Shimmed() {
		t.Fatalf("A mapping %+v", m)
	}
	if _, ok := b.dp.maps[cb.localTag]; !ok {
		t.Fatal("B has no mapping")
	}
	if a.count(EventContextUp) != 1 || b.count(EventContextUp) != 1 {
		t.Fatal("context-up events missing")
	}
	// The responder kept no state before I2: nothing in its pending count.
	if b.e.npending != 0 || a.e.npending != 0 {
		t.Fatalf("pending %d %d", a.e.npending, b.e.npending)
	}
}

func TestTagsAre47BitAndUnique(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	_ = b
	seen := map[uint64]bool{}
	for i := 0; i < 2000; i++ {
		tag := a.e.newLocalTag()
		if tag == 0 || tag > tagMask || seen[tag] {
			t.Fatalf("tag %x", tag)
		}
		seen[tag] = true
		a.e.byTag[tag] = &Context{}
	}
	_ = n
}
