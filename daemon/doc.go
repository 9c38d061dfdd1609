// Package daemon is shim6d: configuration, state directory, the event loop
// that owns the protocol engine, the management API backend, metrics and
// the service lifecycle (systemd notify, reload, stop).
//
// # The loop
//
// One goroutine (Loop.Run) owns the engine. Every input — received
// packets, ICMPv6 errors, data-plane events, per-context activity, address
// changes, management requests and the engine's own timer — reaches it
// over a channel; the engine is never touched elsewhere. The loop is
// written against the small Core interface (core.go) so that it is tested
// with a fake before the real engine is plugged in through an adapter.
package daemon
