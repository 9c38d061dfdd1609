package engine

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

// RFC 5533 §7.5 Figure 6: the receiver lost the context; payload with its
// old tag triggers R1bis, I2bis, R2.
func TestRecoveryR1bisI2bis(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	oldB := cb.localTag
	// B loses all state (reboot): a fresh engine with the same identity.
	b.e.deleteContext(n.now, cb, "test")
	if len(b.e.byULID) != 0 {
		t.Fatal("B still has the context")
	}
	// A sends payload on a switched pair: B's data plane reports the
	// unknown tag.
	from := len(n.sent)
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: a.addrs[1], Dst: b.addrs[1], Tag: oldB})
	n.run(time.Second)
	if got := n.sentTypes(from); string(got) != string([]uint8{typeR1bis, typeI2bis, typeR2}) {
		t.Fatalf("exchange %v", got)
	}
	cb2 := b.ctx(t, a)
	if stateOf(cb2) != StateEstablished || stateOf(ca) != StateEstablished {
		t.Fatalf("A %v B %v", stateOf(ca), stateOf(cb2))
	}
	// RFC 5533 §7.20: B picks a new tag, not the packet's.
	if cb2.localTag == oldB || ca.peerTag != cb2.localTag || cb2.peerTag != ca.localTag {
		t.Fatalf("tags: B new %x old %x, A peer %x", cb2.localTag, oldB, ca.peerTag)
	}
	// The I2bis went over the pair of the R1bis, with the ULID option.
	if cb2.lpLocal != b.addrs[1] || cb2.lpPeer != a.addrs[1] {
		t.Fatalf("B pair %v %v", cb2.lpLocal, cb2.lpPeer)
	}
	if a.dp.maps[ca.localTag].PeerTag != cb2.localTag {
		t.Fatal("A's data plane still has the old peer tag")
	}
	if a.e.Stats().Recoveries != 1 {
		t.Fatal("recovery not counted")
	}
}

// An Update Request for a context B lost is answered with R1bis
// (RFC 5533 §10.4), and recovery follows.
func TestRecoveryFromControlMessage(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	b.e.deleteContext(n.now, cb, "test")
	if err := a.e.Update(n.now, ca.localTag); err != nil {
		t.Fatal(err)
	}
	n.run(10 * time.Second)
	cb2 := b.ctx(t, a)
	if stateOf(cb2) != StateEstablished || ca.peerTag != cb2.localTag {
		t.Fatal("not recovered")
	}
	// The update is retransmitted with the new CT(peer) and acknowledged.
	n.run(30 * time.Second)
	if ca.upd != nil {
		t.Fatal("update still outstanding")
	}
}

// RFC 5533 §7.5 Figure 7: the initiator lost the context and sends I1;
// the peer answers R1 (tag mismatch), then replaces CT(peer) on I2.
func TestContextLossAtSender(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	a.e.deleteContext(n.now, ca, "test")
	from := len(n.sent)
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(time.Second)
	if got := n.sentTypes(from); string(got) != string([]uint8{typeI1, typeR1, typeI2, typeR2}) {
		t.Fatalf("exchange %v", got)
	}
	ca2 := a.ctx(t, b)
	if b.ctx(t, a) != cb || cb.peerTag != ca2.localTag || ca2.peerTag != cb.localTag {
		t.Fatal("B did not update CT(peer) of its context")
	}
	if b.dp.maps[cb.localTag].PeerTag != ca2.localTag {
		t.Fatal("B's data plane has the stale peer tag")
	}
}

// RFC 5533 §7.15: B still has a context with CT(peer)=X for <b0, a0>; A
// lost it and reuses X for <a1, b0>. B MUST drop the old context.
func TestContextConfusion(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{RecreateConfused: true})
	ca, cb := establish(t, n, a, b)
	x := ca.localTag
	a.e.deleteContext(n.now, ca, "test")
	a.e.testNextTag = x
	if _, err := a.e.CreateContext(n.now, a.addrs[1], b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	if !cb.dead {
		t.Fatal("B kept the confused context")
	}
	nc := b.e.byULID[ulidKey{b.addrs[0], a.addrs[1], 0}]
	if stateOf(nc) != StateEstablished || nc.peerTag != x {
		t.Fatal("new context not established")
	}
	if b.count(EventContextConfusion) != 1 || b.e.Stats().ContextsConfused != 1 {
		t.Fatal("confusion not reported")
	}
	// RecreateConfused: B re-establishes <b0, a0> with a fresh exchange.
	n.run(5 * time.Second)
	re := b.ctx(t, a)
	if stateOf(re) != StateEstablished || re.peerTag == x {
		t.Fatalf("re-created context: %v", stateOf(re))
	}
	for o := b.e.byPeerTag[x]; o != nil; o = o.peerNext {
		if o.key() != nc.key() {
			t.Fatal("two contexts still share CT(peer) X")
		}
	}
}

// An I1 with a duplicate tag must not remove the old context (RFC 5533
// §7.6: deferred until I2).
func TestI1WithDuplicateTagKeepsContext(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	n.filter = dropTypes(typeI2)
	a.e.deleteContext(n.now, ca, "test")
	a.e.testNextTag = ca.localTag
	a.e.CreateContext(n.now, a.addrs[1], b.addrs[0])
	n.run(time.Second)
	if cb.dead || cb.state != StateEstablished {
		t.Fatal("I1 removed the old context")
	}
}

func TestPayloadInI2SentResendsI2(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = dropTypes(typeR2)
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(100 * time.Millisecond)
	ca := a.ctx(t, b)
	if ca.state != StateI2Sent {
		t.Fatal(ca.state)
	}
	i2s := n.countSent(typeI2)
	// B is established and sends payload with A's tag: A's data plane
	// has no mapping yet and reports the tag.
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: b.addrs[0], Dst: a.addrs[0], Tag: ca.localTag})
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: b.addrs[0], Dst: a.addrs[0], Tag: ca.localTag})
	if n.countSent(typeI2) != i2s+1 {
		t.Fatalf("I2 sent %d times, want one more (rate-limited)", n.countSent(typeI2)-i2s)
	}
	n.filter = nil
	n.run(100 * time.Millisecond)
	if ca.state != StateEstablished {
		t.Fatal(ca.state)
	}
}

func TestR1bisRateLimitAndNoMemory(t *testing.T) {
	n, _, b := twoHosts(t, Config{}, Config{R1bisRate: 10, R1bisBurst: 5})
	src := netipMust("2001:db8:ee::1")
	for i := range 100000 {
		b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: src, Dst: b.addrs[0], Tag: uint64(i) * 7919})
	}
	st := b.e.Stats()
	if st.TxByType[typeR1bis] != 5 || st.R1bisLimited != 100000-5 {
		t.Fatalf("R1bis sent %d limited %d", st.TxByType[typeR1bis], st.R1bisLimited)
	}
	if len(b.e.byULID) != 0 || b.e.timers.len() != 0 {
		t.Fatal("state created")
	}
	// One second later, 10 more tokens.
	n.now = n.now.Add(time.Second)
	for i := range 100 {
		b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: src, Dst: b.addrs[0], Tag: uint64(i)})
	}
	if got := b.e.Stats().TxByType[typeR1bis]; got != 10 {
		t.Fatalf("R1bis after refill: %d", got)
	}
}

// I2bis retransmission and fallback to I1 when the peer never answers.
func TestI2bisFallbackToI1(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	old := cb.localTag
	b.e.deleteContext(n.now, cb, "test")
	n.filter = dropTypes(typeR2)
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: a.addrs[0], Dst: b.addrs[0], Tag: old})
	n.run(100 * time.Millisecond)
	if ca.state != StateI2bisSent {
		t.Fatal(ca.state, a.e.Stats().Drops)
	}
	for ca.state == StateI2bisSent {
		n.next()
	}
	if ca.state != StateI1Sent || n.countSent(typeI2bis) != I2bisRetriesMax+1 {
		t.Fatalf("state %v after %d I2bis", ca.state, n.countSent(typeI2bis))
	}
	if _, ok := a.dp.maps[ca.localTag]; ok || ca.peerTag != 0 {
		t.Fatal("stale mapping kept after falling back to I1")
	}
	n.filter = nil
	n.run(time.Minute)
	if ca.state != StateEstablished {
		t.Fatal(ca.state)
	}
}
