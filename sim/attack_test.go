package sim_test

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
	"github.com/goshim6/goshim6/wire"
)

// RFC 5533 §4.4: HBA verification prevents "an attacker from redirecting
// the packet stream to somewhere else". M sets up a context with A and
// announces, besides its own locators, the address of an uninvolved host V
// as one of its HBA locators. A marks it unverified; when M's own locators
// stop answering, A explores but never sends a single packet to V.
func TestAttackerAnnouncesForeignLocator(t *testing.T) {
	var log []string
	w := sim.New(sim.Options{Seed: 70, Trace: func(l string) { log = append(log, l) }})
	idA, _ := sim.HBAIdentity(1, aPfx...)
	idM, _ := sim.HBAIdentity(2, "2001:db8:e1::/64", "2001:db8:e2::/64")
	idV, _ := sim.HBAIdentity(3, "2001:db8:f1::/64")
	a := w.MustAddHost(sim.HostConfig{Name: "A", Identity: idA, TriggerPackets: 5})
	v := w.MustAddHost(sim.HostConfig{Name: "V", Identity: idV})
	victim := v.ULID()
	m := w.MustAddHost(sim.HostConfig{Name: "M", Identity: idM, TriggerPackets: 5,
		Claim: []engine.LocalLocator{{Addr: victim, Method: engine.MethodHBA, Priority: 0}}})
	toVictim := 0
	w.Tap(func(p sim.Packet) {
		if p.Dst == victim {
			toVictim++
		}
	})
	s := &scene{t: t, w: w, a: a, b: m}
	s.f = w.NewFlow(a, a.ULID(), m, m.ULID(), sim.FlowOptions{})
	_, _ = s.established(5 * time.Second)
	ca := s.ctx(a, m)
	found := false
	for _, l := range ca.PeerLocators {
		if l.Addr == victim {
			found = true
			if l.Verified {
				t.Errorf("A accepted %s as M's locator", victim)
			}
		} else if !l.Verified {
			t.Errorf("M's own locator %s not verified", l.Addr)
		}
	}
	if !found {
		t.Fatalf("M's claim did not reach A: %+v", ca.PeerLocators)
	}
	if a.CountEvents(engine.EventVerificationFailed) == 0 {
		t.Error("no verification-failed event")
	}
	// M's locators go silent: A explores everything it may use.
	w.CutLocator(m.Locator(0))
	w.CutLocator(m.Locator(1))
	w.Run(3 * time.Minute)
	if !hasReap(a, "exploring") {
		t.Error("A did not explore")
	}
	if toVictim != 0 || v.Received != 0 {
		t.Errorf("%d packets sent towards the victim (%d arrived)", toVictim, v.Received)
	}
	if t.Failed() {
		t.Log(log)
	}
}

// RFC 5533 §4.4: "The context-establishment messages use nonces to prevent
// replay attacks". An I2 captured on the wire is replayed, later, after the
// context is gone and the validator has expired (VALIDATOR_MIN_LIFETIME,
// §7.10.1), from its original source and from the attacker's own address:
// B creates no state and sends no R2.
func TestReplayOldI2Refused(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 71, noTrigger: true})
	var i2 *sim.Packet
	s.w.Tap(func(p sim.Packet) {
		if p.IsControl() && p.Type() == wire.TypeI2 && i2 == nil {
			c := p
			i2 = &c
		}
	})
	if _, err := s.a.Engine().CreateContext(s.w.Now(), s.a.ULID(), s.b.ULID()); err != nil {
		t.Fatal(err)
	}
	_, cb := s.established(5 * time.Second)
	if i2 == nil {
		t.Fatal("no I2 captured")
	}
	// Both ends forget the context (e.g. garbage collection).
	if err := s.b.Engine().DeleteContext(s.w.Now(), cb.LocalTag); err != nil {
		t.Fatal(err)
	}
	ca := s.ctx(s.a, s.b)
	if err := s.a.Engine().DeleteContext(s.w.Now(), ca.LocalTag); err != nil {
		t.Fatal(err)
	}
	s.w.Run(10 * time.Minute)
	r2 := s.countType(uint8(wire.TypeR2))
	created := s.b.Engine().Stats().ContextsCreated
	rx := s.b.Engine().Stats().RxByType[wire.TypeI2]
	s.w.Inject(*i2)
	attacker := *i2
	attacker.Src = netip.MustParseAddr("2001:db8:bad::1")
	s.w.Inject(attacker)
	s.w.Run(5 * time.Second)
	if n := len(s.b.Engine().Contexts()); n != 0 {
		t.Errorf("replayed I2 created %d contexts at B:\n%s", n, s.w.Summary())
	}
	if got := s.b.Engine().Stats().RxByType[wire.TypeI2] - rx; got != 2 {
		t.Errorf("B received %d of the 2 replayed I2s", got)
	}
	if *r2 != 0 || s.b.Engine().Stats().ContextsCreated != created {
		t.Errorf("B answered the replay: %d R2", *r2)
	}
}

// RFC 5533 §4.4: "The first message does not create any state on the
// responder." A flood of I1s from random sources costs B no context and
// its R1 answers stay within the configured rate.
func TestI1FloodCreatesNoState(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 72, flow: &sim.FlowOptions{}, engine: engine.Config{R1Rate: 500, R1Burst: 50}})
	s.established(5 * time.Second)
	r1 := s.countType(uint8(wire.TypeR1))
	rng := s.w.Rand()
	const n, dur = 50000, 10 * time.Second
	for i := range n {
		var src [16]byte
		binary.BigEndian.PutUint64(src[:8], 0x2001_0db8_dead_0000|uint64(rng.IntN(1<<16)))
		binary.BigEndian.PutUint64(src[8:], rng.Uint64())
		b, err := wire.Marshal(&wire.I1{InitiatorTag: rng.Uint64() & dataplane.TagMask, InitiatorNonce: rng.Uint32()})
		if err != nil {
			t.Fatal(err)
		}
		p := sim.Packet{Src: netip.AddrFrom16(src), Dst: s.b.ULID(), Control: b}
		s.w.At(s.w.Now().Add(dur*time.Duration(i)/n), func() { s.w.Inject(p) })
	}
	s.w.Run(dur + time.Second)
	st := s.b.Engine().Stats()
	if st.Contexts != 1 || st.Pending != 0 {
		t.Errorf("after the flood B has %d contexts, %d pending", st.Contexts, st.Pending)
	}
	if max := 500*11 + 50; *r1 > max {
		t.Errorf("B sent %d R1s, more than the rate allows (%d)", *r1, max)
	}
	if *r1 == 0 {
		t.Error("B answered no I1 at all")
	}
	s.delivering(3 * time.Second)
}

// RFC 5533 §7.17: an R1bis answers a payload header with an unknown tag,
// but an attacker spraying random tags must not turn B into an amplifier:
// the R1bis rate is bounded, and the real context keeps working.
func TestRandomTagSprayBoundedR1bis(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 73, flow: &sim.FlowOptions{}})
	s.established(5 * time.Second)
	r1bis := s.countType(uint8(wire.TypeR1bis))
	rng := s.w.Rand()
	const n, dur = 50000, 10 * time.Second
	for i := range n {
		p := sim.Packet{Src: netip.MustParseAddr("2001:db8:bad::1"), Dst: s.b.Locator(i % 2),
			Data: dataplane.Packet{Shim: true, Tag: rng.Uint64() & dataplane.TagMask, Proto: 17, Payload: make([]byte, 16)}}
		p.Data.Src, p.Data.Dst = p.Src, p.Dst
		s.w.At(s.w.Now().Add(dur*time.Duration(i)/n), func() { s.w.Inject(p) })
	}
	s.w.Run(dur + time.Second)
	// Defaults: 100/s, burst 20.
	if max := 100*11 + 20; *r1bis > max {
		t.Errorf("B sent %d R1bis for %d sprayed packets, more than the rate allows (%d)", *r1bis, n, max)
	}
	if st := s.b.Engine().Stats(); st.Contexts != 1 {
		t.Errorf("B has %d contexts", st.Contexts)
	}
	if u := s.b.DataPlane().Stats().UnknownTag; u != n {
		t.Errorf("data plane saw %d unknown tags, want %d", u, n)
	}
	s.delivering(3 * time.Second)
}
