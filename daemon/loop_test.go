package daemon

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

var (
	ulidA = netip.MustParseAddr("2001:db8:a::1")
	ulidB = netip.MustParseAddr("2001:db8:b::1")
)

type loopHarness struct {
	clk    *fakeClock
	core   *fakeCore
	act    *fakeActivity
	loop   *Loop
	cancel context.CancelFunc
	done   chan error
}

func startLoop(t *testing.T, mod func(*LoopConfig)) *loopHarness {
	t.Helper()
	h := &loopHarness{clk: newFakeClock(), core: newFakeCore(), act: &fakeActivity{}}
	cfg := LoopConfig{Clock: h.clk, Activity: h.act, ActivityPoll: time.Second}
	if mod != nil {
		mod(&cfg)
	}
	h.loop = NewLoop(h.core, cfg)
	h.core.emit = h.loop.Emit
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.loop.Run(ctx) }()
	t.Cleanup(h.stop)
	// Wait until Run has created its timers.
	h.sync(t)
	return h
}

func (h *loopHarness) stop() {
	h.cancel()
	<-h.loop.Done()
}

// sync waits until the loop has handled everything queued before it.
// sync returns once the loop has handled every input delivered before the
// call. One request is not enough: the loop selects among its input
// channels at random, so a request can overtake events queued before it;
// run on the loop, a request that finds the input queues empty comes after
// all of them.
func (h *loopHarness) sync(t *testing.T) {
	t.Helper()
	for range 1000 {
		empty := false
		if err := h.loop.Do(context.Background(), func(time.Time, Core) error {
			l := h.loop
			empty = len(l.dpEvents) == 0 && len(l.packets) == 0 && len(l.icmp) == 0 && len(l.locs) == 0
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if empty {
			return
		}
	}
	t.Fatal("the loop never drained its inputs")
}

func (h *loopHarness) want(t *testing.T, call string) {
	t.Helper()
	select {
	case got := <-h.core.calls:
		if got != call {
			t.Fatalf("core saw %q, want %q", got, call)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("core never saw %q", call)
	}
}

func (h *loopHarness) wantNothing(t *testing.T) {
	t.Helper()
	h.sync(t)
	select {
	case got := <-h.core.calls:
		t.Fatalf("unexpected core call %q", got)
	default:
	}
}

func TestLoopDeliversInputs(t *testing.T) {
	h := startLoop(t, nil)
	h.loop.DeliverPacket(Packet{Src: ulidB, Dst: ulidA, Data: []byte{59, 0}})
	h.want(t, "packet")
	h.loop.DeliverICMP(ICMPError{Src: ulidB, Type: 1, Code: 3})
	h.want(t, "icmp")
	if err := h.loop.DeliverLocators(context.Background(), []LocalLocator{{Addr: ulidA, Interface: "eth0"}}); err != nil {
		t.Fatal(err)
	}
	h.want(t, "locators")
	h.sync(t)
	if len(h.core.packets) != 1 || h.core.packets[0].Src != ulidB || len(h.core.locs) != 1 {
		t.Fatalf("core state: packets %+v locs %+v", h.core.packets, h.core.locs)
	}
}

func TestLoopTimerFollowsNextDeadline(t *testing.T) {
	h := startLoop(t, func(c *LoopConfig) { c.Activity = nil })
	start := h.clk.Now()
	if err := h.loop.Do(context.Background(), func(now time.Time, c Core) error {
		h.core.deadline = now.Add(5 * time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(4 * time.Second)
	h.wantNothing(t)
	h.clk.Advance(time.Second)
	h.want(t, "timer")
	h.sync(t)
	if len(h.core.timers) != 1 || !h.core.timers[0].Equal(start.Add(5*time.Second)) {
		t.Fatalf("HandleTimer calls at %v, want one at %v", h.core.timers, start.Add(5*time.Second))
	}
	// No deadline any more: nothing fires, however far time goes.
	h.clk.Advance(time.Hour)
	h.wantNothing(t)
}

func TestLoopDeadlineInThePastFiresAtOnce(t *testing.T) {
	h := startLoop(t, func(c *LoopConfig) { c.Activity = nil })
	h.loop.Do(context.Background(), func(now time.Time, c Core) error {
		h.core.deadline = now.Add(-time.Second)
		return nil
	})
	h.want(t, "timer")
}

func TestLoopPollsActivity(t *testing.T) {
	h := startLoop(t, nil)
	h.act.mu.Lock()
	h.act.recs = []dataplane.Activity{{LocalTag: 1, TxPackets: 5}, {LocalTag: 2, RxPackets: 3}}
	h.act.mu.Unlock()
	h.clk.Advance(time.Second)
	h.want(t, "activity")
	h.want(t, "activity")
	// Polling goes on.
	h.clk.Advance(time.Second)
	h.want(t, "activity")
	h.want(t, "activity")
	h.sync(t)
	if h.core.activity[0].LocalTag != 1 || h.core.activity[1].RxPackets != 3 {
		t.Fatalf("activity %+v", h.core.activity)
	}
	// A failing source is counted, not fatal.
	h.act.mu.Lock()
	h.act.recs, h.act.err = nil, errors.New("map gone")
	h.act.mu.Unlock()
	h.clk.Advance(time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for h.loop.Counters()["loop_activity_errors"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("activity error not counted")
		}
		h.sync(t)
	}
}

func TestLoopTriggerPolicy(t *testing.T) {
	cfg := Default()
	cfg.Peers.Never = []netip.Prefix{netip.MustParsePrefix("2001:db8:dead::/48")}
	cfg.Peers.Always = []netip.Prefix{netip.MustParsePrefix("2001:db8:beef::/48")}
	cfg.Trigger.Packets = 10
	h := startLoop(t, func(c *LoopConfig) { c.Filter = eventFilter(func() *Config { return &cfg }) })
	never := netip.MustParseAddr("2001:db8:dead::1")
	always := netip.MustParseAddr("2001:db8:beef::1")
	other := netip.MustParseAddr("2001:db8:c::1")
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventTrigger, Src: ulidA, Dst: never, Packets: 1000})
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventTrigger, Src: ulidA, Dst: other, Packets: 3})
	h.wantNothing(t)
	if got := h.loop.Counters()["loop_ignored_triggers"]; got != 2 {
		t.Fatalf("ignored triggers %d, want 2", got)
	}
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventTrigger, Src: ulidA, Dst: always, Packets: 1})
	h.want(t, "dpevent")
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventTrigger, Src: ulidA, Dst: other, Packets: 10})
	h.want(t, "dpevent")
	// Unknown-tag events are never filtered.
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventUnknownTag, Src: never, Dst: ulidA, Tag: 7})
	h.want(t, "dpevent")
	// ULP trouble reaches REAP unless reap.ulp_feedback is off.
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventULPTrouble, Src: ulidA, Dst: other})
	h.want(t, "dpevent")
	h.loop.Do(context.Background(), func(time.Time, Core) error { cfg.REAP.ULPFeedback = false; return nil })
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventULPTrouble, Src: ulidA, Dst: other})
	h.wantNothing(t)
	if got := h.loop.Counters()["loop_ignored_ulp_trouble"]; got != 1 {
		t.Fatalf("ignored ULP trouble %d, want 1", got)
	}
	// Threshold 0 disables automatic establishment except for "always".
	h.loop.Do(context.Background(), func(time.Time, Core) error { cfg.Trigger.Packets = 0; return nil })
	h.loop.DeliverDataPlaneEvent(dataplane.Event{Kind: dataplane.EventTrigger, Src: ulidA, Dst: other, Packets: 1 << 20})
	h.wantNothing(t)
}

func TestLoopSurvivesCorePanic(t *testing.T) {
	h := startLoop(t, nil)
	h.loop.Do(context.Background(), func(time.Time, Core) error { h.core.panicOn = "packet"; return nil })
	h.loop.DeliverPacket(Packet{Src: ulidB, Dst: ulidA, Data: []byte{0xff}})
	h.sync(t)
	if h.loop.Counters()["loop_panics"] != 1 {
		t.Fatalf("panic not counted: %v", h.loop.Counters())
	}
	h.loop.DeliverICMP(ICMPError{Src: ulidB})
	h.want(t, "icmp")
}

func TestLoopQueueFullDrops(t *testing.T) {
	l := NewLoop(newFakeCore(), LoopConfig{Clock: newFakeClock()}) // not running
	for range packetQueue {
		if !l.DeliverPacket(Packet{}) {
			t.Fatal("dropped before the queue was full")
		}
	}
	if l.DeliverPacket(Packet{}) {
		t.Fatal("queue grew beyond its bound")
	}
	if l.Counters()["loop_dropped_packets"] != 1 {
		t.Fatal("drop not counted")
	}
}

func TestLoopStopFailsRequests(t *testing.T) {
	h := startLoop(t, nil)
	h.stop()
	if err := h.loop.Do(context.Background(), func(time.Time, Core) error { return nil }); !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("Do after stop: %v", err)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	ch, _ := h.loop.Subscribe()
	if _, ok := <-ch; ok {
		t.Fatal("subscription after stop is open")
	}
}

func TestBackendThroughLoop(t *testing.T) {
	h := startLoop(t, nil)
	b := &Backend{Loop: h.loop, Info: func() StatusInfo { return StatusInfo{Version: "v", Security: "hba"} }}
	ctx := context.Background()
	evs, cancel, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	c, err := b.CreateContext(ctx, api.CreateParams{LocalULID: ulidA, PeerULID: ulidB})
	if err != nil || c.State != "i1-sent" {
		t.Fatalf("create: %+v %v", c, err)
	}
	ev := <-evs
	if ev.Kind != api.EventContextCreated || ev.Tag != c.LocalTag || ev.Time.IsZero() {
		t.Fatalf("event %+v", ev)
	}
	if _, err := b.CreateContext(ctx, api.CreateParams{PeerULID: ulidB}); !errors.Is(err, api.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	if err := b.Explore(ctx, api.ContextRef{Tag: c.LocalTag}); !errors.Is(err, api.ErrFailedPrecondition) {
		t.Fatalf("explore: %v", err)
	}
	st, err := b.Status(ctx)
	if err != nil || st.Contexts != 1 || st.ContextsByState["i1-sent"] != 1 || st.Security != "hba" || st.PID == 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	s, err := b.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Counters["loop_dropped_packets"]; !ok {
		t.Fatalf("loop counters missing from stats: %v", s.Counters)
	}
	if _, ok := s.Counters["fake_packets"]; !ok {
		t.Fatalf("core counters missing from stats: %v", s.Counters)
	}
	if err := b.DeleteContext(ctx, api.ContextRef{Tag: c.LocalTag}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Context(ctx, api.ContextRef{Tag: c.LocalTag}); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestBroadcasterSlowWatcher(t *testing.T) {
	b := newBroadcaster()
	ch, cancel := b.subscribe()
	defer cancel()
	for i := range subscriberBuffer + 10 {
		b.publish(api.Event{Kind: "x", Tag: uint64(i)})
	}
	for range subscriberBuffer {
		<-ch
	}
	b.publish(api.Event{Kind: "after"})
	ev := <-ch
	if ev.Kind != api.EventLost || ev.Attrs["dropped"] != "10" {
		t.Fatalf("want a lost event with 10 dropped, got %+v", ev)
	}
	if ev := <-ch; ev.Kind != "after" {
		t.Fatalf("then %+v", ev)
	}
	cancel()
	cancel() // idempotent
	if b.count() != 0 {
		t.Fatal("subscriber not removed")
	}
}
