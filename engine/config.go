package engine

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// LocalLocator is one of this host's addresses as offered to peers in the
// Locator List option (RFC 5533 §5.15.2) with its preferences (§5.15.3).
type LocalLocator struct {
	Addr netip.Addr
	// Method is how peers verify it: MethodHBA (part of the HBA set
	// described by Config.PDS) or MethodCGA (signed with
	// Config.PrivateKey). 0 means "not verifiable": the address may
	// still be a ULID, but it is not advertised as an alternative.
	Method uint8
	// Flags holds PrefBroken and PrefTransient (RFC 5533 §5.15.3).
	Flags uint8
	// Priority and Weight have the DNS SRV semantics (RFC 5533 §5.15.3);
	// a lower priority is preferred.
	Priority, Weight uint8
}

// Config is the engine's configuration. The zero value of every duration
// and limit means "the default".
type Config struct {
	// PDS is the CGA Parameter Data Structure (RFC 3972 §3) of the local
	// identity: with the HBA multi-prefix extension for HBA sets
	// (RFC 5535), without it for a CGA. Empty: no locator list is ever
	// sent (the host can take part in contexts but offers no
	// alternative locators).
	PDS []byte
	// PrivateKey signs Locator Lists that contain CGA-verified locators
	// (RFC 5533 §5.15.5). Required when a local locator uses MethodCGA.
	PrivateKey *rsa.PrivateKey
	// LocalLocators is the initial locator set (see SetLocalLocators).
	LocalLocators []LocalLocator

	// Insecure accepts peer locators without HBA/CGA verification. For
	// labs only: it makes redirection attacks trivial (RFC 4218). The
	// engine reports EventInsecure once at start when it is set.
	Insecure bool

	// SendTimeout is REAP's Send Timeout (RFC 5534 §7), advertised to
	// peers in the Keepalive Timeout option. Default 15 s.
	SendTimeout time.Duration
	// IdleTimeout: a context with no data-plane or control activity for
	// this long is garbage collected (RFC 5533 §9). Default 5 min. So is
	// a context that heard nothing from its peer for this long while
	// REAP probes at Max Probe Timeout (RFC 5534 §4.3), even if the ULP
	// still sends.
	IdleTimeout time.Duration
	// EstablishTimeout bounds the life of a context that never reaches
	// ESTABLISHED, whatever the retransmission rules say. Default 3 min.
	EstablishTimeout time.Duration

	// MaxContexts bounds the context table (all states). Default 1<<20.
	MaxContexts int
	// MaxPending bounds contexts this host initiated that are not
	// ESTABLISHED yet. Default 4096.
	MaxPending int
	// MaxPeerLocators bounds the locators accepted from one peer; longer
	// lists are refused with Error code 4. Default 16.
	MaxPeerLocators int
	// R1Rate and R1Burst limit R1 replies per second (stateless, but
	// bounded CPU and bandwidth). Defaults 2000/s and 200.
	R1Rate, R1Burst int
	// R1bisRate and R1bisBurst limit R1bis replies (RFC 5533 §7.17).
	// Defaults 100/s and 20.
	R1bisRate, R1bisBurst int
	// ErrorRate and ErrorBurst limit Shim6 Error messages (RFC 5533
	// §5.14). Defaults 10/s and 10.
	ErrorRate, ErrorBurst int

	// RecreateConfused re-initiates (I1) a context removed because of
	// context confusion (RFC 5533 §7.15: MAY).
	RecreateConfused bool

	// FastReroute gives every installed mapping a backup pair and the
	// context's candidate pairs, so that the data plane may move traffic
	// on its own at a ULP hint or when the peer moved (fastreroute.go,
	// docs/dataplane.md); REAP then confirms or undoes the move.
	FastReroute bool
}

// Defaults for the limits of Config.
const (
	DefaultMaxContexts      = 1 << 20
	DefaultMaxPending       = 4096
	DefaultMaxPeerLocators  = 16
	DefaultEstablishTimeout = 3 * time.Minute
	maxLocalLocators        = 32
)

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("engine: invalid config")

func (c *Config) setDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defi := func(d *int, v int) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SendTimeout, DefaultSendTimeout)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	def(&c.EstablishTimeout, DefaultEstablishTimeout)
	defi(&c.MaxContexts, DefaultMaxContexts)
	defi(&c.MaxPending, DefaultMaxPending)
	defi(&c.MaxPeerLocators, DefaultMaxPeerLocators)
	defi(&c.R1Rate, 2000)
	defi(&c.R1Burst, 200)
	defi(&c.R1bisRate, 100)
	defi(&c.R1bisBurst, 20)
	defi(&c.ErrorRate, 10)
	defi(&c.ErrorBurst, 10)
	switch {
	case c.SendTimeout < 0 || c.SendTimeout > 0xffff*time.Second:
		return fmt.Errorf("%w: SendTimeout %v out of range", ErrConfig, c.SendTimeout)
	case c.IdleTimeout < MinIdleTimeout:
		return fmt.Errorf("%w: IdleTimeout %v below %v", ErrConfig, c.IdleTimeout, MinIdleTimeout)
	case c.EstablishTimeout < 0:
		return fmt.Errorf("%w: negative EstablishTimeout", ErrConfig)
	case c.MaxContexts < 0 || c.MaxPending < 0 || c.MaxPeerLocators < 0 || c.MaxPeerLocators > 255:
		return fmt.Errorf("%w: negative or oversized limit", ErrConfig)
	case c.R1Rate < 0 || c.R1Burst < 0 || c.R1bisRate < 0 || c.R1bisBurst < 0 || c.ErrorRate < 0 || c.ErrorBurst < 0:
		return fmt.Errorf("%w: negative rate", ErrConfig)
	}
	return nil
}
