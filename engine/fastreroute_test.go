package engine

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine/reap"
	"github.com/goshim6/goshim6/wire"
)

// frHosts establishes A->B with fast reroute on both (A: a1, a2; B: b1,
// b2; the context on a1>b1).
func frHosts(t *testing.T) (*fakeNet, *host, *host, *Context, *Context) {
	t.Helper()
	n, a, b := twoHosts(t, Config{FastReroute: true}, Config{FastReroute: true})
	ca, cb := establish(t, n, a, b)
	return n, a, b, ca, cb
}

func TestFastRerouteMappingFields(t *testing.T) {
	n, a, b, ca, _ := frHosts(t)
	m := a.dp.maps[ca.localTag]
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	// The backup shares no locator with the current pair a1>b1.
	if want := (dataplane.Pair{Local: a2, Peer: b2}); m.Backup != want {
		t.Fatalf("backup %v, want %v", m.Backup, want)
	}
	if len(m.Pairs) != 4 {
		t.Fatalf("pairs %v, want the four verified pairs", m.Pairs)
	}
	for _, p := range []dataplane.Pair{{Local: a1, Peer: b1}, {Local: a1, Peer: b2}, {Local: a2, Peer: b1}, {Local: a2, Peer: b2}} {
		found := false
		for _, q := range m.Pairs {
			found = found || q == p
		}
		if !found {
			t.Fatalf("pair %v missing from %v", p, m.Pairs)
		}
	}
	// Off: nothing.
	n2, a3, b3 := twoHosts(t, Config{}, Config{})
	c3, _ := establish(t, n2, a3, b3)
	if m := a3.dp.maps[c3.localTag]; m.Backup.IsValid() || len(m.Pairs) != 0 {
		t.Fatalf("fast reroute off, mapping %+v", m)
	}
	_ = n
}

// A's data plane moved A->B traffic to a2>b2 after a TCP RTO: REAP probes
// a2>b2 first, B confirms it, A installs it (confirmed); nothing is left
// pending.
func TestFastRerouteConfirmed(t *testing.T) {
	n, a, b, ca, cb := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	// a1 is dead both ways.
	n.filter = func(p pkt) bool { return p.src != a1 && p.dst != a1 }
	from := len(n.sent)
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag, Pair: dataplane.Pair{Local: a2, Peer: b2}, Time: n.now})
	if len(n.sent) == from || n.sent[from].src != a2 || n.sent[from].dst != b2 || typeOf(n.sent[from]) != typeProbe {
		t.Fatalf("first message after the move: %+v", n.sent[from:])
	}
	n.run(200 * time.Millisecond) // a few round trips of 10 ms
	if ca.lpLocal != a2 || ca.lpPeer != b2 {
		t.Fatalf("A on %v>%v, want a2>b2", ca.lpLocal, ca.lpPeer)
	}
	st := a.e.Stats()
	if st.FastReroutesEngaged != 1 || st.FastReroutesConfirmed != 1 || st.FastReroutesUndone != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, _, ok := ca.frPair(); ok {
		t.Fatal("move still pending")
	}
	m := a.dp.maps[ca.localTag]
	if m.LocalLocator != a2 || m.PeerLocator != b2 || m.Backup == (dataplane.Pair{Local: a2, Peer: b2}) || !m.Backup.IsValid() {
		t.Fatalf("installed %+v", m)
	}
	// B may still send on the old pair for a round trip: not followed.
	if m.PeerPair != (dataplane.Pair{Local: a1, Peer: b1}) {
		t.Fatalf("PeerPair %v, want the previous pair a1>b1", m.PeerPair)
	}
	// For a while only: the peer may move back there later.
	if m.PeerPairUntil.IsZero() || m.PeerPairUntil.After(n.now.Add(time.Second)) {
		t.Fatalf("PeerPairUntil %v (now %v)", m.PeerPairUntil, n.now)
	}
	// The peer confirmed the new pair: hints are stale for a while, and
	// so is the backup.
	if !m.BackupAfter.After(n.now) {
		t.Fatalf("BackupAfter %v not after now %v", m.BackupAfter, n.now)
	}
	// B took part in the exploration and moved its pair too (to one that
	// avoids a1).
	if cb.lpPeer == a1 {
		t.Fatalf("B still sends to a1: %v>%v", cb.lpLocal, cb.lpPeer)
	}
}

// A spurious move: a2>b2 does not work, the current pair does. REAP
// probes a2>b2, then a1>b1, which B confirms: the current pair is
// installed again and the move is undone.
func TestFastRerouteUndone(t *testing.T) {
	n, a, b, ca, _ := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	n.filter = func(p pkt) bool { return p.src != a2 && p.dst != a2 }
	installs := 0
	a.e.deps.DataPlane = countingDP{a.dp, &installs}
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag, Pair: dataplane.Pair{Local: a2, Peer: b2}, Time: n.now})
	n.run(5 * time.Second)
	if ca.lpLocal != a1 || ca.lpPeer != b1 {
		t.Fatalf("A on %v>%v, want a1>b1", ca.lpLocal, ca.lpPeer)
	}
	st := a.e.Stats()
	if st.FastReroutesEngaged != 1 || st.FastReroutesUndone != 1 || st.FastReroutesConfirmed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if installs == 0 {
		t.Fatal("the current pair was not installed again: the data plane would stay on a2>b2")
	}
	if _, _, ok := ca.frPair(); ok {
		t.Fatal("move still pending")
	}
	// The rejected pair is not the backup for frAvoidFor (a TCP timeout
	// would move the retransmission to the dead pair again, and again).
	if m := a.dp.maps[ca.localTag]; !m.Backup.IsValid() || m.Backup == (dataplane.Pair{Local: a2, Peer: b2}) {
		t.Fatalf("backup %v after a2>b2 was rejected", m.Backup)
	}
	n.run(frAvoidFor)
	a.e.Explore(n.now, ca.localTag) // any install
	n.run(time.Second)
	if m := a.dp.maps[ca.localTag]; m.Backup != (dataplane.Pair{Local: a2, Peer: b2}) {
		t.Fatalf("backup %v %v after the rejection, want a2>b2 again", m.Backup, frAvoidFor)
	}
}

type countingDP struct {
	*fakeDP
	n *int
}

func (d countingDP) Install(m dataplane.Mapping) error { *d.n++; return d.fakeDP.Install(m) }

// B's data plane followed A's payload to b2>a2: B explores with it first
// and confirms it.
func TestPeerMovedConfirmed(t *testing.T) {
	n, a, b, _, cb := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	n.filter = func(p pkt) bool { return p.src != a1 && p.dst != a1 }
	from := len(n.sent)
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventPeerMoved, Src: b1, Dst: a1,
		Tag: cb.localTag, Pair: dataplane.Pair{Local: b2, Peer: a2}, Time: n.now})
	if p := n.sent[from]; p.src != b2 || p.dst != a2 || typeOf(p) != typeProbe {
		t.Fatalf("first message: %v>%v type %d", p.src, p.dst, typeOf(p))
	}
	n.run(200 * time.Millisecond)
	if cb.lpLocal != b2 || cb.lpPeer != a2 {
		t.Fatalf("B on %v>%v, want b2>a2", cb.lpLocal, cb.lpPeer)
	}
	if st := b.e.Stats(); st.PeerMovesFollowed != 1 || st.FastReroutesConfirmed != 1 {
		t.Fatalf("stats %+v", st)
	}
	if m := b.dp.maps[cb.localTag]; m.PeerPair.IsValid() {
		t.Fatalf("PeerPair %v after a confirmed move", m.PeerPair)
	}
}

// B followed A to b2>a2 but b2>a2 does not work from B (a unidirectional
// failure): REAP keeps b1>a1, and the mapping says A is known to send on
// a2>b2 so that the data plane does not follow it again.
func TestPeerMovedUndoneRemembersPeerPair(t *testing.T) {
	n, a, b, _, cb := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	n.filter = func(p pkt) bool { return !(p.src == b2 && p.dst == a2) }
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventPeerMoved, Src: b1, Dst: a1,
		Tag: cb.localTag, Pair: dataplane.Pair{Local: b2, Peer: a2}, Time: n.now})
	n.run(5 * time.Second)
	if cb.lpLocal == b2 && cb.lpPeer == a2 {
		t.Fatal("B chose the pair that does not work")
	}
	if st := b.e.Stats(); st.FastReroutesUndone != 1 {
		t.Fatalf("stats %+v", st)
	}
	if m := b.dp.maps[cb.localTag]; m.PeerPair != (dataplane.Pair{Local: b2, Peer: a2}) || !m.PeerPairUntil.IsZero() {
		t.Fatalf("PeerPair %v until %v, want b2>a2 for good", m.PeerPair, m.PeerPairUntil)
	}
}

// Events about a replaced mapping or an unusable pair never leave the data
// plane diverged.
func TestFastRerouteStaleOrUnusable(t *testing.T) {
	n, a, b, ca, _ := frHosts(t)
	a1, a2, b1 := a.addrs[0], a.addrs[1], b.addrs[0]
	// Another tag: the mapping was replaced; nothing to do.
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag ^ 1, Pair: dataplane.Pair{Local: a2, Peer: b1}, Time: n.now})
	if st := a.e.Stats(); st.FastReroutesUndone != 1 || ca.reap.State() != 0 {
		t.Fatalf("stale event: stats %+v, REAP %v", st, ca.reap.State())
	}
	// A pair with an unverified peer locator: undone by installing the
	// current mapping again.
	stranger := netipMust("2001:db8:ff::1")
	installs := 0
	a.e.deps.DataPlane = countingDP{a.dp, &installs}
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag, Pair: dataplane.Pair{Local: a2, Peer: stranger}, Time: n.now})
	if st := a.e.Stats(); st.FastReroutesUndone != 2 || installs != 1 {
		t.Fatalf("unusable pair: stats %+v, installs %d", st, installs)
	}
	if _, _, ok := ca.frPair(); ok {
		t.Fatal("move still pending")
	}
}

// REAP can go Operational on a peer probe that reports none of ours (a
// peer that entered InboundOk on payload, RFC 5534 §6.1; §6.8: the current
// pair is then unchanged). That is no evidence for the current pair: a
// pending move is kept and explored again, and confirmed when the peer
// reports it.
func TestFastRerouteNotUndoneWithoutEvidence(t *testing.T) {
	n, a, b, ca, cb := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	n.filter = func(p pkt) bool { return p.src != a1 && p.dst != a1 }
	installs := 0
	a.e.deps.DataPlane = countingDP{a.dp, &installs}
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag, Pair: dataplane.Pair{Local: a2, Peer: b2}, Time: n.now})
	// Before B's answer arrives: a probe from B that reports nothing.
	raw, err := wire.Marshal(&wire.Probe{ReceiverTag: ca.localTag, State: wire.StateInboundOk,
		Sent: []wire.ProbeRecord{{Src: b2, Dst: a2, Nonce: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	a.e.HandlePacket(n.now, b2, a2, raw)
	if installs != 0 || ca.lpLocal != a1 {
		t.Fatalf("move undone on no evidence: %d installs, A on %v", installs, ca.lpLocal)
	}
	if _, _, ok := ca.frPair(); !ok {
		t.Fatal("move no longer pending")
	}
	n.run(200 * time.Millisecond)
	if ca.lpLocal != a2 || ca.lpPeer != b2 {
		t.Fatalf("A on %v>%v, want a2>b2", ca.lpLocal, ca.lpPeer)
	}
	if st := a.e.Stats(); st.FastReroutesConfirmed != 1 || st.FastReroutesUndone != 0 {
		for _, ev := range a.events {
			t.Logf("%v %s %v>%v %s", ev.Time.Sub(t0), ev.Kind, ev.Local, ev.Peer, ev.Reason)
		}
		t.Fatalf("stats %+v", st)
	}
	_ = cb
}

// The machine's current pair and the engine's can drift apart (recovery
// adopts another pair; a switch the engine refuses): a move must still be
// confirmed by a switch, not "confirmed" on the machine's stale pair and
// undone back to the engine's dead one.
func TestFastRerouteResyncsMachine(t *testing.T) {
	n, a, b, ca, _ := frHosts(t)
	a1, a2, b1, b2 := a.addrs[0], a.addrs[1], b.addrs[0], b.addrs[1]
	// The machine believes a2>b2, the engine (and data plane) a1>b1.
	ca.reap.SetCurrent(n.now, reap.Pair{Local: a2, Peer: b2})
	n.filter = func(p pkt) bool { return p.src != a1 && p.dst != a1 }
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventFastReroute, Src: a1, Dst: b1,
		Tag: ca.localTag, Pair: dataplane.Pair{Local: a2, Peer: b2}, Time: n.now})
	n.run(200 * time.Millisecond)
	if ca.lpLocal != a2 || ca.lpPeer != b2 {
		t.Fatalf("A on %v>%v, want a2>b2", ca.lpLocal, ca.lpPeer)
	}
	if st := a.e.Stats(); st.FastReroutesConfirmed != 1 || st.FastReroutesUndone != 0 {
		t.Fatalf("stats %+v", st)
	}
}
