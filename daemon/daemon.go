package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/dataplane"
)

// Options configure a Daemon.
type Options struct {
	// ConfigPath is reread by Reload; empty: Reload keeps Config.
	ConfigPath string
	Config     Config
	Version    string
	Logger     *slog.Logger
	// LogLevel, if set, is adjusted by Reload to log.level.
	LogLevel *slog.LevelVar
	Env      Environment
	// Clock for the loop (default: the system clock).
	Clock Clock
	// AdoptGrace is how long adopted mappings wait to be claimed by a
	// recovered context before they are removed (default: 3 Send
	// Timeouts, at least a minute).
	AdoptGrace time.Duration
	// Ready, if set, is called once the daemon serves (after sd_notify
	// READY=1); tests use it.
	Ready func(d *Daemon)
}

// Daemon is a running shim6d.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time

	// cfg is owned by the loop goroutine (read by the trigger filter and
	// locator filtering); Reload swaps it there.
	cfg *Config

	loop    *Loop
	core    Core
	state   *StateDir
	id      *Identity
	dp      DataPlane
	pio     PacketIO
	addrs   AddrSource
	metrics *Metrics
	backend *Backend

	mu        sync.Mutex
	lastAddrs []HostAddr
	warnings  []string
	adopted   bool
	socket    string
	metricsAt string
}

// New prepares a daemon; Run starts it.
func New(opts Options) *Daemon {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	return &Daemon{opts: opts, log: opts.Logger, cfg: &cfg}
}

// Socket returns the management socket path once Run has opened it.
func (d *Daemon) Socket() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.socket
}

// MetricsAddr returns the metrics listener's address ("" when off).
func (d *Daemon) MetricsAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.metricsAt
}

// Loop returns the event loop (for tests and embedding).
func (d *Daemon) Loop() *Loop {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.loop
}

// Run starts shim6d and serves until ctx is done, then stops cleanly. It
// returns an error that says what to fix when the daemon cannot start.
func (d *Daemon) Run(ctx context.Context) (err error) {
	cfg := d.cfg
	env := d.opts.Env
	log := d.log
	d.started = time.Now()

	if err := env.Preflight(cfg); err != nil {
		return err
	}
	if d.state, err = OpenStateDir(cfg.StateDir); err != nil {
		return err
	}
	defer d.state.Close()

	// The API socket is the second single-instance check, and it must be
	// ours before we touch the data plane.
	ln, err := api.ListenUnix(cfg.Socket)
	if err != nil {
		return err
	}
	defer ln.Close()
	d.mu.Lock()
	d.socket = cfg.Socket
	d.mu.Unlock()

	if cfg.Security.Mode == SecurityInsecure {
		msg := "INSECURE MODE: peer locators are used WITHOUT HBA/CGA verification; anyone on the path can redirect traffic. Use only in a lab (security.mode)."
		log.Warn(msg)
		d.warnings = append(d.warnings, msg)
	}

	if d.addrs, err = env.OpenAddrs(ctx, log); err != nil {
		return fmt.Errorf("follow host addresses: %w", err)
	}
	defer d.addrs.Close()
	host, err := d.addrs.Snapshot()
	if err != nil {
		return fmt.Errorf("read host addresses: %w", err)
	}
	d.setAddrs(host)

	if d.id, _, err = LoadOrCreateIdentity(ctx, d.state, cfg.Security, prefixesOf(cfg, host), log); err != nil {
		return err
	}
	d.checkCoverage(host)

	uplinks := d.uplinks(cfg, host)
	if d.dp, err = env.OpenDataPlane(ctx, cfg, uplinks, log); err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	keep := cfg.DataPlane.KeepOnExit
	defer func() {
		if cerr := d.dp.Close(keep); cerr != nil {
			log.Error("closing the data plane", "err", cerr)
		}
	}()
	adopted := d.dp.Adopted()
	d.adopted = len(adopted) > 0

	// Only now that the data plane is up (the last check that can refuse
	// the start) is the host changed.
	if cfg.Security.AddAddresses && env.AddAddress != nil {
		if host, err = d.addIdentityAddrs(host); err != nil {
			return err
		}
	}

	if d.pio, err = env.OpenPacketIO(ctx, log); err != nil {
		return fmt.Errorf("raw socket: %w", err)
	}
	defer d.pio.Close()

	var tcpld func(dataplane.Event) error
	var tcpldHold func(netip.Addr, netip.Addr, time.Time, time.Time) error
	if cfg.REAP.TCPLD && env.OpenTCPLD != nil {
		ld, err := env.OpenTCPLD()
		if err != nil {
			log.Warn("TCP-LD (reap.tcp_ld) unavailable: TCP's retransmission backoff is not undone during outages", "err", err)
		} else {
			defer ld.Close()
			tcpld = ld.Send
			if h, ok := d.dp.(ackHolder); ok {
				tcpldHold = h.HoldAcks
			}
		}
	}

	tdp := &trackingDP{DataPlane: d.dp, installed: make(map[uint64]dataplane.Mapping)}
	loop := NewLoop(nil, LoopConfig{
		Clock:        d.opts.Clock,
		Logger:       log,
		Activity:     d.dp,
		ActivityPoll: cfg.REAP.ActivityPoll,
		Filter:       eventFilter(func() *Config { return d.cfg }),
		OnEvent:      d.onEvent,
		TCPLD:        tcpld,
		TCPLDHold:    tcpldHold,
	})
	d.mu.Lock()
	d.loop = loop
	d.mu.Unlock()
	initial := d.localLocators(cfg, host)
	d.tellPIO(initial)
	core, err := env.NewCore(CoreParams{
		Config:    cfg,
		Identity:  d.id,
		Locators:  initial,
		Sender:    d.pio,
		DataPlane: tdp,
		Emit:      loop.Emit,
		Traffic: func(tag uint64) (dataplane.Activity, bool) {
			a, ok := loop.lastActivity[tag]
			return a, ok
		},
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	loop.core = core
	d.mu.Lock()
	d.core = core
	d.mu.Unlock()

	d.metrics = NewMetrics(d.opts.Version, func(ctx context.Context) (Snapshot, error) {
		return loop.Snapshot(ctx, d.extraCounters)
	})
	d.backend = &Backend{Loop: loop, Info: d.statusInfo, ExtraCounters: d.extraCounters}

	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	fatal := make(chan error, 4)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(runCtx); err != nil && runCtx.Err() == nil {
				fatal <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop.Run(loopCtx) }()
	defer func() {
		stopLoop()
		<-loopDone
	}()

	goRun("raw socket", func(ctx context.Context) error {
		return d.pio.Run(ctx, func(p Packet) { loop.DeliverPacket(p) }, func(e ICMPError) { loop.DeliverICMP(e) })
	})
	goRun("data plane events", func(ctx context.Context) error {
		return d.dp.Run(ctx, func(ev dataplane.Event) { loop.DeliverDataPlaneEvent(ev) })
	})
	goRun("address monitor", func(ctx context.Context) error {
		known := map[string]bool{}
		for _, u := range uplinks {
			known[u] = true
		}
		return d.addrs.Run(ctx, func(addrs []HostAddr) {
			d.setAddrs(addrs)
			d.pushLocators(ctx)
			syncUplinks(d.dp, known, d.uplinks(d.cfgSnapshot(), addrs), log)
		})
	})
	srv := &api.Server{Backend: d.backend, Logger: log, CheckPeer: api.AllowRootAndSelf}
	goRun("management API", func(ctx context.Context) error { return srv.Serve(ctx, ln) })
	if cfg.Metrics.Listen != "" {
		addr, err := d.metrics.ServeMetrics(runCtx, cfg.Metrics.Listen, log)
		if err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		d.mu.Lock()
		d.metricsAt = addr.String()
		d.mu.Unlock()
		log.Info("metrics", "listen", addr.String())
	}

	// Adopt what a previous run left: the mappings keep forwarding, and
	// each context is recovered from its peer (RFC 5533 §7.17: we answer
	// as if payload with that tag had arrived, the peer re-sends I2bis).
	if len(adopted) > 0 {
		d.adopt(adopted, tdp)
	}

	if err := Notify(NotifyReady); err != nil {
		log.Warn("sd_notify", "err", err)
	}
	log.Info("shim6d started", "version", d.opts.Version, "security", cfg.Security.Mode, "dataplane", d.dp.Kind(),
		"adopted_contexts", len(adopted), "socket", cfg.Socket, "identity", d.id.Addrs)
	loop.Emit(api.Event{Kind: api.EventDaemon, Message: "started"})
	if d.opts.Ready != nil {
		d.opts.Ready(d)
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-fatal:
		log.Error("stopping after a fatal error", "err", err)
	}
	if nerr := Notify(NotifyStopping); nerr != nil {
		log.Warn("sd_notify", "err", nerr)
	}
	log.Info("shim6d stopping", "keep_dataplane", keep)
	stop()
	wg.Wait()
	return err
}

// adopt asks the engine to recover the contexts of kept mappings, and
// removes, after a grace period, the mappings no context claimed again.
func (d *Daemon) adopt(ms []dataplane.Mapping, tdp *trackingDP) {
	now := time.Now()
	for _, m := range ms {
		tdp.adopted = append(tdp.adopted, m)
		d.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventUnknownTag, Src: m.PeerLocator, Dst: m.LocalLocator, Tag: m.LocalTag, Time: now})
	}
	d.log.Info("adopted the data plane of the previous run; recovering its contexts from their peers", "mappings", len(ms))
	grace := max(3*d.cfg.REAP.SendTimeout, time.Minute)
	if d.opts.AdoptGrace > 0 {
		grace = d.opts.AdoptGrace
	}
	time.AfterFunc(grace, func() {
		d.loop.Do(context.Background(), func(now time.Time, c Core) error {
			n := tdp.removeUnclaimed()
			if n > 0 {
				d.log.Info("removed adopted mappings that no context claimed", "count", n)
			}
			return nil
		})
	})
}

// trackingDP remembers which tags the engine installed, so that adopted
// mappings nobody claims are removed. Used on the loop goroutine only.
type trackingDP struct {
	dataplane.DataPlane
	installed map[uint64]dataplane.Mapping
	adopted   []dataplane.Mapping
}

func (t *trackingDP) Install(m dataplane.Mapping) error {
	t.installed[m.LocalTag] = m
	return t.DataPlane.Install(m)
}

func (t *trackingDP) Remove(tag uint64) error {
	delete(t.installed, tag)
	return t.DataPlane.Remove(tag)
}

// removeUnclaimed removes the adopted mappings whose tag no context
// installed again. A recovered context may have a new tag for the same
// ULID pair; removing the old tag can take state the pair shares (routing
// rules) with it, so the current mapping of that pair is installed again.
func (t *trackingDP) removeUnclaimed() int {
	n := 0
	for _, old := range t.adopted {
		if _, ok := t.installed[old.LocalTag]; ok {
			continue
		}
		t.DataPlane.Remove(old.LocalTag)
		n++
		for _, m := range t.installed {
			if m.LocalULID == old.LocalULID && m.PeerULID == old.PeerULID && m.FII == old.FII {
				t.DataPlane.Install(m)
			}
		}
	}
	t.adopted = nil
	return n
}

func (d *Daemon) onEvent(ev api.Event) {
	if d.metrics != nil {
		d.metrics.Observe(ev)
	}
	lvl := slog.LevelInfo
	switch ev.Kind {
	case api.EventVerificationFailed, api.EventLost:
		lvl = slog.LevelWarn
	}
	attrs := []any{"kind", ev.Kind}
	if ev.Tag != 0 {
		attrs = append(attrs, "tag", api.FormatTag(ev.Tag))
	}
	if ev.PeerULID.IsValid() {
		attrs = append(attrs, "local_ulid", ev.LocalULID, "peer_ulid", ev.PeerULID)
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Attrs)) {
		attrs = append(attrs, k, ev.Attrs[k])
	}
	d.log.Log(context.Background(), lvl, orDefault(ev.Message, ev.Kind), attrs...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (d *Daemon) statusInfo() StatusInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	kind := ""
	if d.dp != nil {
		kind = d.dp.Kind()
	}
	return StatusInfo{Version: d.opts.Version, Started: d.started, Config: d.opts.ConfigPath,
		Security: d.opts.Config.Security.Mode, DataPlane: kind, Adopted: d.adopted, Warnings: slices.Clone(d.warnings)}
}

func (d *Daemon) extraCounters() map[string]uint64 {
	out := map[string]uint64{}
	if d.pio != nil {
		maps.Copy(out, d.pio.Counters())
	}
	if d.dp != nil {
		maps.Copy(out, d.dp.Counters())
	}
	return out
}

func (d *Daemon) setAddrs(a []HostAddr) {
	d.mu.Lock()
	d.lastAddrs = slices.Clone(a)
	d.mu.Unlock()
}

// pushLocators sends the filtered locator set to the engine. It runs the
// filter on the loop goroutine, where the configuration lives.
func (d *Daemon) pushLocators(ctx context.Context) {
	d.mu.Lock()
	host := slices.Clone(d.lastAddrs)
	d.mu.Unlock()
	err := d.loop.Do(ctx, func(now time.Time, c Core) error {
		locs := d.localLocators(d.cfg, host)
		c.SetLocalLocators(now, locs)
		d.tellPIO(locs)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		d.log.Warn("updating local locators", "err", err)
	}
}

// uplinks returns the interfaces that carry allowed global addresses.
// syncUplinks keeps the data plane attached to the interfaces that carry
// locators (cur): new ones are attached; ones that no longer carry any
// (removed, or their addresses gone) are detached, so that an interface
// that comes back (a modem reconnecting: same name, new ifindex) is
// attached again. known is the set attached so far, updated.
func syncUplinks(dp any, known map[string]bool, cur []string, log *slog.Logger) {
	if ur, ok := dp.(UplinkRemover); ok {
		for u := range known {
			if slices.Contains(cur, u) {
				continue
			}
			// The kernel detaches the programs of a deleted interface
			// itself; this drops our links and pins.
			if err := ur.RemoveUplink(u); err != nil {
				log.Debug("data plane: detaching a vanished uplink", "interface", u, "err", err)
			}
			delete(known, u)
			log.Info("data plane detached from an uplink without locators", "interface", u)
		}
	}
	ua, ok := dp.(UplinkAdder)
	if !ok {
		return
	}
	for _, u := range cur {
		if known[u] {
			continue
		}
		if err := ua.AddUplink(u); err != nil {
			log.Warn("data plane: cannot attach to a new uplink", "interface", u, "err", err)
			continue
		}
		known[u] = true
		log.Info("data plane attached to a new uplink", "interface", u)
	}
}

func (d *Daemon) uplinks(cfg *Config, host []HostAddr) []string {
	var out []string
	for _, h := range host {
		if h.Addr.Is6() && h.Addr.IsGlobalUnicast() && cfg.LocatorAllowed(h.Interface, h.Addr) && !slices.Contains(out, h.Interface) {
			out = append(out, h.Interface)
		}
	}
	slices.Sort(out)
	return out
}

// cfgSnapshot returns the current configuration, read on the loop.
func (d *Daemon) cfgSnapshot() *Config {
	var c *Config
	if d.loop.Do(context.Background(), func(time.Time, Core) error { c = d.cfg; return nil }) != nil {
		return d.opts.Config.ptr()
	}
	return c
}

// tellPIO passes the locator addresses to packet I/O that wants them.
func (d *Daemon) tellPIO(locs []LocalLocator) {
	if la, ok := d.pio.(LocatorAware); ok {
		addrs := make([]netip.Addr, len(locs))
		for i, l := range locs {
			addrs[i] = l.Addr
		}
		la.SetLocalLocators(addrs)
	}
}

// usable reports whether a host address may be a locator at all.
func usable(h HostAddr) bool {
	a := h.Addr
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() && !h.Tentative
}

// localLocators filters the host's addresses by [locators] and tags each
// with how peers verify it. Addresses peers cannot verify (not in the HBA
// set, and no CGA key) are left out: the peer would refuse any message
// sent from them (RFC 5533 §7.17 answers it with R1bis), and a ULID that
// no peer can verify gains nothing from Shim6.
func (d *Daemon) localLocators(cfg *Config, host []HostAddr) []LocalLocator {
	var out []LocalLocator
	for _, h := range host {
		if !usable(h) || !cfg.LocatorAllowed(h.Interface, h.Addr) {
			continue
		}
		m := d.id.MethodFor(h.Addr)
		if m == MethodNone {
			continue
		}
		out = append(out, LocalLocator{Addr: h.Addr, Interface: h.Interface, Deprecated: h.Deprecated, Method: m})
	}
	return out
}

// prefixesOf returns the distinct /64s of the usable, allowed addresses,
// sorted, for the HBA set.
func prefixesOf(cfg *Config, host []HostAddr) []netip.Prefix {
	var out []netip.Prefix
	for _, h := range host {
		if !usable(h) || h.Deprecated || !cfg.LocatorAllowed(h.Interface, h.Addr) {
			continue
		}
		p := cga.PrefixOf(h.Addr)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// checkCoverage warns about host prefixes the stored HBA set lacks.
func (d *Daemon) checkCoverage(host []HostAddr) {
	miss := d.id.Missing(prefixesOf(d.cfg, host))
	if len(miss) == 0 {
		return
	}
	var msg string
	if d.id.Key != nil {
		msg = fmt.Sprintf("prefixes %v are not in the HBA set: their addresses are offered with CGA signatures only", miss)
	} else {
		msg = fmt.Sprintf("prefixes %v are not in the HBA set: peers cannot verify their addresses, so they are not offered as locators (remove %s/%s and restart to generate a set that covers them; this changes the HBA addresses)", miss, d.state.Path, IdentityFile)
	}
	d.log.Warn(msg)
	d.warnings = append(d.warnings, msg)
}

// addIdentityAddrs adds the HBA addresses to the interfaces that carry
// their prefixes, and returns the host addresses including them.
func (d *Daemon) addIdentityAddrs(host []HostAddr) ([]HostAddr, error) {
	for _, a := range d.id.Addrs {
		if slices.ContainsFunc(host, func(h HostAddr) bool { return h.Addr == a }) {
			continue
		}
		pfx := cga.PrefixOf(a)
		idx := slices.IndexFunc(host, func(h HostAddr) bool { return usable(h) && pfx.Contains(h.Addr) })
		if idx < 0 {
			continue // that prefix is not on this host now
		}
		iface := host[idx].Interface
		if err := d.opts.Env.AddAddress(iface, netip.PrefixFrom(a, 64)); err != nil {
			return host, fmt.Errorf("add HBA address %s to %s: %w (security.add_addresses)", a, iface, err)
		}
		d.log.Info("added HBA address", "addr", a, "interface", iface)
		host = append(host, HostAddr{Addr: a, PrefixLen: 64, Interface: iface})
	}
	return host, nil
}

// Reload rereads the configuration file and applies what can change at
// run time; keys that need a restart keep their old value, with a warning.
func (d *Daemon) Reload(ctx context.Context) error {
	if err := NotifyReload(); err != nil {
		d.log.Warn("sd_notify", "err", err)
	}
	defer Notify(NotifyReady)
	err := d.reload(ctx)
	if d.metrics != nil {
		d.metrics.ObserveReload(err)
	}
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", "err", err)
	}
	return err
}

func (d *Daemon) reload(ctx context.Context) error {
	d.mu.Lock()
	started := d.loop != nil && d.core != nil
	d.mu.Unlock()
	if d.opts.ConfigPath == "" || !started {
		return errors.New("nothing to reload (no configuration file, or not started yet)")
	}
	nc, err := LoadConfig(d.opts.ConfigPath, false)
	if err != nil {
		return err
	}
	var fixed []string
	err = d.loop.Do(ctx, func(now time.Time, c Core) error {
		old := *d.cfg
		fixed = nc.notReloadable(old)
		// Keep the values that need a restart.
		nc.StateDir, nc.Socket, nc.Security, nc.DataPlane = old.StateDir, old.Socket, old.Security, old.DataPlane
		nc.Metrics, nc.Limits, nc.Log.Format = old.Metrics, old.Limits, old.Log.Format
		nc.REAP.SendTimeout, nc.REAP.ActivityPoll = old.REAP.SendTimeout, old.REAP.ActivityPoll
		d.cfg = &nc
		return nil
	})
	if err != nil {
		return err
	}
	if d.opts.LogLevel != nil {
		if lvl, err := parseLevel(nc.Log.Level); err == nil {
			d.opts.LogLevel.Set(lvl)
		}
	}
	if len(fixed) > 0 {
		d.log.Warn("configuration keys changed that only take effect after a restart", "keys", fixed)
	}
	d.pushLocators(ctx)
	d.log.Info("configuration reloaded", "file", d.opts.ConfigPath)
	return nil
}
