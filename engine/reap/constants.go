package reap

import "time"

// Protocol constants and default values of the variables (RFC 5534 §7).
const (
	// InitialProbeTimeout is the interval between the initial probes.
	InitialProbeTimeout = 500 * time.Millisecond
	// InitialProbes is the Number of Initial Probes sent InitialProbeTimeout
	// apart before exponential back-off starts.
	InitialProbes = 4
	// MaxProbeTimeout is the limit beyond which the probe interval does not
	// grow (RFC 5534 §4.3).
	MaxProbeTimeout = 60 * time.Second
	// DefaultSendTimeout is the default Send Timeout.
	DefaultSendTimeout = 15 * time.Second
	// DefaultKeepaliveTimeout is the Keepalive Timeout used when the peer
	// did not send a Keepalive Timeout option: the peer's default Send
	// Timeout.
	DefaultKeepaliveTimeout = DefaultSendTimeout
)

// Implementation choices (not fixed by the RFCs).
const (
	// DefaultReturnInterval is how long after leaving the best-ranked pair
	// the machine first tries to go back to it.
	DefaultReturnInterval = 30 * time.Second
	// DefaultMaxReturnInterval caps the back-off of return attempts.
	DefaultMaxReturnInterval = 10 * time.Minute
	// MaxReportsLimit is the most probe reports of each kind a Probe can
	// carry: Psent and Precvd are 4-bit fields (RFC 5534 §5.2). 15 sent and
	// 15 received reports of 40 octets fit a 1280-octet message.
	MaxReportsLimit = 15
	// DefaultMaxReports is how many sent and received probe reports are
	// remembered (and carried) by default.
	DefaultMaxReports = 8
	// probeJitter randomises every probe interval to [1-j, 1+j] times the
	// nominal value; RFC 5534 §4.1 asks for randomisation without a range.
	probeJitter = 0.2
	// sendJitter draws the Send Timer from [1-j, 1] times Send Timeout, so
	// that it never exceeds the configured value.
	sendJitter = 0.1
	// responseSpacing is the minimum spacing of probes sent in response to
	// peer messages when the state does not change (flood damping).
	responseSpacing = InitialProbeTimeout / 4
)
