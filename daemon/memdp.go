package daemon

import (
	"context"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

// MemoryDataPlane runs shim6d's control plane over the in-memory data
// plane double: contexts are negotiated and kept, nothing is rewritten.
// For tests and for trying the control plane without BPF.
type MemoryDataPlane struct {
	*dataplane.Memory
	// Events, if set, is read by Run and handed to the loop.
	Events chan dataplane.Event
}

// NewMemoryDataPlane returns an empty one.
func NewMemoryDataPlane() *MemoryDataPlane {
	m := &MemoryDataPlane{Events: make(chan dataplane.Event, 1024)}
	m.Memory = dataplane.NewMemory(dataplane.MemoryOptions{Now: time.Now, OnEvent: func(ev dataplane.Event) {
		select {
		case m.Events <- ev:
		default:
		}
	}})
	return m
}

// Run implements DataPlane.
func (m *MemoryDataPlane) Run(ctx context.Context, ev func(dataplane.Event)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-m.Events:
			ev(e)
		}
	}
}

// Adopted implements DataPlane: nothing survives a restart in memory.
func (m *MemoryDataPlane) Adopted() []dataplane.Mapping { return nil }

// Kind implements DataPlane.
func (m *MemoryDataPlane) Kind() string { return "memory" }

// Counters implements DataPlane.
func (m *MemoryDataPlane) Counters() map[string]uint64 {
	s := m.Stats()
	return map[string]uint64{"dataplane_mappings": uint64(m.Len()), "dataplane_installs": s.Installs, "dataplane_removes": s.Removes}
}

// Close implements DataPlane.
func (m *MemoryDataPlane) Close(keep bool) error { return nil }
