package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goshim6/goshim6/api"
)

// Event attributes the metrics read. The engine adapter sets them.
const (
	AttrReason   = "reason"   // switched: why the pair changed
	AttrDuration = "duration" // switched: seconds from failure detection to the new pair, e.g. "1.25"
	AttrRole     = "role"     // context-up, context-down: "initiator" or "responder"
	AttrMethod   = "method"   // verification-failed: "hba", "cga" or "unknown"
	AttrResult   = "result"   // context-down of a context never up: "failed"
)

// Metrics holds shim6d's Prometheus metrics. Counters driven by events are
// updated on the loop goroutine (Observe); gauges and the engine's counters
// are read at scrape time from a snapshot taken on the loop.
type Metrics struct {
	reg *prometheus.Registry

	handshakes    *prometheus.CounterVec
	failovers     *prometheus.CounterVec
	failoverDur   prometheus.Histogram
	verifyFails   *prometheus.CounterVec
	events        *prometheus.CounterVec
	reloads       *prometheus.CounterVec
	snapshot      func(ctx context.Context) (Snapshot, error)
	descContexts  *prometheus.Desc
	descCounter   *prometheus.Desc
	descProbes    *prometheus.Desc
	descDPPackets *prometheus.Desc
	descDPBytes   *prometheus.Desc
	descLocators  *prometheus.Desc
	descUp        *prometheus.Desc
}

// Snapshot is what a scrape reads from the loop.
type Snapshot struct {
	ContextsByState map[string]int
	Locators        int
	// Counters of the engine, the loop, the data plane and netio, by name.
	Counters map[string]uint64
	// Data-plane traffic over all contexts since start (monotonic).
	TxPackets, TxBytes, RxPackets, RxBytes uint64
}

// Names of engine counters that get metrics of their own; everything else
// is exported as shim6_counter_total{name=...}.
var probeCounters = map[string]string{
	"probes_sent":     "sent",
	"probes_received": "received",
}

// NewMetrics builds the registry. snapshot is called at each scrape.
func NewMetrics(version string, snapshot func(ctx context.Context) (Snapshot, error)) *Metrics {
	m := &Metrics{
		reg:      prometheus.NewRegistry(),
		snapshot: snapshot,
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shim6_handshakes_total",
			Help: "Context establishment attempts that ended, by role and result (RFC 5533 §7).",
		}, []string{"role", "result"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shim6_failovers_total",
			Help: "Changes of the locator pair of a context, by reason (RFC 5534).",
		}, []string{"reason"}),
		failoverDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shim6_failover_duration_seconds",
			Help:    "Time from failure detection (start of exploration) to traffic on the new locator pair.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128},
		}),
		verifyFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shim6_verification_failures_total",
			Help: "Peer locators that failed HBA/CGA verification, by method.",
		}, []string{"method"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shim6_events_total",
			Help: "Events published on the management event stream, by kind.",
		}, []string{"kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shim6_config_reloads_total",
			Help: "Configuration reloads (SIGHUP), by result.",
		}, []string{"result"}),
		descContexts:  prometheus.NewDesc("shim6_contexts", "Contexts by state (RFC 5533 §6.2).", []string{"state"}, nil),
		descCounter:   prometheus.NewDesc("shim6_counter_total", "Named counters of the engine, the loop, the data plane and the raw socket (see `shim6ctl stats`).", []string{"name"}, nil),
		descProbes:    prometheus.NewDesc("shim6_probes_total", "REAP Probe messages (RFC 5534 §5.3), by direction.", []string{"direction"}, nil),
		descDPPackets: prometheus.NewDesc("shim6_dataplane_packets_total", "Packets of shimmed contexts seen by the data plane, by direction.", []string{"direction"}, nil),
		descDPBytes:   prometheus.NewDesc("shim6_dataplane_bytes_total", "Bytes of shimmed contexts seen by the data plane, by direction.", []string{"direction"}, nil),
		descLocators:  prometheus.NewDesc("shim6_local_locators", "Usable local locators.", nil, nil),
		descUp:        prometheus.NewDesc("shim6_up", "1 when the scrape could read the daemon's state.", nil, nil),
	}
	m.reg.MustRegister(m.handshakes, m.failovers, m.failoverDur, m.verifyFails, m.events, m.reloads, m)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shim6_build_info", Help: "Always 1; the version label tells the build.",
		ConstLabels: prometheus.Labels{"version": version},
	}, func() float64 { return 1 }))
	return m
}

// Registry returns the registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe updates the event-driven metrics. Called on the loop goroutine.
func (m *Metrics) Observe(ev api.Event) {
	m.events.WithLabelValues(ev.Kind).Inc()
	switch ev.Kind {
	case api.EventContextUp:
		m.handshakes.WithLabelValues(orUnknown(ev.Attrs[AttrRole]), "established").Inc()
	case api.EventContextDown:
		if r := ev.Attrs[AttrResult]; r != "" {
			m.handshakes.WithLabelValues(orUnknown(ev.Attrs[AttrRole]), r).Inc()
		}
	case api.EventSwitched:
		m.failovers.WithLabelValues(orUnknown(ev.Attrs[AttrReason])).Inc()
		if d, err := strconv.ParseFloat(ev.Attrs[AttrDuration], 64); err == nil && d >= 0 {
			m.failoverDur.Observe(d)
		}
	case api.EventVerificationFailed:
		m.verifyFails.WithLabelValues(orUnknown(ev.Attrs[AttrMethod])).Inc()
	}
}

// ObserveReload counts a configuration reload.
func (m *Metrics) ObserveReload(err error) {
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
	} else {
		m.reloads.WithLabelValues("ok").Inc()
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Describe implements prometheus.Collector (unchecked descriptions are not
// used: every metric is described).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.descContexts, m.descCounter, m.descProbes, m.descDPPackets, m.descDPBytes, m.descLocators, m.descUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := m.snapshot(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(m.descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(m.descUp, prometheus.GaugeValue, 1)
	for _, st := range contextStates {
		ch <- prometheus.MustNewConstMetric(m.descContexts, prometheus.GaugeValue, float64(s.ContextsByState[st]), st)
	}
	for st, n := range s.ContextsByState {
		if !isKnownState(st) {
			ch <- prometheus.MustNewConstMetric(m.descContexts, prometheus.GaugeValue, float64(n), st)
		}
	}
	ch <- prometheus.MustNewConstMetric(m.descLocators, prometheus.GaugeValue, float64(s.Locators))
	for name, v := range s.Counters {
		if dir, ok := probeCounters[name]; ok {
			ch <- prometheus.MustNewConstMetric(m.descProbes, prometheus.CounterValue, float64(v), dir)
			continue
		}
		ch <- prometheus.MustNewConstMetric(m.descCounter, prometheus.CounterValue, float64(v), name)
	}
	ch <- prometheus.MustNewConstMetric(m.descDPPackets, prometheus.CounterValue, float64(s.TxPackets), "tx")
	ch <- prometheus.MustNewConstMetric(m.descDPPackets, prometheus.CounterValue, float64(s.RxPackets), "rx")
	ch <- prometheus.MustNewConstMetric(m.descDPBytes, prometheus.CounterValue, float64(s.TxBytes), "tx")
	ch <- prometheus.MustNewConstMetric(m.descDPBytes, prometheus.CounterValue, float64(s.RxBytes), "rx")
}

// contextStates are always exported (as 0 when empty) so that dashboards
// see every series.
var contextStates = []string{"idle", "i1-sent", "i2-sent", "i2bis-sent", "established", "e-failed", "no-support"}

func isKnownState(s string) bool {
	for _, x := range contextStates {
		if x == s {
			return true
		}
	}
	return false
}

// ServeMetrics listens on addr and serves /metrics until ctx is done. It
// returns once the listener is up (or failed), serving in the background.
func (m *Metrics) ServeMetrics(ctx context.Context, addr string, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("shim6d: metrics at /metrics\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return ln.Addr(), nil
}
