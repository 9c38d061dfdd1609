package engine

import (
	"net/netip"
	"time"
)

// EventKind tells what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventStateChange: a context moved to Event.State.
	EventStateChange EventKind = iota + 1
	// EventContextUp: a context reached ESTABLISHED (first time, or again
	// after recovery).
	EventContextUp
	// EventContextDown: a context was removed (Reason says why).
	EventContextDown
	// EventLocatorSwitch: the current locator pair changed to
	// Local/Peer (Reason says why).
	EventLocatorSwitch
	// EventVerificationFailed: a peer locator list, PDS or signature did
	// not verify (Peer is the locator when known).
	EventVerificationFailed
	// EventLocatorsUpdated: the peer's locator set or preferences changed.
	EventLocatorsUpdated
	// EventContextConfusion: a context was removed because the peer
	// reused its tag (RFC 5533 §7.15).
	EventContextConfusion
	// EventRecovery: context recovery started (R1bis received, I2bis
	// sent) or answered (R1bis sent).
	EventRecovery
	// EventPeerError: the peer sent a Shim6 Error message (Code).
	EventPeerError
	// EventLimit: a bound was hit (Reason names it); the input was
	// dropped.
	EventLimit
	// EventInsecure: the engine runs without locator verification.
	EventInsecure
	// EventUpdateAcked: the peer acknowledged our Update Request.
	EventUpdateAcked
	// EventReapState: REAP changed state or was told of trouble (Reason).
	EventReapState
)

var eventNames = [...]string{
	EventStateChange:        "state-change",
	EventContextUp:          "context-up",
	EventContextDown:        "context-down",
	EventLocatorSwitch:      "locator-switch",
	EventVerificationFailed: "verification-failed",
	EventLocatorsUpdated:    "locators-updated",
	EventContextConfusion:   "context-confusion",
	EventRecovery:           "recovery",
	EventPeerError:          "peer-error",
	EventLimit:              "limit",
	EventInsecure:           "insecure",
	EventUpdateAcked:        "update-acked",
	EventReapState:          "reap",
}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is reported through Deps.Events for logs, metrics and the
// management API. Handlers run synchronously on the engine's goroutine and
// must not call back into the engine.
type Event struct {
	Time     time.Time
	Kind     EventKind
	LocalTag uint64
	// LocalULID, PeerULID and FII identify the context (zero when the
	// event is not about a context).
	LocalULID, PeerULID netip.Addr
	FII                 uint32
	State               State
	// Local and Peer: the locator pair for EventLocatorSwitch, the
	// offending locator in Peer for EventVerificationFailed.
	Local, Peer netip.Addr
	// Code is the Shim6 Error code for EventPeerError.
	Code   uint8
	Reason string
}
