package daemon

import (
	"reflect"
	"testing"

	"github.com/goshim6/goshim6/engine"
)

// TestStatsCountersComplete: every uint64 counter of engine.Stats reaches
// the daemon's counters (shim6ctl stats, metrics) under some name.
func TestStatsCountersComplete(t *testing.T) {
	var s engine.Stats
	v := reflect.ValueOf(&s).Elem()
	want := map[uint64]string{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Uint64 {
			continue
		}
		n := uint64(1_000_000 + i)
		f.SetUint(n)
		want[n] = v.Type().Field(i).Name
	}
	got := map[uint64]bool{}
	for _, n := range statsCounters(s) {
		got[n] = true
	}
	for n, name := range want {
		if !got[n] {
			t.Errorf("engine.Stats.%s is not among the daemon's counters", name)
		}
	}
}
