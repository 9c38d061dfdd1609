package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
)

// DemoConfig configures RunDemo (cmd/shim6lab demo).
type DemoConfig struct {
	// Manager and Name select the lab the demo builds (and removes at
	// the end); default name "demo".
	Manager Manager
	Name    string
	Bin     Binaries
	// SendTimeout is REAP's Send Timeout for the demo (default 1 s,
	// tuned; the RFC's default is 15 s).
	SendTimeout time.Duration
	Traffic     Traffic       // default Bulk
	Link        string        // default a-p1
	Method      netns.Method  // default Blackhole
	Delay       time.Duration // per host uplink, each way (default none)
	Before      time.Duration // stream time before the failure (default 3 s)
	After       time.Duration // stream time after recovery (default 3 s)
	// SVG is the plot's path ("" for none).
	SVG string
	// Pcap, when not empty, receives the Shim6 frames of host a.
	Pcap string
	// Live receives the timeline as it happens (nil: nothing).
	Live io.Writer
	// Verbose adds routine daemon events to the timeline.
	Verbose bool
}

// DemoResult is what `shim6lab demo --json` prints.
type DemoResult struct {
	Lab         string        `json:"lab"`
	Binaries    Binaries      `json:"binaries"`
	SendTimeout time.Duration `json:"send_timeout_ns"`
	RFCDefault  time.Duration `json:"rfc_send_timeout_ns"`
	Delay       time.Duration `json:"delay_ns,omitempty"`
	Failover    Failover      `json:"failover"`
	Timeline    []Event       `json:"timeline"`
	SVG         string        `json:"svg,omitempty"`
	Pcap        string        `json:"pcap,omitempty"`
	OK          bool          `json:"ok"`
}

// RunDemo builds a lab, starts shim6d on hosts a and b, runs a TCP stream
// between their ULIDs, breaks the provider link in use and measures the
// recovery. Everything it made is removed before it returns, also when
// ctx is cancelled (Ctrl-C) or something fails.
func RunDemo(ctx context.Context, cfg DemoConfig) (res DemoResult, err error) {
	if cfg.Name == "" {
		cfg.Name = "demo"
	}
	if cfg.SendTimeout == 0 {
		cfg.SendTimeout = time.Second
	}
	if cfg.Traffic == "" {
		cfg.Traffic = Bulk
	}
	if cfg.Link == "" {
		cfg.Link = "a-p1"
	}
	if cfg.Method == 0 {
		cfg.Method = netns.Blackhole
	}
	if cfg.Before == 0 {
		cfg.Before = 3 * time.Second
	}
	if cfg.After == 0 {
		cfg.After = 3 * time.Second
	}
	res = DemoResult{Lab: Prefix(cfg.Name), Binaries: cfg.Bin, SendTimeout: cfg.SendTimeout, RFCDefault: 15 * time.Second, Delay: cfg.Delay}
	tl := NewTimeline(time.Now(), cfg.Live)
	m := cfg.Manager
	// A demo lab left by a crashed run is ours to remove.
	if _, err := m.Down(cfg.Name); err != nil {
		return res, err
	}
	l, err := m.Up(cfg.Name, Config{Delay: cfg.Delay})
	if err != nil {
		return res, err
	}
	defer func() {
		l.Close()
		if _, derr := m.Down(cfg.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", derr))
		}
	}()
	tl.Addf("lab", "topology up: hosts a, b; providers p1, p2 (namespaces %s-*)", Prefix(cfg.Name))
	if err := ctx.Err(); err != nil {
		return res, err
	}
	fcfg := FailoverConfig{
		Name: "demo", Traffic: cfg.Traffic, Bin: cfg.Bin, WorkDir: m.RunDir(cfg.Name),
		Shim6: &DaemonConfig{SendTimeout: cfg.SendTimeout},
		Link:  cfg.Link, Method: cfg.Method, Before: cfg.Before, After: cfg.After,
		Observe: cfg.SendTimeout + 20*time.Second, Timeline: tl, AllEvents: cfg.Verbose,
	}
	var pcapFile *os.File
	if cfg.Pcap != "" {
		if pcapFile, err = os.Create(cfg.Pcap); err != nil {
			return res, err
		}
		defer pcapFile.Close()
		fcfg.Capture = pcapFile
		res.Pcap = cfg.Pcap
	}
	r, err := StartFailover(ctx, l.Topology, fcfg)
	if err != nil {
		return res, err
	}
	defer r.Close()
	if err := sleepCtx(ctx, cfg.Before); err != nil {
		return res, err
	}
	snap := r.Stream.Snapshot()
	tl.Addf("stream", "%s delivered so far, content verified", fmtBytes(snap.Received))
	if err := r.Fail(); err != nil {
		return res, err
	}
	if r.WaitRecovered(ctx) {
		if err := sleepCtx(ctx, cfg.After); err != nil {
			return res, err
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	f := r.Stop()
	tl.Addf("stream", "stopped: %s sent, %s received", fmtBytes(f.Sent), fmtBytes(f.Received))
	res.Failover = f
	res.Timeline = tl.Events()
	res.OK = f.OK()
	if cfg.SVG != "" {
		chart := FailoverChart(f, fmt.Sprintf("goshim6 demo: TCP stream across a provider failure (%s %s)", cfg.Link, cfg.Method),
			[]string{fmt.Sprintf("shim6d, eBPF data plane, REAP Send Timeout %v (tuned; RFC 5534 default 15 s); application gap %s; %s sent = received: %v",
				cfg.SendTimeout, fmtDur(f.Gap), fmtBytes(f.Sent), f.OK())})
		if err := os.WriteFile(cfg.SVG, chart.SVG(), 0o644); err != nil {
			return res, err
		}
		res.SVG, _ = filepath.Abs(cfg.SVG)
	}
	return res, nil
}

// FailoverChart plots the forward throughput of a run around its failure
// (time 0), with the failure, detection, switch and resumption marked and
// the application gap shaded.
func FailoverChart(f Failover, title string, notes []string) LineChart {
	bin := f.Stream.Bin
	var xs, ys []float64
	for i, b := range f.Stream.Forward.Bins {
		xs = append(xs, (time.Duration(i)*bin - f.FailAt).Seconds())
		ys = append(ys, float64(b)*8/bin.Seconds()/1e6)
	}
	if len(xs) > 0 {
		xs = append(xs, xs[len(xs)-1]+bin.Seconds())
		ys = append(ys, ys[len(ys)-1])
	}
	c := LineChart{Title: title, Notes: notes, XLabel: "seconds from the failure", YLabel: "received, Mbit/s",
		Series: []Series{{Name: "goodput a → b", X: xs, Y: ys, Step: true}}}
	c.Markers = append(c.Markers, Marker{X: 0, Label: "link broken", Color: "#d62728"})
	add := func(d time.Duration, label, color string) {
		if d > 0 {
			c.Markers = append(c.Markers, Marker{X: d.Seconds(), Label: label, Color: color})
		}
	}
	add(f.Detect, "REAP exploring", "#9467bd")
	add(f.Switch, "new locator pair", "#2ca02c")
	add(f.FirstPacket, "first packet on it", "#17becf")
	add(f.Resumed, "stream continues", "#1f77b4")
	if f.Gap > 0 && f.Resumed > 0 {
		c.Spans = append(c.Spans, Span{X0: (f.Resumed - f.Gap).Seconds(), X1: f.Resumed.Seconds(), Label: "application gap " + fmtDur(f.Gap)})
	}
	return c
}

// WriteDemoSummary prints the result for a person.
func WriteDemoSummary(w io.Writer, r DemoResult) {
	f := r.Failover
	p := func(k, format string, a ...any) { fmt.Fprintf(w, "  %-26s %s\n", k, fmt.Sprintf(format, a...)) }
	fmt.Fprintln(w, "\nSummary")
	p("failure", "%s %s at +%s of the stream", f.Link, f.Method, fmtDur(f.FailAt))
	if f.Recovered {
		p("application gap", "%s (from the last data before the outage to data flowing again; longest single pause %s)", fmtDur(f.Gap), fmtDur(f.MaxPause))
	} else {
		p("application gap", "NO RECOVERY within %s", fmtDur(f.Observed))
	}
	if f.Detect > 0 {
		p("failure detected", "+%s (REAP starts exploring)", fmtDur(f.Detect))
	}
	if f.Switch > 0 {
		p("new locator pair", "+%s (%s)", fmtDur(f.Switch), f.NewPair)
	}
	if f.FirstPacket > 0 {
		p("packet-level switch", "+%s (first packet with the Shim6 payload header)", fmtDur(f.FirstPacket))
	}
	if f.Resumed > 0 {
		p("stream continues", "+%s", fmtDur(f.Resumed))
	}
	verdict := "OK, identical"
	if !f.Verified {
		verdict = "CONTENT MISMATCH"
	} else if f.Sent != f.Received {
		verdict = "INCOMPLETE"
	}
	p("bytes sent / received", "%d / %d, verified byte by byte: %s", f.Sent, f.Received, verdict)
	p("throughput before / after", "%s / %s", fmtRate(f.ThroughputBefore), fmtRate(f.ThroughputAfter))
	p("REAP Send Timeout", "%v (tuned for the demo; RFC 5534 default %v)", r.SendTimeout, r.RFCDefault)
	if r.SVG != "" {
		p("plot", "%s", r.SVG)
	}
	if r.Pcap != "" {
		p("capture", "%s (shim6ctl decode --pcap %s)", r.Pcap, r.Pcap)
	}
	if f.Err != "" && !f.OK() {
		p("error", "%s", f.Err)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func fmtRate(mbps float64) string {
	switch {
	case mbps >= 1000:
		return fmt.Sprintf("%.2f Gbit/s", mbps/1000)
	case mbps >= 1:
		return fmt.Sprintf("%.0f Mbit/s", mbps)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f kbit/s", mbps*1000), ".0")
}
