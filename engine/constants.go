package engine

import "time"

// Protocol constants of RFC 5533 §14. All of them, and only them, live here
// (with the REAP defaults of RFC 5534 §7), so that a reader can compare this
// file with the RFC line by line.
const (
	// I1Timeout is the initial I1 retransmission timeout (RFC 5533 §14).
	I1Timeout = 4 * time.Second
	// I1RetriesMax is the number of I1 retransmissions before the
	// initiator gives up (RFC 5533 §7.8, §14).
	I1RetriesMax = 4
	// NoR1HolddownTime bounds the negative cache after I1 retransmissions
	// went unanswered (RFC 5533 §7.8, §14).
	NoR1HolddownTime = 1 * time.Minute
	// ICMPHolddownTime bounds the negative cache after an ICMP
	// "Unrecognized Next Header" for an I1 (RFC 5533 §7.8, §14).
	ICMPHolddownTime = 10 * time.Minute
	// I2Timeout is the initial I2 retransmission timeout (RFC 5533 §14).
	I2Timeout = 4 * time.Second
	// I2RetriesMax is the number of I2 retransmissions before falling
	// back to I1 (RFC 5533 §7.12, §14).
	I2RetriesMax = 2
	// I2bisTimeout is the initial I2bis retransmission timeout
	// (RFC 5533 §14).
	I2bisTimeout = 4 * time.Second
	// I2bisRetriesMax is the number of I2bis retransmissions before
	// falling back to I1 (RFC 5533 §7.19, §14).
	I2bisRetriesMax = 2
	// ValidatorMinLifetime is how long a Responder Nonce and its
	// validator stay acceptable at least (RFC 5533 §7.13, §14).
	ValidatorMinLifetime = 30 * time.Second
	// UpdateTimeout is the initial Update Request retransmission timeout
	// (RFC 5533 §10.2, §14).
	UpdateTimeout = 4 * time.Second
	// MaxUpdateTimeout caps the Update Request backoff (RFC 5533 §10.2,
	// §14).
	MaxUpdateTimeout = 120 * time.Second
)

// Randomisation of every retransmission timer: the backed-off nominal value
// is multiplied by a uniform factor in [JitterMin, JitterMax]
// (RFC 5533 §7.8, §14: "randomized between 0.5 and 1.5").
const (
	JitterMin = 0.5
	JitterMax = 1.5
)

// REAP defaults (RFC 5534 §7).
const (
	// DefaultSendTimeout is REAP's Send Timeout (RFC 5534 §7).
	DefaultSendTimeout = 15 * time.Second
	// DefaultKeepaliveTimeout applies when the peer sent no Keepalive
	// Timeout option (RFC 5534 §7).
	DefaultKeepaliveTimeout = 15 * time.Second
	// InitialProbeTimeout is the interval between the first probes
	// (RFC 5534 §7).
	InitialProbeTimeout = 500 * time.Millisecond
	// NumInitialProbes is the number of probes sent before backing off
	// (RFC 5534 §7).
	NumInitialProbes = 4
	// MaxProbeTimeout caps the probe backoff (RFC 5534 §4.3).
	MaxProbeTimeout = 60 * time.Second
)

// Message-size and field limits that follow from the formats.
const (
	// MaxControlMessage is the largest Shim6 control message including the
	// IPv6 header (RFC 5533 §5.1).
	MaxControlMessage = 1280
	// ipv6HeaderLen is the fixed IPv6 header (RFC 8200 §3).
	ipv6HeaderLen = 40
	// tagBits is the width of a context tag (RFC 5533 §5.1).
	tagBits = 47
	// tagMask keeps the 47 bits of a context tag.
	tagMask = 1<<tagBits - 1
	// DefaultIdleTimeout is the default garbage-collection idle time
	// (RFC 5533 §9: "at least 5 minutes").
	DefaultIdleTimeout = 5 * time.Minute
	// MinIdleTimeout is the smallest idle timeout Config accepts outside
	// tests of the engine itself.
	MinIdleTimeout = 1 * time.Second
)

// Verification methods of the Locator List option (RFC 5533 §5.15.2; the
// numbers follow the table of §5.15.2, see SPEC-NOTES.md).
const (
	MethodHBA uint8 = 1
	MethodCGA uint8 = 2
)

// Locator Preferences flags (RFC 5533 §5.15.3).
const (
	PrefBroken    uint8 = 0x01
	PrefTransient uint8 = 0x02
)

// Shim6 Error codes (RFC 5533 §5.14, Table 2).
const (
	ErrCodeUnknownType      uint8 = 0
	ErrCodeCriticalOption   uint8 = 1
	ErrCodeVerification     uint8 = 2
	ErrCodeGenerationSync   uint8 = 3
	ErrCodeNumberOfLocators uint8 = 4
)

// ICMPv6 types and codes the engine acts on (RFC 4443 §3, RFC 5533 §7.8,
// §8).
const (
	icmpDestUnreach     = 1
	icmpTimeExceeded    = 3
	icmpParamProblem    = 4
	icmpCodeUnrecNxtHdr = 1
	ipProtoShim6        = 140
)
