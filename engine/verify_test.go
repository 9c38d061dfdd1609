package engine

import (
	"context"
	"crypto/rsa"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/cga"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := cga.GenerateKey(newSeeded(42), 1024)
		if err != nil {
			t.Fatal(err)
		}
		testKey = k
	})
	return testKey
}

// addCGAHost adds a host whose ULID is a CGA on prefix[0] and whose other
// locators (one per further prefix, ::1) are CGA-signed.
func (n *fakeNet) addCGAHost(name string, seed byte, cfg Config, prefixes ...string) *host {
	n.t.Helper()
	key := rsaKey(n.t)
	pub, err := cga.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		n.t.Fatal(err)
	}
	ulid, pds, err := cga.Generate(context.Background(), netip.MustParsePrefix(prefixes[0]), pub, cga.Options{Rand: newSeeded(seed)})
	if err != nil {
		n.t.Fatal(err)
	}
	addrs := []netip.Addr{ulid}
	locs := []LocalLocator{{Addr: ulid, Method: MethodCGA}}
	for _, p := range prefixes[1:] {
		a := netip.MustParsePrefix(p).Addr().Next()
		addrs = append(addrs, a)
		locs = append(locs, LocalLocator{Addr: a, Method: MethodCGA})
	}
	cfg.PDS, cfg.PrivateKey, cfg.LocalLocators = pds, key, locs
	return n.addHostCfg(name, seed, cfg, addrs)
}

func TestEstablishCGA(t *testing.T) {
	n := newNet(t)
	a := n.addCGAHost("A", 1, Config{}, "2001:db8:a1::/64", "2001:db8:a2::/64")
	b := n.addHost("B", 2, Config{}, "2001:db8:b1::/64", "2001:db8:b2::/64")
	ca, cb := establish(t, n, a, b)
	for i, l := range cb.peerLocs {
		if !l.verified || l.method != MethodCGA || l.addr != a.addrs[i] {
			t.Fatalf("B's view of A's locator %d: %+v", i, l)
		}
	}
	if len(ca.peerLocs) != 2 || !ca.peerLocs[1].verified {
		t.Fatal("A did not verify B's HBA locators")
	}
	// CGA allows adding a locator later, signed (RFC 5533 §10).
	locs := append(append([]LocalLocator(nil), a.e.local.all...), LocalLocator{Addr: netipMust("2001:db8:a3::1"), Method: MethodCGA})
	n.owner[locs[2].Addr] = a
	a.e.SetLocalLocators(n.now, locs)
	n.run(time.Second)
	if len(cb.peerLocs) != 3 || !cb.peerLocs[2].verified || ca.upd != nil {
		t.Fatalf("new CGA locator not accepted: %+v", cb.peerLocs)
	}
}

func TestCGABadSignatureRefused(t *testing.T) {
	n := newNet(t)
	a := n.addCGAHost("A", 1, Config{}, "2001:db8:a1::/64", "2001:db8:a2::/64")
	b := n.addHost("B", 2, Config{}, "2001:db8:b1::/64", "2001:db8:b2::/64")
	ca, cb := establish(t, n, a, b)
	// An Update whose list adds a locator the signature does not cover.
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 99
	m.hasLocList, m.locGen = true, a.e.local.gen+1
	m.locs = []locEntry{{a.addrs[0], MethodCGA}, {netipMust("2001:db8:66::1"), MethodCGA}}
	m.sig = a.e.local.sig
	raw, err := a.e.codec.encode(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	if got := n.sentTypes(from); string(got) != string([]uint8{typeError}) {
		t.Fatalf("sent %v, want an Error", got)
	}
	if len(cb.peerLocs) != 2 || cb.peerLocs[1].addr != a.addrs[1] {
		t.Fatal("bad list replaced Ls(peer)")
	}
	if b.e.Stats().VerificationFailures == 0 || b.count(EventVerificationFailed) == 0 {
		t.Fatal("failure not reported")
	}
}

// An attacker-controlled locator in an HBA list (not in the HBA set) is
// kept, unverified, and can never be selected.
func TestUnverifiedLocatorNeverSelected(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	evil := netipMust("2001:db8:666::1")
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 5
	m.hasLocList, m.locGen = true, 77
	m.locs = []locEntry{{a.addrs[0], MethodHBA}, {evil, MethodHBA}}
	raw, _ := a.e.codec.encode(nil, m)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	if len(cb.peerLocs) != 2 || cb.peerLocs[1].addr != evil || cb.peerLocs[1].verified {
		t.Fatalf("Ls(peer) %+v", cb.peerLocs)
	}
	if cb.peerHas(evil) || b.e.switchPair(cb, n.now, b.addrs[0], evil, "test") {
		t.Fatal("unverified locator selectable")
	}
	if err := b.e.Pin(n.now, cb.localTag, b.addrs[0], evil); !errors.Is(err, ErrLocator) {
		t.Fatalf("pin to unverified locator: %v", err)
	}
	info, _ := b.e.Context(cb.localTag)
	if info.PeerLocators[1].Verified || info.PeerLocators[1].Addr != evil {
		t.Fatal("unverified locator not visible as such")
	}
	// REAP never probes it.
	for _, p := range b.e.byTag[cb.localTag].reap.Pairs() {
		if p.Peer == evil {
			t.Fatal("REAP candidate with unverified peer locator")
		}
	}
}

func TestPDSNotMatchingULIDDropped(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	// B's PDS presented as A's.
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 5
	m.pds = b.pds
	raw, _ := a.e.codec.encode(nil, m)
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	if len(n.sent) != from {
		t.Fatal("answered an Update with a foreign PDS (MUST discard silently)")
	}
	if string(cb.peerPDS.bytes()) != string(a.pds) {
		t.Fatal("stored PDS replaced")
	}
}

func TestUnsupportedMethodRefused(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 5
	m.hasLocList, m.locGen = true, 9
	m.locs = []locEntry{{a.addrs[0], MethodHBA}, {a.addrs[1], 7}}
	raw, _ := a.e.codec.encode(nil, m)
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	var em message
	if len(n.sent) != from+1 || b.e.codec.decode(n.sent[from].b, &em) != nil || em.errCode != ErrCodeVerification {
		t.Fatal("no Error code 2")
	}
	// Pointer: the method octet of the second locator.
	if off := int(em.errPointer) - ipv6HeaderLen; raw[off] != 7 {
		t.Fatalf("pointer %d designates %d", em.errPointer, raw[off])
	}
	if cb.peerGen == 9 {
		t.Fatal("list accepted")
	}
}

func TestInsecureAcceptsWithoutVerification(t *testing.T) {
	n := newNet(t)
	// A has no PDS at all: plain addresses; B runs insecure.
	addrs := []netip.Addr{netipMust("2001:db8:a1::1"), netipMust("2001:db8:a2::1")}
	a := n.addHostCfg("A", 1, Config{LocalLocators: []LocalLocator{{Addr: addrs[0]}, {Addr: addrs[1]}}}, addrs)
	b := n.addHost("B", 2, Config{Insecure: true}, "2001:db8:b1::/64")
	if b.count(EventInsecure) != 1 {
		t.Fatal("insecure mode not announced")
	}
	ca, cb := establish(t, n, a, b)
	if len(cb.peerLocs) != 0 {
		t.Fatal("A has no verifiable locators and must send no list")
	}
	// An unsigned list from A is accepted by the insecure B.
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 5
	m.hasLocList, m.locGen = true, 1
	m.locs = []locEntry{{addrs[0], MethodHBA}, {addrs[1], MethodHBA}}
	raw, _ := a.e.codec.encode(nil, m)
	b.e.HandlePacket(n.now, addrs[0], b.addrs[0], raw)
	if len(cb.peerLocs) != 2 || !cb.peerLocs[1].verified {
		t.Fatal("insecure mode did not accept")
	}
	// The secure A would refuse the same from B.
	if a.e.cfg.Insecure {
		t.Fatal()
	}
}

func TestTooManyPeerLocators(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{MaxPeerLocators: 2})
	ca, cb := establish(t, n, a, b)
	m := &a.e.tx
	m.reset()
	m.typ, m.tag, m.reqNonce = typeUpdateReq, ca.peerTag, 5
	m.hasLocList, m.locGen = true, 9
	m.locs = []locEntry{{a.addrs[0], MethodHBA}, {a.addrs[1], MethodHBA}, {netipMust("2001:db8:a1::9"), MethodHBA}}
	raw, _ := a.e.codec.encode(nil, m)
	from := len(n.sent)
	b.e.HandlePacket(n.now, a.addrs[0], b.addrs[0], raw)
	var em message
	if len(n.sent) != from+1 || b.e.codec.decode(n.sent[from].b, &em) != nil || em.errCode != ErrCodeNumberOfLocators {
		t.Fatal("no Error code 4")
	}
	if cb.peerGen == 9 {
		t.Fatal("list accepted")
	}
}
