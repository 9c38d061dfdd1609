// Package dataplane defines the edge between the Shim6 protocol engine and
// whatever moves packets: the eBPF data plane (package dataplane/ebpf) on a
// real host, or the in-memory double used by the simulator and the tests.
//
// The engine owns all protocol state; the data plane only holds, per
// context, what it needs to rewrite packets (RFC 5533 §6.1, §6.3) and counts
// what it sees so that REAP (RFC 5534) can run its timers.
package dataplane

import (
	"net/netip"
	"time"
)

// TagMask keeps the 47 bits of a Shim6 context tag (RFC 5533 §5.1).
const TagMask = 1<<47 - 1

// Mapping is everything the data plane needs for one context.
//
// Outbound, packets from LocalULID to PeerULID are sent with source
// LocalLocator and destination PeerLocator; when the locator pair differs
// from the ULID pair a payload extension header carrying PeerTag is inserted
// (RFC 5533 §5.2). When the locators equal the ULIDs the packets are left
// untouched (RFC 5533 §4.6).
//
// Inbound, packets with a payload extension header whose tag is LocalTag are
// stripped and their addresses restored to the ULID pair (RFC 5533 §6.3).
type Mapping struct {
	LocalULID, PeerULID       netip.Addr
	LocalLocator, PeerLocator netip.Addr
	// LocalTag is the context tag this host allocated; the peer puts it in
	// the payload extension headers it sends to us. Unique on this host.
	LocalTag uint64
	// PeerTag is the context tag the peer allocated; we put it in the
	// payload extension headers we send.
	PeerTag uint64
	// FII is the Forked Instance Identifier (RFC 5533 §5.15.6); 0 for the
	// default context of a ULID pair. Only the default context carries
	// outbound traffic that is not otherwise steered (RFC 6316).
	FII uint32
}

// Shimmed reports whether the current locators differ from the ULIDs, i.e.
// whether packets must be rewritten and carry the payload extension header.
func (m Mapping) Shimmed() bool {
	return m.LocalLocator != m.LocalULID || m.PeerLocator != m.PeerULID
}

// Activity is what the data plane has seen of one context since it was
// installed. Times are wall-clock instants converted from the data plane's
// own clock; zero when nothing was seen yet.
type Activity struct {
	LocalTag               uint64
	LastSent, LastReceived time.Time
	TxPackets, TxBytes     uint64
	RxPackets, RxBytes     uint64
}

// DataPlane is what the engine drives. Implementations must be safe to call
// from the single goroutine that owns the engine; they must not call back
// into the engine.
type DataPlane interface {
	// Install creates or replaces the mapping of the context identified by
	// m.LocalTag. Replacing changes the locator pair atomically for the
	// packets that follow.
	Install(m Mapping) error
	// Remove deletes the mapping of the context with the given local tag.
	// Removing an unknown tag is not an error.
	Remove(localTag uint64) error
}

// ActivitySource is read by the daemon's loop, in batches, to feed the
// engine's REAP timers.
type ActivitySource interface {
	// ReadActivity calls fn once for every installed context.
	ReadActivity(fn func(Activity)) error
}

// EventKind tells what a data-plane event reports.
type EventKind uint8

const (
	// EventUnknownTag: a payload extension header arrived with a context
	// tag that matches no installed context (RFC 5533 §7.17: answer R1bis).
	EventUnknownTag EventKind = iota + 1
	// EventTrigger: the traffic between a ULID pair crossed the configured
	// threshold; a context should be established (RFC 5533 §7.2).
	EventTrigger
	// EventULPTrouble: the upper layer sees trouble between a ULID pair,
	// e.g. a TCP retransmission timeout (RFC 5534 §3.5: "positive/negative
	// advice"); REAP may start exploring at once.
	EventULPTrouble
)

func (k EventKind) String() string {
	switch k {
	case EventUnknownTag:
		return "unknown-tag"
	case EventTrigger:
		return "trigger"
	case EventULPTrouble:
		return "ulp-trouble"
	}
	return "unknown"
}

// Event is one report from the data plane to the daemon.
type Event struct {
	Kind EventKind
	// Src and Dst are the addresses as seen on the packet: the locators for
	// EventUnknownTag, the ULIDs (local = Src) for the others.
	Src, Dst netip.Addr
	// Tag is the unknown context tag (EventUnknownTag only).
	Tag uint64
	// Packets and Bytes counted for the pair (EventTrigger only).
	Packets, Bytes uint64
	// Time the event was seen.
	Time time.Time
}
