package daemon

import (
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

// Core is what the loop drives: the protocol engine seen through the
// daemon's eyes. The real one is an adapter around *engine.Engine
// (engine_adapter.go) that converts to and from api types; tests use a
// fake. Every method is called from the loop goroutine only, with the
// loop's notion of now.
type Core interface {
	// Inputs.
	HandlePacket(now time.Time, src, dst netip.Addr, b []byte)
	HandleICMP(now time.Time, src netip.Addr, typ, code uint8, invoking []byte)
	HandleTimer(now time.Time)
	NextDeadline() (time.Time, bool)
	HandleActivity(now time.Time, a dataplane.Activity)
	HandleDataPlaneEvent(now time.Time, ev dataplane.Event)
	SetLocalLocators(now time.Time, locs []LocalLocator)
	// PathTrouble reports whether the context of a ULID pair knows of no
	// working pair right now (REAP exploring): TCP retransmission
	// timeouts on it are then answered per RFC 6069 (LoopConfig.TCPLD).
	PathTrouble(local, peer netip.Addr) bool

	// Management, in api terms. Errors should be *api.Error.
	Contexts(now time.Time) []api.Context
	Context(now time.Time, ref api.ContextRef) (api.Context, error)
	CreateContext(now time.Time, p api.CreateParams) (api.Context, error)
	DeleteContext(now time.Time, ref api.ContextRef) error
	Update(now time.Time, ref api.ContextRef) error
	Explore(now time.Time, ref api.ContextRef) error
	Pin(now time.Time, p api.PinParams) error
	Unpin(now time.Time, ref api.ContextRef) error
	SetSendTimeout(now time.Time, ref api.ContextRef, d time.Duration) error
	Locators(now time.Time) api.Locators
	Counters() map[string]uint64
}

// LocalLocator is one usable local address as discovered on the host and
// filtered by [locators].
type LocalLocator struct {
	Addr       netip.Addr
	Interface  string
	Deprecated bool
	// Method is how peers verify it (MethodHBA, MethodCGA, or MethodNone:
	// usable as a ULID but not offered as an alternative locator).
	Method uint8
}

// Packet is one received IP protocol 140 packet (control message, or a
// payload extension header the data plane did not recognise).
type Packet struct {
	Src, Dst netip.Addr
	Data     []byte
}

// ICMPError is an ICMPv6 error whose invoking packet was a Shim6 one, or
// one between locators of a context (RFC 5533 §8).
type ICMPError struct {
	Src        netip.Addr
	Type, Code uint8
	Invoking   []byte
}
