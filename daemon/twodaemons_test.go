package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

// memNet connects the raw sockets of daemons in one process: a message is
// delivered to the daemon that owns its destination address.
type memNet struct {
	mu    sync.Mutex
	hosts map[netip.Addr]*memPIO
	drop  map[netip.Addr]bool // destinations that are unreachable
}

type memPIO struct {
	net     *memNet
	packets chan Packet
	sent    uint64
}

func (n *memNet) attach(p *memPIO, addrs ...netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range addrs {
		n.hosts[a] = p
	}
}

func (p *memPIO) Send(src, dst netip.Addr, msg []byte) error {
	p.net.mu.Lock()
	to := p.net.hosts[dst]
	dropped := p.net.drop[dst] || p.net.drop[src]
	p.sent++
	p.net.mu.Unlock()
	if to == nil || dropped {
		return nil
	}
	select {
	case to.packets <- Packet{Src: src, Dst: dst, Data: append([]byte(nil), msg...)}:
	default:
	}
	return nil
}
func (p *memPIO) Run(ctx context.Context, packet func(Packet), icmp func(ICMPError)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case pk := <-p.packets:
			packet(pk)
		}
	}
}
func (p *memPIO) Counters() map[string]uint64 {
	p.net.mu.Lock()
	defer p.net.mu.Unlock()
	return map[string]uint64{"netio_tx": p.sent}
}
func (p *memPIO) Close() error { return nil }

type memHost struct {
	d      *Daemon
	addrs  *fakeAddrs
	dp     *MemoryDataPlane
	pio    *memPIO
	client *api.Client
	events <-chan api.Event
}

func startMemHost(t *testing.T, n *memNet, name string, host []HostAddr, mod func(*Config)) *memHost {
	t.Helper()
	dir := t.TempDir()
	h := &memHost{
		addrs: &fakeAddrs{addrs: host, changes: make(chan []HostAddr, 1)},
		dp:    NewMemoryDataPlane(),
		pio:   &memPIO{net: n, packets: make(chan Packet, 256)},
	}
	cfg := Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Socket = filepath.Join(dir, "run", "s.sock")
	cfg.REAP.SendTimeout = 2 * time.Second
	cfg.REAP.ActivityPoll = 100 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", name)
	}
	env := Environment{
		Preflight:     func(*Config) error { return nil },
		OpenAddrs:     func(context.Context, *slog.Logger) (AddrSource, error) { return h.addrs, nil },
		OpenDataPlane: func(context.Context, *Config, []string, *slog.Logger) (DataPlane, error) { return h.dp, nil },
		OpenPacketIO:  func(context.Context, *slog.Logger) (PacketIO, error) { return h.pio, nil },
		NewCore: func(p CoreParams) (Core, error) {
			// The "kernel" picks the host's first (non-HBA) address.
			p.SourceFor = func(netip.Addr) (netip.Addr, error) { return host[0].Addr, nil }
			return NewEngineCore(p)
		},
		AddAddress: func(iface string, p netip.Prefix) error {
			n.attach(h.pio, p.Addr())
			return nil
		},
	}
	for _, a := range host {
		n.attach(h.pio, a.Addr)
	}
	ready := make(chan struct{})
	h.d = New(Options{Config: cfg, Version: "test", Env: env, Logger: log, Ready: func(*Daemon) { close(ready) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s did not start: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	c, err := api.Dial(context.Background(), h.d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h.client = c
	ch, unsub := h.d.Loop().Subscribe()
	t.Cleanup(unsub)
	h.events = ch
	return h
}

// waitEvent returns the first event of that kind (and tag, if not 0).
func (h *memHost) waitEvent(t *testing.T, kind string, pred func(api.Event) bool) api.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-h.events:
			if !ok {
				t.Fatalf("event stream closed waiting for %s", kind)
			}
			if ev.Kind == kind && (pred == nil || pred(ev)) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

func hostA() []HostAddr {
	return []HostAddr{
		{Addr: netip.MustParseAddr("2001:db8:1:a::1"), PrefixLen: 64, Interface: "to-p1"},
		{Addr: netip.MustParseAddr("2001:db8:2:a::1"), PrefixLen: 64, Interface: "to-p2"},
	}
}

func hostB() []HostAddr {
	return []HostAddr{
		{Addr: netip.MustParseAddr("2001:db8:1:b::1"), PrefixLen: 64, Interface: "to-p1"},
		{Addr: netip.MustParseAddr("2001:db8:2:b::1"), PrefixLen: 64, Interface: "to-p2"},
	}
}

func TestTwoDaemonsEstablishOnCommandAndUpdate(t *testing.T) {
	n := &memNet{hosts: map[netip.Addr]*memPIO{}, drop: map[netip.Addr]bool{}}
	a := startMemHost(t, n, "a", hostA(), nil)
	b := startMemHost(t, n, "b", hostB(), nil)
	ulidA, ulidB := a.d.id.Addrs[0], b.d.id.Addrs[0]
	ctx := context.Background()

	c, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: ulidA, PeerULID: ulidB})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "i1-sent" {
		t.Fatalf("created in state %s", c.State)
	}
	up := a.waitEvent(t, api.EventContextUp, nil)
	if up.Tag != c.LocalTag || up.Attrs[AttrRole] != "initiator" {
		t.Fatalf("context-up on a: %+v", up)
	}
	b.waitEvent(t, api.EventContextUp, nil)

	// Both sides show it established, with the peer's locators verified.
	x, err := a.client.Context(ctx, api.ContextRef{PeerULID: ulidB})
	if err != nil {
		t.Fatal(err)
	}
	if x.State != "established" || x.PeerTag == 0 || x.REAPState == "" {
		t.Fatalf("a's context %+v", x)
	}
	verified := 0
	for _, l := range x.PeerLocators {
		if l.State == "verified" {
			verified++
		}
	}
	if verified < 2 {
		t.Fatalf("a verified %d of b's locators: %+v", verified, x.PeerLocators)
	}
	if _, ok := a.dp.Lookup(c.LocalTag); !ok {
		t.Fatal("no mapping installed in a's data plane")
	}
	st, err := b.client.Status(ctx)
	if err != nil || st.ContextsByState["established"] != 1 {
		t.Fatalf("b status %+v %v", st, err)
	}
	// Without a local ULID, the HBA address of the prefix the host would
	// use is chosen (the kernel's own pick, 2001:db8:1:a::1, is not
	// verifiable).
	if err := a.client.DeleteContext(ctx, api.ContextRef{Tag: c.LocalTag}); err != nil {
		t.Fatal(err)
	}
	c2, err := a.client.CreateContext(ctx, api.CreateParams{PeerULID: ulidB})
	if err != nil || c2.LocalULID != ulidA {
		t.Fatalf("create without local ULID: %+v %v (want local %s)", c2, err, ulidA)
	}
	c = c2
	a.waitEvent(t, api.EventContextUp, func(ev api.Event) bool { return ev.Tag == c.LocalTag })
	for deadline := time.Now().Add(20 * time.Second); ; {
		y, err := b.client.Context(ctx, api.ContextRef{PeerULID: ulidA})
		if err == nil && y.State == "established" && y.PeerTag == c.LocalTag {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never took a's new context: %+v %v", y, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Creating it again is a coded error.
	if _, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: ulidA, PeerULID: ulidB}); err == nil {
		t.Fatal("duplicate context accepted")
	}

	// Address removal on a: b hears of it through an Update.
	keep := []HostAddr{hostA()[0], {Addr: ulidA, PrefixLen: 64, Interface: "to-p1"}}
	a.addrs.changes <- keep
	b.waitEvent(t, api.EventLocatorsUpdated, nil)
	y, err := b.client.Context(ctx, api.ContextRef{PeerULID: ulidA})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range y.PeerLocators {
		if l.Addr == a.d.id.Addrs[1] {
			t.Fatalf("b still lists a's removed locator %s: %+v", l.Addr, y.PeerLocators)
		}
	}

	// A per-context Send Timeout reaches the peer (Keepalive Timeout
	// option in an Update).
	if err := a.client.Set(ctx, api.SetParams{ContextRef: api.ContextRef{Tag: c.LocalTag}, SendTimeoutSeconds: 5}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		y, err := b.client.Context(ctx, api.ContextRef{PeerULID: ulidA})
		if err == nil && y.PeerKeepaliveTimeoutSeconds == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never learned a's send timeout: %+v %v", y, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.client.Set(ctx, api.SetParams{ContextRef: api.ContextRef{Tag: 12345}, SendTimeoutSeconds: 5}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("set on an unknown context: %v", err)
	}
	// Stats and metrics counted the handshake.
	s, err := a.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Counters["engine_handshakes_established"] != 2 || s.Counters["engine_updates_sent"] == 0 {
		t.Fatalf("a stats %v", s.Counters)
	}

	// Explore, pin and unpin go through to the engine.
	if err := a.client.Explore(ctx, api.ContextRef{Tag: c.LocalTag}); err != nil {
		t.Fatal(err)
	}
	if err := a.client.Pin(ctx, api.PinParams{ContextRef: api.ContextRef{Tag: c.LocalTag}, LocalLocator: ulidA, PeerLocator: netip.MustParseAddr("2001:db8:9::9")}); err == nil {
		t.Fatal("pin to an unknown peer locator accepted")
	}
	if err := a.client.Pin(ctx, api.PinParams{ContextRef: api.ContextRef{Tag: c.LocalTag}, LocalLocator: ulidA, PeerLocator: b.d.id.Addrs[1]}); err != nil {
		t.Fatal(err)
	}
	if x, _ := a.client.Context(ctx, api.ContextRef{Tag: c.LocalTag}); !x.Pinned || x.PeerLocator != b.d.id.Addrs[1] {
		t.Fatalf("after pin: pinned=%v pair %s > %s", x.Pinned, x.LocalLocator, x.PeerLocator)
	}
	if err := a.client.Unpin(ctx, api.ContextRef{Tag: c.LocalTag}); err != nil {
		t.Fatal(err)
	}
	if err := a.client.DeleteContext(ctx, api.ContextRef{Tag: c.LocalTag}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.dp.Lookup(c.LocalTag); ok {
		t.Fatal("mapping left after delete")
	}
}

func TestTwoDaemonsTriggerThreshold(t *testing.T) {
	n := &memNet{hosts: map[netip.Addr]*memPIO{}, drop: map[netip.Addr]bool{}}
	a := startMemHost(t, n, "a", hostA(), func(c *Config) { c.Trigger.Packets = 5 })
	b := startMemHost(t, n, "b", hostB(), nil)
	ulidA, ulidB := a.d.id.Addrs[0], b.d.id.Addrs[0]
	// Below the threshold: nothing.
	a.d.Loop().DeliverDataPlaneEvent(trigger(ulidA, ulidB, 4))
	// At the threshold: the handshake starts by itself.
	a.d.Loop().DeliverDataPlaneEvent(trigger(ulidA, ulidB, 5))
	up := a.waitEvent(t, api.EventContextUp, nil)
	if up.PeerULID != ulidB {
		t.Fatalf("context-up %+v", up)
	}
	if got := a.d.Loop().Counters()["loop_ignored_triggers"]; got != 1 {
		t.Fatalf("ignored triggers %d, want 1", got)
	}
}

func trigger(src, dst netip.Addr, packets uint64) dataplane.Event {
	return dataplane.Event{Kind: dataplane.EventTrigger, Src: src, Dst: dst, Packets: packets, Time: time.Now()}
}

// TestTwoDaemonsCGA: in cga mode a locator outside the HBA set (a new
// prefix) is offered with a CGA signature, and the peer verifies it.
func TestTwoDaemonsCGA(t *testing.T) {
	n := &memNet{hosts: map[netip.Addr]*memPIO{}, drop: map[netip.Addr]bool{}}
	cga := func(c *Config) { c.Security.Mode = SecurityCGA; c.Security.RSABits = 1024 }
	a := startMemHost(t, n, "a", hostA(), cga)
	b := startMemHost(t, n, "b", hostB(), cga)
	ulidA, ulidB := a.d.id.Addrs[0], b.d.id.Addrs[0]
	ctx := context.Background()
	if _, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: ulidA, PeerULID: ulidB}); err != nil {
		t.Fatal(err)
	}
	a.waitEvent(t, api.EventContextUp, nil)
	// a gets an address in a third prefix, not in its HBA set.
	extra := netip.MustParseAddr("2001:db8:3:a::1")
	n.attach(a.pio, extra)
	all := append(hostA(), HostAddr{Addr: ulidA, PrefixLen: 64, Interface: "to-p1"},
		HostAddr{Addr: a.d.id.Addrs[1], PrefixLen: 64, Interface: "to-p2"},
		HostAddr{Addr: extra, PrefixLen: 64, Interface: "to-p3"})
	a.addrs.changes <- all
	var y api.Context
	for deadline := time.Now().Add(20 * time.Second); ; {
		var err error
		y, err = b.client.Context(ctx, api.ContextRef{PeerULID: ulidA})
		if err == nil {
			for _, l := range y.PeerLocators {
				if l.Addr == extra && l.Verification == "cga" && l.State == "verified" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never verified a's CGA-signed locator %s: %+v %v", extra, y.PeerLocators, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
