package engine

import (
	"context"
	"crypto/rsa"
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/dataplane"
)

// An in-package fake network: hosts each running a real Engine, a virtual
// clock, packets delivered after a fixed delay unless a filter drops them.

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

type pkt struct {
	at       time.Time
	seq      int
	src, dst netip.Addr
	b        []byte
}

type fakeDP struct {
	maps    map[uint64]dataplane.Mapping
	removed []uint64
	fail    bool
}

func (d *fakeDP) Install(m dataplane.Mapping) error {
	if d.fail {
		return errFake
	}
	d.maps[m.LocalTag] = m
	return nil
}

func (d *fakeDP) Remove(tag uint64) error {
	delete(d.maps, tag)
	d.removed = append(d.removed, tag)
	return nil
}

type fakeErr string

func (e fakeErr) Error() string { return string(e) }

const errFake = fakeErr("fake failure")

type host struct {
	name   string
	e      *Engine
	dp     *fakeDP
	events []Event
	addrs  []netip.Addr
	pds    []byte
	key    *rsa.PrivateKey
	n      *fakeNet
}

func (h *host) Send(src, dst netip.Addr, b []byte) error {
	return h.n.send(h, src, dst, b)
}

type fakeNet struct {
	t      testing.TB
	now    time.Time
	delay  time.Duration
	seq    int
	queue  []pkt
	owner  map[netip.Addr]*host
	hosts  []*host
	filter func(p pkt) bool // false: drop
	sent   []pkt            // log of everything sent
	log    bool
}

func newNet(t testing.TB) *fakeNet {
	return &fakeNet{t: t, now: t0, delay: 10 * time.Millisecond, owner: map[netip.Addr]*host{}}
}

func (n *fakeNet) send(h *host, src, dst netip.Addr, b []byte) error {
	if n.owner[src] != h {
		n.t.Errorf("%s sends from %v which it does not own", h.name, src)
	}
	p := pkt{at: n.now.Add(n.delay), seq: n.seq, src: src, dst: dst, b: append([]byte(nil), b...)}
	n.seq++
	n.sent = append(n.sent, p)
	if n.log {
		n.t.Logf("%v %s -> %v->%v type %d len %d", n.now.Sub(t0), h.name, src, dst, b[2]&0x7f, len(b))
	}
	if n.filter != nil && !n.filter(p) {
		return nil
	}
	n.queue = append(n.queue, p)
	return nil
}

// seed derives deterministic randomness per host.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func newSeeded(seed byte) seededReader {
	var s [32]byte
	s[0] = seed
	return seededReader{rand.NewChaCha8(s)}
}

// hbaIdentity makes an HBA set (Sec 0) over the given /64 prefixes.
func hbaIdentity(t testing.TB, seed byte, prefixes ...string) ([]byte, []netip.Addr) {
	t.Helper()
	var ps []netip.Prefix
	for _, p := range prefixes {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	set, err := cga.GenerateHBA(context.Background(), ps, nil, cga.Options{Rand: newSeeded(seed)})
	if err != nil {
		t.Fatal(err)
	}
	return set.Params, set.Addrs
}

// addHost adds an engine with an HBA identity over prefixes; all its
// addresses are HBA locators.
func (n *fakeNet) addHost(name string, seed byte, cfg Config, prefixes ...string) *host {
	n.t.Helper()
	pds, addrs := hbaIdentity(n.t, seed, prefixes...)
	var locs []LocalLocator
	for _, a := range addrs {
		locs = append(locs, LocalLocator{Addr: a, Method: MethodHBA})
	}
	cfg.PDS = pds
	cfg.LocalLocators = locs
	return n.addHostCfg(name, seed, cfg, addrs)
}

func (n *fakeNet) addHostCfg(name string, seed byte, cfg Config, addrs []netip.Addr) *host {
	n.t.Helper()
	h := &host{name: name, dp: &fakeDP{maps: map[uint64]dataplane.Mapping{}}, addrs: addrs, pds: cfg.PDS, key: cfg.PrivateKey, n: n}
	e, err := New(cfg, Deps{Sender: h, DataPlane: h.dp, Rand: newSeeded(seed + 100), Events: func(ev Event) { h.events = append(h.events, ev) }})
	if err != nil {
		n.t.Fatal(err)
	}
	h.e = e
	for _, a := range addrs {
		n.owner[a] = h
	}
	n.hosts = append(n.hosts, h)
	return h
}

// step runs the next thing that happens (a delivery or a timer) if it is
// not after until; it reports whether something ran.
func (n *fakeNet) step(until time.Time) bool {
	next, which := time.Time{}, -1
	if len(n.queue) > 0 {
		sort.SliceStable(n.queue, func(i, j int) bool {
			if !n.queue[i].at.Equal(n.queue[j].at) {
				return n.queue[i].at.Before(n.queue[j].at)
			}
			return n.queue[i].seq < n.queue[j].seq
		})
		next, which = n.queue[0].at, -2
	}
	for i, h := range n.hosts {
		if d, ok := h.e.NextDeadline(); ok && (which == -1 || d.Before(next)) {
			next, which = d, i
		}
	}
	if which == -1 || next.After(until) {
		return false
	}
	if next.After(n.now) {
		n.now = next
	}
	if which == -2 {
		p := n.queue[0]
		n.queue = n.queue[1:]
		if h := n.owner[p.dst]; h != nil {
			h.e.HandlePacket(n.now, p.src, p.dst, p.b)
		}
		return true
	}
	n.hosts[which].e.HandleTimer(n.now)
	return true
}

// run advances the clock by d, processing everything on the way.
func (n *fakeNet) run(d time.Duration) {
	until := n.now.Add(d)
	for i := 0; n.step(until); i++ {
		if i > 1_000_000 {
			n.t.Fatal("network does not settle")
		}
	}
	n.now = until
}

// only returns the contexts of h (test helper).
func (h *host) ctx(t testing.TB, peer *host) *Context {
	t.Helper()
	for _, c := range h.e.byULID {
		if c.peerULID == peer.addrs[0] && c.localULID == h.addrs[0] && c.fii == 0 {
			return c
		}
	}
	return nil
}

func (h *host) count(k EventKind) int {
	n := 0
	for _, ev := range h.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// twoHosts is the standard pair: A with two prefixes, B with two prefixes.
func twoHosts(t testing.TB, cfgA, cfgB Config) (*fakeNet, *host, *host) {
	n := newNet(t)
	a := n.addHost("A", 1, cfgA, "2001:db8:a1::/64", "2001:db8:a2::/64")
	b := n.addHost("B", 2, cfgB, "2001:db8:b1::/64", "2001:db8:b2::/64")
	return n, a, b
}

// establish creates the A->B context on the first addresses and runs
// until it is up.
func establish(t testing.TB, n *fakeNet, a, b *host) (*Context, *Context) {
	t.Helper()
	if _, err := a.e.CreateContext(n.now, a.addrs[0], b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	n.run(time.Second)
	ca, cb := a.ctx(t, b), b.ctx(t, a)
	if ca == nil || cb == nil || ca.state != StateEstablished || cb.state != StateEstablished {
		t.Fatalf("not established: A %v B %v", stateOf(ca), stateOf(cb))
	}
	return ca, cb
}

func stateOf(c *Context) State {
	if c == nil {
		return StateIdle
	}
	return c.state
}

func typeOf(p pkt) uint8 {
	if p.b[2]&0x80 != 0 {
		return 0
	}
	return p.b[2] & 0x7f
}

// sentTypes lists the types of the messages sent since index from.
func (n *fakeNet) sentTypes(from int) []uint8 {
	var ts []uint8
	for _, p := range n.sent[from:] {
		ts = append(ts, typeOf(p))
	}
	return ts
}

func (n *fakeNet) countSent(typ uint8) int {
	k := 0
	for _, p := range n.sent {
		if typeOf(p) == typ {
			k++
		}
	}
	return k
}

// dropTypes returns a filter dropping the given message types.
func dropTypes(ts ...uint8) func(pkt) bool {
	return func(p pkt) bool {
		for _, t := range ts {
			if typeOf(p) == t {
				return false
			}
		}
		return true
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

// next runs the next event within an hour, failing the test if there is
// none (so that loops waiting for something always end).
func (n *fakeNet) next() {
	n.t.Helper()
	if !n.step(n.now.Add(time.Hour)) {
		n.t.Fatal("nothing happens any more")
	}
}
