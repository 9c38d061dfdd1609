package engine

import (
	"testing"
	"time"
)

func TestUpdateLocatorPreferences(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	gen0 := cb.peerGen
	// A's second locator goes BROKEN.
	locs := append([]LocalLocator(nil), a.e.local.all...)
	locs[1].Flags = PrefBroken
	locs[0].Priority = 1
	from := len(n.sent)
	if err := a.e.SetLocalLocators(n.now, locs); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	if got := n.sentTypes(from); string(got) != string([]uint8{typeUpdateReq, typeUpdateAck}) {
		t.Fatalf("exchange %v", got)
	}
	if ca.upd != nil || a.e.Stats().UpdatesAcked != 1 {
		t.Fatal("update not acknowledged")
	}
	// RFC 5533 §10.1: a new generation, recorded by the peer with the
	// preferences.
	if cb.peerGen == gen0 || cb.peerGen != a.e.local.gen {
		t.Fatalf("peer generation %d, sent %d", cb.peerGen, a.e.local.gen)
	}
	if cb.peerLocs[1].pref.flags != PrefBroken || cb.peerLocs[0].pref.priority != 1 {
		t.Fatalf("preferences not recorded: %+v", cb.peerLocs)
	}
	if b.e.peerUsable(cb, a.addrs[1]) || !b.e.peerUsable(cb, a.addrs[0]) {
		t.Fatal("BROKEN locator still usable")
	}
	if b.count(EventLocatorsUpdated) != 1 {
		t.Fatal("no locators-updated event")
	}
	// Setting the same locators again sends nothing.
	from = len(n.sent)
	a.e.SetLocalLocators(n.now, locs)
	n.run(time.Second)
	if len(n.sent) != from {
		t.Fatal("unchanged locators sent an update")
	}
}

func TestUpdateRetransmitBackoffToMax(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	n.filter = dropTypes(typeUpdateAck)
	a.e.Update(n.now, ca.localTag)
	times := []time.Time{n.now}
	for len(times) < 12 {
		before := n.countSent(typeUpdateReq)
		// The ULP keeps using the context (else it is collected,
		// which ends the retransmissions: RFC 5533 §10.2).
		a.e.HandleActivity(n.now, activity(ca, n.now, true, true))
		if !n.step(n.now.Add(time.Hour)) {
			t.Fatal("nothing scheduled")
		}
		if n.countSent(typeUpdateReq) > before {
			times = append(times, n.now)
		}
	}
	// RFC 5533 §10.2: doubling from UPDATE_TIMEOUT, randomised, capped
	// at MAX_UPDATE_TIMEOUT, retransmitted forever.
	for k := 1; k < len(times); k++ {
		nominal := min(UpdateTimeout<<(k-1), MaxUpdateTimeout)
		gap := times[k].Sub(times[k-1])
		if gap < nominal/2 || gap > nominal*3/2 {
			t.Errorf("gap %d: %v, nominal %v", k, gap, nominal)
		}
	}
	if ca.upd == nil {
		t.Fatal("update abandoned")
	}
	// Only one outstanding: a new update replaces the nonce (§10.3).
	old := ca.upd.nonce
	a.e.Update(n.now, ca.localTag)
	if ca.upd.nonce == old {
		t.Fatal("new update kept the old nonce")
	}
	// An Ack with the old nonce is ignored.
	n.filter = nil
	m := &b.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateAck, ca.localTag, old
	raw, _ := b.e.codec.encode(nil, m)
	a.e.HandlePacket(n.now, b.addrs[0], a.addrs[0], raw)
	if ca.upd == nil {
		t.Fatal("stale ack accepted")
	}
	n.run(10 * time.Minute)
	if ca.upd != nil {
		t.Fatal("never acknowledged")
	}
}

func TestUpdateGenerationOutOfSyncError(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	// A Locator Preferences option alone with a wrong generation.
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 7
	m.hasPrefs, m.prefGen, m.prefElemLen = true, cb.peerGen+1, 1
	m.prefs = []prefElem{{flags: PrefBroken}, {}}
	raw, err := a.e.codec.encode(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	var em message
	for _, p := range n.sent[from:] {
		if typeOf(p) == typeError {
			b.e.codec.decode(p.b, &em)
		}
	}
	if em.typ != typeError || em.errCode != ErrCodeGenerationSync {
		t.Fatalf("want Error code 3, got %+v", em)
	}
	// The pointer designates the generation of the preferences option
	// in the packet in error (after the 40-octet IPv6 header).
	p := int(em.errPointer)
	if p < ipv6HeaderLen || p+4 > len(em.errPacket) || uint32(em.errPacket[p])<<24|uint32(em.errPacket[p+1])<<16|uint32(em.errPacket[p+2])<<8|uint32(em.errPacket[p+3]) != cb.peerGen+1 {
		t.Fatalf("pointer %d does not designate the generation", p)
	}
	if cb.peerLocs[0].pref.flags != 0 {
		t.Fatal("preferences applied despite the error")
	}
	// Wrong count with the right generation: Error code 4.
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 8
	m.hasPrefs, m.prefGen, m.prefElemLen = true, cb.peerGen, 1
	m.prefs = []prefElem{{flags: PrefBroken}}
	raw, _ = a.e.codec.encode(nil, m)
	from = len(n.sent)
	b.e.HandlePacket(n.now.Add(time.Second), a.addrs[0], b.addrs[0], raw)
	em.reset()
	for _, p := range n.sent[from:] {
		if typeOf(p) == typeError {
			b.e.codec.decode(p.b, &em)
		}
	}
	if em.errCode != ErrCodeNumberOfLocators {
		t.Fatalf("want Error code 4, got %d", em.errCode)
	}
	// A, receiving an Error 3/4 for its outstanding update, resends the
	// whole list with a new nonce.
	a.e.Update(n.now, ca.localTag)
	n.filter = dropTypes(typeUpdateAck)
	n.run(100 * time.Millisecond)
	nonce := ca.upd.nonce
	var req pkt
	for _, p := range n.sent {
		if typeOf(p) == typeUpdateReq {
			req = p
		}
	}
	b.e.sendError(n.now, b.addrs[0], a.addrs[0], ErrCodeGenerationSync, 20, req.b)
	n.run(100 * time.Millisecond)
	if ca.upd == nil || ca.upd.nonce == nonce {
		t.Fatal("Error 3 did not restart the update")
	}
	if a.count(EventPeerError) != 3 {
		t.Fatalf("%d peer errors reported, want 3", a.count(EventPeerError))
	}
}

func TestUpdateFromStaleLocatorsGetsR1bis(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 1
	raw, _ := a.e.codec.encode(nil, m)
	from := len(n.sent)
	// From an address that is not in Ls(peer): RFC 5533 §10.4 MUST R1bis.
	n.owner[netipMust("2001:db8:99::1")] = a
	b.e.HandlePacket(n.now, netipMust("2001:db8:99::1"), b.addrs[0], raw)
	if got := n.sentTypes(from); string(got) != string([]uint8{typeR1bis}) {
		t.Fatalf("sent %v", got)
	}
}

// The ULID address itself goes away at A (RFC 5533 §10.1): the Update
// leaves from A's remaining locator, carries the new list (the PDS still
// covers the ULID), and B stops using the old address.
func TestLocalULIDRemoved(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	gone := a.addrs[0]
	from := len(n.sent)
	if err := a.e.SetLocalLocators(n.now, a.e.local.all[1:]); err != nil {
		t.Fatal(err)
	}
	n.filter = func(p pkt) bool { return p.src != gone && p.dst != gone }
	n.run(200 * time.Millisecond)
	var upd pkt
	for _, p := range n.sent[from:] {
		if typeOf(p) == typeUpdateReq {
			upd = p
		}
	}
	if upd.b == nil || upd.src != a.addrs[1] {
		t.Fatalf("update from %v", upd.src)
	}
	if len(cb.peerLocs) != 1 || cb.peerLocs[0].addr != a.addrs[1] || cb.peerHas(gone) {
		t.Fatalf("B's Ls(peer) %+v", cb.peerLocs)
	}
	traffic(n, a, b, ca, cb, 30*time.Second, func(src, dst string) bool { return src != gone.String() && dst != gone.String() })
	if cb.lpPeer != a.addrs[1] || ca.lpLocal != a.addrs[1] {
		t.Fatalf("pairs: A %v->%v, B %v->%v", ca.lpLocal, ca.lpPeer, cb.lpLocal, cb.lpPeer)
	}
	if ca.upd != nil {
		t.Fatal("update not acknowledged")
	}
}
