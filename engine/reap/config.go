package reap

import (
	crand "crypto/rand"
	"math/rand/v2"
	"time"
)

// Rand is the random source of the machines: probe nonces (which must be
// hard to guess, RFC 5534 §5.2 and RFC 4086) and timer randomisation. A
// *rand.ChaCha8 seeded from crypto/rand qualifies; tests and the simulator
// seed it deterministically.
type Rand interface {
	Uint64() uint64
}

// Config holds the values shared by the machines of an engine. A Config
// must not be modified while machines use it. The zero value of every field
// selects the RFC default.
type Config struct {
	// SendTimeout (default 15 s, RFC 5534 §7). The RFC recommends 10 to
	// 100 s; a lab may go lower. It is advertised to the peer as its
	// Keepalive Timeout option when it differs from the default (§5.3).
	SendTimeout time.Duration
	// InitialProbeTimeout, InitialProbes and MaxProbeTimeout shape the
	// probe schedule (RFC 5534 §4.3, §7).
	InitialProbeTimeout time.Duration
	InitialProbes       int
	MaxProbeTimeout     time.Duration
	// ReturnInterval is how long after leaving the best-ranked pair the
	// first attempt to go back starts; negative disables going back.
	ReturnInterval time.Duration
	// MaxReturnInterval caps the back-off of return attempts.
	MaxReturnInterval time.Duration
	// MaxReports bounds the probe reports remembered and carried, each way
	// (1..15, default 8).
	MaxReports int
	// Policy is the RFC 6724 policy table; nil selects the default table of
	// RFC 6724 §2.1.
	Policy []PolicyEntry
	// Rand is the random source; nil uses a ChaCha8 generator seeded from
	// crypto/rand (non-deterministic).
	Rand Rand
}

func (c *Config) sendTimeout() time.Duration {
	if c.SendTimeout > 0 {
		return c.SendTimeout
	}
	return DefaultSendTimeout
}

func (c *Config) initialProbeTimeout() time.Duration {
	if c.InitialProbeTimeout > 0 {
		return c.InitialProbeTimeout
	}
	return InitialProbeTimeout
}

func (c *Config) initialProbes() int {
	if c.InitialProbes > 0 {
		return c.InitialProbes
	}
	return InitialProbes
}

func (c *Config) maxProbeTimeout() time.Duration {
	if c.MaxProbeTimeout > 0 {
		return c.MaxProbeTimeout
	}
	return MaxProbeTimeout
}

func (c *Config) returnInterval() time.Duration {
	if c.ReturnInterval != 0 {
		return c.ReturnInterval
	}
	return DefaultReturnInterval
}

func (c *Config) maxReturnInterval() time.Duration {
	if c.MaxReturnInterval > 0 {
		return c.MaxReturnInterval
	}
	return DefaultMaxReturnInterval
}

func (c *Config) maxReports() int {
	switch {
	case c.MaxReports <= 0:
		return DefaultMaxReports
	case c.MaxReports > MaxReportsLimit:
		return MaxReportsLimit
	}
	return c.MaxReports
}

func (c *Config) policy() []PolicyEntry {
	if c.Policy != nil {
		return c.Policy
	}
	return defaultPolicy
}

func (c *Config) rand() Rand {
	if c.Rand != nil {
		return c.Rand
	}
	return fallbackRand
}

var fallbackRand Rand = newCryptoSeeded()

func newCryptoSeeded() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on Linux (Go 1.24+ crypto/rand)
	return rand.NewChaCha8(seed)
}

// NewRand returns a generator seeded with the given 32 bytes, for
// reproducible runs (tests, simulator). Real hosts should use
// NewCryptoRand.
func NewRand(seed [32]byte) *rand.ChaCha8 { return rand.NewChaCha8(seed) }

// NewCryptoRand returns a ChaCha8 generator seeded from crypto/rand.
func NewCryptoRand() *rand.ChaCha8 { return newCryptoSeeded() }

// unit returns a uniform float in [0, 1).
func unit(r Rand) float64 { return float64(r.Uint64()>>11) / (1 << 53) }

// jitter scales d by a uniform factor in [lo, hi).
func jitter(r Rand, d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + (hi-lo)*unit(r)))
}
