package sim_test

import (
	"testing"
	"time"

	"github.com/goshim6/goshim6/sim"
)

func TestZZDebug(t *testing.T) {
	s := newScene(t, sceneOpts{seed: 50, flow: &sim.FlowOptions{}, aOffer: []int{0}})
	s.established(5 * time.Second)
	_ = s.a.AddLocator(s.a.Locator(1))
	s.w.Run(2 * time.Second)
	n := len(s.log)
	s.w.Tap(func(p sim.Packet) {
		if p.IsControl() {
			s.log = append(s.log, "   pkt "+p.Src.String()+" -> "+p.Dst.String()+" "+p.Type().String())
		}
	})
	_ = s.a.RemoveLocator(s.a.ULID())
	s.w.Run(3 * time.Second)
	for _, l := range s.log[n:] {
		t.Log(l)
	}
	t.Log(s.w.Summary())
}
