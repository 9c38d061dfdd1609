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

// RFC 5533 §10.4: an Update Request received in I2BIS-SENT: "send I2bis
// and proceed to process the message". B lost the context, A recovers
// (I2BIS-SENT); B's R2 is lost, and B, ESTABLISHED, sends an Update
// (b1 BROKEN). A resends I2bis at once and processes the request as soon
// as CT(peer) is known again (the R2): Ls(peer) updated and the Ack sent
// then, not one Update retransmission later.
func TestUpdateRequestInI2bisSentProcessed(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	oldB := cb.localTag
	b.e.deleteContext(n.now, cb, "test")
	n.filter = dropTypes(typeR2) // B's R2 to the first I2bis is lost
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: a.addrs[0], Dst: b.addrs[0], Tag: oldB})
	n.run(50 * time.Millisecond)
	if ca.state != StateI2bisSent || b.ctx(t, a) == nil {
		t.Fatalf("A %v, B has context %v", ca.state, b.ctx(t, a) != nil)
	}
	n.filter = nil
	from := len(n.sent)
	bl := []LocalLocator{{Addr: b.addrs[0], Method: MethodHBA, Flags: PrefBroken}, {Addr: b.addrs[1], Method: MethodHBA}}
	if err := b.e.SetLocalLocators(n.now, bl); err != nil {
		t.Fatal(err)
	}
	n.run(200 * time.Millisecond) // well before B's first retransmission (>= 2 s)
	got := n.sentTypes(from)
	want := []uint8{typeUpdateReq, typeI2bis, typeR2, typeUpdateAck}
	i, updates := 0, 0
	for _, ty := range got {
		if i < len(want) && ty == want[i] {
			i++
		}
		if ty == typeUpdateReq {
			updates++
		}
	}
	if i != len(want) || updates != 1 {
		t.Fatalf("exchange %v, want %v in order, one Update", got, want)
	}
	cb2 := b.ctx(t, a)
	if ca.state != StateEstablished || cb2.upd != nil || b.e.Stats().UpdatesAcked != 1 {
		t.Fatalf("A %v, B's update outstanding %v", ca.state, cb2.upd != nil)
	}
	if e := a.e.peerUsable(ca, b.addrs[0]); e {
		t.Error("A did not record b1 BROKEN")
	}
}

// RFC 5533 §10.5: an Update Acknowledgement received in I2BIS-SENT resends
// I2bis and is processed: it matches our outstanding request, which is
// then done (no retransmission once ESTABLISHED again).
func TestUpdateAckInI2bisSentProcessed(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	if err := a.e.Update(n.now, ca.localTag); err != nil {
		t.Fatal(err)
	}
	// A stale R1bis crosses the request: A goes to I2BIS-SENT; its
	// I2bis is lost, B's Ack arrives there.
	b.e.sendR1bis(n.now, a.addrs[0], b.addrs[0], cb.localTag)
	n.filter = dropTypes(typeI2bis)
	n.run(30 * time.Millisecond)
	if ca.state != StateI2bisSent {
		t.Fatalf("A %v", ca.state)
	}
	if ca.upd != nil || a.e.Stats().UpdatesAcked != 1 {
		t.Fatalf("Ack not processed in I2BIS-SENT (outstanding %v)", ca.upd != nil)
	}
	n.filter = nil
	from := len(n.sent)
	n.run(10 * time.Second)
	if ca.state != StateEstablished || n.sentTypes(from) == nil {
		t.Fatalf("A %v", ca.state)
	}
	for _, ty := range n.sentTypes(from) {
		if ty == typeUpdateReq {
			t.Fatal("the acknowledged request was sent again")
		}
	}
}

// The same in I2-SENT: A's R2 is lost, B (ESTABLISHED) sends an Update;
// A resends I2, and processes the request, Ack included, once the R2
// arrives (RFC 5533 §10.4).
func TestUpdateRequestInI2SentProcessed(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = dropTypes(typeR2)
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	n.run(100 * time.Millisecond)
	ca, cb := a.ctx(t, b), b.ctx(t, a)
	if stateOf(ca) != StateI2Sent || stateOf(cb) != StateEstablished {
		t.Fatalf("A %v B %v", stateOf(ca), stateOf(cb))
	}
	n.filter = nil
	bl := []LocalLocator{{Addr: b.addrs[0], Method: MethodHBA}, {Addr: b.addrs[1], Method: MethodHBA, Flags: PrefBroken}}
	if err := b.e.SetLocalLocators(n.now, bl); err != nil {
		t.Fatal(err)
	}
	n.run(200 * time.Millisecond)
	if ca.state != StateEstablished || cb.upd != nil || b.e.Stats().UpdatesAcked != 1 {
		t.Fatalf("A %v, B's update outstanding %v", ca.state, cb.upd != nil)
	}
	if a.e.peerUsable(ca, b.addrs[1]) {
		t.Error("A did not record b2 BROKEN")
	}
}
