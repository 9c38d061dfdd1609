package reap_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// FuzzMachine drives one machine with an arbitrary sequence of inputs (the
// peer's probes are attacker-controlled) and checks its invariants: no
// panic, reports bounded, probes only to verified usable pairs, a switch
// only to a pair the peer confirmed, deadlines never in the past.
func FuzzMachine(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 200, 5, 1, 5, 2, 7, 7, 7, 7, 3, 3, 3})
	f.Add([]byte{6, 0, 0, 6, 1, 1, 6, 2, 2, 8, 8, 8, 8, 8, 8, 8, 8})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := &reap.Config{Rand: seeded(7), MaxReports: 4, ReturnInterval: 5 * time.Second}
		local := locs("2001:db8:a1::1", "2001:db8:a2::1")
		peer := []reap.Locator{loc("2001:db8:b1::1"), loc("2001:db8:b2::1"), loc("2001:db8:b3::1", unverified)}
		m := reap.New(cfg, t0, p11, p11, local, peer)
		now := t0
		var out []reap.Action
		sent := map[uint32]reap.Pair{}
		confirmed := map[reap.Pair]bool{p11: true}
		addrs := []netip.Addr{a1, a2, b1, b2, addr("2001:db8:b3::1"), addr("2001:db8:ffff::1")}
		for i := 0; i < len(in); i++ {
			b := in[i]
			next := func() byte {
				if i+1 < len(in) {
					i++
					return in[i]
				}
				return 0
			}
			now = now.Add(time.Duration(b%16) * 100 * time.Millisecond)
			switch b % 10 {
			case 0:
				out = m.PayloadSent(now, out[:0])
			case 1:
				out = m.PayloadReceived(now, out[:0])
			case 2:
				out = m.KeepaliveReceived(now, out[:0])
			case 3:
				out = m.ULPTrouble(now, out[:0])
			case 4:
				out = m.Activity(now, now.Add(-time.Duration(next())*time.Millisecond), now.Add(-time.Duration(next())*time.Millisecond), out[:0])
			case 5, 6:
				src, dst := addrs[int(next())%len(addrs)], addrs[int(next())%len(addrs)]
				p := &reap.Probe{State: reap.State(next() % 4), Sent: []reap.ProbeReport{{Src: src, Dst: dst, Nonce: uint32(next())}}}
				for range next() % 20 {
					// Reports: sometimes a nonce we really sent.
					r := reap.ProbeReport{Src: addrs[int(next())%len(addrs)], Dst: addrs[int(next())%len(addrs)], Nonce: uint32(next())}
					if b%10 == 6 {
						for n, pr := range sent {
							r = reap.ProbeReport{Src: pr.Local, Dst: pr.Peer, Nonce: n}
							confirmed[pr] = true
							break
						}
					}
					p.Recvd = append(p.Recvd, r)
				}
				out = m.ProbeReceived(now, src, dst, p, out[:0])
			case 7:
				if dl, ok := m.NextDeadline(); ok {
					if dl.After(now) {
						now = dl
					}
					out = m.Timer(now, out[:0])
				}
			case 8:
				l := local
				if next()%2 == 0 {
					l = append([]reap.Locator{loc("2001:db8:a1::1", flags(reap.Broken))}, local[1:]...)
				}
				out = m.SetLocators(now, l, peer, out[:0])
			case 9:
				if next()%2 == 0 {
					out = m.Pin(now, p22, out[:0])
					confirmed[p22] = true
				} else {
					out = m.Unpin(now, out[:0])
				}
			}
			for _, a := range out {
				switch a.Kind {
				case reap.SendProbe:
					if len(a.Probe.Sent) == 0 || len(a.Probe.Sent) > 4 || len(a.Probe.Recvd) > 4 {
						t.Fatalf("probe reports out of bounds: %d sent, %d received", len(a.Probe.Sent), len(a.Probe.Recvd))
					}
					if a.Pair.Peer == addr("2001:db8:b3::1") || a.Pair.Peer == addr("2001:db8:ffff::1") {
						t.Fatalf("probe to an unverified locator: %v", a)
					}
					if a.Probe.Sent[0].Src != a.Pair.Local || a.Probe.Sent[0].Dst != a.Pair.Peer {
						t.Fatalf("Sent[0] does not describe the probe: %v %+v", a.Pair, a.Probe.Sent[0])
					}
					sent[a.Probe.Sent[0].Nonce] = a.Pair
				case reap.SwitchPair:
					if !confirmed[a.Pair] {
						t.Fatalf("switch to %s which the peer never confirmed", a.Pair)
					}
				}
			}
			if dl, ok := m.NextDeadline(); ok && dl.Before(now) {
				t.Fatalf("deadline %v before now %v", dl, now)
			}
			if s := m.State(); s > reap.InboundOk {
				t.Fatalf("state %d", s)
			}
		}
	})
}
