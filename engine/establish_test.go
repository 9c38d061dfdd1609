package engine

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
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
		if x.c.peerPDS == nil || string(x.c.peerPDS.bytes()) != string(x.peer.pds) {
			t.Error("peer PDS not recorded")
		}
	}
	// Exactly I1, R1, I2, R2 went over the wire.
	if got, want := n.sentTypes(0), []uint8{typeI1, typeR1, typeI2, typeR2}; string(got) != string(want) {
		t.Fatalf("exchange %v, want %v", got, want)
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
	if a.e.pending() != 0 || b.e.pending() != 0 {
		t.Fatalf("pending %d %d", a.e.pending(), b.e.pending())
	}
	st := a.e.Stats()
	if st.Contexts != 1 || st.HandshakesEstablished != 1 || st.TxByType[typeI1] != 1 || st.RxByType[typeR2] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A second CreateContext for the same pair reports the existing one.
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
}

func TestResponderKeepsNoStateBeforeI2(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = dropTypes(typeI2) // the initiator never completes
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	n.run(2 * time.Second)
	if len(b.e.byULID) != 0 || len(b.e.byTag) != 0 || b.e.timers.len() != 0 {
		t.Fatalf("responder has state after I1: %d contexts", len(b.e.byULID))
	}
	if n.countSent(typeR1) != 1 {
		t.Fatalf("R1 sent %d", n.countSent(typeR1))
	}
}

func TestI1FloodCostsNoMemory(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{R1Rate: 100, R1Burst: 10})
	// 10,000 I1s with distinct tags and initiator addresses.
	for i := range 10000 {
		m := &a.e.tx
		m.reset()
		m.typ, m.tag, m.initNonce = typeI1, uint64(i+1), uint32(i)
		raw, err := a.e.codec.encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 15: byte(i), 14: byte(i >> 8)})
		b.e.HandlePacket(n.now, src, b.addrs[0], raw)
	}
	if len(b.e.byULID) != 0 || len(b.e.byTag) != 0 || b.e.timers.len() != 0 || len(b.e.pds) != 0 {
		t.Fatal("I1 flood created state")
	}
	st := b.e.Stats()
	if st.TxByType[typeR1] != 10 || st.R1Limited != 9990 {
		t.Fatalf("R1 sent %d limited %d", st.TxByType[typeR1], st.R1Limited)
	}
}

func TestI1RetransmitBackoffAndEFailed(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = func(p pkt) bool { return false } // B unreachable
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	times := []time.Time{t0}
	for len(n.sent) < I1RetriesMax+1 {
		if !n.step(n.now.Add(time.Hour)) {
			t.Fatal("no retransmission")
		}
		if len(n.sent) > len(times) {
			times = append(times, n.now)
		}
	}
	// RFC 5533 §7.8, §14: k-th retransmission after 4*2^(k-1) s,
	// randomised to 0.5-1.5x.
	prev := t0
	for k, at := range times[1:] {
		nominal := I1Timeout << k
		gap := at.Sub(prev)
		if gap < nominal/2 || gap > nominal*3/2 {
			t.Errorf("retransmission %d after %v, nominal %v", k+1, gap, nominal)
		}
		prev = at
	}
	// The last I1 gets its full backed-off timeout before E-FAILED.
	last := times[len(times)-1]
	for stateOf(a.ctx(t, b)) == StateI1Sent {
		n.next()
	}
	if c := a.ctx(t, b); stateOf(c) != StateEFailed || n.now.Sub(last) < (I1Timeout<<I1RetriesMax)/2 {
		t.Fatalf("state %v %v after the last I1", stateOf(c), n.now.Sub(last))
	}
	if n.countSent(typeI1) != I1RetriesMax+1 {
		t.Fatalf("%d I1s, want %d", n.countSent(typeI1), I1RetriesMax+1)
	}
	_ = b
}

func TestEFailedHolddown(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = func(p pkt) bool { return false }
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	// Run until E-FAILED.
	for stateOf(a.ctx(t, b)) != StateEFailed {
		if !n.step(n.now.Add(time.Hour)) {
			t.Fatal("never failed")
		}
	}
	failedAt := n.now
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); !errors.Is(err, ErrHolddown) {
		t.Fatalf("create during holddown: %v", err)
	}
	// A trigger during holddown does nothing either.
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventTrigger, Src: a.addrs[0], Dst: b.addrs[0]})
	if len(a.e.byTag) != 0 {
		t.Fatal("trigger during holddown created a context")
	}
	// RFC 5533 §7.8: at most NO_R1_HOLDDOWN_TIME, then IDLE again.
	n.run(NoR1HolddownTime - n.now.Sub(failedAt) - time.Millisecond)
	if stateOf(a.ctx(t, b)) != StateEFailed {
		t.Fatal("holddown ended early")
	}
	n.run(2 * time.Millisecond)
	if a.ctx(t, b) != nil || len(a.e.byULID) != 0 {
		t.Fatal("holddown did not end")
	}
	n.filter = nil
	establish(t, n, a, b)
}

func TestI2RetransmitThenFallbackToI1(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = dropTypes(typeR2)
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(time.Second)
	c := a.ctx(t, b)
	if c.state != StateI2Sent {
		t.Fatalf("state %v", c.state)
	}
	// B is ESTABLISHED already: it answers every I2 with R2 (lost).
	for n.countSent(typeI2) < I2RetriesMax+1 {
		n.next()
	}
	if c.state != StateI2Sent {
		t.Fatalf("state %v after I2 retransmissions", c.state)
	}
	// RFC 5533 §7.12: after I2_RETRIES_MAX, fall back to I1.
	i1s := n.countSent(typeI1)
	for n.countSent(typeI1) == i1s {
		n.next()
	}
	if c.state != StateI1Sent {
		t.Fatalf("state %v after fallback", c.state)
	}
	// Now let R2 through: B (ESTABLISHED, same CT(peer)) answers the I1
	// with R2 directly (RFC 5533 §7.9).
	n.filter = nil
	n.run(time.Minute)
	if c.state != StateEstablished {
		t.Fatalf("state %v", c.state)
	}
	if cb := b.ctx(t, a); cb.peerTag != c.localTag || c.peerTag != cb.localTag {
		t.Fatal("tags disagree")
	}
}

func TestLostR2RecoveredByI2Retransmission(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	dropped := false
	n.filter = func(p pkt) bool {
		if typeOf(p) == typeR2 && !dropped {
			dropped = true
			return false
		}
		return true
	}
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(10 * time.Second)
	if stateOf(a.ctx(t, b)) != StateEstablished {
		t.Fatal("not established")
	}
	if n.countSent(typeI2) != 2 || n.countSent(typeR2) != 2 {
		t.Fatalf("I2 %d R2 %d", n.countSent(typeI2), n.countSent(typeR2))
	}
	if len(b.e.byULID) != 1 {
		t.Fatal("the retransmitted I2 made a second context")
	}
}

func TestSimultaneousI1(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	b.e.CreateContext(n.now, b.addrs[0], a.addrs[0])
	n.run(time.Second)
	ca, cb := a.ctx(t, b), b.ctx(t, a)
	if stateOf(ca) != StateEstablished || stateOf(cb) != StateEstablished {
		t.Fatalf("A %v B %v", stateOf(ca), stateOf(cb))
	}
	// RFC 5533 §7.4, Figure 4: I1s cross, each answered by R2.
	if got, want := n.sentTypes(0), []uint8{typeI1, typeI1, typeR2, typeR2}; string(got) != string(want) {
		t.Fatalf("exchange %v, want %v", got, want)
	}
	if ca.peerTag != cb.localTag || cb.peerTag != ca.localTag {
		t.Fatal("tags disagree")
	}
	if len(ca.peerLocs) != 2 || len(cb.peerLocs) != 2 {
		t.Fatal("locator lists not exchanged")
	}
}

func TestCrossingI2AndI1(t *testing.T) {
	// RFC 5533 §7.4 Figure 5: B answers A's I1 with R1 and then starts
	// its own I1 while A's I2 is in flight.
	n, a, b := twoHosts(t, Config{}, Config{})
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(15 * time.Millisecond) // I1 delivered, R1 in flight
	b.e.CreateContext(n.now, b.addrs[0], a.addrs[0])
	n.run(time.Second)
	ca, cb := a.ctx(t, b), b.ctx(t, a)
	if stateOf(ca) != StateEstablished || stateOf(cb) != StateEstablished {
		t.Fatalf("A %v B %v", stateOf(ca), stateOf(cb))
	}
	if ca.peerTag != cb.localTag || cb.peerTag != ca.localTag {
		t.Fatal("tags disagree")
	}
	if len(a.e.byULID) != 1 || len(b.e.byULID) != 1 {
		t.Fatal("duplicate contexts")
	}
}

func TestForkedContexts(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	fi, err := a.e.ForkContext(n.now, ca.localTag)
	if err != nil || fi.FII != 1 {
		t.Fatalf("fork: %v %+v", err, fi)
	}
	n.run(time.Second)
	k := ulidKey{a.addrs[0], b.addrs[0], 1}
	fa, fb := a.e.byULID[k], b.e.byULID[ulidKey{b.addrs[0], a.addrs[0], 1}]
	if stateOf(fa) != StateEstablished || stateOf(fb) != StateEstablished {
		t.Fatalf("forked: A %v B %v", stateOf(fa), stateOf(fb))
	}
	if fa.localTag == ca.localTag || fa.peerTag != fb.localTag || a.dp.maps[fa.localTag].FII != 1 {
		t.Fatal("forked context shares the default's tags")
	}
	if len(a.e.byULID) != 2 || len(b.e.byULID) != 2 {
		t.Fatal("want two contexts per side")
	}
	// The I1 of the fork carried the FII option (RFC 5533 §7.7: MUST).
	var i1 message
	for _, p := range n.sent {
		if typeOf(p) == typeI1 {
			i1.reset()
			a.e.codec.decode(p.b, &i1)
		}
	}
	if !i1.hasFII || i1.fii != 1 {
		t.Fatal("I1 of the fork lacks the FII option")
	}
}

func TestTagsAre47BitAndUnique(t *testing.T) {
	_, a, _ := twoHosts(t, Config{}, Config{})
	seen := map[uint64]bool{}
	for range 2000 {
		tag := a.e.newLocalTag()
		if tag == 0 || tag > tagMask || seen[tag] {
			t.Fatalf("tag %x", tag)
		}
		seen[tag] = true
		a.e.byTag[tag] = &Context{}
	}
}
