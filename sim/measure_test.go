package sim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goshim6/goshim6/sim"
)

var failoverCases = []struct {
	name string
	o    sim.FailoverOptions
	// bound on the worst outage of any trial
	bound time.Duration
}{
	{"default-15s", sim.FailoverOptions{}, 20 * time.Second},
	{"send-timeout-3s", sim.FailoverOptions{SendTimeout: 3 * time.Second}, 6 * time.Second},
	{"ulp-hint-1s", sim.FailoverOptions{RTO: time.Second}, 5 * time.Second},
	{"one-way", sim.FailoverOptions{Failure: sim.FailOneWay}, 20 * time.Second},
	{"loss-10pct", sim.FailoverOptions{Path: sim.Path{Delay: 10 * time.Millisecond, Loss: 0.1}}, 30 * time.Second},
	// The lab's tuned setup (issue 7): bulk A->B with ACKs at 50 packets/s,
	// Send Timeout 1 s, RTO hint 200 ms at the sender, activity polled
	// every 100 ms with the eBPF clock conversion's jitter.
	{"lab-bulk-1s", labBulk, 1200 * time.Millisecond},
	// The same with fast reroute: about one RTO and a round trip.
	{"lab-bulk-1s-fastreroute", labBulkFR, 300 * time.Millisecond},
}

var labBulk = sim.FailoverOptions{SendTimeout: time.Second, Interval: 20 * time.Millisecond, RTO: 200 * time.Millisecond,
	Acks: true, Poll: 100 * time.Millisecond, ClockJitter: 20 * time.Microsecond, Warmup: 5 * time.Second, Watch: 30 * time.Second}

var labBulkFR = func() sim.FailoverOptions { o := labBulk; o.FastReroute = true; return o }()

// TestFailoverBounds runs a few seeded failovers of each kind and checks
// the worst outage against what RFC 5534's timers allow.
func TestFailoverBounds(t *testing.T) {
	trials := 8
	if testing.Short() {
		trials = 2
	}
	for _, c := range failoverCases {
		t.Run(c.name, func(t *testing.T) {
			for seed := range uint64(trials) {
				r, err := sim.MeasureFailover(seed+1, c.o)
				if err != nil {
					t.Fatal(err)
				}
				if !r.Recovered || r.Worst() > c.bound || r.Worst() == 0 {
					t.Errorf("seed %d: %+v (bound %v)", seed+1, r, c.bound)
				}
			}
		})
	}
}

// BenchmarkFailover measures the distribution of failover times (the
// longest outage either direction of a 10 packet/s flow sees) over b.N
// seeded runs. Run it with a fixed number of trials:
//
//	go test -run '^$' -bench Failover -benchtime 200x ./sim/
func BenchmarkFailover(b *testing.B) {
	for _, c := range failoverCases {
		b.Run(c.name, func(b *testing.B) {
			var worst []time.Duration
			fails := 0
			for i := range b.N {
				r, err := sim.MeasureFailover(uint64(i)+1000, c.o)
				if err != nil {
					b.Fatal(err)
				}
				if !r.Recovered {
					fails++
				}
				worst = append(worst, r.Worst())
			}
			for _, p := range []float64{50, 90, 99, 100} {
				b.ReportMetric(sim.Percentile(worst, p).Seconds(), fmt.Sprintf("p%.0f-s", p))
			}
			b.ReportMetric(float64(fails), "unrecovered")
		})
	}
}

// BenchmarkSimulatedMinute is the cost of simulating one minute of two
// hosts with a 10 packet/s bidirectional flow (relative to
// BenchmarkSimulatedMinuteIdle, the same world without traffic).
func BenchmarkSimulatedMinute(b *testing.B) { benchMinute(b, true) }

func BenchmarkSimulatedMinuteIdle(b *testing.B) { benchMinute(b, false) }

func benchMinute(b *testing.B, traffic bool) {
	idA, _ := sim.HBAIdentity(1, aPfx...)
	idB, _ := sim.HBAIdentity(2, bPfx...)
	w := sim.New(sim.Options{Seed: 1})
	a := w.MustAddHost(sim.HostConfig{Name: "A", Identity: idA})
	bh := w.MustAddHost(sim.HostConfig{Name: "B", Identity: idB})
	if _, err := a.Engine().CreateContext(w.Now(), a.ULID(), bh.ULID()); err != nil {
		b.Fatal(err)
	}
	if traffic {
		w.NewFlow(a, a.ULID(), bh, bh.ULID(), sim.FlowOptions{})
	}
	w.Run(time.Second)
	b.ResetTimer()
	for range b.N {
		w.Run(time.Minute)
	}
}
