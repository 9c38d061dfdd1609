package reap_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

var (
	aAddrs = []string{"2001:db8:a1::1", "2001:db8:a2::1", "2001:db8:a3::1"}
	bAddrs = []string{"2001:db8:b1::1", "2001:db8:b2::1"}
)

// TestRecoveryOntoEachAlternativePair cuts every pair but one (both ways)
// and checks that both ends move onto it.
func TestRecoveryOntoEachAlternativePair(t *testing.T) {
	for _, la := range aAddrs {
		for _, lb := range bAddrs {
			if la == aAddrs[0] && lb == bAddrs[0] {
				continue
			}
			t.Run(la+"-"+lb, func(t *testing.T) {
				w := newWorld(t, &reap.Config{Rand: seeded(9), ReturnInterval: -1}, aAddrs, bAddrs)
				w.traffic(w.a, 50*time.Millisecond)
				w.traffic(w.b, 50*time.Millisecond)
				w.run(3 * time.Second)
				for _, x := range aAddrs {
					for _, y := range bAddrs {
						if x != la || y != lb {
							w.cutBoth(x, y)
						}
					}
				}
				w.run(60 * time.Second)
				if got, want := w.a.m.Current(), pair(la, lb); got != want {
					t.Errorf("A on %s, want %s\n%s", got, want, w.dump())
				}
				if got, want := w.b.m.Current(), pair(lb, la); got != want {
					t.Errorf("B on %s, want %s", got, want)
				}
				ga, gb := w.a.got, w.b.got
				w.run(5 * time.Second)
				if w.a.got-ga < 90 || w.b.got-gb < 90 {
					t.Errorf("delivery after recovery: A got %d, B got %d in 5 s", w.a.got-ga, w.b.got-gb)
				}
			})
		}
	}
}

// TestRandomFailuresConverge: whatever the directional cuts, as long as
// some pair works in each direction, both ends end up delivering payload.
func TestRandomFailuresConverge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	trials := 150
	if testing.Short() {
		trials = 30
	}
	var all []reap.Pair
	for _, x := range aAddrs[:2] {
		for _, y := range bAddrs {
			all = append(all, pair(x, y), pair(y, x))
		}
	}
	for trial := range trials {
		cuts := map[reap.Pair]bool{}
		for _, p := range all {
			if rng.IntN(2) == 0 {
				cuts[p] = true
			}
		}
		okAB, okBA := false, false
		for _, p := range all {
			if !cuts[p] {
				if contains(p.Local.String(), ":a") {
					okAB = true
				} else {
					okBA = true
				}
			}
		}
		if !okAB || !okBA {
			continue
		}
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			w := newWorld(t, &reap.Config{Rand: seeded(byte(trial)), ReturnInterval: -1}, aAddrs[:2], bAddrs)
			w.traffic(w.a, 100*time.Millisecond)
			w.traffic(w.b, 100*time.Millisecond)
			w.run(2 * time.Second)
			for p := range cuts {
				w.down[p] = true
			}
			w.run(2 * time.Minute)
			ga, gb := w.a.got, w.b.got
			w.run(5 * time.Second)
			if w.a.got-ga < 45 || w.b.got-gb < 45 {
				t.Errorf("cuts %v: A got %d, B got %d in 5 s; A on %s (%s), B on %s (%s)\n%s",
					keys(cuts), w.a.got-ga, w.b.got-gb, w.a.m.Current(), w.a.m.State(), w.b.m.Current(), w.b.m.State(), w.dump())
			}
		})
	}
}

func keys(m map[reap.Pair]bool) []reap.Pair {
	var out []reap.Pair
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHintOnWorkingPathKeepsPair(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(11), ReturnInterval: -1}, aAddrs[:2], bAddrs)
	w.traffic(w.a, 100*time.Millisecond)
	w.run(time.Second)
	w.handle(w.a, w.a.m.ULPTrouble(w.now, nil))
	w.run(5 * time.Second)
	if w.a.m.Current() != w.a.m.Primary() || w.a.m.State() != reap.Operational || w.b.m.State() != reap.Operational {
		t.Errorf("after a hint on a working path: A %s %s, B %s\n%s", w.a.m.Current(), w.a.m.State(), w.b.m.State(), w.dump())
	}
	if w.count("A switch") != 0 {
		t.Errorf("switched\n%s", w.dump())
	}
	if w.count("A probe") > 2 {
		t.Errorf("hint cost %d probes, want at most 2\n%s", w.count("A probe"), w.dump())
	}
}

// TestHintSpeedsUpFailover: with a TCP-like hint one second after the cut,
// failover takes about a second instead of a Send Timeout.
func TestHintSpeedsUpFailover(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(12), ReturnInterval: -1}, aAddrs[:2], bAddrs)
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(2 * time.Second)
	w.cutBoth(aAddrs[0], bAddrs[0])
	cut := w.now
	w.run(time.Second)
	w.handle(w.a, w.a.m.ULPTrouble(w.now, nil))
	w.run(10 * time.Second)
	if d := w.firstAfter(cut, "A switch"); d < 0 || d > 3*time.Second {
		t.Errorf("switch %v after the cut, want < 3 s\n%s", d, w.dump())
	}
	if w.a.m.Current() == w.a.m.Primary() || w.b.m.Current() == w.b.m.Primary() {
		t.Errorf("not moved: %s %s", w.a.m.Current(), w.b.m.Current())
	}
}

// TestReturnBacksOff: while the primary stays broken, return attempts get
// rarer (doubling up to MaxReturnInterval) and traffic keeps flowing.
func TestReturnBacksOff(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(13), ReturnInterval: 10 * time.Second, MaxReturnInterval: 80 * time.Second}, aAddrs[:2], bAddrs)
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(2 * time.Second)
	w.cutBoth(aAddrs[0], bAddrs[0])
	w.run(30 * time.Second)
	w.log = nil
	ga := w.b.got
	w.run(10 * time.Minute)
	n := w.count("A state operational->exploring (return)")
	// 10, 20, 40, 80, 80, ... s: about 9 attempts in 10 minutes, not 60.
	if n < 5 || n > 12 {
		t.Errorf("%d return attempts in 10 min\n%s", n, w.dump())
	}
	if lost := 6000 - (w.b.got - ga); lost > 10 {
		t.Errorf("return attempts lost %d payload packets", lost)
	}
	if w.a.m.Current() == w.a.m.Primary() {
		t.Error("returned to a broken primary")
	}
}

// TestIdleContextDoesNotReturn: return attempts need traffic.
func TestIdleContextDoesNotReturn(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(14), ReturnInterval: 10 * time.Second}, aAddrs[:2], bAddrs)
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(2 * time.Second)
	w.cutBoth(aAddrs[0], bAddrs[0])
	w.run(30 * time.Second)
	w.a.every, w.b.every = 0, 0
	w.run(time.Minute) // let the exchange settle
	w.log = nil
	w.run(30 * time.Minute)
	if w.count("probe") != 0 {
		t.Errorf("idle context probed\n%s", w.dump())
	}
}
