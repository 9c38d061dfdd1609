package engine

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/wire"
)

// traffic feeds both data planes' activity as if a ULP exchanged packets
// every 100 ms on whatever pair is current, delivered only when the fake
// network lets the current pair through (in each direction).
func traffic(n *fakeNet, a, b *host, ca, cb *Context, d time.Duration, ok func(src, dst string) bool) {
	end := n.now.Add(d)
	for n.now.Before(end) {
		n.run(100 * time.Millisecond)
		// A -> B on A's current pair.
		a.e.HandleActivity(n.now, activity(ca, n.now, true, false))
		if ok(ca.lpLocal.String(), ca.lpPeer.String()) {
			b.e.HandleActivity(n.now, activity(cb, n.now, false, true))
		}
		b.e.HandleActivity(n.now, activity(cb, n.now, true, false))
		if ok(cb.lpLocal.String(), cb.lpPeer.String()) {
			a.e.HandleActivity(n.now, activity(ca, n.now, false, true))
		}
	}
}

// activity is the data plane's next report for c: one more packet sent
// and/or received at now, the other direction unchanged.
func activity(c *Context, now time.Time, sent, recv bool) dataplane.Activity {
	a := dataplane.Activity{LocalTag: c.localTag, TxPackets: c.txPkts, RxPackets: c.rxPkts,
		LastSent: fromNSOr(c.lastSent), LastReceived: fromNSOr(c.lastRecv)}
	if sent {
		a.TxPackets++
		a.LastSent = now
	}
	if recv {
		a.RxPackets++
		a.LastReceived = now
	}
	return a
}

func fromNSOr(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromNS(v)
}

func TestREAPFailoverAndSwitch(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	up := func(src, dst string) bool { return true }
	traffic(n, a, b, ca, cb, 5*time.Second, up)
	// The ULID prefixes fail: nothing from or to a1 or b1 gets through.
	dead := map[string]bool{a.addrs[0].String(): true, b.addrs[0].String(): true}
	alive := func(src, dst string) bool { return !dead[src] && !dead[dst] }
	n.filter = func(p pkt) bool { return alive(p.src.String(), p.dst.String()) }
	traffic(n, a, b, ca, cb, 40*time.Second, alive)
	if ca.lpLocal != a.addrs[1] || ca.lpPeer != b.addrs[1] || cb.lpLocal != b.addrs[1] || cb.lpPeer != a.addrs[1] {
		t.Fatalf("pairs after failure: A %v->%v B %v->%v", ca.lpLocal, ca.lpPeer, cb.lpLocal, cb.lpPeer)
	}
	// The data planes follow, with the payload extension header.
	if m := a.dp.maps[ca.localTag]; !m.Shimmed() || m.PeerLocator != b.addrs[1] {
		t.Fatalf("A mapping %+v", m)
	}
	if a.count(EventLocatorSwitch) == 0 || b.count(EventLocatorSwitch) == 0 || a.e.Stats().LocatorSwitches == 0 {
		t.Fatal("switch not reported")
	}
	// Probes went over the wire (RFC 5534 §5.2) and never to anything but
	// verified locators.
	if n.countSent(typeProbe) == 0 {
		t.Fatal("no probes")
	}
	for _, p := range n.sent {
		if h := n.owner[p.dst]; h == nil {
			t.Fatalf("message to unknown locator %v", p.dst)
		}
	}
	// Healing: REAP goes back to the ULID pair eventually.
	n.filter = nil
	traffic(n, a, b, ca, cb, 5*time.Minute, up)
	if ca.lpLocal != a.addrs[0] || ca.lpPeer != b.addrs[0] {
		t.Fatalf("did not return to the ULID pair: %v->%v", ca.lpLocal, ca.lpPeer)
	}
	if m := a.dp.maps[ca.localTag]; m.Shimmed() {
		t.Fatal("mapping still shimmed on the ULID pair")
	}
}

func TestULPTroubleStartsExploration(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	from := len(n.sent)
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventULPTrouble, Src: a.addrs[0], Dst: b.addrs[0]})
	n.run(100 * time.Millisecond)
	found := false
	for _, ty := range n.sentTypes(from) {
		found = found || ty == typeProbe
	}
	if !found {
		t.Fatal("no probe after ULP trouble")
	}
	_ = ca
}

func TestKeepaliveTimeoutOption(t *testing.T) {
	n, a, b := twoHosts(t, Config{SendTimeout: 10 * time.Second}, Config{})
	ca, cb := establish(t, n, a, b)
	// RFC 5534 §5.3: A's non-default Send Timeout MUST be sent; B uses
	// it as its Keepalive Timeout.
	if cb.kaTimeout != 10 || cb.reap.KeepaliveTimeout() != 10*time.Second {
		t.Fatalf("B keepalive timeout %d / %v", cb.kaTimeout, cb.reap.KeepaliveTimeout())
	}
	if ca.kaTimeout != 0 {
		t.Fatal("B sent a Keepalive Timeout option with the default Send Timeout")
	}
	// B receives payload and sends none: it sends keepalives to A.
	from := len(n.sent)
	for range 30 {
		n.run(500 * time.Millisecond)
		a.e.HandleActivity(n.now, activity(ca, n.now, true, false))
		b.e.HandleActivity(n.now, activity(cb, n.now, false, true))
	}
	k := 0
	for _, ty := range n.sentTypes(from) {
		if ty == typeKeepalive {
			k++
		}
	}
	if k == 0 {
		t.Fatal("no keepalives")
	}
	if ca.reap.State().String() != "operational" {
		t.Fatalf("A left Operational despite keepalives: %v", ca.reap.State())
	}
}

func TestPerContextSendTimeout(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	if err := a.e.SetSendTimeout(n.now, ca.localTag, 12*time.Second); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	if ca.reap.SendTimeout() != 12*time.Second || cb.kaTimeout != 12 || cb.reap.KeepaliveTimeout() != 12*time.Second {
		t.Fatalf("A send timeout %v, B keepalive timeout %v", ca.reap.SendTimeout(), cb.reap.KeepaliveTimeout())
	}
	if ci, _ := a.e.Context(ca.localTag); ci.SendTimeout != 12*time.Second {
		t.Fatal(ci.SendTimeout)
	}
	if err := a.e.SetSendTimeout(n.now, ca.localTag, time.Millisecond); err == nil {
		t.Fatal("accepted 1 ms")
	}
	if err := a.e.SetSendTimeout(n.now, 42, time.Second); err != ErrNotFound {
		t.Fatal(err)
	}
}

// The eBPF data plane converts its kernel instants to wall-clock time at
// every read, so an old packet can look a few microseconds newer at the
// next poll. Only a grown packet counter is a new packet: a repeated
// report must not move an exploring context to InboundOk (RFC 5534 §6.1),
// nor keep it from being collected (RFC 5533 §9).
func TestActivityNeedsNewPackets(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	a.e.HandleActivity(n.now, activity(ca, n.now, true, true))
	last := activity(ca, n.now, false, false)
	n.filter = func(pkt) bool { return false } // nothing gets through
	n.run(100 * time.Millisecond)
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventULPTrouble, Src: a.addrs[0], Dst: b.addrs[0]})
	if s := ca.reap.State().String(); s != "exploring" {
		t.Fatalf("ULP trouble: %s", s)
	}
	active := ca.lastActive
	for i := range 5 {
		n.run(100 * time.Millisecond)
		// The same packets, reported a little "later" each time.
		rep := last
		rep.LastReceived = rep.LastReceived.Add(time.Duration(i+1) * 3 * time.Microsecond)
		rep.LastSent = rep.LastSent.Add(time.Duration(i+1) * 3 * time.Microsecond)
		a.e.HandleActivity(n.now, rep)
	}
	if s := ca.reap.State().String(); s != "exploring" {
		t.Fatalf("state %s after reports of no new packet", s)
	}
	if ca.lastActive != active {
		t.Errorf("idle clock moved by reports of no new packet")
	}
	// One new packet received: InboundOk.
	n.run(100 * time.Millisecond)
	a.e.HandleActivity(n.now, activity(ca, n.now, false, true))
	if s := ca.reap.State().String(); s != "inbound-ok" {
		t.Fatalf("state %s after a new packet", s)
	}
	// A counter that went down was reset (mapping installed again): its
	// packets are new, even with an instant that is not.
	rx := ca.rxPkts
	n.run(100 * time.Millisecond)
	rep := activity(ca, n.now, false, false)
	rep.RxPackets = 1
	a.e.HandleActivity(n.now, rep)
	if ca.rxPkts != 1 || ca.lastRecv != ns(n.now) && ca.lastRecv <= ns(rep.LastReceived) {
		t.Errorf("reset counter (was %d): watermark %d, last receive %v", rx, ca.rxPkts, fromNS(ca.lastRecv))
	}
}

// The same in Operational: an old receive that looks newer at every poll
// must not stop the Send Timer (RFC 5534 §6.1), or a context that keeps
// sending into a dead path never explores.
func TestSendTimeoutDespiteRepeatedReports(t *testing.T) {
	n, a, b := twoHosts(t, Config{SendTimeout: time.Second}, Config{})
	ca, _ := establish(t, n, a, b)
	a.e.HandleActivity(n.now, activity(ca, n.now, true, true))
	n.filter = func(pkt) bool { return false }
	start := n.now
	for i := 0; ca.reap.State().String() == "operational" && i < 50; i++ {
		n.run(100 * time.Millisecond)
		rep := activity(ca, n.now, true, false)
		rep.LastReceived = fromNS(ca.lastRecv + int64(time.Microsecond)) // the old packet, "later"
		a.e.HandleActivity(n.now, rep)
	}
	if d := n.now.Sub(start); ca.reap.State().String() != "exploring" || d > 1300*time.Millisecond {
		t.Fatalf("%s after %v of sending with nothing received (Send Timeout 1 s)", ca.reap.State(), d)
	}
}

// A host with an address outside its HBA set (Method 0: a plain SLAAC or
// static address) never sends Probes, Keepalives, I2bis or Updates from
// it: the peer cannot verify it, does not have it in Ls(peer), and would
// answer R1bis (RFC 5533 §7.2, §10.4, §12.4). REAP explores only pairs
// with advertised local locators, and the failover completes.
func TestNoControlFromUnadvertisedLocator(t *testing.T) {
	n := newNet(t)
	pds, addrs := hbaIdentity(t, 1, "2001:db8:a1::/64", "2001:db8:a2::/64")
	plain := netip.MustParseAddr("2001:db8:a3::1")
	locs := []LocalLocator{{Addr: plain}} // listed first, Method 0
	for _, a := range addrs {
		locs = append(locs, LocalLocator{Addr: a, Method: MethodHBA})
	}
	a := n.addHostCfg("A", 1, Config{PDS: pds, LocalLocators: locs}, append(slices.Clone(addrs), plain))
	b := n.addHost("B", 2, Config{}, "2001:db8:b1::/64", "2001:db8:b2::/64")
	ca, cb := establish(t, n, a, b)
	traffic(n, a, b, ca, cb, 2*time.Second, func(string, string) bool { return true })
	from := len(n.sent)
	// A's ULID prefix fails both ways.
	dead := a.addrs[0].String()
	alive := func(src, dst string) bool { return src != dead && dst != dead }
	n.filter = func(p pkt) bool { return alive(p.src.String(), p.dst.String()) }
	traffic(n, a, b, ca, cb, 20*time.Second, alive)
	// B loses its context: A's next packet draws an R1bis, A recovers
	// with I2bis (RFC 5533 §7.17-§7.20).
	old := cb.localTag
	if err := b.e.DeleteContext(n.now, old); err != nil {
		t.Fatal(err)
	}
	b.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventUnknownTag, Src: ca.lpLocal, Dst: ca.lpPeer, Tag: old})
	n.run(2 * time.Second)
	// A's address set changes: Update Requests.
	if err := a.e.SetLocalLocators(n.now, locs[1:]); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	kinds := map[uint8]int{}
	for _, p := range n.sent[from:] {
		if n.owner[p.src] != a {
			continue
		}
		kinds[typeOf(p)]++
		if p.src == plain {
			t.Errorf("message type %d sent from the unadvertised %v", typeOf(p), plain)
		}
	}
	for _, ty := range []uint8{typeProbe, typeI2bis, typeUpdateReq} {
		if kinds[ty] == 0 {
			t.Errorf("no message of type %d from A: the test lost its point (%v)", ty, kinds)
		}
	}
	if ca.lpLocal != a.addrs[1] || ca.state != StateEstablished {
		t.Errorf("A: %s on %v->%v", ca.state, ca.lpLocal, ca.lpPeer)
	}
	if got := b.e.Stats().Drops["locator-mismatch"]; got != 0 {
		t.Errorf("B dropped %d of A's messages for their locators", got)
	}
}

// A real Probe(InboundOk) with Precvd = 0 on the wire (RFC 5534 §5.2's
// MUST cannot be met by a sender that entered InboundOk on payload, §6.1)
// is accepted: processed as §6.8, answered, nothing dropped.
func TestInboundOkProbeWithoutReportsAccepted(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	raw, err := wire.Marshal(&wire.Probe{ReceiverTag: cb.localTag, State: wire.StateInboundOk,
		Sent: []wire.ProbeRecord{{Src: a.addrs[0], Dst: b.addrs[0], Nonce: 42}}})
	if err != nil {
		t.Fatal(err)
	}
	from, drops := len(n.sent), b.e.Stats().Dropped
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	if b.e.Stats().Dropped != drops || b.e.Stats().RxByType[typeProbe] == 0 {
		t.Fatalf("dropped: %v", b.e.Stats().Drops)
	}
	answered := false
	for _, p := range n.sent[from:] {
		if typeOf(p) != typeProbe || n.owner[p.src] != b {
			continue
		}
		var pr wire.Probe
		if err := pr.Unmarshal(p.b); err != nil {
			t.Fatal(err)
		}
		answered = pr.State == wire.StateOperational && len(pr.Received) == 1 && pr.Received[0].Nonce == 42
	}
	if !answered || cb.reap.State().String() != "operational" || cb.lpPeer != ca.lpLocal {
		t.Fatalf("answered %v, B %s on %v->%v", answered, cb.reap.State(), cb.lpLocal, cb.lpPeer)
	}
}

// A report's FirstSent (the first packet sent after the last received)
// starts the Send Timer there (RFC 5534 §6.2): with reports 1 s apart and
// a Send Timeout of 3 s, exploration starts 2.7-3 s after that packet,
// not up to a report period later.
func TestSendTimerFromFirstSent(t *testing.T) {
	n, a, b := twoHosts(t, Config{SendTimeout: 3 * time.Second}, Config{})
	ca, _ := establish(t, n, a, b)
	a.e.HandleActivity(n.now, activity(ca, n.now, true, true))
	n.filter = func(pkt) bool { return false }
	n.run(10 * time.Millisecond)
	first := n.now // the first packet after the last one received
	n.run(990 * time.Millisecond)
	rep := activity(ca, n.now, true, false)
	rep.FirstSent = first
	a.e.HandleActivity(n.now, rep)
	start := n.now
	for i := 0; ca.reap.State().String() == "operational" && i < 300; i++ {
		n.run(10 * time.Millisecond)
	}
	if d := n.now.Sub(first); ca.reap.State().String() != "exploring" || d < 2700*time.Millisecond || d > 3010*time.Millisecond {
		t.Fatalf("%s %v after the first unanswered packet (%v after the report), want exploring at 2.7-3 s", ca.reap.State(), d, n.now.Sub(start))
	}
}
