package reap_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// t0 is the virtual epoch of the tests.
var t0 = time.Unix(1_700_000_000, 0)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func locs(ss ...string) []reap.Locator {
	out := make([]reap.Locator, len(ss))
	for i, s := range ss {
		out[i] = reap.Locator{Addr: addr(s), Verified: true}
	}
	return out
}

func seeded(n byte) reap.Rand { return reap.NewRand([32]byte{n}) }

// node is one end of a two-node REAP harness: a machine plus a ULP that may
// send payload periodically.
type node struct {
	name   string
	m      *reap.Machine
	local  []reap.Locator
	every  time.Duration // payload interval; 0 = silent
	nextTx time.Time
	got    int // payload packets received
	sent   int
}

type delivery struct {
	at       time.Time
	seq      int
	to       *node
	kind     string // "payload", "keepalive", "probe"
	src, dst netip.Addr
	probe    reap.Probe
}

// world connects two nodes through links that are up unless marked down
// (per direction, per locator pair), with a fixed delay.
type world struct {
	t       *testing.T
	now     time.Time
	delay   time.Duration
	a, b    *node
	down    map[reap.Pair]bool // src->dst
	queue   []delivery
	seq     int
	log     []string
	acts    []reap.Action
	verbose bool
}

func newWorld(t *testing.T, cfg *reap.Config, aLocs, bLocs []string) *world {
	w := &world{t: t, now: t0, delay: 20 * time.Millisecond, down: map[reap.Pair]bool{}}
	la, lb := locs(aLocs...), locs(bLocs...)
	prim := reap.Pair{Local: la[0].Addr, Peer: lb[0].Addr}
	w.a = &node{name: "A", local: la, m: reap.New(cfg, t0, prim, prim, la, lb)}
	rev := reap.Pair{Local: lb[0].Addr, Peer: la[0].Addr}
	w.b = &node{name: "B", local: lb, m: reap.New(cfg, t0, rev, rev, lb, la)}
	return w
}

// owner returns the node that has locator a.
func (w *world) owner(a netip.Addr) *node {
	for _, n := range []*node{w.a, w.b} {
		for _, l := range n.local {
			if l.Addr == a {
				return n
			}
		}
	}
	return nil
}

func (w *world) cut(src, dst string) { w.down[reap.Pair{Local: addr(src), Peer: addr(dst)}] = true }
func (w *world) cutBoth(x, y string) { w.cut(x, y); w.cut(y, x) }
func (w *world) heal(src, dst string) {
	delete(w.down, reap.Pair{Local: addr(src), Peer: addr(dst)})
}

func (w *world) send(from *node, kind string, p reap.Pair, pr reap.Probe) {
	if w.down[p] {
		w.logf("%s %s %s LOST", from.name, kind, p)
		return
	}
	to := w.owner(p.Peer)
	if to == nil || to == from {
		w.t.Fatalf("%s sent %s to %s: no such peer locator", from.name, kind, p)
	}
	w.seq++
	w.queue = append(w.queue, delivery{at: w.now.Add(w.delay), seq: w.seq, to: to, kind: kind, src: p.Local, dst: p.Peer, probe: pr})
}

func (w *world) logf(format string, args ...any) {
	s := fmt.Sprintf("%7.3fs ", w.now.Sub(t0).Seconds()) + fmt.Sprintf(format, args...)
	w.log = append(w.log, s)
	if w.verbose {
		w.t.Log(s)
	}
}

func (w *world) handle(n *node, acts []reap.Action) {
	for _, a := range acts {
		w.logf("%s %s", n.name, a)
		switch a.Kind {
		case reap.SendKeepalive:
			w.send(n, "keepalive", a.Pair, reap.Probe{})
		case reap.SendProbe:
			w.send(n, "probe", a.Pair, a.Probe)
		}
	}
}

func (w *world) deadline() time.Time {
	var d time.Time
	take := func(t time.Time, ok bool) {
		if ok && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, n := range []*node{w.a, w.b} {
		take(n.m.NextDeadline())
		take(n.nextTx, n.every > 0)
	}
	for _, q := range w.queue {
		take(q.at, true)
	}
	return d
}

// run advances virtual time until end.
func (w *world) run(d time.Duration) {
	end := w.now.Add(d)
	for {
		next := w.deadline()
		if next.IsZero() || next.After(end) {
			w.now = end
			return
		}
		w.now = next
		// Deliveries first, in order.
		slices.SortStableFunc(w.queue, func(x, y delivery) int {
			if c := x.at.Compare(y.at); c != 0 {
				return c
			}
			return x.seq - y.seq
		})
		for len(w.queue) > 0 && !w.queue[0].at.After(w.now) {
			q := w.queue[0]
			w.queue = w.queue[1:]
			n := q.to
			switch q.kind {
			case "payload":
				n.got++
				w.handle(n, n.m.PayloadReceived(w.now, w.acts[:0]))
			case "keepalive":
				w.handle(n, n.m.KeepaliveReceived(w.now, w.acts[:0]))
			case "probe":
				w.logf("%s <- probe %s->%s sta=%s", n.name, q.src, q.dst, q.probe.State)
				w.handle(n, n.m.ProbeReceived(w.now, q.src, q.dst, &q.probe, w.acts[:0]))
			}
		}
		for _, n := range []*node{w.a, w.b} {
			if d, ok := n.m.NextDeadline(); ok && !d.After(w.now) {
				w.handle(n, n.m.Timer(w.now, w.acts[:0]))
			}
			if n.every > 0 && !n.nextTx.After(w.now) {
				n.nextTx = w.now.Add(n.every)
				n.sent++
				cur := n.m.Current()
				w.handle(n, n.m.PayloadSent(w.now, w.acts[:0]))
				if !w.down[cur] {
					w.seq++
					w.queue = append(w.queue, delivery{at: w.now.Add(w.delay), seq: w.seq, to: w.owner(cur.Peer), kind: "payload", src: cur.Local, dst: cur.Peer})
				}
			}
		}
	}
}

func (w *world) traffic(n *node, every time.Duration) {
	n.every = every
	n.nextTx = w.now
}

func (w *world) count(sub string) int {
	c := 0
	for _, l := range w.log {
		if strings.Contains(l, sub) {
			c++
		}
	}
	return c
}

func (w *world) dump() string { return strings.Join(w.log, "\n") }

func pair(l, p string) reap.Pair { return reap.Pair{Local: addr(l), Peer: addr(p)} }
