package engine

// Stats are the engine's counters (see Engine.Stats).
type Stats struct {
	// Gauges.
	Contexts, Established, Pending, Recovering, NegativeCache, TimerQueue int

	RxPackets  uint64
	Dropped    uint64
	TxMessages uint64
	TxErrors   uint64
	// RxByType and TxByType count control messages by type (index = the
	// Shim6 type, 1-68).
	RxByType, TxByType [69]uint64

	R1Limited, R1bisLimited, ErrorsLimited uint64

	ContextsCreated       uint64
	HandshakesEstablished uint64
	HandshakesFailed      uint64
	NoSupport             uint64
	Recoveries            uint64
	ContextsRemoved       uint64
	ContextsIdle          uint64
	// ContextsUnreachable: collected while probing at Max Probe Timeout
	// with nothing from the peer for the idle time (RFC 5534 §4.3).
	ContextsUnreachable  uint64
	ContextsConfused     uint64
	VerificationFailures uint64
	UpdatesSent          uint64
	UpdatesAcked         uint64
	LocatorSwitches      uint64
	DataPlaneErrors      uint64
	LimitDrops           uint64
	// ULPHintsIgnored counts ULP trouble hints that arrived just after
	// the peer confirmed the current pair (reap.Machine.HintStale).
	ULPHintsIgnored uint64
	// Fast reroute (fastreroute.go): moves the data plane made on its own
	// after a ULP hint (Engaged) or following the peer (PeerMoves), and
	// how they ended: REAP confirmed the pair (Confirmed) or installed
	// another one (Undone).
	FastReroutesEngaged, PeerMovesFollowed    uint64
	FastReroutesConfirmed, FastReroutesUndone uint64

	// Drops counts discarded inputs by reason.
	Drops map[string]uint64
}

type dropReason uint8

const (
	dropAddress dropReason = iota
	dropMalformed
	dropNoContext
	dropWrongState
	dropLocators
	dropValidator
	dropVerification
	dropNonce
	dropLimit
	dropCritical
	dropUnknownType
	dropRateLimited
	dropNotLocal
	dropSelf
	numDrops
)

var dropNames = [numDrops]string{
	dropAddress:      "bad-address",
	dropMalformed:    "malformed",
	dropNoContext:    "no-context",
	dropWrongState:   "wrong-state",
	dropLocators:     "locator-mismatch",
	dropValidator:    "bad-validator",
	dropVerification: "verification",
	dropNonce:        "nonce-mismatch",
	dropLimit:        "limit",
	dropCritical:     "critical-option",
	dropUnknownType:  "unknown-type",
	dropRateLimited:  "rate-limited",
	dropNotLocal:     "not-local-ulid",
	dropSelf:         "self",
}

func (r dropReason) String() string {
	if r < numDrops {
		return dropNames[r]
	}
	return "unknown"
}
