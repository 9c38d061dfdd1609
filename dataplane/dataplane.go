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

	// Fast reroute (docs/dataplane.md): the data plane may move the
	// context's outbound traffic to another verified locator pair on its
	// own, at once, and tell the engine (EventFastReroute,
	// EventPeerMoved), which confirms the move with REAP or undoes it by
	// installing the mapping again. Any Install ends a move. The zero
	// values turn it off.

	// Backup is the pair outbound traffic moves to when the upper layer
	// reports trouble (a TCP retransmission timeout): the best verified
	// pair that shares no locator with the current one. Zero: none.
	Backup Pair
	// BackupAfter: no move to Backup before this instant (a fresh
	// confirmation of the current pair makes retransmission timeouts
	// stale, see engine/reap Machine.HintStale).
	BackupAfter time.Time
	// Pairs are the pairs the context may use (a usable local locator, a
	// verified peer locator), best first. When the peer's payload
	// arrives on another pair than the current one whose reverse is
	// listed, outbound traffic follows it (EventPeerMoved). Empty: never.
	Pairs []Pair
	// PeerPair is a pair, seen from this host (Local is ours), on which
	// the peer is known to send although it is not the current pair (our
	// previous pair, which the peer leaves a round trip after our switch;
	// or one the engine rejected after the peer moved there): arrivals on
	// it do not move outbound traffic. Zero: none.
	PeerPair Pair
	// PeerPairUntil ends PeerPair (zero: it lasts until the next Install).
	PeerPairUntil time.Time
}

// Pair is a locator pair seen from this host: packets go from Local (ours)
// to Peer.
type Pair struct {
	Local, Peer netip.Addr
}

// IsValid reports whether both addresses are set.
func (p Pair) IsValid() bool { return p.Local.IsValid() && p.Peer.IsValid() }

func (p Pair) String() string { return p.Local.String() + " > " + p.Peer.String() }

// Current returns the mapping's current locator pair.
func (m Mapping) Current() Pair { return Pair{m.LocalLocator, m.PeerLocator} }

// ULIDs returns the mapping's ULID pair.
func (m Mapping) ULIDs() Pair { return Pair{m.LocalULID, m.PeerULID} }

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
	// FirstSent is the earliest packet sent after LastReceived, when the
	// data plane knows it (zero otherwise): REAP's Send Timer starts at the
	// first packet that goes unanswered (RFC 5534 §6.2), which a periodic
	// read of LastSent alone would put up to one read period later.
	FirstSent          time.Time
	TxPackets, TxBytes uint64
	RxPackets, RxBytes uint64
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
	// EventFastReroute: the upper layer saw trouble (a TCP retransmission
	// timeout) and the data plane moved the context's outbound traffic to
	// its Backup pair (Pair) already. The engine confirms the pair with
	// REAP or undoes the move (both by installing a mapping).
	EventFastReroute
	// EventPeerMoved: the peer's payload arrived on another verified pair
	// than the current one and the data plane moved outbound traffic to
	// its reverse (Pair, ours first). The engine confirms or undoes it.
	EventPeerMoved
)

func (k EventKind) String() string {
	switch k {
	case EventUnknownTag:
		return "unknown-tag"
	case EventTrigger:
		return "trigger"
	case EventULPTrouble:
		return "ulp-trouble"
	case EventFastReroute:
		return "fast-reroute"
	case EventPeerMoved:
		return "peer-moved"
	}
	return "unknown"
}

// Event is one report from the data plane to the daemon.
type Event struct {
	Kind EventKind
	// Src and Dst are the addresses as seen on the packet: the locators for
	// EventUnknownTag, the ULIDs (local = Src) for the others.
	Src, Dst netip.Addr
	// Tag is the unknown context tag (EventUnknownTag), or the local tag
	// of the context (EventFastReroute, EventPeerMoved; 0 when unknown).
	Tag uint64
	// Pair is the pair outbound traffic moved to (EventFastReroute,
	// EventPeerMoved).
	Pair Pair
	// TCP connection of a retransmission timeout (EventULPTrouble and
	// EventFastReroute from a TCP RTO; zero when unknown): the local and
	// remote ports and the first unacknowledged sequence number, enough
	// to quote the segment being retransmitted in an ICMPv6 error
	// (RFC 6069 TCP-LD, daemon reap.tcp_ld).
	LocalPort, PeerPort uint16
	SndUna              uint32
	// Packets and Bytes counted for the pair (EventTrigger only).
	Packets, Bytes uint64
	// Time the event was seen.
	Time time.Time
}
