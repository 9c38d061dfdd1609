// Package sim is a deterministic network simulator for Shim6: hosts with
// several locators each run a real engine.Engine over the in-memory data
// plane (dataplane.Memory), connected by paths with delay, jitter, loss,
// duplication, reordering and partitions (one direction or both), on a
// virtual clock. Upper-layer flows send over the ULID pair through each
// host's data plane, so end-to-end delivery can be asserted; the data plane
// feeds activity (polled) and events (unknown tag, trigger, ULP trouble) to
// the engine the way the daemon does.
//
// Everything random derives from Options.Seed: a run is reproducible to
// the packet. See docs/simulator.md for the scenarios, which follow the
// story of RFC 5533 section 4, and MeasureFailover for the failover-time
// benchmark.
package sim
