package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
)

// Traffic is what the application sends during a failover run.
type Traffic string

// Traffic kinds.
const (
	// Paced: both ends send a 64-byte message every 10 ms (an
	// interactive application); the gap is the longest pause of either
	// direction.
	Paced Traffic = "paced"
	// Bulk: host a sends as fast as TCP allows.
	Bulk Traffic = "bulk"
)

// FailoverConfig describes one failover run on a standard topology: a
// stream from host a to host b, a failure of one link, and the recovery
// (or not).
type FailoverConfig struct {
	// Name labels the run ("shim6-tuned", "mptcp-active", ...).
	Name    string
	Traffic Traffic
	// MPTCP makes the stream Multipath TCP, with a second subflow from
	// a's provider-2 address (an MPTCP "subflow" endpoint; a backup one
	// when MPTCPBackup).
	MPTCP       bool
	MPTCPBackup bool
	// Shim6, when not nil, runs shim6d with this configuration on hosts a
	// and b, and the stream goes between their ULIDs (their first HBA
	// addresses). Otherwise the stream uses the hosts' provider-1
	// addresses.
	Shim6 *DaemonConfig
	// Bin holds shim6d (needed with Shim6).
	Bin Binaries
	// WorkDir is where the daemons' directories are made.
	WorkDir string
	// Link, Method, Dir: the failure (default a-p1, blackhole, both).
	Link   string
	Method netns.Method
	Dir    netns.Direction
	// Before is how long the stream runs (after the context is
	// established, with Shim6) before the failure; default 2 s.
	Before time.Duration
	// After is how long the stream goes on after it recovered; default 1 s.
	After time.Duration
	// Observe is the longest wait for recovery after the failure;
	// default 10 s, or the Send Timeout + 10 s with Shim6.
	Observe time.Duration
	// Stall is a receive pause that counts as an outage (default 150 ms).
	Stall time.Duration
	// BinWidth is the throughput histogram's bin (default 50 ms).
	BinWidth time.Duration
	// Port is the stream's TCP port (default 5001).
	Port uint16
	// Timeline, when not nil, receives the run's events (daemons' events,
	// the failure, the stream stalling and continuing).
	Timeline *Timeline
	// Capture, when not nil, receives a pcap of every Shim6 frame on host
	// a's interfaces.
	Capture io.Writer
	// AllEvents also puts routine daemon events on the timeline.
	AllEvents bool
}

func (c *FailoverConfig) normalize() {
	if c.Traffic == "" {
		c.Traffic = Bulk
	}
	if c.Link == "" {
		c.Link = "a-p1"
	}
	if c.Method == 0 {
		c.Method = netns.Blackhole
	}
	if c.Dir == netns.DirNone {
		c.Dir = netns.DirBoth
	}
	if c.Before == 0 {
		c.Before = 2 * time.Second
	}
	if c.After == 0 {
		c.After = time.Second
	}
	if c.Observe == 0 {
		c.Observe = 10 * time.Second
		if c.Shim6 != nil {
			st := c.Shim6.withDefaults().SendTimeout
			c.Observe = st + 10*time.Second
		}
	}
	if c.Stall == 0 {
		c.Stall = 150 * time.Millisecond
	}
	if c.BinWidth == 0 {
		c.BinWidth = 50 * time.Millisecond
	}
}

// Failover is the outcome of one run. Durations are measured from the
// failure.
type Failover struct {
	Name    string  `json:"name"`
	Traffic Traffic `json:"traffic"`
	Link    string  `json:"link"`
	Method  string  `json:"method"`
	// MPTCP is true when the connection really used Multipath TCP.
	MPTCP bool `json:"mptcp,omitempty"`
	// Recovered: data flowed again (in both directions for Paced) within
	// the observation time.
	Recovered bool `json:"recovered"`
	// Observed is how long the run waited for recovery.
	Observed time.Duration `json:"observed_ns"`
	// Gap is the application-level outage: from the last data received
	// before the stream stalled to the moment data flowed again for good
	// (both directions for Paced). Without recovery it is at least
	// Observed.
	Gap time.Duration `json:"gap_ns"`
	// MaxPause is the longest single pause of a receiver (a retransmission
	// that gets through during the outage splits it into pauses).
	MaxPause time.Duration `json:"max_pause_ns"`
	// Detect: REAP started exploring (either host), Shim6 only.
	Detect time.Duration `json:"detect_ns,omitempty"`
	// Switch: a host chose a new locator pair (control plane).
	Switch time.Duration `json:"switch_ns,omitempty"`
	// FirstPacket: the first payload packet with a Shim6 extension
	// header (i.e., on the new locators) was seen on a host's interface
	// (packet level).
	FirstPacket time.Duration `json:"first_packet_ns,omitempty"`
	// NewPair is the locator pair chosen ("local > peer", host a's view).
	NewPair string `json:"new_pair,omitempty"`
	// Resumed: data flowed again, from the failure.
	Resumed time.Duration `json:"resumed_ns,omitempty"`
	// Sent and Received count stream bytes over both directions;
	// Verified means every byte that arrived matched what was sent, in
	// order.
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	Verified bool  `json:"verified"`
	// ThroughputBefore/After: goodput in Mbit/s of the forward direction
	// before the failure and after the recovery (without recovery: from
	// a second after the failure to the end).
	ThroughputBefore float64 `json:"throughput_before_mbps"`
	ThroughputAfter  float64 `json:"throughput_after_mbps"`
	Err              string  `json:"error,omitempty"`
	// ULIDs are the stream's addresses.
	From netip.Addr `json:"from"`
	To   netip.Addr `json:"to"`
	// FailAt is the failure's time since the stream's start.
	FailAt time.Duration `json:"fail_at_ns"`
	// Stream is the full stream result (bins for plots).
	Stream StreamResult `json:"-"`
}

// OK reports whether the run recovered with every byte delivered intact.
func (f Failover) OK() bool {
	return f.Recovered && f.Verified && f.Sent == f.Received && f.Err == ""
}

// FailoverRun is a failover run in progress; RunFailover drives one from
// start to end, the demo and the e2e tests step through it.
type FailoverRun struct {
	Cfg      FailoverConfig
	Topo     *netns.Topology
	A, B     *Daemon // nil without Shim6
	From, To netip.Addr
	Stream   *Stream

	ctx      context.Context
	cancel   context.CancelFunc
	tl       *Timeline
	watches  []*PayloadWatch
	capts    []*Capture
	watchEnd []<-chan struct{}

	mu        sync.Mutex
	failAt    time.Time
	detect    time.Time
	switched  time.Time
	newPair   string
	resumedAt time.Time
	// outageStart is the last receive before the stream stalled.
	outageStart time.Time
	recovered   bool
	result      *Failover
}

// StartFailover prepares hosts a and b of topo (daemons, MPTCP
// endpoints), starts the stream and, with Shim6, waits until host a's
// context with b is established on the ULIDs.
func StartFailover(ctx context.Context, topo *netns.Topology, cfg FailoverConfig) (r *FailoverRun, err error) {
	cfg.normalize()
	r = &FailoverRun{Cfg: cfg, Topo: topo, tl: cfg.Timeline}
	r.ctx, r.cancel = context.WithCancel(ctx)
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	ha, hb := topo.Host("a"), topo.Host("b")
	if ha == nil || hb == nil {
		return r, errors.New("lab: the topology needs hosts a and b")
	}
	if topo.Link(cfg.Link) == nil {
		return r, fmt.Errorf("lab: no link %q", cfg.Link)
	}
	r.From, r.To = ha.Uplinks[0].Addr, hb.Uplinks[0].Addr
	if cfg.Shim6 != nil {
		if cfg.Bin.Shim6d == "" {
			return r, errors.New("lab: no shim6d binary")
		}
		if r.A, err = StartDaemon(ctx, ha.NS, "a", cfg.Bin.Shim6d, filepath.Join(cfg.WorkDir, "a"), *cfg.Shim6); err != nil {
			return r, err
		}
		if r.B, err = StartDaemon(ctx, hb.NS, "b", cfg.Bin.Shim6d, filepath.Join(cfg.WorkDir, "b"), *cfg.Shim6); err != nil {
			return r, err
		}
		for _, d := range []*Daemon{r.A, r.B} {
			d := d
			done, err := d.Watch(r.ctx, func(ev api.Event) { r.onEvent(d.Name, ev) })
			if err != nil {
				return r, err
			}
			r.watchEnd = append(r.watchEnd, done)
		}
		aIDs, err := r.A.HBAAddrs(ctx, len(ha.Uplinks))
		if err != nil {
			return r, err
		}
		bIDs, err := r.B.HBAAddrs(ctx, len(hb.Uplinks))
		if err != nil {
			return r, err
		}
		r.From, r.To = aIDs[0], bIDs[0]
		dc := cfg.Shim6.withDefaults()
		r.event(time.Now(), "daemon", fmt.Sprintf("shim6d running on a and b (%s data plane, %s, Send Timeout %v); a's locators %v, b's %v",
			dc.DataPlane, dc.Security, dc.SendTimeout, aIDs, bIDs), nil)
		for _, n := range []*netns.NS{ha.NS, hb.NS} {
			w, err := WatchPayload(n)
			if err != nil {
				return r, err
			}
			r.watches = append(r.watches, w)
		}
	}
	if cfg.MPTCP {
		if err := SetMPTCPLimits(ha.NS, 2, 2); err != nil {
			return r, err
		}
		if err := SetMPTCPLimits(hb.NS, 2, 2); err != nil {
			return r, err
		}
		flags := MPTCPSubflow
		if cfg.MPTCPBackup {
			flags |= MPTCPBackup
		}
		u := ha.Uplinks[1]
		if err := AddMPTCPEndpoint(ha.NS, MPTCPEndpoint{Addr: u.Addr, Ifname: u.Ifname, Flags: flags}); err != nil {
			return r, err
		}
	}
	if cfg.Capture != nil {
		c, err := StartCapture(ha.NS, "", cfg.Capture, Shim6Only)
		if err != nil {
			return r, err
		}
		r.capts = append(r.capts, c)
	}
	scfg := StreamConfig{Bin: cfg.BinWidth, Port: cfg.Port, MPTCP: cfg.MPTCP}
	if cfg.Traffic == Paced {
		scfg.Interval, scfg.MsgSize, scfg.Bidirectional = 10*time.Millisecond, 64, true
	}
	r.Stream, err = StartStream(ctx, ha.NS, r.From, hb.NS, r.To, scfg)
	if err != nil {
		return r, err
	}
	r.event(time.Now(), "stream", fmt.Sprintf("%s TCP stream %s -> %s started", cfg.Traffic, r.From, r.To), nil)
	if r.A != nil {
		c, err := r.A.WaitContext(ctx, r.To, 20*time.Second, Established)
		if err != nil {
			return r, err
		}
		if _, err := r.B.WaitContext(ctx, r.From, 10*time.Second, Established); err != nil {
			return r, err
		}
		_ = c
	}
	return r, nil
}

func (r *FailoverRun) event(at time.Time, kind, text string, fields map[string]any) {
	if r.tl != nil {
		r.tl.Add(at, kind, text, fields)
	}
}

// onEvent notes a daemon event: the first exploration and switch after
// the failure, and a line on the timeline.
func (r *FailoverRun) onEvent(host string, ev api.Event) {
	r.mu.Lock()
	failed := !r.failAt.IsZero() && !ev.Time.Before(r.failAt)
	switch ev.Kind {
	case api.EventReap:
		if failed && r.detect.IsZero() && strings.Contains(ev.Message, "exploring") {
			r.detect = ev.Time
		}
	case api.EventSwitched:
		if failed && r.switched.IsZero() {
			r.switched = ev.Time
		}
		if failed && host == "a" {
			r.newPair = strings.TrimPrefix(ev.Message, "now ")
		}
	}
	r.mu.Unlock()
	kind, text, show := DescribeEvent(host, ev)
	if show || r.Cfg.AllEvents {
		r.event(ev.Time, kind, text, map[string]any{"host": host, "event": ev})
	}
}

// DescribeEvent turns a daemon event into a timeline line; show is false
// for routine events.
func DescribeEvent(host string, ev api.Event) (kind, text string, show bool) {
	a := ev.Attrs
	switch ev.Kind {
	case api.EventContextUp:
		return "context", fmt.Sprintf("%s: context with %s established (%s), locators %s > %s",
			host, ev.PeerULID, a["role"], a["local_locator"], a["peer_locator"]), true
	case api.EventStateChange:
		return "context", fmt.Sprintf("%s: context with %s: %s", host, ev.PeerULID, a["state"]), a["state"] != "established"
	case api.EventReap:
		return "reap", fmt.Sprintf("%s: REAP %s", host, ev.Message), true
	case api.EventSwitched:
		t := fmt.Sprintf("%s: new locator pair %s > %s", host, a["local_locator"], a["peer_locator"])
		if r := a["reason"]; r != "" {
			t += " (" + r + ")"
		}
		if d := a["duration"]; d != "" {
			t += ", explored for " + d + " s"
		}
		return "switch", t, true
	case api.EventContextDown, api.EventRecovery, api.EventVerificationFailed, api.EventPeerError,
		api.EventContextConfusion, api.EventLost, api.EventLocatorsUpdated, api.EventUpdateAcked:
		t := fmt.Sprintf("%s: %s", host, ev.Kind)
		if ev.PeerULID.IsValid() {
			t += " (peer " + ev.PeerULID.String() + ")"
		}
		if ev.Message != "" {
			t += ": " + ev.Message
		}
		return ev.Kind, t, true
	}
	t := fmt.Sprintf("%s: %s %s", host, ev.Kind, ev.Message)
	return ev.Kind, strings.TrimSpace(t), false
}

// Fail breaks the configured link now.
func (r *FailoverRun) Fail() error {
	now := time.Now()
	r.mu.Lock()
	r.failAt = now
	r.mu.Unlock()
	for _, w := range r.watches {
		w.Arm(now)
	}
	if err := r.Topo.Fail(r.Cfg.Link, r.Cfg.Method, r.Cfg.Dir); err != nil {
		return err
	}
	how := r.Cfg.Method.String()
	if r.Cfg.Method == netns.Blackhole {
		how += " (" + r.Cfg.Dir.String() + ")"
	}
	r.event(now, "fail", fmt.Sprintf("link %s broken: %s", r.Cfg.Link, how), map[string]any{"link": r.Cfg.Link})
	return nil
}

// WaitRecovered watches the stream after Fail until data flows again
// (both directions for a two-way stream) without a pause longer than
// Cfg.Stall for Confirm (300 ms), or the observation time ends. A stream
// that never pauses within a second of the failure counts as recovered.
func (r *FailoverRun) WaitRecovered(ctx context.Context) bool {
	const confirm = 300 * time.Millisecond
	r.mu.Lock()
	failAt := r.failAt
	r.mu.Unlock()
	deadline := failAt.Add(r.Cfg.Observe)
	var stalledAt, resumed time.Time
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		fwd, rev := r.Stream.LastReceive()
		last := fwd
		if r.Stream.Bidirectional() && rev.Before(fwd) {
			last = rev
		}
		pause := now.Sub(last)
		switch {
		case stalledAt.IsZero() && resumed.IsZero():
			if pause > r.Cfg.Stall {
				stalledAt = last
				r.mu.Lock()
				r.outageStart = last
				r.mu.Unlock()
				if stalledAt.Before(failAt) {
					stalledAt = failAt
				}
				r.event(now, "stream", fmt.Sprintf("stream stalled: no data for %v", pause.Round(time.Millisecond)), nil)
			} else if now.Sub(failAt) > time.Second+r.Cfg.Stall {
				r.setRecovered(failAt)
				r.event(now, "stream", "stream never stalled", nil)
				return true
			}
		case resumed.IsZero():
			if last.After(stalledAt) {
				resumed = last
			}
		default:
			if pause > r.Cfg.Stall {
				// Stalled again before it really got going.
				stalledAt, resumed = last, time.Time{}
				r.event(now, "stream", fmt.Sprintf("stream stalled again: no data for %v", pause.Round(time.Millisecond)), nil)
			} else if now.Sub(resumed) >= confirm {
				r.setRecovered(resumed)
				r.event(resumed, "stream", fmt.Sprintf("stream continues: data flowing again %v after the failure", resumed.Sub(failAt).Round(time.Millisecond)), nil)
				return true
			}
		}
		if now.After(deadline) {
			r.event(now, "stream", fmt.Sprintf("stream did not recover within %v", r.Cfg.Observe), nil)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}

func (r *FailoverRun) setRecovered(at time.Time) {
	r.mu.Lock()
	r.recovered, r.resumedAt = true, at
	r.mu.Unlock()
}

// Stop ends the stream, collects the measurements and tears down what
// StartFailover set up (daemons, watches; not the topology).
func (r *FailoverRun) Stop() Failover {
	r.mu.Lock()
	if r.result != nil {
		res := *r.result
		r.mu.Unlock()
		return res
	}
	recovered := r.recovered
	r.mu.Unlock()
	drain := 3 * time.Second
	if !recovered {
		drain = 200 * time.Millisecond
	}
	f := Failover{Name: r.Cfg.Name, Traffic: r.Cfg.Traffic, Link: r.Cfg.Link, Method: r.Cfg.Method.String(), From: r.From, To: r.To}
	if r.Stream != nil {
		res := r.Stream.Stop(drain)
		f.Stream = res
		f.MPTCP = res.MPTCP
		f.Sent, f.Received = res.Forward.Sent, res.Forward.Received
		f.Verified = res.Forward.Verified
		f.Err = res.Forward.Err
		if res.Reverse != nil {
			f.Sent += res.Reverse.Sent
			f.Received += res.Reverse.Received
			f.Verified = f.Verified && res.Reverse.Verified
			if f.Err == "" {
				f.Err = res.Reverse.Err
			}
		}
		f.MaxPause = res.MaxGap()
	}
	r.mu.Lock()
	f.Recovered = r.recovered
	if !r.failAt.IsZero() {
		since := func(t time.Time) time.Duration {
			if t.IsZero() {
				return 0
			}
			return t.Sub(r.failAt)
		}
		f.Detect, f.Switch = since(r.detect), since(r.switched)
		f.NewPair = r.newPair
		if r.recovered {
			f.Resumed = since(r.resumedAt)
			if !r.outageStart.IsZero() {
				f.Gap = r.resumedAt.Sub(r.outageStart)
			}
		}
		if r.Stream != nil {
			f.FailAt = r.failAt.Sub(r.Stream.Start())
		}
		f.Observed = r.Cfg.Observe
	}
	resumedAt := r.resumedAt
	failAt := r.failAt
	r.mu.Unlock()
	var first time.Time
	for _, w := range r.watches {
		if t, _, _, ok := w.First(); ok && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() && !failAt.IsZero() {
		f.FirstPacket = first.Sub(failAt)
	}
	f.Gap = max(f.Gap, f.MaxPause)
	if !f.Recovered && f.Gap < f.Observed {
		f.Gap = f.Observed
	}
	if r.Stream != nil && !failAt.IsZero() {
		st := r.Stream.Start()
		f.ThroughputBefore = goodput(f.Stream.Forward.Bins, f.Stream.Bin, failAt.Sub(st)-r.Cfg.Before+r.Cfg.Before/4, failAt.Sub(st))
		from := failAt.Sub(st) + time.Second
		if f.Recovered {
			from = resumedAt.Sub(st) + 200*time.Millisecond
		}
		f.ThroughputAfter = goodput(f.Stream.Forward.Bins, f.Stream.Bin, from, f.Stream.Duration-f.Stream.Bin)
	}
	r.Close()
	r.mu.Lock()
	r.result = &f
	r.mu.Unlock()
	return f
}

// goodput is the mean rate in Mbit/s of the bins entirely inside [from, to).
func goodput(bins []int64, bin, from, to time.Duration) float64 {
	if bin <= 0 {
		return 0
	}
	i0 := int((from + bin - 1) / bin)
	i1 := int(to / bin)
	if i0 < 0 {
		i0 = 0
	}
	var sum int64
	n := 0
	for i := i0; i < i1 && i < len(bins); i++ {
		sum += bins[i]
		n++
	}
	if n == 0 {
		return 0
	}
	return float64(sum) * 8 / (float64(n) * bin.Seconds()) / 1e6
}

// Close stops everything StartFailover started (idempotent).
func (r *FailoverRun) Close() {
	r.cancel()
	for _, w := range r.watches {
		w.Close()
	}
	r.watches = nil
	for _, c := range r.capts {
		c.Stop()
	}
	r.capts = nil
	for _, d := range []*Daemon{r.A, r.B} {
		if d != nil {
			d.Close()
		}
	}
	for _, done := range r.watchEnd {
		<-done
	}
	r.watchEnd = nil
	if r.Cfg.MPTCP {
		if h := r.Topo.Host("a"); h != nil {
			_ = FlushMPTCPEndpoints(h.NS)
		}
	}
}

// RunFailover runs one failover from start to end: prepare, stream, wait
// Before, fail, wait for recovery, run After, stop. The link stays
// broken: heal it (or build a new topology) before the next run.
func RunFailover(ctx context.Context, topo *netns.Topology, cfg FailoverConfig) (Failover, error) {
	r, err := StartFailover(ctx, topo, cfg)
	if err != nil {
		return Failover{Name: cfg.Name, Traffic: cfg.Traffic, Err: err.Error()}, err
	}
	defer r.Close()
	if err := sleepCtx(ctx, r.Cfg.Before); err != nil {
		return r.Stop(), err
	}
	if err := r.Fail(); err != nil {
		f := r.Stop()
		return f, err
	}
	if r.WaitRecovered(ctx) {
		if err := sleepCtx(ctx, r.Cfg.After); err != nil {
			return r.Stop(), err
		}
	}
	return r.Stop(), ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
