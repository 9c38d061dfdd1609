package reap_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// The examples of RFC 5534 Appendix A, run on a virtual clock.

func TestExample1NoCommunication(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(1)}, []string{"2001:db8:a::1"}, []string{"2001:db8:b1::1", "2001:db8:b2::1"})
	w.run(10 * time.Minute)
	if len(w.log) != 0 {
		t.Fatalf("idle context produced REAP traffic:\n%s", w.dump())
	}
}

func TestExample2Bidirectional(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(2)}, []string{"2001:db8:a::1"}, []string{"2001:db8:b1::1"})
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(5 * time.Minute)
	if len(w.log) != 0 {
		t.Fatalf("bidirectional traffic produced REAP messages:\n%s", w.dump())
	}
}

func TestExample3Unidirectional(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(3)}, []string{"2001:db8:a::1"}, []string{"2001:db8:b1::1"})
	w.traffic(w.a, 200*time.Millisecond)
	w.run(5 * time.Minute)
	if n := w.count("B keepalive"); n < 5*60/8 || n > 5*60/4 {
		t.Errorf("B sent %d keepalives in 5 min, want one every KT/3..KT/2 (5-7.5 s)\n%s", n, w.dump())
	}
	if n := w.count("probe"); n != 0 {
		t.Errorf("unidirectional traffic with keepalives explored (%d probe lines)\n%s", n, w.dump())
	}
	if w.a.m.State() != reap.Operational || w.b.m.State() != reap.Operational {
		t.Errorf("states %s/%s", w.a.m.State(), w.b.m.State())
	}
}

func TestExample4FailureBothWays(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(4), ReturnInterval: -1}, []string{"2001:db8:a::1"}, []string{"2001:db8:b1::1", "2001:db8:b2::1"})
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(10 * time.Second)
	w.cutBoth("2001:db8:a::1", "2001:db8:b1::1")
	cutAt := w.now
	w.run(30 * time.Second)
	if got, want := w.a.m.Current(), pair("2001:db8:a::1", "2001:db8:b2::1"); got != want {
		t.Errorf("A current = %s, want %s\n%s", got, want, w.dump())
	}
	if got, want := w.b.m.Current(), pair("2001:db8:b2::1", "2001:db8:a::1"); got != want {
		t.Errorf("B current = %s, want %s", got, want)
	}
	if w.a.m.State() != reap.Operational || w.b.m.State() != reap.Operational {
		t.Errorf("states %s/%s, want both operational", w.a.m.State(), w.b.m.State())
	}
	// Recovery: Send Timeout (13.5-15 s) plus a few probes.
	sw := w.firstAfter(cutAt, "A switch")
	if sw <= 0 || sw > 17*time.Second {
		t.Errorf("A switched %v after the cut, want within Send Timeout + 2 s\n%s", sw, w.dump())
	}
	got := w.b.got
	w.run(10 * time.Second)
	if w.b.got-got < 90 {
		t.Errorf("B received %d payload packets in 10 s after recovery, want ~100", w.b.got-got)
	}
}

func TestExample5OneWayFailure(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(5), ReturnInterval: -1},
		[]string{"2001:db8:a1::1", "2001:db8:a2::1"}, []string{"2001:db8:b1::1", "2001:db8:b2::1"})
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(5 * time.Second)
	w.cut("2001:db8:a1::1", "2001:db8:b1::1") // A1 -> B1 only
	w.verbose = testing.Verbose()
	w.run(40 * time.Second)
	if w.a.m.Current() == pair("2001:db8:a1::1", "2001:db8:b1::1") {
		t.Errorf("A still on the broken pair\n%s", w.dump())
	}
	// B's Send Timer fired (nothing came back): it probed the pair that
	// shares no locator with its current one first (afterDiverse), which
	// works both ways, and took it; the RFC's example, probing the current
	// pair first, keeps B on B1->A1. Either is a working pair.
	if got, want := w.b.m.Current(), pair("2001:db8:b2::1", "2001:db8:a2::1"); got != want {
		t.Errorf("B current = %s, want %s (probed first after its Send Timeout)\n%s", got, want, w.dump())
	}
	if w.count("InboundOk") == 0 && w.count("inbound-ok") == 0 {
		t.Errorf("no InboundOk state seen\n%s", w.dump())
	}
	got := w.b.got
	w.run(10 * time.Second)
	if w.b.got-got < 90 {
		t.Errorf("B received %d payload packets in 10 s after recovery", w.b.got-got)
	}
}

func TestReturnToPrimaryAfterHealing(t *testing.T) {
	w := newWorld(t, &reap.Config{Rand: seeded(6), ReturnInterval: 20 * time.Second},
		[]string{"2001:db8:a1::1", "2001:db8:a2::1"}, []string{"2001:db8:b1::1", "2001:db8:b2::1"})
	w.traffic(w.a, 100*time.Millisecond)
	w.traffic(w.b, 100*time.Millisecond)
	w.run(5 * time.Second)
	w.cutBoth("2001:db8:a1::1", "2001:db8:b1::1")
	w.run(30 * time.Second)
	if w.a.m.Current() == w.a.m.Primary() {
		t.Fatalf("A did not leave the broken primary pair\n%s", w.dump())
	}
	w.heal("2001:db8:a1::1", "2001:db8:b1::1")
	w.heal("2001:db8:b1::1", "2001:db8:a1::1")
	w.run(90 * time.Second)
	if w.a.m.Current() != w.a.m.Primary() || w.b.m.Current() != w.b.m.Primary() {
		t.Errorf("after healing: A %s B %s, want primaries\n%s", w.a.m.Current(), w.b.m.Current(), w.dump())
	}
	if w.count("(return)") == 0 {
		t.Errorf("no return switch logged\n%s", w.dump())
	}
}

// firstAfter returns the virtual time from since to the first log line
// containing sub, or -1.
func (w *world) firstAfter(since time.Time, sub string) time.Duration {
	for _, l := range w.log {
		var s float64
		if _, err := fmtSscan(l, &s); err != nil {
			continue
		}
		at := t0.Add(time.Duration(s * float64(time.Second)))
		if !at.Before(since) && contains(l, sub) {
			return at.Sub(since)
		}
	}
	return -1
}
