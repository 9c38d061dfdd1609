package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

type fakePIO struct {
	mu      sync.Mutex
	sent    []Packet
	packets chan Packet
	closed  bool
}

func (f *fakePIO) Send(src, dst netip.Addr, msg []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, Packet{src, dst, msg})
	return nil
}
func (f *fakePIO) Run(ctx context.Context, packet func(Packet), icmp func(ICMPError)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case p := <-f.packets:
			packet(p)
		}
	}
}
func (f *fakePIO) Counters() map[string]uint64 { return map[string]uint64{"netio_rx": 1} }
func (f *fakePIO) Close() error                { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }

type fakeDP struct {
	mu       sync.Mutex
	installs []uint64
	m        map[uint64]dataplane.Mapping
	adopted  []dataplane.Mapping
	closed   bool
	keptOnce bool
}

func (f *fakeDP) Install(m dataplane.Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[m.LocalTag] = m
	f.installs = append(f.installs, m.LocalTag)
	return nil
}
func (f *fakeDP) Remove(tag uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, tag)
	return nil
}
func (f *fakeDP) ReadActivity(fn func(dataplane.Activity)) error { return nil }
func (f *fakeDP) Run(ctx context.Context, ev func(dataplane.Event)) error {
	<-ctx.Done()
	return nil
}
func (f *fakeDP) Adopted() []dataplane.Mapping { return f.adopted }
func (f *fakeDP) Kind() string                 { return "fake" }
func (f *fakeDP) Counters() map[string]uint64  { return map[string]uint64{"dp_rewrites": 2} }
func (f *fakeDP) Close(keep bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed, f.keptOnce = true, keep
	return nil
}

type fakeAddrs struct {
	mu      sync.Mutex
	addrs   []HostAddr
	changes chan []HostAddr
}

func (f *fakeAddrs) Snapshot() ([]HostAddr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]HostAddr(nil), f.addrs...), nil
}
func (f *fakeAddrs) Run(ctx context.Context, fn func([]HostAddr)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-f.changes:
			f.mu.Lock()
			f.addrs = a
			f.mu.Unlock()
			fn(a)
		}
	}
}
func (f *fakeAddrs) Close() error { return nil }

type daemonHarness struct {
	d      *Daemon
	core   *fakeCore
	pio    *fakePIO
	dp     *fakeDP
	addrs  *fakeAddrs
	added  []netip.Prefix
	cfgP   string
	cancel context.CancelFunc
	done   chan error
	params CoreParams
}

var hostAddrs = []HostAddr{
	{Addr: netip.MustParseAddr("2001:db8:1:1::10"), PrefixLen: 64, Interface: "eth0"},
	{Addr: netip.MustParseAddr("2001:db8:2:1::10"), PrefixLen: 64, Interface: "eth1"},
	{Addr: netip.MustParseAddr("fe80::1"), PrefixLen: 64, Interface: "eth0"},
	{Addr: netip.MustParseAddr("2001:db8:3:1::10"), PrefixLen: 64, Interface: "eth2", Tentative: true},
}

func newDaemonHarness(t *testing.T, mod func(*Config, *daemonHarness)) *daemonHarness {
	t.Helper()
	dir := t.TempDir()
	h := &daemonHarness{
		core:  newFakeCore(),
		pio:   &fakePIO{packets: make(chan Packet, 8)},
		dp:    &fakeDP{m: map[uint64]dataplane.Mapping{}},
		addrs: &fakeAddrs{addrs: hostAddrs, changes: make(chan []HostAddr, 1)},
		cfgP:  filepath.Join(dir, "shim6d.toml"),
	}
	cfg := Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Socket = filepath.Join(dir, "run", "shim6d.sock")
	if mod != nil {
		mod(&cfg, h)
	}
	env := Environment{
		Preflight:     func(*Config) error { return nil },
		OpenAddrs:     func(context.Context, *slog.Logger) (AddrSource, error) { return h.addrs, nil },
		OpenDataPlane: func(context.Context, *Config, []string, *slog.Logger) (DataPlane, error) { return h.dp, nil },
		OpenPacketIO:  func(context.Context, *slog.Logger) (PacketIO, error) { return h.pio, nil },
		NewCore: func(p CoreParams) (Core, error) {
			h.params = p
			h.core.emit = p.Emit
			h.core.locs = p.Locators
			return h.core, nil
		},
		AddAddress: func(iface string, p netip.Prefix) error {
			h.added = append(h.added, p)
			return nil
		},
	}
	ready := make(chan struct{})
	h.d = New(Options{ConfigPath: h.cfgP, Config: cfg, Version: "test", Env: env, Ready: func(*Daemon) { close(ready) }})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-h.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon start timed out")
	}
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *daemonHarness) stop(t *testing.T) {
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
	h.done <- nil // idempotent for later calls
}

func (h *daemonHarness) client(t *testing.T) *api.Client {
	c, err := api.Dial(context.Background(), h.d.Socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDaemonStartsServesStops(t *testing.T) {
	h := newDaemonHarness(t, func(c *Config, _ *daemonHarness) { c.Security.Mode = SecurityInsecure })
	c := h.client(t)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Security != "insecure" || st.DataPlane != "fake" || st.Version != "test" || len(st.Warnings) == 0 || !strings.Contains(st.Warnings[0], "INSECURE") {
		t.Fatalf("status %+v", st)
	}
	// Locators given to the engine: the two global, non-tentative
	// addresses plus the two HBA addresses added to the interfaces,
	// each tagged with its verification method.
	if len(h.added) != 2 {
		t.Fatalf("added HBA addresses %v", h.added)
	}
	id := h.params.Identity
	byAddr := map[netip.Addr]LocalLocator{}
	for _, l := range h.params.Locators {
		byAddr[l.Addr] = l
	}
	// Only the HBA addresses: peers could not verify the others.
	if _, ok := byAddr[netip.MustParseAddr("2001:db8:1:1::10")]; len(byAddr) != 2 || byAddr[id.Addrs[0]].Method != MethodHBA || ok {
		t.Fatalf("locators %+v (identity %v)", h.params.Locators, id.Addrs)
	}
	if byAddr[id.Addrs[1]].Interface != "eth1" {
		t.Fatalf("HBA address on the wrong interface: %+v", byAddr[id.Addrs[1]])
	}
	// A packet from the raw socket reaches the core.
	h.pio.packets <- Packet{Src: netip.MustParseAddr("2001:db8:9::1"), Dst: netip.MustParseAddr("2001:db8:1:1::10"), Data: []byte{59}}
	h.core.waitCall(t, "packet")
	// Stats merge the core, the loop, netio and the data plane.
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"fake_packets", "loop_dropped_packets", "netio_rx", "dp_rewrites"} {
		if _, ok := s.Counters[k]; !ok {
			t.Errorf("stats lack %s", k)
		}
	}
	// Address removal reaches the engine as a new locator set.
	h.addrs.changes <- []HostAddr{hostAddrs[0], {Addr: id.Addrs[0], PrefixLen: 64, Interface: "eth0"}}
	h.core.waitCall(t, "locators")
	if err := h.d.Loop().Do(ctx, func(time.Time, Core) error {
		if len(h.core.locs) != 1 || h.core.locs[0].Interface != "eth0" {
			return errors.New("wrong locators after removal")
		}
		return nil
	}); err != nil {
		t.Fatal(err, h.core.locs)
	}

	h.stop(t)
	if !h.dp.closed || h.dp.keptOnce {
		t.Fatalf("data plane closed=%v keep=%v", h.dp.closed, h.dp.keptOnce)
	}
	if _, err := os.Stat(h.d.Socket()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func (f *fakeCore) waitCall(t *testing.T, call string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-f.calls:
			if got == call {
				return
			}
		case <-deadline:
			t.Fatalf("core never saw %q", call)
		}
	}
}

func TestDaemonSingleInstance(t *testing.T) {
	h := newDaemonHarness(t, nil)
	cfg := h.d.opts.Config
	d2 := New(Options{Config: cfg, Env: h.d.opts.Env})
	err := d2.Run(context.Background())
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second daemon: %v", err)
	}
	// The first one is unharmed.
	if _, err := h.client(t).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDaemonPreflightRefuses(t *testing.T) {
	cfg := Default()
	cfg.StateDir = t.TempDir()
	d := New(Options{Config: cfg, Env: Environment{Preflight: func(*Config) error { return errors.New("shim6d must run as root") }}})
	if err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("preflight: %v", err)
	}
}

func TestDaemonKeepsAndAdoptsDataPlane(t *testing.T) {
	adopted := []dataplane.Mapping{{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: netip.MustParseAddr("2001:db8:1:1::10"),
		PeerLocator: netip.MustParseAddr("2001:db8:b:2::1"), LocalTag: 0x4242, PeerTag: 0x99}}
	h := newDaemonHarness(t, func(c *Config, h *daemonHarness) {
		c.DataPlane.KeepOnExit = true
		h.dp.adopted = adopted
		h.dp.m[0x4242] = adopted[0]
	})
	// Each kept mapping is recovered from the peer: the engine is told
	// that payload with that tag arrived (it answers with R1bis).
	h.core.waitCall(t, "dpevent")
	var ev dataplane.Event
	h.d.Loop().Do(context.Background(), func(time.Time, Core) error { ev = h.core.dpEvents[0]; return nil })
	if ev.Kind != dataplane.EventUnknownTag || ev.Tag != 0x4242 || ev.Src != adopted[0].PeerLocator || ev.Dst != adopted[0].LocalLocator {
		t.Fatalf("adoption event %+v", ev)
	}
	st, err := h.client(t).Status(context.Background())
	if err != nil || !st.Adopted {
		t.Fatalf("status %+v %v", st, err)
	}
	h.stop(t)
	if !h.dp.keptOnce {
		t.Fatal("data plane not kept on exit")
	}
}

func TestDaemonReload(t *testing.T) {
	h := newDaemonHarness(t, nil)
	ctx := context.Background()
	os.WriteFile(h.cfgP, []byte("[trigger]\npackets = 0\n[peers]\nnever = [\"2001:db8:dead::/48\"]\n[locators]\ninterfaces = [\"eth1\"]\n[security]\nmode = \"cga\"\n"), 0o600)
	if err := h.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	h.core.waitCall(t, "locators")
	h.d.Loop().Do(ctx, func(time.Time, Core) error {
		if h.d.cfg.Trigger.Packets != 0 || len(h.d.cfg.Peers.Never) != 1 {
			t.Errorf("reloadable keys not applied: %+v", h.d.cfg)
		}
		if h.d.cfg.Security.Mode != SecurityHBA {
			t.Errorf("security.mode changed by a reload")
		}
		for _, l := range h.core.locs {
			if l.Interface != "eth1" {
				t.Errorf("locator %v outside locators.interfaces after reload", l)
			}
		}
		return nil
	})
	// A broken file keeps the running configuration.
	os.WriteFile(h.cfgP, []byte("[trigger]\npackets = -1\n"), 0o600)
	if err := h.d.Reload(ctx); err == nil {
		t.Fatal("bad config accepted on reload")
	}
}

func TestTrackingDPRemovesUnclaimedAndRestoresPair(t *testing.T) {
	dp := &fakeDP{m: map[uint64]dataplane.Mapping{}}
	old := dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalTag: 1, PeerTag: 9}
	kept := dataplane.Mapping{LocalULID: ulidA, PeerULID: netip.MustParseAddr("2001:db8:c::1"), LocalTag: 2}
	dp.m[1], dp.m[2] = old, kept
	tdp := &trackingDP{DataPlane: dp, installed: map[uint64]dataplane.Mapping{}, adopted: []dataplane.Mapping{old, kept}}
	// The context of kept came back with its tag; old's came back as 3.
	tdp.Install(kept)
	recovered := old
	recovered.LocalTag = 3
	tdp.Install(recovered)
	dp.installs = nil
	if n := tdp.removeUnclaimed(); n != 1 {
		t.Fatalf("removed %d, want 1", n)
	}
	if _, ok := dp.m[1]; ok {
		t.Fatal("unclaimed tag 1 still installed")
	}
	if _, ok := dp.m[2]; !ok {
		t.Fatal("claimed tag 2 removed")
	}
	if m, ok := dp.m[3]; !ok || m.PeerULID != ulidB {
		t.Fatal("recovered mapping of the same pair not there after the removal")
	}
	// The data plane may have dropped state the pair shares with the old
	// tag (its routing rules): the current mapping is installed again.
	if len(dp.installs) != 1 || dp.installs[0] != 3 {
		t.Fatalf("reinstalls %v, want [3]", dp.installs)
	}
}
