package sim_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/engine"
	"github.com/goshim6/goshim6/sim"
)

// scene is the cast of most scenarios: hosts A and B, each multihomed to
// two providers (a1, a2 and b1, b2), an HBA identity each, a flow between
// their first addresses (the ULIDs).
type scene struct {
	t    *testing.T
	w    *sim.World
	a, b *sim.Host
	f    *sim.Flow
	log  []string
}

type sceneOpts struct {
	seed      uint64
	engine    engine.Config // for both hosts
	aPrefixes []string
	bPrefixes []string
	aOffer    []int // indexes of the identity's locators A has at start (nil: all)
	flow      *sim.FlowOptions
	trigger   uint64 // default 5
	noTrigger bool
	poll      time.Duration
	jitter    time.Duration // HostConfig.ActivityClockJitter of both hosts
	aPlain    []netip.Addr  // A's addresses outside its identity (Method 0)
	path      sim.Path
}

var (
	aPfx = []string{"2001:db8:a1::/64", "2001:db8:a2::/64"}
	bPfx = []string{"2001:db8:b1::/64", "2001:db8:b2::/64"}
)

func newScene(t *testing.T, o sceneOpts) *scene {
	t.Helper()
	if o.aPrefixes == nil {
		o.aPrefixes = aPfx
	}
	if o.bPrefixes == nil {
		o.bPrefixes = bPfx
	}
	if o.trigger == 0 {
		o.trigger = 5
	}
	if o.noTrigger {
		o.trigger = 0
	}
	s := &scene{t: t}
	s.w = sim.New(sim.Options{Seed: o.seed, Default: o.path, Trace: func(l string) { s.log = append(s.log, l) }})
	idA, err := sim.HBAIdentity(o.seed*2+1, o.aPrefixes...)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := sim.HBAIdentity(o.seed*2+2, o.bPrefixes...)
	if err != nil {
		t.Fatal(err)
	}
	var offer []netip.Addr
	for _, i := range o.aOffer {
		offer = append(offer, idA.Locators[i].Addr)
	}
	s.a = s.w.MustAddHost(sim.HostConfig{Name: "A", Identity: idA, Offer: offer, Plain: o.aPlain, Engine: o.engine, TriggerPackets: o.trigger, ActivityPoll: o.poll, ActivityClockJitter: o.jitter})
	s.b = s.w.MustAddHost(sim.HostConfig{Name: "B", Identity: idB, Engine: o.engine, TriggerPackets: o.trigger, ActivityPoll: o.poll, ActivityClockJitter: o.jitter})
	if o.flow != nil {
		s.f = s.w.NewFlow(s.a, s.a.ULID(), s.b, s.b.ULID(), *o.flow)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("trace (last 80 lines):\n%s", s.tail(80))
			t.Logf("%s", s.w.Summary())
		}
	})
	return s
}

func (s *scene) tail(n int) string {
	l := s.log
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// ctx returns h's context with its peer on the ULIDs, failing if absent.
func (s *scene) ctx(h *sim.Host, peer *sim.Host) engine.ContextInfo {
	s.t.Helper()
	c, ok := h.Context(h.ULID(), peer.ULID())
	if !ok {
		s.t.Fatalf("%s has no context with %s", h.Name, peer.Name)
	}
	return c
}

// established runs until both ends are ESTABLISHED (or fails after limit).
func (s *scene) established(limit time.Duration) (engine.ContextInfo, engine.ContextInfo) {
	s.t.Helper()
	ok := s.w.RunUntilTrue(limit, func() bool {
		ca, okA := s.a.Context(s.a.ULID(), s.b.ULID())
		cb, okB := s.b.Context(s.b.ULID(), s.a.ULID())
		return okA && okB && ca.State == engine.StateEstablished && cb.State == engine.StateEstablished
	})
	if !ok {
		s.t.Fatalf("context not established within %v", limit)
	}
	return s.ctx(s.a, s.b), s.ctx(s.b, s.a)
}

// current returns the locator pair h's context uses.
func (s *scene) current(h, peer *sim.Host) (netip.Addr, netip.Addr) {
	c := s.ctx(h, peer)
	return c.LocalLocator, c.PeerLocator
}

// delivering checks that both directions deliver during the next d.
func (s *scene) delivering(d time.Duration) {
	s.t.Helper()
	ab, ba := s.f.AtoB().Received, s.f.BtoA().Received
	s.w.Run(d)
	want := uint64(float64(d) / float64(100*time.Millisecond) * 0.8)
	if got := s.f.AtoB().Received - ab; got < want {
		s.t.Errorf("A->B delivered %d packets in %v, want >= %d", got, d, want)
	}
	if got := s.f.BtoA().Received - ba; got < want {
		s.t.Errorf("B->A delivered %d packets in %v, want >= %d", got, d, want)
	}
	if s.a.Misdelivered+s.b.Misdelivered != 0 {
		s.t.Errorf("misdelivered: A %d B %d", s.a.Misdelivered, s.b.Misdelivered)
	}
}

// countType counts control messages of type typ put on the network from
// now on.
func (s *scene) countType(typ uint8) *int {
	n := new(int)
	s.w.Tap(func(p sim.Packet) {
		if p.IsControl() && uint8(p.Type()) == typ {
			*n++
		}
	})
	return n
}
