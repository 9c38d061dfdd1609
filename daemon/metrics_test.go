package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

func TestMetricsFromEventsAndSnapshot(t *testing.T) {
	snap := Snapshot{
		ContextsByState: map[string]int{"established": 3, "i1-sent": 1, "weird": 2},
		Locators:        2,
		Counters:        map[string]uint64{"probes_sent": 9, "rx_bad_checksum": 4},
		TxPackets:       100, RxBytes: 5000,
	}
	m := NewMetrics("test", func(context.Context) (Snapshot, error) { return snap, nil })
	m.Observe(api.Event{Kind: api.EventSwitched, Attrs: map[string]string{AttrReason: "send-timeout", AttrDuration: "1.5"}})
	m.Observe(api.Event{Kind: api.EventSwitched, Attrs: map[string]string{AttrReason: "send-timeout", AttrDuration: "0.2"}})
	m.Observe(api.Event{Kind: api.EventContextUp, Attrs: map[string]string{AttrRole: "initiator"}})
	m.Observe(api.Event{Kind: api.EventVerificationFailed, Attrs: map[string]string{AttrMethod: "hba"}})
	m.ObserveReload(errors.New("bad"))

	if v := testutil.ToFloat64(m.failovers.WithLabelValues("send-timeout")); v != 2 {
		t.Errorf("failovers = %v", v)
	}
	if v := testutil.ToFloat64(m.handshakes.WithLabelValues("initiator", "established")); v != 1 {
		t.Errorf("handshakes = %v", v)
	}
	if v := testutil.ToFloat64(m.verifyFails.WithLabelValues("hba")); v != 1 {
		t.Errorf("verification failures = %v", v)
	}
	if n := testutil.CollectAndCount(m.failoverDur); n != 1 {
		t.Errorf("histogram series %d", n)
	}
	want := `
# HELP shim6_contexts Contexts by state (RFC 5533 §6.2).
# TYPE shim6_contexts gauge
shim6_contexts{state="e-failed"} 0
shim6_contexts{state="established"} 3
shim6_contexts{state="i1-sent"} 1
shim6_contexts{state="i2-sent"} 0
shim6_contexts{state="i2bis-sent"} 0
shim6_contexts{state="idle"} 0
shim6_contexts{state="no-support"} 0
shim6_contexts{state="weird"} 2
# HELP shim6_probes_total REAP Probe messages (RFC 5534 §5.3), by direction.
# TYPE shim6_probes_total counter
shim6_probes_total{direction="sent"} 9
# HELP shim6_dataplane_packets_total Packets of shimmed contexts seen by the data plane, by direction.
# TYPE shim6_dataplane_packets_total counter
shim6_dataplane_packets_total{direction="rx"} 0
shim6_dataplane_packets_total{direction="tx"} 100
# HELP shim6_up 1 when the scrape could read the daemon's state.
# TYPE shim6_up gauge
shim6_up 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "shim6_contexts", "shim6_probes_total", "shim6_dataplane_packets_total", "shim6_up"); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(`
# HELP shim6_counter_total Named counters of the engine, the loop, the data plane and the raw socket (see `+"`shim6ctl stats`"+`).
# TYPE shim6_counter_total counter
shim6_counter_total{name="rx_bad_checksum"} 4
`), "shim6_counter_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsDownWhenLoopStopped(t *testing.T) {
	m := NewMetrics("test", func(context.Context) (Snapshot, error) { return Snapshot{}, api.ErrUnavailable })
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader("# HELP shim6_up 1 when the scrape could read the daemon's state.\n# TYPE shim6_up gauge\nshim6_up 0\n"), "shim6_up"); err != nil {
		t.Error(err)
	}
}

func TestMetricsHTTP(t *testing.T) {
	m := NewMetrics("test", func(context.Context) (Snapshot, error) { return Snapshot{}, nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := m.ServeMetrics(ctx, "127.0.0.1:0", discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `shim6_build_info{version="test"} 1`) {
		t.Fatalf("status %d body %.300s", resp.StatusCode, b)
	}
}

func TestLoopTrafficTotals(t *testing.T) {
	h := startLoop(t, nil)
	set := func(recs ...dataplane.Activity) {
		h.act.mu.Lock()
		h.act.recs = recs
		h.act.mu.Unlock()
		h.clk.Advance(time.Second)
		for range recs {
			h.want(t, "activity")
		}
	}
	set(dataplane.Activity{LocalTag: 1, TxPackets: 10, TxBytes: 1000}, dataplane.Activity{LocalTag: 2, RxPackets: 5})
	set(dataplane.Activity{LocalTag: 1, TxPackets: 15, TxBytes: 1500}, dataplane.Activity{LocalTag: 2, RxPackets: 7})
	// Tag 1 gone, then back as a new context with fresh counters.
	set(dataplane.Activity{LocalTag: 2, RxPackets: 7})
	set(dataplane.Activity{LocalTag: 1, TxPackets: 3, TxBytes: 300}, dataplane.Activity{LocalTag: 2, RxPackets: 8})
	s, err := h.loop.Snapshot(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.TxPackets != 18 || s.TxBytes != 1800 || s.RxPackets != 8 {
		t.Fatalf("totals tx %d/%d rx %d, want 18/1800 8", s.TxPackets, s.TxBytes, s.RxPackets)
	}
}
