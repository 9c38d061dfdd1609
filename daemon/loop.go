package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

// Queue sizes: inputs from the network are dropped (and counted) when the
// loop falls this far behind, so a flood never blocks a reader goroutine
// or grows memory without bound.
const (
	packetQueue  = 1024
	icmpQueue    = 256
	dpEventQueue = 1024
	locatorQueue = 16
	requestQueue = 64
	farFuture    = 24 * time.Hour
)

// LoopConfig is what the loop needs besides its Core.
type LoopConfig struct {
	Clock  Clock
	Logger *slog.Logger
	// Activity is polled every ActivityPoll (nil: no polling).
	Activity     dataplane.ActivitySource
	ActivityPoll time.Duration
	// Filter decides whether a data-plane event reaches the core (peer
	// policy and threshold for triggers, reap.ulp_feedback for ULP
	// trouble); nil passes everything. Dropped events are counted by kind.
	Filter func(ev dataplane.Event) bool
	// OnEvent, if set, sees every event published (metrics); called on
	// the loop goroutine.
	OnEvent func(api.Event)
	// TCPLD, if set, answers a TCP retransmission timeout on a ULID pair
	// whose context knows no working pair (Core.PathTrouble) with an
	// ICMPv6 "no route" error to the local socket (RFC 6069 TCP-LD:
	// undo one step of the RTO backoff). It runs whatever Filter says:
	// it does not depend on reap.ulp_feedback. Called on the loop
	// goroutine.
	TCPLD func(ev dataplane.Event) error
	// TCPLDHold, if set with TCPLD, holds a ULID pair in the data plane
	// (until in the future) or releases it (zero until): while held, a TCP
	// segment that would end a local socket's RTO backoff by acknowledging
	// data the outage kept unacknowledged is delivered with ack = snd_una
	// until the socket has retransmitted, so that the RFC 6069 bursts
	// still find it in backoff (ebpf.DataPlane.HoldAcks). Only segments
	// arriving before startUntil start a hold. The loop holds a pair from
	// its context's exploration with timed-out connections on it; new
	// holds stop at the first burst (the burst makes the sockets
	// retransmit: holding the acknowledgement of that would only cause
	// another timeout), and the pair is released after the last one.
	TCPLDHold func(local, peer netip.Addr, until, startUntil time.Time) error
}

// Loop is the single owner of the Core. Create it with NewLoop, run it
// with Run, and reach the core only through Do or the Deliver methods.
type Loop struct {
	core Core
	cfg  LoopConfig
	log  *slog.Logger

	packets  chan Packet
	icmp     chan ICMPError
	dpEvents chan dataplane.Event
	locs     chan []LocalLocator
	reqs     chan request
	done     chan struct{}
	started  atomic.Bool

	events *broadcaster

	// Data-plane traffic totals, accumulated from activity deltas (loop
	// goroutine only).
	lastActivity                           map[uint64]dataplane.Activity
	txPackets, txBytes, rxPackets, rxBytes uint64

	// Counters of the loop itself (read with Counters).
	droppedPackets, droppedICMP, droppedDPEvents    atomic.Uint64
	panics, activityErrors, ignoredTriggers         atomic.Uint64
	ignoredULPTrouble                               atomic.Uint64
	timerRuns                                       atomic.Uint64
	tcpldSent, tcpldErrors, tcpldBursts, tcpldHolds atomic.Uint64

	// ld: TCP-LD state (loop goroutine only).
	ld map[ldPair]*ldRec
}

type request struct {
	fn   func(now time.Time, c Core)
	done chan struct{}
}

// NewLoop prepares a loop around core.
func NewLoop(core Core, cfg LoopConfig) *Loop {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Loop{
		core:     core,
		cfg:      cfg,
		log:      cfg.Logger,
		packets:  make(chan Packet, packetQueue),
		icmp:     make(chan ICMPError, icmpQueue),
		dpEvents: make(chan dataplane.Event, dpEventQueue),
		locs:     make(chan []LocalLocator, locatorQueue),
		reqs:     make(chan request, requestQueue),
		done:     make(chan struct{}),
		events:   newBroadcaster(),

		lastActivity: make(map[uint64]dataplane.Activity),
	}
}

// Emit publishes an event to watchers and metrics. It must be called on
// the loop goroutine (the engine adapter calls it from inside Core
// methods).
func (l *Loop) Emit(ev api.Event) {
	if ev.Time.IsZero() {
		ev.Time = l.cfg.Clock.Now()
	}
	if l.cfg.OnEvent != nil {
		l.cfg.OnEvent(ev)
	}
	l.events.publish(ev)
}

// Subscribe returns a stream of events (see broadcaster).
func (l *Loop) Subscribe() (<-chan api.Event, func()) { return l.events.subscribe() }

// DeliverPacket queues a received packet; false if the queue is full (the
// packet is dropped and counted).
func (l *Loop) DeliverPacket(p Packet) bool {
	select {
	case l.packets <- p:
		return true
	default:
		l.droppedPackets.Add(1)
		return false
	}
}

// DeliverICMP queues an ICMPv6 error; false if dropped.
func (l *Loop) DeliverICMP(e ICMPError) bool {
	select {
	case l.icmp <- e:
		return true
	default:
		l.droppedICMP.Add(1)
		return false
	}
}

// DeliverDataPlaneEvent queues a data-plane event; false if dropped.
func (l *Loop) DeliverDataPlaneEvent(ev dataplane.Event) bool {
	select {
	case l.dpEvents <- ev:
		return true
	default:
		l.droppedDPEvents.Add(1)
		return false
	}
}

// DeliverLocators queues a new snapshot of the local locators. Snapshots
// are never dropped: the call blocks until queued or ctx ends, because
// losing the last one would leave the engine with stale locators.
func (l *Loop) DeliverLocators(ctx context.Context, locs []LocalLocator) error {
	select {
	case l.locs <- locs:
		return nil
	case <-l.done:
		return api.Errorf(api.CodeUnavailable, "shim6d is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Do runs fn on the loop goroutine and waits for it. It fails with
// CodeUnavailable once the loop has stopped.
func (l *Loop) Do(ctx context.Context, fn func(now time.Time, c Core) error) error {
	var err error
	r := request{fn: func(now time.Time, c Core) { err = fn(now, c) }, done: make(chan struct{})}
	select {
	case l.reqs <- r:
	case <-l.done:
		return api.Errorf(api.CodeUnavailable, "shim6d is stopping")
	case <-ctx.Done():
		return ctxErr(ctx)
	}
	select {
	case <-r.done:
		return err
	case <-l.done:
		// The loop may have run it just before stopping.
		select {
		case <-r.done:
			return err
		default:
			return api.Errorf(api.CodeUnavailable, "shim6d is stopping")
		}
	}
}

func ctxErr(ctx context.Context) error {
	if ctx.Err() == context.DeadlineExceeded {
		return api.Errorf(api.CodeUnavailable, "shim6d is busy: request timed out")
	}
	return ctx.Err()
}

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Counters reports the loop's own counters.
func (l *Loop) Counters() map[string]uint64 {
	return map[string]uint64{
		"loop_dropped_packets":     l.droppedPackets.Load(),
		"loop_dropped_icmp":        l.droppedICMP.Load(),
		"loop_dropped_dp_events":   l.droppedDPEvents.Load(),
		"loop_panics":              l.panics.Load(),
		"loop_activity_errors":     l.activityErrors.Load(),
		"loop_ignored_triggers":    l.ignoredTriggers.Load(),
		"loop_ignored_ulp_trouble": l.ignoredULPTrouble.Load(),
		"loop_timer_runs":          l.timerRuns.Load(),
		"loop_tcpld_sent":          l.tcpldSent.Load(),
		"loop_tcpld_errors":        l.tcpldErrors.Load(),
		"loop_tcpld_bursts":        l.tcpldBursts.Load(),
		"loop_tcpld_holds":         l.tcpldHolds.Load(),
		"loop_watchers":            uint64(l.events.count()),
		"loop_queued_packets":      uint64(len(l.packets)),
		"loop_queued_dp_events":    uint64(len(l.dpEvents)),
		"loop_queued_api_requests": uint64(len(l.reqs)),
	}
}

// TCP-LD bookkeeping (LoopConfig.TCPLD, tcpld.go): the TCP connections
// that had retransmission timeouts on a ULID pair, with the sequence number
// they wait for, until the pair's context has a working pair again.
type ldPair struct{ local, peer netip.Addr }

type ldConn struct{ lport, pport uint16 }

type ldRec struct {
	conns   map[ldConn]uint32 // snd_una
	trouble bool              // REAP explored since the first RTO
	seen    time.Time         // last RTO
	// bursts sent since the pair works again, and when the next is due
	// (a burst can miss: the kernel ignores the errors while the
	// application holds the socket's lock).
	bursts  int
	burstAt time.Time
	// held: until when the data plane holds the pair (LoopConfig.TCPLDHold).
	held time.Time
}

const (
	ldMaxPairs, ldMaxConns = 1024, 32
	// ldBurst errors per connection when the pair works again: each undoes
	// one backoff step; once the backed-off timeout has passed the kernel
	// retransmits at once (tcp_ld_RTO_revert).
	ldBurst = 6
	// ldBursts bursts, ldBurstGap, then twice that, apart: a burst can
	// miss (the kernel ignores the errors while the application holds the
	// socket's lock); once the connection moved on they are ignored.
	ldBursts, ldBurstGap = 3, 50 * time.Millisecond
	ldForget             = 10 * time.Minute
	// ldHoldFor is how long one TCPLDHold call holds a pair; renewed while
	// the context explores, released after the last burst.
	ldHoldFor = time.Minute
	// ldHoldAfterBurst: how long held connections may stay held after the
	// first burst (the data plane releases each after its retransmission
	// or 500 ms).
	ldHoldAfterBurst = time.Second
)

// tcpLD applies LoopConfig.TCPLD to an RTO event: while the context knows
// no working pair, one error reverts the backoff step of this timeout; the
// connection is remembered so that the step of a timeout that came before
// REAP explored is undone too, once a pair works again (tcpLDCheck).
func (l *Loop) tcpLD(ev dataplane.Event) {
	if l.cfg.TCPLD == nil || ev.LocalPort == 0 || ev.PeerPort == 0 ||
		(ev.Kind != dataplane.EventULPTrouble && ev.Kind != dataplane.EventFastReroute) {
		return
	}
	l.guard("tcp-ld", func() {
		k := ldPair{ev.Src, ev.Dst}
		rec := l.ld[k]
		if rec == nil {
			if len(l.ld) >= ldMaxPairs {
				return
			}
			rec = &ldRec{conns: map[ldConn]uint32{}}
			if l.ld == nil {
				l.ld = map[ldPair]*ldRec{}
			}
			l.ld[k] = rec
		}
		c := ldConn{ev.LocalPort, ev.PeerPort}
		if _, ok := rec.conns[c]; ok || len(rec.conns) < ldMaxConns {
			rec.conns[c] = ev.SndUna
		}
		rec.seen = l.cfg.Clock.Now()
		if !l.core.PathTrouble(ev.Src, ev.Dst) {
			return
		}
		rec.trouble = true
		l.tcpLDHold(k, rec, rec.seen)
		l.tcpLDSend(ev)
	})
}

func (l *Loop) tcpLDSend(ev dataplane.Event) {
	if err := l.cfg.TCPLD(ev); err != nil {
		l.tcpldErrors.Add(1)
		l.log.Debug("TCP-LD: cannot send the ICMPv6 error", "err", err)
		return
	}
	l.tcpldSent.Add(1)
}

// tcpLDCheck follows the pairs with remembered connections: once REAP,
// having explored, knows a working pair again (a switch, or the current
// pair confirmed), each connection gets a burst of errors that undoes its
// backoff, so that it retransmits now instead of at a timeout backed off
// to up to twice the outage. Connections that moved on meanwhile ignore
// them (the kernel checks the quoted sequence number).
func (l *Loop) tcpLDCheck() {
	if len(l.ld) == 0 {
		return
	}
	now := l.cfg.Clock.Now()
	l.guard("tcp-ld", func() {
		for k, rec := range l.ld {
			if now.Sub(rec.seen) > ldForget {
				l.tcpLDRelease(k, rec)
				delete(l.ld, k)
				continue
			}
			if l.core.PathTrouble(k.local, k.peer) {
				rec.trouble, rec.bursts = true, 0
				l.tcpLDHold(k, rec, now)
				continue
			}
			if !rec.trouble || now.Before(rec.burstAt) {
				continue
			}
			if rec.bursts == 0 {
				// New holds end before the burst: the acknowledgement
				// of the retransmission it causes may arrive while the
				// burst is still being sent.
				l.tcpldBursts.Add(1)
				l.tcpLDBursting(k, rec, now)
			}
			for c, una := range rec.conns {
				ev := dataplane.Event{Kind: dataplane.EventULPTrouble, Src: k.local, Dst: k.peer, LocalPort: c.lport, PeerPort: c.pport, SndUna: una}
				for range ldBurst {
					l.tcpLDSend(ev)
				}
			}
			rec.bursts++
			rec.burstAt = now.Add(ldBurstGap << (rec.bursts - 1))
			if rec.bursts >= ldBursts {
				l.tcpLDRelease(k, rec)
				delete(l.ld, k)
			}
		}
	})
}

// tcpLDHold holds the pair in the data plane (renewing the hold when less
// than half of it is left).
func (l *Loop) tcpLDHold(k ldPair, rec *ldRec, now time.Time) {
	if l.cfg.TCPLDHold == nil || rec.held.Sub(now) > ldHoldFor/2 {
		return
	}
	until := now.Add(ldHoldFor)
	if err := l.cfg.TCPLDHold(k.local, k.peer, until, until); err != nil {
		l.tcpldErrors.Add(1)
		l.log.Debug("TCP-LD: cannot hold the pair", "local", k.local, "peer", k.peer, "err", err)
		return
	}
	rec.held = until
	l.tcpldHolds.Add(1)
}

// tcpLDRelease ends the pair's hold, if any.
func (l *Loop) tcpLDRelease(k ldPair, rec *ldRec) {
	if l.cfg.TCPLDHold == nil || rec.held.IsZero() {
		return
	}
	if err := l.cfg.TCPLDHold(k.local, k.peer, time.Time{}, time.Time{}); err != nil {
		l.tcpldErrors.Add(1)
		l.log.Debug("TCP-LD: cannot release the pair", "local", k.local, "peer", k.peer, "err", err)
	}
	rec.held = time.Time{}
}

// tcpLDBursting tells the data plane that the first burst went out: the
// connections it holds stay held until they retransmitted (the data plane
// bounds that), no new ones are held.
func (l *Loop) tcpLDBursting(k ldPair, rec *ldRec, now time.Time) {
	if l.cfg.TCPLDHold == nil || rec.held.IsZero() {
		return
	}
	until := now.Add(ldHoldAfterBurst)
	if err := l.cfg.TCPLDHold(k.local, k.peer, until, now); err != nil {
		l.tcpldErrors.Add(1)
		l.log.Debug("TCP-LD: cannot end new holds", "local", k.local, "peer", k.peer, "err", err)
		return
	}
	rec.held = until
}

// tcpLDNext returns when tcpLDCheck has a burst due, if any.
func (l *Loop) tcpLDNext() (time.Time, bool) {
	var next time.Time
	for _, rec := range l.ld {
		if rec.trouble && rec.bursts > 0 && (next.IsZero() || rec.burstAt.Before(next)) {
			next = rec.burstAt
		}
	}
	return next, !next.IsZero()
}

// Run owns the core until ctx is done. It returns nil on a clean stop.
func (l *Loop) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return fmt.Errorf("daemon: loop already running")
	}
	defer close(l.done)
	defer l.events.close()

	clk := l.cfg.Clock
	deadline := clk.NewTimer(farFuture)
	defer deadline.Stop()
	var pollC <-chan time.Time
	var poll Timer
	if l.cfg.Activity != nil && l.cfg.ActivityPoll > 0 {
		poll = clk.NewTimer(l.cfg.ActivityPoll)
		defer poll.Stop()
		pollC = poll.C()
	}
	l.rearm(deadline)
	for {
		select {
		case <-ctx.Done():
			l.drainRequests()
			return nil
		case p := <-l.packets:
			l.guard("packet", func() { l.core.HandlePacket(clk.Now(), p.Src, p.Dst, p.Data) })
		case e := <-l.icmp:
			l.guard("icmp", func() { l.core.HandleICMP(clk.Now(), e.Src, e.Type, e.Code, e.Invoking) })
		case ev := <-l.dpEvents:
			if l.cfg.Filter != nil && !l.cfg.Filter(ev) {
				switch ev.Kind {
				case dataplane.EventTrigger:
					l.ignoredTriggers.Add(1)
				case dataplane.EventULPTrouble:
					l.ignoredULPTrouble.Add(1)
				}
			} else {
				l.guard("dataplane event", func() { l.core.HandleDataPlaneEvent(clk.Now(), ev) })
			}
			// After the core saw it: the hint may just have made REAP
			// explore.
			l.tcpLD(ev)
		case locs := <-l.locs:
			l.guard("locators", func() { l.core.SetLocalLocators(clk.Now(), locs) })
		case r := <-l.reqs:
			l.guard("request", func() { r.fn(clk.Now(), l.core) })
			close(r.done)
		case <-deadline.C():
			l.timerRuns.Add(1)
			l.guard("timer", func() { l.core.HandleTimer(clk.Now()) })
		case <-pollC:
			// The next period first: a poll's effects (the core's
			// timers, events) are seen by others before it returns.
			poll.Reset(l.cfg.ActivityPoll)
			l.pollActivity()
		}
		l.tcpLDCheck()
		l.rearm(deadline)
	}
}

// rearm points the deadline timer at the core's next deadline.
func (l *Loop) rearm(t Timer) {
	d := farFuture
	if when, ok := l.core.NextDeadline(); ok {
		d = max(when.Sub(l.cfg.Clock.Now()), 0)
	}
	if when, ok := l.tcpLDNext(); ok {
		d = min(d, max(when.Sub(l.cfg.Clock.Now()), 0))
	}
	t.Reset(d)
}

func (l *Loop) pollActivity() {
	now := l.cfg.Clock.Now()
	seen := make(map[uint64]dataplane.Activity, len(l.lastActivity))
	err := l.cfg.Activity.ReadActivity(func(a dataplane.Activity) {
		l.account(a)
		seen[a.LocalTag] = a
		l.guard("activity", func() { l.core.HandleActivity(now, a) })
	})
	if err != nil {
		if l.activityErrors.Add(1)%100 == 1 {
			l.log.Warn("reading data-plane activity failed", "err", err)
		}
		return
	}
	l.lastActivity = seen
}

// account adds what a context sent and received since the last poll to the
// totals; a counter that went backwards belongs to a new context that
// reused the tag.
func (l *Loop) account(a dataplane.Activity) {
	p, ok := l.lastActivity[a.LocalTag]
	delta := func(now, before uint64) uint64 {
		if !ok || now < before {
			return now
		}
		return now - before
	}
	l.txPackets += delta(a.TxPackets, p.TxPackets)
	l.txBytes += delta(a.TxBytes, p.TxBytes)
	l.rxPackets += delta(a.RxPackets, p.RxPackets)
	l.rxBytes += delta(a.RxBytes, p.RxBytes)
}

// Snapshot reads what a metrics scrape needs, on the loop goroutine.
func (l *Loop) Snapshot(ctx context.Context, extra func() map[string]uint64) (Snapshot, error) {
	var s Snapshot
	err := l.Do(ctx, func(now time.Time, c Core) error {
		s.ContextsByState = map[string]int{}
		for _, x := range c.Contexts(now) {
			s.ContextsByState[x.State]++
		}
		s.Locators = len(c.Locators(now).Local)
		s.Counters = c.Counters()
		if s.Counters == nil {
			s.Counters = map[string]uint64{}
		}
		s.TxPackets, s.TxBytes, s.RxPackets, s.RxBytes = l.txPackets, l.txBytes, l.rxPackets, l.rxBytes
		return nil
	})
	if err != nil {
		return s, err
	}
	maps.Copy(s.Counters, l.Counters())
	if extra != nil {
		maps.Copy(s.Counters, extra())
	}
	return s, nil
}

// guard runs f and turns a panic into a logged, counted error: a bug
// triggered by one packet or request must not take every context down.
func (l *Loop) guard(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			l.panics.Add(1)
			l.log.Error("BUG: panic in the engine; input dropped", "input", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// drainRequests fails the requests still queued at stop.
func (l *Loop) drainRequests() {
	for {
		select {
		case r := <-l.reqs:
			// Not run: Do sees l.done closed and r.done open.
			_ = r
		default:
			return
		}
	}
}
