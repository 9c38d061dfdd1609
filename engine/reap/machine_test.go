package reap_test

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
	"github.com/goshim6/goshim6/wire"
)

// One machine driven by hand: A = {a1, a2}, B = {b1, b2}, primary a1->b1.
var (
	a1  = addr("2001:db8:a1::1")
	a2  = addr("2001:db8:a2::1")
	b1  = addr("2001:db8:b1::1")
	b2  = addr("2001:db8:b2::1")
	p11 = reap.Pair{Local: a1, Peer: b1}
	p12 = reap.Pair{Local: a1, Peer: b2}
	p21 = reap.Pair{Local: a2, Peer: b1}
	p22 = reap.Pair{Local: a2, Peer: b2}
)

type driver struct {
	t   *testing.T
	m   *reap.Machine
	now time.Time
	out []reap.Action
}

func newDriver(t *testing.T, cfg *reap.Config) *driver {
	if cfg.Rand == nil {
		cfg.Rand = seeded(42)
	}
	l, p := locs("2001:db8:a1::1", "2001:db8:a2::1"), locs("2001:db8:b1::1", "2001:db8:b2::1")
	return &driver{t: t, m: reap.New(cfg, t0, p11, p11, l, p), now: t0}
}

func (d *driver) at(dt time.Duration) time.Time { d.now = d.now.Add(dt); return d.now }

// fire advances to the next deadline and runs the timer.
func (d *driver) fire() time.Duration {
	d.t.Helper()
	dl, ok := d.m.NextDeadline()
	if !ok {
		d.t.Fatalf("no deadline (state %s)", d.m.State())
	}
	if dl.Before(d.now) {
		d.t.Fatalf("deadline %v in the past (now %v)", dl, d.now)
	}
	dt := dl.Sub(d.now)
	d.now = dl
	d.out = d.m.Timer(d.now, d.out[:0])
	return dt
}

func (d *driver) noDeadline() {
	d.t.Helper()
	if dl, ok := d.m.NextDeadline(); ok {
		d.t.Fatalf("unexpected deadline in %v (state %s)", dl.Sub(d.now), d.m.State())
	}
}

func kinds(as []reap.Action) []reap.ActionKind {
	var out []reap.ActionKind
	for _, a := range as {
		out = append(out, a.Kind)
	}
	return out
}

func probes(as []reap.Action) []reap.Action {
	var out []reap.Action
	for _, a := range as {
		if a.Kind == reap.SendProbe {
			out = append(out, a)
		}
	}
	return out
}

func (d *driver) toExploring() {
	d.t.Helper()
	d.out = d.m.PayloadSent(d.at(time.Second), d.out[:0])
	d.fire()
	if d.m.State() != reap.Exploring {
		d.t.Fatalf("state %s, want exploring", d.m.State())
	}
}

func (d *driver) toInboundOk() {
	d.t.Helper()
	d.toExploring()
	d.out = d.m.PayloadReceived(d.at(10*time.Millisecond), d.out[:0])
	if d.m.State() != reap.InboundOk {
		d.t.Fatalf("state %s, want inbound-ok", d.m.State())
	}
}

func peerProbe(sta reap.State, src, dst netip.Addr, nonce uint32, recvd ...reap.ProbeReport) *reap.Probe {
	return &reap.Probe{State: sta, Sent: []reap.ProbeReport{{Src: src, Dst: dst, Nonce: nonce}}, Recvd: recvd}
}

// TestStateTables checks every cell of the tables of RFC 5534 §6.1-§6.9.
func TestStateTables(t *testing.T) {
	type cell struct {
		event     string
		from      reap.State
		to        reap.State
		probeSta  int  // -1: no probe sent
		sendTimer bool // Send Timer running afterwards
		keepalive bool // Keepalive Timer running afterwards
	}
	events := map[string]func(d *driver){
		"payload-in":  func(d *driver) { d.out = d.m.PayloadReceived(d.at(time.Millisecond), d.out[:0]) },
		"payload-out": func(d *driver) { d.out = d.m.PayloadSent(d.at(time.Millisecond), d.out[:0]) },
		"keepalive":   func(d *driver) { d.out = d.m.KeepaliveReceived(d.at(time.Millisecond), d.out[:0]) },
		"probe-exploring": func(d *driver) {
			d.out = d.m.ProbeReceived(d.at(time.Millisecond), b2, a2, peerProbe(reap.Exploring, b2, a2, 1), d.out[:0])
		},
		"probe-inboundok": func(d *driver) {
			d.out = d.m.ProbeReceived(d.at(time.Millisecond), b1, a1, peerProbe(reap.InboundOk, b1, a1, 2), d.out[:0])
		},
		"probe-operational": func(d *driver) {
			d.out = d.m.ProbeReceived(d.at(time.Millisecond), b2, a2, peerProbe(reap.Operational, b2, a2, 3), d.out[:0])
		},
	}
	const O, E, I = reap.Operational, reap.Exploring, reap.InboundOk
	cells := []cell{
		// §6.1 incoming payload
		{"payload-in", O, O, -1, false, true}, {"payload-in", E, I, int(I), true, false}, {"payload-in", I, I, -1, false, false},
		// §6.2 outgoing payload
		{"payload-out", O, O, -1, true, false}, {"payload-out", E, E, -1, false, false}, {"payload-out", I, I, -1, true, false},
		// §6.6 keepalive
		{"keepalive", O, O, -1, false, false}, {"keepalive", E, I, int(I), true, false}, {"keepalive", I, I, -1, false, false},
		// §6.7 probe state=exploring
		{"probe-exploring", O, I, int(I), true, false}, {"probe-exploring", E, I, int(I), true, false}, {"probe-exploring", I, I, int(I), true, false},
		// §6.8 probe state=inboundok
		{"probe-inboundok", O, O, int(O), true, false}, {"probe-inboundok", E, O, int(O), true, false}, {"probe-inboundok", I, O, int(O), true, false},
		// §6.9 probe state=operational
		{"probe-operational", O, O, -1, false, true}, {"probe-operational", E, O, -1, false, true}, {"probe-operational", I, O, -1, false, true},
	}
	for _, c := range cells {
		t.Run(c.event+"/"+c.from.String(), func(t *testing.T) {
			d := newDriver(t, &reap.Config{ReturnInterval: -1})
			switch c.from {
			case E:
				d.toExploring()
				d.at(200 * time.Millisecond) // past the response spacing, before the next probe
			case I:
				d.toInboundOk()
				d.out = d.m.PayloadReceived(d.at(200*time.Millisecond), d.out[:0]) // stop Send
			}
			events[c.event](d)
			if got := d.m.State(); got != c.to {
				t.Fatalf("state %s, want %s (actions %v)", got, c.to, d.out)
			}
			ps := probes(d.out)
			switch {
			case c.probeSta < 0 && len(ps) > 0:
				t.Errorf("probe sent: %v", ps)
			case c.probeSta >= 0 && len(ps) != 1:
				t.Errorf("want one probe with sta %d, got %v", c.probeSta, d.out)
			case c.probeSta >= 0 && ps[0].Probe.State != reap.State(c.probeSta):
				t.Errorf("probe sta %s, want %d", ps[0].Probe.State, c.probeSta)
			}
			if _, st := d.m.SendTimer(); st != c.sendTimer {
				t.Errorf("send timer running = %v, want %v", st, c.sendTimer)
			}
			if _, ka := d.m.KeepaliveTimer(); ka != c.keepalive {
				t.Errorf("keepalive timer running = %v, want %v", ka, c.keepalive)
			}
		})
	}
}

func TestSendTimerNotRestartedBySends(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	first := d.at(time.Second)
	d.out = d.m.PayloadSent(first, d.out[:0])
	for range 100 {
		d.out = d.m.PayloadSent(d.at(100*time.Millisecond), d.out[:0])
	}
	dl, ok := d.m.NextDeadline()
	if !ok {
		t.Fatal("no deadline")
	}
	st := dl.Sub(first)
	if st < 13500*time.Millisecond || st > 15*time.Second {
		t.Errorf("Send Timer expires %v after the first unanswered send, want 13.5-15 s", st)
	}
	d.fire()
	ps := probes(d.out)
	// The first probe goes to the pair sharing no locator with the silent
	// current one (afterDiverse).
	if d.m.State() != reap.Exploring || len(ps) != 1 || ps[0].Pair != p22 || ps[0].Probe.State != reap.Exploring {
		t.Fatalf("after Send Timeout: %s %v", d.m.State(), d.out)
	}
}

func TestProbeBackoffSchedule(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.toExploring()
	nominal := []time.Duration{500, 500, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000}
	var pairs []reap.Pair
	pairs = append(pairs, probes(d.out)[0].Pair)
	for i, n := range nominal {
		n *= time.Millisecond
		dt := d.fire()
		lo, hi := time.Duration(float64(n)*0.8), min(time.Duration(float64(n)*1.2), reap.MaxProbeTimeout)
		if dt < lo || dt > hi {
			t.Errorf("interval %d = %v, want %v-%v", i+1, dt, lo, hi)
		}
		ps := probes(d.out)
		if len(ps) != 1 {
			t.Fatalf("retransmission %d: %v", i+1, d.out)
		}
		pairs = append(pairs, ps[0].Pair)
	}
	// Sequential over the pairs, cycling. After a Send Timeout the pair
	// sharing no locator with the silent current one comes first, then the
	// current pair, then the others.
	want := []reap.Pair{p22, p11, p21, p12, p22, p11}
	if !slices.Equal(pairs[:6], want) {
		t.Errorf("probe pairs %v, want %v", pairs[:6], want)
	}
	if s := d.m.Stats(); s.ProbesSent != uint32(len(nominal)+1) || s.Explorations != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestProbeIntervalsConfigurable(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1, SendTimeout: 3 * time.Second,
		InitialProbeTimeout: 100 * time.Millisecond, InitialProbes: 2, MaxProbeTimeout: time.Second})
	d.out = d.m.PayloadSent(d.at(time.Second), d.out[:0])
	if dt := d.fire(); dt < 2700*time.Millisecond || dt > 3*time.Second {
		t.Errorf("send timeout %v", dt)
	}
	var got []time.Duration
	for range 6 {
		got = append(got, d.fire())
	}
	nominal := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range nominal {
		n := nominal[i] * time.Millisecond
		if got[i] < time.Duration(float64(n)*0.8) || got[i] > min(time.Duration(float64(n)*1.2), time.Second) {
			t.Errorf("interval %d = %v, want ~%v", i, got[i], n)
		}
	}
}

func TestKeepaliveSchedule(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.m.SetKeepaliveTimeout(30 * time.Second)
	if d.m.KeepaliveTimeout() != 30*time.Second {
		t.Fatal("SetKeepaliveTimeout")
	}
	r := d.at(time.Second)
	d.out = d.m.PayloadReceived(r, d.out[:0])
	var at []time.Duration
	for {
		dl, ok := d.m.NextDeadline()
		if !ok {
			break
		}
		d.now = dl
		d.out = d.m.Timer(d.now, d.out[:0])
		if !slices.Equal(kinds(d.out), []reap.ActionKind{reap.SendKeepalive}) || d.out[0].Pair != p11 {
			t.Fatalf("timer actions %v", d.out)
		}
		at = append(at, d.now.Sub(r))
	}
	// Keepalive Interval 10-15 s, the last one at the Keepalive Timeout.
	if len(at) < 2 || len(at) > 3 || at[len(at)-1] != 30*time.Second {
		t.Fatalf("keepalives at %v", at)
	}
	if at[0] < 10*time.Second || at[0] > 15*time.Second {
		t.Errorf("first keepalive at %v", at[0])
	}
	// A new payload packet restarts the cycle; a sent one stops it.
	d.out = d.m.PayloadReceived(d.at(time.Second), d.out[:0])
	if _, ok := d.m.NextDeadline(); !ok {
		t.Fatal("keepalive timer not restarted")
	}
	d.out = d.m.PayloadSent(d.at(time.Second), d.out[:0])
	d.fire() // the Send Timer, not a keepalive
	if slices.Contains(kinds(d.out), reap.SendKeepalive) {
		t.Errorf("keepalive after a payload was sent: %v", d.out)
	}
	if s := d.m.Stats(); int(s.KeepalivesSent) != len(at) {
		t.Errorf("KeepalivesSent %d", s.KeepalivesSent)
	}
}

func TestActivityOrdering(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	// Sent after received: the Send Timer runs from the send.
	d.out = d.m.Activity(d.at(2*time.Second), t0.Add(1500*time.Millisecond), t0.Add(time.Second), d.out[:0])
	dl, _ := d.m.NextDeadline()
	if st := dl.Sub(t0.Add(1500 * time.Millisecond)); st < 13500*time.Millisecond || st > 15*time.Second {
		t.Errorf("send timer %v after the send", st)
	}
	// Received after sent: the timer stops, the keepalive timer runs.
	d.out = d.m.Activity(d.at(time.Second), t0.Add(2500*time.Millisecond), t0.Add(2900*time.Millisecond), d.out[:0])
	dl, _ = d.m.NextDeadline()
	if ka := dl.Sub(t0.Add(2900 * time.Millisecond)); ka < 5*time.Second || ka > 7500*time.Millisecond {
		t.Errorf("next deadline %v after the receive, want a keepalive in 5-7.5 s", ka)
	}
	// Nothing new: nothing changes. Times in the future are clamped.
	before, _ := d.m.NextDeadline()
	d.out = d.m.Activity(d.at(time.Second), t0.Add(2500*time.Millisecond), t0.Add(2900*time.Millisecond), d.out[:0])
	if after, _ := d.m.NextDeadline(); !after.Equal(before) || len(d.out) != 0 {
		t.Errorf("repeated activity changed the machine: %v", d.out)
	}
	d.out = d.m.Activity(d.now, d.now.Add(time.Hour), time.Time{}, d.out[:0])
	dl, _ = d.m.NextDeadline()
	if dl.Sub(d.now) > 15*time.Second {
		t.Errorf("future send time not clamped: deadline in %v", dl.Sub(d.now))
	}
	// A send-timer expiry that lies before a reported receive fires first.
	d2 := newDriver(t, &reap.Config{ReturnInterval: -1})
	d2.out = d2.m.Activity(t0.Add(time.Second), t0.Add(time.Second), time.Time{}, d2.out[:0])
	late := t0.Add(40 * time.Second)
	d2.out = d2.m.Activity(late, t0.Add(time.Second), t0.Add(30*time.Second), d2.out[:0])
	if d2.m.State() != reap.InboundOk {
		t.Errorf("timeout at ~15 s then a receive at 30 s: state %s, want inbound-ok (%v)", d2.m.State(), d2.out)
	}
}

func TestULPTroubleStartsExploration(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.noDeadline() // a fresh context runs no timer
	d.out = d.m.ULPTrouble(d.at(time.Second), d.out[:0])
	ps := probes(d.out)
	if d.m.State() != reap.Exploring || len(ps) != 1 || ps[0].Pair != p11 {
		t.Fatalf("hint: %s %v", d.m.State(), d.out)
	}
	if d.out[0].Kind != reap.StateChange || d.out[0].Reason != reap.ReasonHint {
		t.Errorf("state change reason: %v", d.out[0])
	}
	d.out = d.m.ULPTrouble(d.at(time.Millisecond), d.out[:0])
	if len(d.out) != 0 {
		t.Errorf("second hint while exploring: %v", d.out)
	}
}

// confirm makes the peer report the given probes of ours in a probe with
// state sta.
func (d *driver) confirm(sta reap.State, src, dst netip.Addr, ours ...reap.Action) {
	var rs []reap.ProbeReport
	for _, a := range ours {
		rs = append(rs, a.Probe.Sent[0])
	}
	d.out = d.m.ProbeReceived(d.at(20*time.Millisecond), src, dst, peerProbe(sta, src, dst, uint32(len(rs))+100, rs...), d.out[:0])
}

func TestChooseBestConfirmedPair(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.toExploring()
	var sent []reap.Action
	sent = append(sent, probes(d.out)...)
	for range 3 {
		d.fire()
		sent = append(sent, probes(d.out)...)
	}
	byPair := map[reap.Pair]reap.Action{}
	for _, a := range sent {
		byPair[a.Pair] = a
	}
	// The peer saw our probes over p12 and p21; p21 ranks higher (peer
	// locator order first, RFC 6724 destination rules).
	d.confirm(reap.InboundOk, b2, a1, byPair[p12], byPair[p21])
	var sw []reap.Action
	for _, a := range d.out {
		if a.Kind == reap.SwitchPair {
			sw = append(sw, a)
		}
	}
	if len(sw) != 1 || sw[0].Pair != p21 || sw[0].Reason != reap.ReasonPeerConfirmed {
		t.Fatalf("switch %v (actions %v)", sw, d.out)
	}
	ps := probes(d.out)
	if d.m.State() != reap.Operational || len(ps) != 1 || ps[0].Pair != p21 || ps[0].Probe.State != reap.Operational {
		t.Errorf("answer: %s %v", d.m.State(), d.out)
	}
	if len(ps[0].Probe.Recvd) != 1 || ps[0].Probe.Recvd[0].Src != b2 {
		t.Errorf("answer does not report the peer's probe: %+v", ps[0].Probe)
	}
	if d.m.Current() != p21 || d.m.Stats().Switches != 1 {
		t.Errorf("current %s stats %+v", d.m.Current(), d.m.Stats())
	}
}

// An InboundOk probe that confirms none of our probes, over another pair
// than our current one, is answered over both: the current pair (RFC 5534
// §6.8) and the reverse of the pair it came on, in case ours is dead.
func TestInboundOkAnsweredOverReversePairToo(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.out = d.m.ProbeReceived(d.at(time.Second), b2, a2, peerProbe(reap.InboundOk, b2, a2, 5), d.out[:0])
	ps := probes(d.out)
	if len(ps) != 2 || ps[0].Pair != p11 || ps[1].Pair != p22 {
		t.Fatalf("answers %v, want over %s and %s", d.out, p11, p22)
	}
	for _, p := range ps {
		if p.Probe.State != reap.Operational || len(p.Probe.Recvd) != 1 || p.Probe.Recvd[0].Nonce != 5 {
			t.Errorf("answer %+v", p.Probe)
		}
	}
	if d.m.Current() != p11 {
		t.Errorf("current moved to %s without confirmation", d.m.Current())
	}
}

func TestForgedReportsIgnored(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.toExploring()
	forged := reap.ProbeReport{Src: a2, Dst: b2, Nonce: 0xdeadbeef}
	d.out = d.m.ProbeReceived(d.at(time.Millisecond), b2, a2, peerProbe(reap.InboundOk, b2, a2, 7, forged), d.out[:0])
	if d.m.Current() != p11 {
		t.Errorf("forged report moved the context to %s", d.m.Current())
	}
	if d.m.Stats().ReportsIgnored != 1 {
		t.Errorf("ReportsIgnored %d", d.m.Stats().ReportsIgnored)
	}
}

func TestReportsBounded(t *testing.T) {
	for _, max := range []int{0, 3, 15, 99} {
		want := max
		switch {
		case max == 0:
			want = reap.DefaultMaxReports
		case max > reap.MaxReportsLimit:
			want = reap.MaxReportsLimit
		}
		d := newDriver(t, &reap.Config{ReturnInterval: -1, MaxReports: max})
		d.toExploring()
		longest := 0
		for i := range 60 {
			// The peer keeps exploring with new probes we receive.
			d.out = d.m.ProbeReceived(d.at(time.Millisecond), b1, a1, peerProbe(reap.Exploring, b1, a1, uint32(i)), d.out[:0])
			d.fire()
			for _, p := range probes(d.out) {
				if len(p.Probe.Sent) > want || len(p.Probe.Recvd) > want {
					t.Fatalf("max %d: probe carries %d sent, %d received", max, len(p.Probe.Sent), len(p.Probe.Recvd))
				}
				longest = max2(longest, len(p.Probe.Sent), len(p.Probe.Recvd))
			}
		}
		if longest != want {
			t.Errorf("max %d: longest list %d, want %d", max, longest, want)
		}
	}
}

func max2(a, b, c int) int { return max(a, b, c) }

func TestResponsesGoToReversePairAndAreRateLimited(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.out = d.m.ProbeReceived(d.at(time.Second), b2, a2, peerProbe(reap.Exploring, b2, a2, 1), d.out[:0])
	ps := probes(d.out)
	if len(ps) != 1 || ps[0].Pair != p22 {
		t.Fatalf("response %v, want one probe on the reverse pair %s", d.out, p22)
	}
	// A duplicate right after: no second response.
	d.out = d.m.ProbeReceived(d.at(10*time.Millisecond), b2, a2, peerProbe(reap.Exploring, b2, a2, 1), d.out[:0])
	if len(probes(d.out)) != 0 {
		t.Errorf("duplicate answered: %v", d.out)
	}
	// Later, another probe over another pair is answered there.
	d.out = d.m.ProbeReceived(d.at(300*time.Millisecond), b1, a2, peerProbe(reap.Exploring, b1, a2, 2), d.out[:0])
	ps = probes(d.out)
	if len(ps) != 1 || ps[0].Pair != p21 {
		t.Fatalf("response %v, want %s", d.out, p21)
	}
	if got := len(ps[0].Probe.Recvd); got != 2 {
		t.Errorf("response reports %d received probes, want 2 (duplicates once)", got)
	}
	// A probe from an unverified peer address is answered over a
	// candidate pair, never to that address.
	d.out = d.m.ProbeReceived(d.at(time.Second), addr("2001:db8:ffff::1"), a2, peerProbe(reap.Exploring, addr("2001:db8:ffff::1"), a2, 3), d.out[:0])
	for _, p := range probes(d.out) {
		if p.Pair.Peer == addr("2001:db8:ffff::1") {
			t.Errorf("probe sent to an unverified locator: %v", p)
		}
	}
}

func TestLocatorsBrokenStartsExplorationAvoidingIt(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	peer := locs("2001:db8:b1::1", "2001:db8:b2::1")
	peer[0].Pref.Flags = reap.Broken
	local := locs("2001:db8:a1::1", "2001:db8:a2::1")
	d.out = d.m.SetLocators(d.at(time.Second), local, peer, d.out[:0])
	if d.m.State() != reap.Exploring {
		t.Fatalf("state %s after the current peer locator became BROKEN", d.m.State())
	}
	seen := map[reap.Pair]bool{}
	for _, p := range probes(d.out) {
		seen[p.Pair] = true
	}
	for range 8 {
		d.fire()
		for _, p := range probes(d.out) {
			seen[p.Pair] = true
		}
	}
	if seen[p11] || seen[p21] || !seen[p12] || !seen[p22] {
		t.Errorf("probed %v; BROKEN b1 must not be probed", seen)
	}
	if b := d.m.Best(); b != p12 {
		t.Errorf("best %s", b)
	}
	// Removing the locators from both lists leaves nothing: no probe.
	d.out = d.m.SetLocators(d.at(time.Second), local, nil, d.out[:0])
	d.fire()
	for _, p := range probes(d.out) {
		if p.Pair != p11 {
			t.Errorf("probe %v with no usable peer locator (only the current pair may be tried)", p)
		}
	}
}

func TestPinAndUnpin(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: 10 * time.Second})
	d.out = d.m.Pin(d.at(time.Second), p22, d.out[:0])
	if !d.m.Pinned() || d.m.Current() != p22 || len(d.out) != 1 || d.out[0].Reason != reap.ReasonPinned {
		t.Fatalf("pin: %v", d.out)
	}
	d.toExploring()
	for range 6 {
		for _, p := range probes(d.out) {
			if p.Pair != p22 {
				t.Errorf("pinned machine probed %s", p.Pair)
			}
		}
		d.fire()
	}
	d.out = d.m.Unpin(d.at(time.Millisecond), d.out[:0])
	d.fire()
	if ps := probes(d.out); len(ps) != 1 || ps[0].Pair == p22 && false {
		t.Errorf("after unpin: %v", d.out)
	}
	if d.m.Pinned() {
		t.Error("still pinned")
	}
}

func TestReleaseForgetsOldProbes(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.toExploring()
	first := probes(d.out)[0]
	d.out = d.m.ProbeReceived(d.at(time.Second), b1, a1, peerProbe(reap.Operational, b1, a1, 9), d.out[:0])
	if d.m.State() != reap.Operational {
		t.Fatal("not operational")
	}
	// Much later a stale report of our first probe arrives: forgotten.
	d.at(10 * time.Minute)
	d.confirm(reap.Operational, b1, a1, first)
	if d.m.Stats().ReportsIgnored != 1 {
		t.Errorf("stale report not ignored: %+v", d.m.Stats())
	}
}

func TestWireRoundTrip(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.out = d.m.ProbeReceived(d.at(time.Second), b2, a2, peerProbe(reap.Exploring, b2, a2, 77), d.out[:0])
	d.fire()
	ps := probes(d.out)
	if len(ps) != 1 {
		t.Fatalf("%v", d.out)
	}
	b, err := wire.Marshal(ps[0].Probe.Wire(0x1234_5678_9abc))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	wp, ok := msg.(*wire.Probe)
	if !ok || wp.ReceiverTag != 0x1234_5678_9abc {
		t.Fatalf("parsed %T %+v", msg, msg)
	}
	got := reap.ProbeFromWire(wp)
	if got.State != ps[0].Probe.State || !slices.Equal(got.Sent, ps[0].Probe.Sent) || !slices.Equal(got.Recvd, ps[0].Probe.Recvd) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, ps[0].Probe)
	}
	if len(got.Recvd) != 1 || got.Recvd[0].Nonce != 77 {
		t.Errorf("received report lost: %+v", got)
	}
	kb, err := wire.Marshal(reap.Keepalive(5))
	if err != nil || len(kb) != 16 {
		t.Errorf("keepalive %x %v", kb, err)
	}
}

func TestStringers(t *testing.T) {
	for _, s := range []interface{ String() string }{
		reap.Operational, reap.Exploring, reap.InboundOk, reap.State(3),
		reap.ReasonNone, reap.ReasonSendTimeout, reap.ReasonPeerExploring, reap.ReasonInbound, reap.ReasonPeerConfirmed,
		reap.ReasonHint, reap.ReasonLocators, reap.ReasonReturn, reap.ReasonPinned, reap.Reason(99),
		reap.SendKeepalive, reap.SendProbe, reap.SwitchPair, reap.StateChange, reap.ActionKind(0),
		reap.Action{Kind: reap.SendKeepalive, Pair: p11}, reap.Action{Kind: reap.SwitchPair, Pair: p11},
		reap.Action{Kind: reap.StateChange}, reap.Action{Kind: reap.SendProbe}, reap.Action{},
	} {
		if s.String() == "" {
			t.Errorf("%#v has an empty String", s)
		}
	}
}

// RFC 5534 §6.1: Exploring -> InboundOk on a payload packet received while
// exploring. The data plane reports activity late (it is polled); a packet
// received before the exploration began is no evidence of inbound
// connectivity now, whichever way the exploration started.
func TestReceiveBeforeExplorationIsNotInbound(t *testing.T) {
	for _, how := range []string{"ulp-hint", "send-timeout"} {
		t.Run(how, func(t *testing.T) {
			d := newDriver(t, &reap.Config{ReturnInterval: -1, SendTimeout: time.Second})
			d.out = d.m.Activity(d.at(time.Second), d.now, d.now, d.out[:0])
			var began time.Time
			if how == "ulp-hint" {
				d.out = d.m.ULPTrouble(d.at(500*time.Millisecond), d.out[:0])
				began = d.now
			} else {
				d.out = d.m.Activity(d.at(100*time.Millisecond), d.now, time.Time{}, d.out[:0]) // a send at 1.1 s
				began, _ = d.m.SendTimer()
				d.fire()
				if d.m.State() != reap.Exploring || !d.now.Equal(began) {
					t.Fatalf("send timer: %s at %v, want exploring at %v", d.m.State(), d.now, began)
				}
				d.at(50 * time.Millisecond)
			}
			// The report that follows carries a receive from just before
			// the exploration began (it lies after the last one reported).
			d.out = d.m.Activity(d.now, d.now, began.Add(-time.Millisecond), d.out[:0])
			if d.m.State() != reap.Exploring {
				t.Fatalf("state %s after a receive from before the exploration (%v)", d.m.State(), d.out)
			}
			// A receive after the exploration began is one (§6.1).
			d.out = d.m.Activity(d.at(50*time.Millisecond), d.now, began.Add(time.Millisecond), d.out[:0])
			if d.m.State() != reap.InboundOk {
				t.Fatalf("state %s after a receive during the exploration (%v)", d.m.State(), d.out)
			}
			if ps := probes(d.out); len(ps) != 1 || ps[0].Probe.State != reap.InboundOk {
				t.Errorf("want one Probe(InboundOk): %v", d.out)
			}
		})
	}
}

// A ULP hint right after the peer confirmed the current pair comes from a
// retransmission timer armed before the repair (HintStale): it is ignored
// for the Send Timeout plus the length of the exploration, then hints work
// again. Unconfirmed pairs and other trouble are not affected.
func TestStaleHintAfterConfirmationIgnored(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1, SendTimeout: time.Second})
	d.out = d.m.ULPTrouble(d.at(time.Second), d.out[:0]) // the failure, hinted
	began := d.now
	first := probes(d.out)
	d.fire() // next probe, 0.5 s later, on another pair
	second := probes(d.out)
	if len(first) != 1 || len(second) != 1 || second[0].Pair == p11 {
		t.Fatalf("probes %v then %v", first, second)
	}
	d.confirm(reap.InboundOk, second[0].Pair.Peer, second[0].Pair.Local, second[0])
	if d.m.State() != reap.Operational || d.m.Current() != second[0].Pair {
		t.Fatalf("after confirmation: %s on %s", d.m.State(), d.m.Current())
	}
	done := d.now
	hold := time.Second + done.Sub(began)                            // Send Timeout + the episode
	d.out = d.m.PayloadReceived(d.at(5*time.Millisecond), d.out[:0]) // stops the Send Timer
	for _, dt := range []time.Duration{10 * time.Millisecond, hold - 20*time.Millisecond} {
		now := done.Add(dt)
		if !d.m.HintStale(now) {
			t.Errorf("hint %v after the confirmation not stale", dt)
		}
		d.now = now
		d.out = d.m.ULPTrouble(now, d.out[:0])
		if len(d.out) != 0 || d.m.State() != reap.Operational {
			t.Errorf("stale hint %v after the confirmation acted: %v", dt, d.out)
		}
	}
	if got := d.m.Stats().HintsIgnored; got != 2 {
		t.Errorf("HintsIgnored %d, want 2", got)
	}
	d.now = done.Add(hold + 10*time.Millisecond)
	if d.m.HintStale(d.now) {
		t.Fatal("hint still stale after the hold")
	}
	d.out = d.m.ULPTrouble(d.now, d.out[:0])
	if d.m.State() != reap.Exploring {
		t.Errorf("hint after the hold: %s %v", d.m.State(), d.out)
	}
}

// Trouble (ICMP errors, a lost or BROKEN locator, management) explores even
// while ULP hints are stale.
func TestTroubleNotHeldAfterConfirmation(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1, SendTimeout: time.Second})
	d.out = d.m.ULPTrouble(d.at(time.Second), d.out[:0])
	p := probes(d.out)[0]
	d.confirm(reap.Operational, p.Pair.Peer, p.Pair.Local, p)
	if d.m.State() != reap.Operational || !d.m.HintStale(d.at(10*time.Millisecond)) {
		t.Fatalf("state %s, hint stale %v", d.m.State(), d.m.HintStale(d.now))
	}
	d.out = d.m.Trouble(d.now, d.out[:0])
	if d.m.State() != reap.Exploring || len(probes(d.out)) != 1 {
		t.Errorf("trouble: %s %v", d.m.State(), d.out)
	}
}

// RFC 5534 §5.2 says a sender in InboundOk MUST include at least one
// received probe, but §6.1 and §6.6 enter InboundOk on payload or a
// Keepalive, when no probe may have arrived. Decision
// (docs/protocol-conformance.md): received probes are included whenever
// any arrived since the last transition to Exploring; without any, the
// InboundOk probe carries Precvd = 0, and a receiver accepts that (§6.8:
// "if no received probes have been reported, the current address pair is
// unchanged").
func TestInboundOkProbeReceivedReports(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	d.toInboundOk() // on payload, no probe received
	ps := probes(d.out)
	if len(ps) != 1 || ps[0].Probe.State != reap.InboundOk || len(ps[0].Probe.Recvd) != 0 {
		t.Fatalf("InboundOk on payload: %v", d.out)
	}
	// A peer probe arrives: every later probe reports it, in any state.
	pr := peerProbe(reap.Exploring, b2, a2, 77)
	d.out = d.m.ProbeReceived(d.at(10*time.Millisecond), b2, a2, pr, d.out[:0])
	d.fire()
	for _, p := range probes(d.out) {
		if len(p.Probe.Recvd) != 1 || p.Probe.Recvd[0].Nonce != 77 {
			t.Errorf("probe %s sta=%s recvd %v, want the peer's probe", p.Pair, p.Probe.State, p.Probe.Recvd)
		}
	}
	// Receiver side: InboundOk with Precvd = 0 is accepted; the pair
	// stays, the machine is Operational and answers.
	r := newDriver(t, &reap.Config{ReturnInterval: -1})
	r.toExploring()
	r.out = r.m.ProbeReceived(r.at(10*time.Millisecond), b1, a1, peerProbe(reap.InboundOk, b1, a1, 5), r.out[:0])
	if r.m.State() != reap.Operational || r.m.Current() != p11 || len(probes(r.out)) == 0 {
		t.Errorf("InboundOk without reports: %s on %s, %v", r.m.State(), r.m.Current(), r.out)
	}
}

// ProbingAtMax: Exploring with the probe interval grown to Max Probe
// Timeout (RFC 5534 §4.3's garbage-collection hint); not before, not in
// InboundOk.
func TestProbingAtMax(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1, MaxProbeTimeout: 8 * time.Second})
	d.toExploring()
	n := 1
	for !d.m.ProbingAtMax() {
		if dt := d.fire(); dt > 8*time.Second*6/5 {
			t.Fatalf("interval %v beyond the maximum", dt)
		}
		n++
		if n > 20 {
			t.Fatal("never at Max Probe Timeout")
		}
	}
	// Intervals 0.5 s after probes 1-3, then 1, 2, 4, 8 s: the one after
	// the 7th probe is the maximum.
	if n != 7 {
		t.Errorf("at Max Probe Timeout after %d probes, want 7", n)
	}
	d.out = d.m.PayloadReceived(d.at(time.Millisecond), d.out[:0])
	if d.m.State() != reap.InboundOk || d.m.ProbingAtMax() {
		t.Errorf("%s, at max %v", d.m.State(), d.m.ProbingAtMax())
	}
}

// The data plane moved payload to p22 on its own (fast reroute): the
// machine explores with p22 first, then the current pair, and confirms
// p22 when the peer reports it; a move while exploring makes it the next
// probe.
func TestFastRerouteProbesMovedPairFirst(t *testing.T) {
	d := newDriver(t, &reap.Config{ReturnInterval: -1, SendTimeout: time.Second})
	d.out = d.m.FastReroute(d.at(time.Second), p22, d.out[:0])
	first := probes(d.out)
	if d.m.State() != reap.Exploring || len(first) != 1 || first[0].Pair != p22 {
		t.Fatalf("after the move: %s %v", d.m.State(), d.out)
	}
	if d.out[0].Kind != reap.StateChange || d.out[0].Reason != reap.ReasonFastReroute {
		t.Errorf("state change: %v", d.out[0])
	}
	d.fire()
	if second := probes(d.out); len(second) != 1 || second[0].Pair != p11 {
		t.Fatalf("second probe %v, want the current pair", second)
	}
	d.confirm(reap.InboundOk, b2, a2, first[0])
	if d.m.State() != reap.Operational || d.m.Current() != p22 {
		t.Fatalf("after confirmation: %s on %s", d.m.State(), d.m.Current())
	}
	if !d.m.HintHold().After(d.now) {
		t.Errorf("HintHold %v not after the confirmation", d.m.HintHold())
	}

	// Already exploring: the moved pair is probed next.
	d2 := newDriver(t, &reap.Config{ReturnInterval: -1})
	d2.out = d2.m.ULPTrouble(d2.at(time.Second), d2.out[:0])
	d2.out = d2.m.FastReroute(d2.at(time.Millisecond), p21, d2.out[:0])
	if len(d2.out) != 0 {
		t.Fatalf("move while exploring acted at once: %v", d2.out)
	}
	d2.fire()
	if ps := probes(d2.out); len(ps) != 1 || ps[0].Pair != p21 {
		t.Fatalf("next probe %v, want p21", ps)
	}
}

// TestActivitySinceStartsSendTimerAtFirstSend: a periodic activity report
// carries the last send; with the first send after the last receive as
// well, the Send Timer starts at that send (RFC 5534 §6.2), not up to one
// report period later.
func TestActivitySinceStartsSendTimerAtFirstSend(t *testing.T) {
	for _, withFirst := range []bool{false, true} {
		d := newDriver(t, &reap.Config{ReturnInterval: -1})
		recv := d.at(time.Second)
		d.out = d.m.Activity(recv, recv, recv, d.out[:0])
		first, last := recv.Add(10*time.Millisecond), recv.Add(5*time.Second)
		report := d.at(6 * time.Second)
		if withFirst {
			d.out = d.m.ActivitySince(report, first, last, recv, d.out[:0])
		} else {
			d.out = d.m.Activity(report, last, recv, d.out[:0])
		}
		dl, running := d.m.SendTimer()
		from := last
		if withFirst {
			from = first
		}
		if st := dl.Sub(from); !running || st < 13500*time.Millisecond || st > 15*time.Second {
			t.Errorf("first send known %v: Send Timer %v (running %v) after %v, want 13.5-15 s", withFirst, st, running, from)
		}
	}
	// A first send from before the last receive is not one.
	d := newDriver(t, &reap.Config{ReturnInterval: -1})
	recv := d.at(time.Second)
	d.out = d.m.ActivitySince(d.at(time.Second), recv.Add(-time.Millisecond), recv.Add(500*time.Millisecond), recv, d.out[:0])
	if dl, running := d.m.SendTimer(); !running || dl.Sub(recv.Add(500*time.Millisecond)) < 13500*time.Millisecond {
		t.Errorf("stale first send started the timer: %v", dl.Sub(recv))
	}
}
