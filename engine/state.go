package engine

// State is the state of a ULID-pair context (RFC 5533 §6.2).
type State uint8

// Context states (RFC 5533 §6.2). IDLE is the state of a context that does
// not exist; it is never stored.
const (
	StateIdle State = iota
	StateI1Sent
	StateI2Sent
	StateI2bisSent
	StateEstablished
	StateEFailed
	StateNoSupport
	numStates
)

var stateNames = [...]string{
	StateIdle:        "IDLE",
	StateI1Sent:      "I1-SENT",
	StateI2Sent:      "I2-SENT",
	StateI2bisSent:   "I2BIS-SENT",
	StateEstablished: "ESTABLISHED",
	StateEFailed:     "E-FAILED",
	StateNoSupport:   "NO-SUPPORT",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// hasPeer reports whether CT(peer) and Ls(peer) are set in this state
// (RFC 5533 §6.2, §11: only ESTABLISHED and I2BIS-SENT).
func (s State) hasPeer() bool { return s == StateEstablished || s == StateI2bisSent }

// pending reports whether the context is being established by this host.
func (s State) pending() bool { return s == StateI1Sent || s == StateI2Sent }

// negative reports whether the context only remembers a failure (negative
// cache, RFC 5533 §7.8).
func (s State) negative() bool { return s == StateEFailed || s == StateNoSupport }
