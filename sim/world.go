package sim

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// Epoch is the virtual time at which every World starts.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Options configure a World.
type Options struct {
	// Seed makes the run reproducible: the network's randomness and every
	// host's engine randomness derive from it.
	Seed uint64
	// Default is the path used between locators without a specific one
	// (default: 10 ms delay, nothing else).
	Default Path
	// Trace, if set, receives one line per notable happening (engine
	// events, path changes, host restarts); Verbose adds every packet.
	Trace   func(string)
	Verbose bool
}

// World is a deterministic simulated network: a virtual clock, an event
// queue, hosts with locators, and paths between locators. It is not safe
// for concurrent use.
type World struct {
	opts  Options
	now   time.Time
	rng   *rand.Rand
	queue eventQueue
	seq   uint64

	hosts []*Host
	owner map[netip.Addr]*Host
	net   network
	taps  []func(Packet)
	flows uint32

	// Steps counts the events and timers processed.
	Steps uint64
}

// New returns an empty world at Epoch.
func New(opts Options) *World {
	if opts.Default == (Path{}) {
		opts.Default = Path{Delay: 10 * time.Millisecond}
	}
	w := &World{
		opts:  opts,
		now:   Epoch,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
		owner: map[netip.Addr]*Host{},
	}
	w.net.init(opts.Default)
	return w
}

// Now returns the virtual time.
func (w *World) Now() time.Time { return w.now }

// Elapsed returns the virtual time since Epoch.
func (w *World) Elapsed() time.Duration { return w.now.Sub(Epoch) }

// Hosts returns the hosts in creation order.
func (w *World) Hosts() []*Host { return w.hosts }

// Tap registers fn to see every packet handed to the network (before loss),
// e.g. to count message types or to capture one for a replay.
func (w *World) Tap(fn func(Packet)) { w.taps = append(w.taps, fn) }

func (w *World) tracef(format string, args ...any) {
	if w.opts.Trace == nil {
		return
	}
	w.opts.Trace(fmt.Sprintf("%9.3fs ", w.Elapsed().Seconds()) + fmt.Sprintf(format, args...))
}

type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if c := q[i].at.Compare(q[j].at); c != 0 {
		return c < 0
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// At schedules fn to run at virtual time t (now if t is in the past).
// Events at the same instant run in the order they were scheduled.
func (w *World) At(t time.Time, fn func()) {
	if t.Before(w.now) {
		t = w.now
	}
	w.seq++
	heap.Push(&w.queue, &event{at: t, seq: w.seq, fn: fn})
}

// After schedules fn to run d from now.
func (w *World) After(d time.Duration, fn func()) { w.At(w.now.Add(d), fn) }

// step runs the earliest event or engine timer if it is not after until.
func (w *World) step(until time.Time) bool {
	var next time.Time
	var timer *Host
	if len(w.queue) > 0 {
		next = w.queue[0].at
	}
	for _, h := range w.hosts {
		if d, ok := h.deadline(); ok && (next.IsZero() || d.Before(next)) {
			next, timer = d, h
		}
	}
	if next.IsZero() || next.After(until) {
		return false
	}
	if next.After(w.now) {
		w.now = next
	}
	w.Steps++
	if timer != nil {
		timer.timer()
		return true
	}
	e := heap.Pop(&w.queue).(*event)
	e.fn()
	return true
}

// Run advances the virtual clock by d, running everything due on the way.
func (w *World) Run(d time.Duration) { w.RunUntil(w.now.Add(d)) }

// RunUntil advances the virtual clock to t.
func (w *World) RunUntil(t time.Time) {
	for w.step(t) {
	}
	if t.After(w.now) {
		w.now = t
	}
}

// RunUntilTrue runs until cond holds (checked after every step) or limit
// has passed; it reports whether cond held, and leaves the clock at the
// instant it first held.
func (w *World) RunUntilTrue(limit time.Duration, cond func() bool) bool {
	end := w.now.Add(limit)
	if cond() {
		return true
	}
	for w.step(end) {
		if cond() {
			return true
		}
	}
	w.now = end
	return cond()
}

// Rand returns the world's random source (deterministic from Options.Seed).
func (w *World) Rand() *rand.Rand { return w.rng }

// seedFor derives a per-host seed.
func (w *World) seedFor(name string, gen int) [32]byte {
	var s [32]byte
	h := w.opts.Seed ^ 0xcbf29ce484222325
	for _, c := range []byte(name) {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	h ^= uint64(gen) * 0x9e3779b97f4a7c15
	for i := range 4 {
		h = (h ^ h>>31) * 0xbf58476d1ce4e5b9
		for j := range 8 {
			s[i*8+j] = byte(h >> (8 * j))
		}
	}
	return s
}

// Summary describes the hosts and their contexts, for failure messages.
func (w *World) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=%v\n", w.Elapsed())
	for _, h := range w.hosts {
		fmt.Fprintf(&b, "%s:\n", h.Name)
		for _, c := range h.Engine().Contexts() {
			fmt.Fprintf(&b, "  tag %#x peer %#x %s %s->%s fii %d via %s->%s reap %s\n", c.LocalTag, c.PeerTag, c.State,
				c.LocalULID, c.PeerULID, c.FII, c.LocalLocator, c.PeerLocator, c.Reap)
		}
	}
	return b.String()
}
