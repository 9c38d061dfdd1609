package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/goshim6/goshim6/engine"
)

// Failure is the kind of failure MeasureFailover injects.
type Failure uint8

const (
	// FailLocator: A's ULID locator (its first provider) goes down, both
	// directions.
	FailLocator Failure = iota
	// FailPair: only the current pair fails, both directions.
	FailPair
	// FailOneWay: only A->B on the current pair fails.
	FailOneWay
)

func (f Failure) String() string {
	switch f {
	case FailLocator:
		return "locator"
	case FailPair:
		return "pair"
	case FailOneWay:
		return "one-way"
	}
	return fmt.Sprintf("failure(%d)", uint8(f))
}

// FailoverOptions describe one failover measurement: two hosts with two
// providers each, a bidirectional flow over the ULIDs, then a failure.
type FailoverOptions struct {
	// SendTimeout of both engines (default 15 s, RFC 5534 §7).
	SendTimeout time.Duration
	// Interval of the flow's packets in each direction (default 100 ms).
	Interval time.Duration
	// RTO: the flow hints "ULP trouble" after this silence (0: never).
	RTO time.Duration
	// Acks: B only answers A's packets (a bulk transfer A->B with ACKs;
	// the RTO hint is then A's only), see FlowOptions.Acks.
	Acks bool
	// Poll is the hosts' activity poll (default 200 ms) and ClockJitter
	// their HostConfig.ActivityClockJitter.
	Poll, ClockJitter time.Duration
	// Path between all locators (default 10 ms delay).
	Path Path
	// Failure to inject.
	Failure Failure
	// Warmup after the context is established, before the failure
	// (default 10 s), and how long to watch after it (default 3 min).
	Warmup, Watch time.Duration
	// FastReroute turns on the engines' fast reroute (the data planes
	// move traffic at the RTO hint and follow the peer).
	FastReroute bool
}

// FailoverResult is what one measurement saw.
type FailoverResult struct {
	// AtoB and BtoA are the longest outages of each direction that ended
	// (or were still running) after the failure.
	AtoB, BtoA time.Duration
	// Recovered: both directions deliver again at the end.
	Recovered bool
}

// Worst returns the longer of the two outages.
func (r FailoverResult) Worst() time.Duration { return max(r.AtoB, r.BtoA) }

// MeasureFailover runs one failover in a fresh world seeded with seed.
func MeasureFailover(seed uint64, o FailoverOptions) (FailoverResult, error) {
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	if o.Warmup == 0 {
		o.Warmup = 10 * time.Second
	}
	if o.Watch == 0 {
		o.Watch = 3 * time.Minute
	}
	w := New(Options{Seed: seed, Default: o.Path})
	idA, err := HBAIdentity(seed*2+1, "2001:db8:a1::/64", "2001:db8:a2::/64")
	if err != nil {
		return FailoverResult{}, err
	}
	idB, err := HBAIdentity(seed*2+2, "2001:db8:b1::/64", "2001:db8:b2::/64")
	if err != nil {
		return FailoverResult{}, err
	}
	cfg := engine.Config{SendTimeout: o.SendTimeout, FastReroute: o.FastReroute}
	a, err := w.AddHost(HostConfig{Name: "A", Identity: idA, Engine: cfg, ActivityPoll: o.Poll, ActivityClockJitter: o.ClockJitter})
	if err != nil {
		return FailoverResult{}, err
	}
	b, err := w.AddHost(HostConfig{Name: "B", Identity: idB, Engine: cfg, ActivityPoll: o.Poll, ActivityClockJitter: o.ClockJitter})
	if err != nil {
		return FailoverResult{}, err
	}
	if _, err := a.Engine().CreateContext(w.Now(), a.ULID(), b.ULID()); err != nil {
		return FailoverResult{}, err
	}
	f := w.NewFlow(a, a.ULID(), b, b.ULID(), FlowOptions{Interval: o.Interval, RTO: o.RTO, Acks: o.Acks})
	up := func() bool {
		ca, okA := a.Context(a.ULID(), b.ULID())
		cb, okB := b.Context(b.ULID(), a.ULID())
		return okA && okB && ca.State == engine.StateEstablished && cb.State == engine.StateEstablished
	}
	if !w.RunUntilTrue(3*time.Minute, up) {
		return FailoverResult{}, fmt.Errorf("sim: seed %d: no context after 3 min", seed)
	}
	w.Run(o.Warmup)
	c, _ := a.Context(a.ULID(), b.ULID())
	switch o.Failure {
	case FailLocator:
		w.CutLocator(a.ULID())
	case FailPair:
		w.CutBoth(c.LocalLocator, c.PeerLocator)
	case FailOneWay:
		w.Cut(c.LocalLocator, c.PeerLocator)
	}
	failed := w.Now()
	w.Run(o.Watch)
	ab, ba := f.AtoB(), f.BtoA()
	r := FailoverResult{
		AtoB: ab.LongestOutage(failed, w.Now(), f.Gap()),
		BtoA: ba.LongestOutage(failed, w.Now(), f.Gap()),
	}
	end := w.Now().Add(-5 * o.Interval)
	r.Recovered = ab.LastReceived.After(end) && ba.LastReceived.After(end)
	return r, nil
}

// Percentile returns the p-th percentile (0-100, nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}
