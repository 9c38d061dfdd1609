package reap_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// BenchmarkActivityUnchanged is the baseline: an activity report that
// carries nothing new (most polls of most contexts).
func BenchmarkActivityUnchanged(b *testing.B) {
	cfg := &reap.Config{Rand: seeded(1)}
	l, p := locs("2001:db8:a1::1", "2001:db8:a2::1"), locs("2001:db8:b1::1", "2001:db8:b2::1")
	m := reap.New(cfg, t0, p11, p11, l, p)
	var out []reap.Action
	s, r := t0.Add(time.Second), t0.Add(time.Second)
	out = m.Activity(t0.Add(time.Second), s, r, out[:0])
	b.ReportAllocs()
	for i := range b.N {
		out = m.Activity(t0.Add(time.Second+time.Duration(i)), s, r, out[:0])
	}
}

// BenchmarkActivity: both instants advanced (bidirectional traffic).
func BenchmarkActivity(b *testing.B) {
	cfg := &reap.Config{Rand: seeded(1)}
	l, p := locs("2001:db8:a1::1", "2001:db8:a2::1"), locs("2001:db8:b1::1", "2001:db8:b2::1")
	m := reap.New(cfg, t0, p11, p11, l, p)
	var out []reap.Action
	b.ReportAllocs()
	for i := range b.N {
		now := t0.Add(time.Duration(i+1) * time.Millisecond)
		out = m.Activity(now, now.Add(-time.Microsecond), now, out[:0])
	}
}

// BenchmarkNew is the cost and memory of one machine (one per context).
func BenchmarkNew(b *testing.B) {
	cfg := &reap.Config{Rand: seeded(1)}
	l, p := locs("2001:db8:a1::1", "2001:db8:a2::1"), locs("2001:db8:b1::1", "2001:db8:b2::1")
	b.ReportAllocs()
	for range b.N {
		_ = reap.New(cfg, t0, p11, p11, l, p)
	}
}

func BenchmarkOrderPairs(b *testing.B) {
	for _, n := range []int{2, 4, 8} {
		var l, p []reap.Locator
		for i := range n {
			l = append(l, loc(fmt.Sprintf("2001:db8:a%d::1", i+1), weight(uint8(i))))
			p = append(p, loc(fmt.Sprintf("2001:db8:b%d::1", i+1), prio(uint8(i%2))))
		}
		b.Run(fmt.Sprintf("%dx%d", n, n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_ = reap.OrderPairs(l, p, reap.Pair{}, nil, 1)
			}
		})
	}
}
