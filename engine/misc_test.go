package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/wire"
)

func lastError(t *testing.T, n *fakeNet, h *host, from int) message {
	t.Helper()
	var em message
	for _, p := range n.sent[from:] {
		if typeOf(p) == typeError {
			em.reset()
			if err := h.e.codec.decode(p.b, &em); err != nil {
				t.Fatal(err)
			}
		}
	}
	return em
}

func TestUnknownTypeError(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	raw, _ := wire.Marshal(&wire.Keepalive{ReceiverTag: 1})
	raw[2] = 100 // type 100 is not defined
	wire.SetChecksum(raw)
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	em := lastError(t, n, b, from)
	if em.typ != typeError || em.errCode != ErrCodeUnknownType || em.errPointer != ipv6HeaderLen+2 {
		t.Fatalf("error %+v", em)
	}
	// RFC 5533 §5.14 packet in error: the IPv6 header we rebuilt, then
	// the message.
	if em.errPacket[0]>>4 != 6 || em.errPacket[6] != ipProtoShim6 || string(em.errPacket[ipv6HeaderLen:ipv6HeaderLen+len(raw)]) != string(raw) {
		t.Fatal("packet in error")
	}
	// An Error is never answered with an Error.
	from = len(n.sent)
	for _, p := range n.sent {
		if typeOf(p) == typeError {
			b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], p.b)
		}
	}
	if len(n.sent) != from {
		t.Fatal("answered an Error")
	}
}

func TestUnknownCriticalOptionError(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	i1 := &wire.I1{InitiatorTag: 5, InitiatorNonce: 6, Options: wire.Options{Unknown: []wire.UnknownOption{{Type: 99, Critical: true, Data: []byte{1, 2, 3, 4}}}}}
	raw, err := wire.Marshal(i1)
	if err != nil {
		t.Fatal(err)
	}
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	em := lastError(t, n, b, from)
	if em.errCode != ErrCodeCriticalOption || raw[int(em.errPointer)-ipv6HeaderLen+1] != 99<<1|1 {
		t.Fatalf("error %+v", em)
	}
	// RFC 5533 §5.15: with C=1 the rest MUST NOT be processed: no R1.
	if n.countSent(typeR1) != 0 {
		t.Fatal("processed a message with an unknown critical option")
	}
	// With C=0 the option is ignored and the I1 answered.
	i1.Options.Unknown[0].Critical = false
	raw, _ = wire.Marshal(i1)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	if n.countSent(typeR1) != 1 {
		t.Fatal("I1 with a non-critical unknown option not answered")
	}
}

func TestErrorRateLimited(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{ErrorRate: 1, ErrorBurst: 3})
	raw, _ := wire.Marshal(&wire.Keepalive{ReceiverTag: 1})
	raw[2] = 100
	wire.SetChecksum(raw)
	for range 50 {
		b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	}
	if got := b.e.Stats().TxByType[typeError]; got != 3 {
		t.Fatalf("%d errors sent", got)
	}
}

func TestMalformedDropped(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	raw, _ := wire.Marshal(&wire.I1{InitiatorTag: 5, InitiatorNonce: 6})
	raw[5] ^= 1 // checksum
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw[:3])
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], nil)
	// RFC 5533 §12.3: multicast or unspecified addresses.
	raw[5] ^= 1
	b.e.HandlePacket(n.now, netipMust("ff02::1"), b.addrs[0], raw)
	b.e.HandlePacket(n.now, netip.IPv6Unspecified(), b.addrs[0], raw)
	if len(n.sent) != 0 {
		t.Fatalf("answered malformed input: %v", n.sentTypes(0))
	}
	if d := b.e.Stats().Drops; d["malformed"] != 3 || d["bad-address"] != 2 {
		t.Fatalf("drops %v", d)
	}
}

func TestErrorOnI1MovesToEFailed(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = func(pkt) bool { return false }
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	i1 := n.sent[0]
	c := a.ctx(t, b)
	// A forged Error without the right nonce is ignored.
	forged := append([]byte(nil), i1.b...)
	forged[15] ^= 0xff
	wire.SetChecksum(forged)
	b.e.sendError(n.now, b.addrs[0], a.addrs[0], ErrCodeUnknownType, 2, forged)
	n.filter = nil
	err := n.queue
	_ = err
	n.queue = nil
	var em message
	b.e.codec.decode(n.sent[len(n.sent)-1].b, &em)
	raw, _ := b.e.codec.encode(nil, &em)
	a.e.HandlePacket(n.now, b.addrs[0], a.addrs[0], raw)
	if c.state != StateI1Sent {
		t.Fatal("forged Error accepted")
	}
	b.e.sendError(n.now.Add(time.Second), b.addrs[0], a.addrs[0], ErrCodeUnknownType, 2, i1.b)
	n.run(time.Second)
	if c.state != StateEFailed {
		t.Fatalf("state %v", c.state)
	}
}

func TestICMPNoSupport(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	n.filter = func(pkt) bool { return false }
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	i1 := n.sent[0]
	inv := ipv6Packet(i1.src, i1.dst, i1.b)
	// Wrong code: ignored.
	if a.e.HandleICMP(n.now, b.addrs[0], icmpParamProblem, 0, inv) {
		t.Fatal("acted on parameter problem code 0")
	}
	if !a.e.HandleICMP(n.now, b.addrs[0], icmpParamProblem, icmpCodeUnrecNxtHdr, inv) {
		t.Fatal("did not act on unrecognized next header")
	}
	c := a.ctx(t, b)
	if c.state != StateNoSupport || c.expireAt != ns(n.now.Add(ICMPHolddownTime)) {
		t.Fatalf("state %v", c.state)
	}
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); !errors.Is(err, ErrHolddown) {
		t.Fatal(err)
	}
	n.run(ICMPHolddownTime + time.Second)
	if a.ctx(t, b) != nil {
		t.Fatal("holddown did not end")
	}
	if a.e.Stats().NoSupport != 1 {
		t.Fatal("not counted")
	}
}

func ipv6Packet(src, dst netip.Addr, payload []byte) []byte {
	p := make([]byte, 40, 40+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6], p[7] = ipProtoShim6, 64
	s, d := src.As16(), dst.As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	return append(p, payload...)
}

func TestICMPUnreachableStartsExploration(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	// A payload packet on the ULID pair (no Shim6 header): UDP.
	inv := ipv6Packet(a.addrs[0], b.addrs[0], make([]byte, 16))
	inv[6] = 17
	// From the host itself (the daemon's RFC 6069 errors come from ::1):
	// not about a path.
	if a.e.HandleICMP(n.now, netipMust("::1"), icmpDestUnreach, 0, inv) || ca.reap.State().String() != "operational" {
		t.Fatal("acted on a loopback-sourced error")
	}
	if !a.e.HandleICMP(n.now, b.addrs[0], icmpDestUnreach, 3, inv) {
		t.Fatal("not acted upon")
	}
	if ca.reap.State().String() == "operational" {
		t.Fatal("not exploring")
	}
	// Packet too big is for the ULP.
	if a.e.HandleICMP(n.now, b.addrs[0], 2, 0, inv) {
		t.Fatal("acted on packet too big")
	}
	// A payload extension header carrying CT(peer).
	ph := make([]byte, 8)
	wire.PutPayloadHeader(ph, wire.PayloadHeader{NextHeader: 17, ContextTag: ca.peerTag})
	if !a.e.HandleICMP(n.now, b.addrs[0], icmpTimeExceeded, 0, ipv6Packet(a.addrs[0], b.addrs[0], ph)) {
		t.Fatal("not acted upon (payload header)")
	}
}

func TestGarbageCollectionIdle(t *testing.T) {
	n, a, b := twoHosts(t, Config{IdleTimeout: 10 * time.Minute}, Config{})
	ca, cb := establish(t, n, a, b)
	// A keeps sending; nothing reaches B's data plane (A's probes do
	// not count as activity at B).
	for range 12 {
		n.run(time.Minute)
		a.e.HandleActivity(n.now, activity(ca, n.now, true, false))
	}
	if ca.dead {
		t.Fatal("active context collected")
	}
	// RFC 5533 §9: B's default is 5 minutes idle. (A's probes then
	// find no context at B and recover it with R1bis/I2bis: RFC 5533
	// §7.5, so B collects again 5 minutes later.)
	if !cb.dead || b.e.Stats().ContextsIdle != 2 || b.e.Stats().ContextsCreated != 3 {
		t.Fatal("idle context kept", b.e.Stats().ContextsIdle, b.e.Stats().ContextsCreated)
	}
	if len(b.dp.removed) != 2 {
		t.Fatal("data plane mapping kept")
	}
	// Stop A's traffic: collected 10 minutes after the last activity.
	last := n.now
	n.run(10*time.Minute - time.Second)
	if ca.dead {
		t.Fatal("collected early")
	}
	n.run(2 * time.Second)
	if !ca.dead {
		t.Fatal("not collected")
	}
	_ = last
}

func TestPendingNeverEstablishedCollected(t *testing.T) {
	n, a, b := twoHosts(t, Config{EstablishTimeout: 20 * time.Second}, Config{})
	n.filter = func(pkt) bool { return false }
	a.e.CreateContext(n.now, a.addrs[0], b.addrs[0])
	n.run(21 * time.Second)
	if c := a.ctx(t, b); stateOf(c) != StateEFailed || len(a.e.byTag) != 0 || a.e.pending() != 0 {
		t.Fatalf("state %v", stateOf(c))
	}
}

func TestLimits(t *testing.T) {
	n, a, b := twoHosts(t, Config{MaxPending: 2, MaxContexts: 3}, Config{MaxContexts: 1})
	n.filter = func(pkt) bool { return false }
	peer := func(i byte) netip.Addr { return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xcc, 15: i}) }
	for i := range byte(2) {
		if _, err := a.e.CreateContext(n.now, a.addrs[0], peer(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.e.CreateContext(n.now, a.addrs[0], peer(9)); !errors.Is(err, ErrLimit) {
		t.Fatalf("pending limit: %v", err)
	}
	if a.count(EventLimit) != 1 {
		t.Fatal("limit not reported")
	}
	// The responder bound: B holds one context at most.
	n.filter = nil
	c2 := n.addHost("C", 3, Config{}, "2001:db8:c1::/64")
	d := n.addHost("D", 4, Config{}, "2001:db8:d1::/64")
	establish(t, n, d, b)
	c2.e.CreateContext(n.now, c2.addrs[0], b.addrs[0])
	n.run(time.Second)
	if len(b.e.byULID) != 1 || stateOf(c2.e.byULID[ulidKey{c2.addrs[0], b.addrs[0], 0}]) != StateI2Sent {
		t.Fatal("responder exceeded MaxContexts")
	}
}

func TestConfigValidation(t *testing.T) {
	s := &host{}
	bad := []Config{
		{IdleTimeout: time.Millisecond},
		{SendTimeout: -1},
		{MaxPeerLocators: 300},
		{R1Rate: -1},
		{LocalLocators: []LocalLocator{{Addr: netipMust("10.0.0.1")}}},
		{LocalLocators: []LocalLocator{{Addr: netipMust("2001:db8::1")}, {Addr: netipMust("2001:db8::1")}}},
		{LocalLocators: []LocalLocator{{Addr: netipMust("2001:db8::1"), Method: MethodHBA}}},
		{LocalLocators: []LocalLocator{{Addr: netipMust("2001:db8::1"), Method: MethodCGA}}, PDS: []byte{1}},
		{LocalLocators: []LocalLocator{{Addr: netipMust("2001:db8::1"), Method: 9}}},
	}
	for i, c := range bad {
		if _, err := New(c, Deps{Sender: s}); !errors.Is(err, ErrConfig) {
			t.Errorf("config %d: %v", i, err)
		}
	}
	if _, err := New(Config{}, Deps{}); !errors.Is(err, ErrNoSender) {
		t.Error(err)
	}
}

func TestManagementAPI(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	list := a.e.Contexts()
	if len(list) != 1 || list[0].LocalTag != ca.localTag || list[0].State != StateEstablished || len(list[0].PeerLocators) != 2 || list[0].Reap == "" {
		t.Fatalf("list %+v", list)
	}
	if _, ok := a.e.Context(12345); ok {
		t.Fatal("unknown tag found")
	}
	if ci, ok := a.e.LookupULIDs(a.addrs[0], b.addrs[0], 0); !ok || ci.LocalTag != ca.localTag {
		t.Fatal("lookup by ULIDs")
	}
	for _, f := range []func(time.Time, uint64) error{a.e.DeleteContext, a.e.Update, a.e.Explore, a.e.Unpin} {
		if err := f(n.now, 999); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	if _, err := a.e.ForkContext(n.now, 999); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := a.e.CreateContext(n.now, netipMust("ff02::1"), b.addrs[0]); !errors.Is(err, ErrAddress) {
		t.Fatal(err)
	}
	// Pin to the second pair: the data plane follows, REAP keeps it.
	if err := a.e.Pin(n.now, ca.localTag, a.addrs[1], b.addrs[1]); err != nil {
		t.Fatal(err)
	}
	m := a.dp.maps[ca.localTag]
	if m.LocalLocator != a.addrs[1] || m.PeerLocator != b.addrs[1] || !m.Shimmed() {
		t.Fatalf("mapping after pin %+v", m)
	}
	if ci, _ := a.e.Context(ca.localTag); !ci.Pinned || ci.LocalLocator != a.addrs[1] {
		t.Fatal("pin not shown")
	}
	if err := a.e.Unpin(n.now, ca.localTag); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Explore(n.now, ca.localTag); err != nil {
		t.Fatal(err)
	}
	if err := a.e.DeleteContext(n.now, ca.localTag); err != nil || len(a.e.Contexts()) != 0 {
		t.Fatal("delete")
	}
	if a.count(EventLocatorSwitch) != 1 {
		t.Fatal("switch event")
	}
}

func TestTooManyLocalLocatorsForOneMessage(t *testing.T) {
	// A valid HBA PDS made large by an extension.
	set, err := cga.GenerateHBA(context.Background(), []netip.Prefix{netip.MustParsePrefix("2001:db8:a1::/64")}, nil,
		cga.Options{Rand: newSeeded(1), Extensions: []cga.Extension{{Type: 0x7777, Data: make([]byte, 700)}}})
	if err != nil {
		t.Fatal(err)
	}
	locs := []LocalLocator{{Addr: set.Addrs[0], Method: MethodHBA}}
	if _, err := New(Config{PDS: set.Params, LocalLocators: locs}, Deps{Sender: &host{}}); err != nil {
		t.Fatalf("one locator: %v", err)
	}
	for i := range 31 {
		locs = append(locs, LocalLocator{Addr: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xa1, 15: byte(i + 1)}), Method: MethodHBA})
	}
	if _, err := New(Config{PDS: set.Params, LocalLocators: locs}, Deps{Sender: &host{}}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "1280") {
		t.Fatalf("oversized locator set accepted: %v", err)
	}
}

// An ICMP error about a shimmed packet sent on a pair the context no longer
// uses (in flight before a switch) says nothing about the current pair: no
// exploration. The same error about the current pair explores (RFC 5533 §8).
func TestICMPAboutOldPairIgnored(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	n.run(time.Second) // Locator Lists exchanged
	if err := a.e.Pin(n.now, ca.localTag, a.addrs[1], b.addrs[1]); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Unpin(n.now, ca.localTag); err != nil {
		t.Fatal(err)
	}
	ph := make([]byte, 8)
	wire.PutPayloadHeader(ph, wire.PayloadHeader{NextHeader: 17, ContextTag: ca.peerTag})
	if !a.e.HandleICMP(n.now, b.addrs[0], icmpDestUnreach, 3, ipv6Packet(a.addrs[0], b.addrs[1], ph)) {
		t.Fatal("error about a shimmed packet not consumed")
	}
	if s := ca.reap.State().String(); s != "operational" {
		t.Fatalf("error about the old pair: %s", s)
	}
	if !a.e.HandleICMP(n.now, b.addrs[1], icmpDestUnreach, 3, ipv6Packet(a.addrs[1], b.addrs[1], ph)) {
		t.Fatal("not acted upon")
	}
	if s := ca.reap.State().String(); s != "exploring" {
		t.Fatalf("error about the current pair: %s", s)
	}
}

// RFC 5534 §3.3 negative advice right after the peer confirmed a new pair
// is stale (a retransmission timer armed before the repair): counted, no
// exploration.
func TestStaleULPHintCounted(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	ev := dataplane.Event{Kind: dataplane.EventULPTrouble, Src: a.addrs[0], Dst: b.addrs[0]}
	a.e.HandleDataPlaneEvent(n.now, ev)
	n.run(100 * time.Millisecond) // probe exchange on the working pair
	if s := ca.reap.State().String(); s != "operational" {
		t.Fatalf("after the exchange: %s", s)
	}
	n.run(time.Second)
	before := a.count(EventReapState)
	a.e.HandleDataPlaneEvent(n.now, ev)
	if got := a.e.Stats().ULPHintsIgnored; got != 1 || a.count(EventReapState) != before || ca.reap.State().String() != "operational" {
		t.Fatalf("stale hint: ignored %d, events %d -> %d, %s", got, before, a.count(EventReapState), ca.reap.State())
	}
	n.run(20 * time.Second)
	a.e.HandleDataPlaneEvent(n.now, ev)
	if s := ca.reap.State().String(); s != "exploring" {
		t.Fatalf("hint after the hold: %s", s)
	}
}

// RFC 5534 §4.3: reaching Max Probe Timeout "may also serve as a hint to
// the garbage collection process that the context is no longer usable".
// The ULP keeps sending to a peer that is gone: the data plane's activity
// keeps the context from being idle, but once REAP probes at Max Probe
// Timeout and nothing came from the peer for the idle time, it is
// collected.
func TestUnreachableContextCollected(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	n.filter = func(pkt) bool { return false } // the peer is gone
	gone := n.now
	for !ca.dead && n.now.Sub(gone) < 10*time.Minute {
		n.run(10 * time.Second)
		a.e.HandleActivity(n.now, activity(ca, n.now, true, false))
		if !ca.dead && n.now.Sub(gone) < DefaultIdleTimeout && ca.state != StateEstablished {
			t.Fatalf("%v after %v", ca.state, n.now.Sub(gone))
		}
	}
	d := n.now.Sub(gone)
	if !ca.dead || d < DefaultIdleTimeout || d > DefaultIdleTimeout+70*time.Second {
		t.Fatalf("collected %v after %v (idle time %v)", ca.dead, d, DefaultIdleTimeout)
	}
	if s := a.e.Stats(); s.ContextsUnreachable != 1 || s.ContextsIdle != 0 {
		t.Fatalf("unreachable %d idle %d", s.ContextsUnreachable, s.ContextsIdle)
	}
}

// The eBPF data plane translates an ICMP error about a shimmed packet of
// the current mapping back to the ULIDs (RFC 5533 §8), without the Shim6
// header: on a context whose current pair is not the ULID pair, that error
// still starts exploration.
func TestICMPTranslatedToULIDsOnShimmedContext(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, _ := establish(t, n, a, b)
	n.run(time.Second)
	if err := a.e.Pin(n.now, ca.localTag, a.addrs[1], b.addrs[1]); err != nil {
		t.Fatal(err)
	}
	inv := ipv6Packet(a.addrs[0], b.addrs[0], make([]byte, 16)) // the ULIDs, as translated
	inv[6] = 6
	if !a.e.HandleICMP(n.now, b.addrs[1], icmpDestUnreach, 0, inv) {
		t.Fatal("not acted upon")
	}
	if s := ca.reap.State().String(); s != "exploring" {
		t.Fatalf("state %s", s)
	}
}

// Traffic between two of the host's own addresses has no peer: no context
// is created for it (the trigger heuristic can count loopback traffic).
func TestNoContextWithSelf(t *testing.T) {
	n, a, _ := twoHosts(t, Config{}, Config{})
	for _, ev := range []dataplane.Event{
		{Kind: dataplane.EventTrigger, Src: a.addrs[0], Dst: a.addrs[0]},
		{Kind: dataplane.EventTrigger, Src: a.addrs[0], Dst: a.addrs[1]},
	} {
		a.e.HandleDataPlaneEvent(n.now, ev)
	}
	if _, err := a.e.CreateContext(n.now, a.addrs[1], a.addrs[0]); !errors.Is(err, ErrSelf) {
		t.Fatalf("CreateContext with ourselves: %v", err)
	}
	if cs := a.e.Contexts(); len(cs) != 0 {
		t.Fatalf("contexts with ourselves: %+v", cs)
	}
	if d := a.e.Stats().Drops["self"]; d != 3 {
		t.Fatalf("drops %v", a.e.Stats().Drops)
	}
}
