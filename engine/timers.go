package engine

import (
	"time"
)

// All timers of the engine live here: one binary min-heap of contexts, each
// context keyed by the earliest of its own deadlines (retransmission,
// Update retransmission, REAP, garbage collection, holddown). There is no
// goroutine and no time.Timer anywhere: the owner of the engine asks
// NextDeadline and calls HandleTimer.
//
// A context's deadline is recomputed (schedule) after every input that can
// change it; deadlines that moved later are left in place when cheaper and
// simply re-evaluated when they fire (fire is idempotent).

// never is the "no deadline" value of a context's timers.
const never int64 = 0

// timerQueue is an index-tracking binary min-heap on Context.due.
type timerQueue struct {
	h []*Context
}

func (q *timerQueue) len() int { return len(q.h) }

func (q *timerQueue) less(i, j int) bool { return q.h[i].due < q.h[j].due }

func (q *timerQueue) swap(i, j int) {
	q.h[i], q.h[j] = q.h[j], q.h[i]
	q.h[i].heapIdx = int32(i)
	q.h[j].heapIdx = int32(j)
}

func (q *timerQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.swap(i, p)
		i = p
	}
}

func (q *timerQueue) down(i int) {
	n := len(q.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.swap(i, m)
		i = m
	}
}

// set inserts, moves or removes c according to due (never removes).
func (q *timerQueue) set(c *Context, due int64) {
	if due == never {
		q.remove(c)
		return
	}
	if c.heapIdx < 0 {
		c.due = due
		c.heapIdx = int32(len(q.h))
		q.h = append(q.h, c)
		q.up(len(q.h) - 1)
		return
	}
	old := c.due
	c.due = due
	switch {
	case due < old:
		q.up(int(c.heapIdx))
	case due > old:
		q.down(int(c.heapIdx))
	}
}

func (q *timerQueue) remove(c *Context) {
	i := int(c.heapIdx)
	if i < 0 {
		return
	}
	last := len(q.h) - 1
	if i != last {
		q.swap(i, last)
	}
	q.h[last] = nil
	q.h = q.h[:last]
	c.heapIdx = -1
	c.due = never
	if i != last {
		q.down(i)
		q.up(i)
	}
}

// peek returns the context with the earliest deadline, or nil.
func (q *timerQueue) peek() *Context {
	if len(q.h) == 0 {
		return nil
	}
	return q.h[0]
}

func ns(t time.Time) int64 { return t.UnixNano() }

func fromNS(n int64) time.Time { return time.Unix(0, n) }

// minDue returns the earliest non-never deadline.
func minDue(a, b int64) int64 {
	switch {
	case a == never:
		return b
	case b == never:
		return a
	case a < b:
		return a
	}
	return b
}

// NextDeadline reports when HandleTimer must be called next; false when no
// timer is pending.
func (e *Engine) NextDeadline() (time.Time, bool) {
	c := e.timers.peek()
	if c == nil {
		return time.Time{}, false
	}
	return fromNS(c.due), true
}

// HandleTimer runs everything that is due at now.
func (e *Engine) HandleTimer(now time.Time) {
	n := ns(now)
	for {
		c := e.timers.peek()
		if c == nil || c.due > n {
			return
		}
		// Take it out first: fire may delete the context, and schedule
		// puts it back with its next deadline.
		e.timers.remove(c)
		e.fire(c, now)
		if !c.dead {
			e.schedule(c, now)
			if c.due != never && c.due <= n {
				// Whatever is still due waits for the next call, so
				// that one call always ends.
				e.timers.set(c, n+1)
			}
		}
	}
}

// schedule recomputes c's deadline from its parts and files it.
func (e *Engine) schedule(c *Context, now time.Time) {
	if c.dead {
		e.timers.remove(c)
		return
	}
	due := c.rtxAt
	if c.upd != nil {
		due = minDue(due, c.upd.at)
	}
	due = minDue(due, c.expireAt)
	if c.reap != nil && c.state == StateEstablished {
		if t, ok := c.reap.NextDeadline(); ok {
			due = minDue(due, ns(t))
		}
	}
	if c.state == StateEstablished || c.state == StateI2bisSent {
		due = minDue(due, c.lastActive+int64(e.cfg.IdleTimeout))
	}
	if due != never && due < ns(now) {
		// Something already due: run it at the next HandleTimer.
		due = ns(now)
	}
	e.timers.set(c, due)
}

// fire runs the due parts of c's timers.
func (e *Engine) fire(c *Context, now time.Time) {
	n := ns(now)
	if c.expireAt != never && c.expireAt <= n {
		c.expireAt = never
		e.expire(c, now)
		if c.dead {
			return
		}
	}
	if c.rtxAt != never && c.rtxAt <= n {
		c.rtxAt = never
		e.retransmit(c, now)
		if c.dead {
			return
		}
	}
	if c.upd != nil && c.upd.at <= n {
		e.retransmitUpdate(c, now)
	}
	if c.reap != nil && c.state == StateEstablished {
		if t, ok := c.reap.NextDeadline(); ok && !t.After(now) {
			e.reapTimer(c, now)
			if c.dead {
				return
			}
		}
	}
	if (c.state == StateEstablished || c.state == StateI2bisSent) &&
		c.lastActive+int64(e.cfg.IdleTimeout) <= n {
		// RFC 5533 §9: tear down only after the context appears
		// quiescent for the idle time.
		e.deleteContext(now, c, "idle")
		return
	}
	if c.state == StateEstablished && c.reap != nil && c.reap.ProbingAtMax() &&
		c.lastHeard+int64(e.cfg.IdleTimeout) <= n {
		// RFC 5534 §4.3: probing at Max Probe Timeout "may also serve
		// as a hint to the garbage collection process that the context
		// is no longer usable". With nothing at all from the peer for
		// the idle time either, the context is collected although the
		// ULP still sends (checked when a probe is due, so within one
		// Max Probe Timeout).
		e.deleteContext(now, c, "unreachable")
	}
}

// backoff returns the nominal timeout for the given retransmission count
// (binary exponential backoff from base, capped at max when max > 0),
// randomised to 0.5-1.5x (RFC 5533 §7.8, §14: randomisation is applied
// after the backoff).
func (e *Engine) backoff(base time.Duration, count int, max time.Duration) time.Duration {
	d := base
	for i := 0; i < count && (max == 0 || d < max); i++ {
		d *= 2
	}
	if max > 0 && d > max {
		d = max
	}
	return e.jitter(d)
}

// jitter multiplies d by a uniform factor in [JitterMin, JitterMax).
func (e *Engine) jitter(d time.Duration) time.Duration {
	// 2^-32 resolution is plenty for timers.
	f := JitterMin + (JitterMax-JitterMin)*float64(e.rand.uint32())/(1<<32)
	return time.Duration(float64(d) * f)
}
