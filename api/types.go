package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Version is the protocol version spoken by this package. A request with
// any other version is refused with CodeUnsupportedVersion.
const Version = 1

// MaxRequestSize bounds one request line, newline included.
const MaxRequestSize = 64 << 10

// MaxResponseSize bounds one response line read by the client.
const MaxResponseSize = 64 << 20

// DefaultSocket is where shim6d listens unless configured otherwise.
const DefaultSocket = "/run/shim6d/shim6d.sock"

// Method names.
const (
	MethodStatus          = "status"
	MethodContextsList    = "contexts.list"
	MethodContextsShow    = "contexts.show"
	MethodContextsCreate  = "contexts.create"
	MethodContextsDelete  = "contexts.delete"
	MethodContextsUpdate  = "contexts.update"
	MethodContextsExplore = "contexts.explore"
	MethodContextsPin     = "contexts.pin"
	MethodContextsUnpin   = "contexts.unpin"
	MethodContextsSet     = "contexts.set"
	MethodLocators        = "locators.list"
	MethodStats           = "stats"
	MethodEventsWatch     = "events.watch"
)

// Request is one line sent by the client.
type Request struct {
	Version int             `json:"version"`
	ID      uint64          `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// Response is one line sent by the server: exactly one of Result, Error and
// Event is set.
type Response struct {
	Version int             `json:"version"`
	ID      uint64          `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	Event   *Event          `json:"event,omitempty"`
}

// Empty is the params and result of methods that take or return nothing.
type Empty struct{}

// ContextRef names one context: by its local context tag, or by its ULID
// pair (PeerULID alone is enough when only one local ULID talks to it).
type ContextRef struct {
	Tag       uint64     `json:"tag,omitempty"`
	LocalULID netip.Addr `json:"local_ulid,omitzero"`
	PeerULID  netip.Addr `json:"peer_ulid,omitzero"`
}

// Validate checks that the reference names something.
func (r ContextRef) Validate() error {
	if r.Tag != 0 {
		if r.LocalULID.IsValid() || r.PeerULID.IsValid() {
			return Errorf(CodeInvalidArgument, "give a tag or a ULID pair, not both")
		}
		if r.Tag > TagMask {
			return Errorf(CodeInvalidArgument, "tag %#x is longer than 47 bits", r.Tag)
		}
		return nil
	}
	if !r.PeerULID.IsValid() {
		return Errorf(CodeInvalidArgument, "a context is named by its tag or its peer ULID")
	}
	if err := checkUnicast6("peer_ulid", r.PeerULID); err != nil {
		return err
	}
	if r.LocalULID.IsValid() {
		return checkUnicast6("local_ulid", r.LocalULID)
	}
	return nil
}

func (r ContextRef) String() string {
	switch {
	case r.Tag != 0:
		return FormatTag(r.Tag)
	case r.LocalULID.IsValid():
		return r.LocalULID.String() + " -> " + r.PeerULID.String()
	default:
		return "-> " + r.PeerULID.String()
	}
}

// TagMask keeps the 47 bits of a context tag (RFC 5533 §5.1).
const TagMask = 1<<47 - 1

// FormatTag prints a context tag the way shim6ctl shows it.
func FormatTag(t uint64) string { return fmt.Sprintf("%#x", t) }

// ParseTag accepts a context tag in decimal or 0x-prefixed hexadecimal.
func ParseTag(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 0, 64)
	if err != nil || v == 0 || v > TagMask {
		return 0, Errorf(CodeInvalidArgument, "%q is not a context tag (1 to 2^47-1, decimal or 0x hex)", s)
	}
	return v, nil
}

// CreateParams asks for a context between two ULIDs, as the older
// implementations' "context" command did (RFC 5533 §7.2 lets the ULP or an
// administrator trigger the handshake). LocalULID may be omitted: the
// daemon then picks the source address the kernel would use.
type CreateParams struct {
	LocalULID netip.Addr `json:"local_ulid,omitzero"`
	PeerULID  netip.Addr `json:"peer_ulid"`
}

// Validate checks the addresses.
func (p CreateParams) Validate() error {
	if err := checkUnicast6("peer_ulid", p.PeerULID); err != nil {
		return err
	}
	if p.LocalULID.IsValid() {
		if err := checkUnicast6("local_ulid", p.LocalULID); err != nil {
			return err
		}
		if p.LocalULID == p.PeerULID {
			return Errorf(CodeInvalidArgument, "local and peer ULID are the same address")
		}
	}
	return nil
}

// PinParams forces a context onto one locator pair and keeps it there (the
// older implementations' "shim" debug command) until Unpin.
type PinParams struct {
	ContextRef
	LocalLocator netip.Addr `json:"local_locator"`
	PeerLocator  netip.Addr `json:"peer_locator"`
}

// Validate checks the reference and the pair.
func (p PinParams) Validate() error {
	if err := p.ContextRef.Validate(); err != nil {
		return err
	}
	if err := checkUnicast6("local_locator", p.LocalLocator); err != nil {
		return err
	}
	return checkUnicast6("peer_locator", p.PeerLocator)
}

// SetParams changes per-context settings.
type SetParams struct {
	ContextRef
	// SendTimeoutSeconds is REAP's Send Timeout for this context, 1 to
	// 65535 s, announced to the peer (RFC 5534 §5.3); 0 restores
	// reap.send_timeout.
	SendTimeoutSeconds uint16 `json:"send_timeout_seconds"`
}

// Validate checks the reference.
func (p SetParams) Validate() error { return p.ContextRef.Validate() }

func checkUnicast6(field string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return Errorf(CodeInvalidArgument, "%s: missing address", field)
	case !a.Is6() || a.Is4In6():
		return Errorf(CodeInvalidArgument, "%s: %s is not an IPv6 address", field, a)
	case a.Zone() != "":
		return Errorf(CodeInvalidArgument, "%s: %s has a zone; locators are global addresses", field, a)
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback(), a.IsLinkLocalUnicast():
		return Errorf(CodeInvalidArgument, "%s: %s is not a global unicast address", field, a)
	}
	return nil
}

// Status describes the daemon.
type Status struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Now       time.Time `json:"now"`
	Config    string    `json:"config,omitempty"`
	Security  string    `json:"security"` // "hba", "cga" or "insecure"
	DataPlane string    `json:"dataplane"`
	// Adopted is true when the data plane of a previous run was kept and
	// taken over at start.
	Adopted         bool           `json:"adopted,omitempty"`
	Contexts        int            `json:"contexts"`
	ContextsByState map[string]int `json:"contexts_by_state,omitempty"`
	Locators        int            `json:"locators"`
	// VerificationFailures counts peer locator lists, parameters or
	// signatures that did not verify since start (RFC 5535 §7.2,
	// RFC 3972 §5): a sign of misconfiguration or of an attack.
	VerificationFailures uint64   `json:"verification_failures"`
	Warnings             []string `json:"warnings,omitempty"`
}

// Context is one Shim6 context as seen by the daemon.
type Context struct {
	LocalTag  uint64     `json:"local_tag"`
	PeerTag   uint64     `json:"peer_tag,omitempty"`
	FII       uint32     `json:"fii,omitempty"`
	LocalULID netip.Addr `json:"local_ulid"`
	PeerULID  netip.Addr `json:"peer_ulid"`
	// The locator pair in use now.
	LocalLocator netip.Addr `json:"local_locator,omitzero"`
	PeerLocator  netip.Addr `json:"peer_locator,omitzero"`
	// State is the context state (RFC 5533 §6.2): "idle", "i1-sent",
	// "i2-sent", "i2bis-sent", "established", "e-failed", "no-support".
	State string `json:"state"`
	// REAPState is "operational", "exploring" or "inbound-ok" (RFC 5534
	// §3.5), empty before establishment.
	REAPState string    `json:"reap_state,omitempty"`
	Pinned    bool      `json:"pinned,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	// LastSwitch is when the locator pair last changed; zero if never.
	LastSwitch       time.Time `json:"last_switch,omitzero"`
	LastSwitchReason string    `json:"last_switch_reason,omitempty"`
	Switches         uint64    `json:"switches,omitempty"`
	Traffic          Traffic   `json:"traffic"`
	// PeerKeepaliveTimeoutSeconds is the Send Timeout the peer announced
	// (RFC 5534 §5.3); 0 when it announced none (the default, 15 s).
	PeerKeepaliveTimeoutSeconds uint32    `json:"peer_keepalive_timeout_seconds,omitempty"`
	LocalLocators               []Locator `json:"local_locators,omitempty"`
	PeerLocators                []Locator `json:"peer_locators,omitempty"`
}

// Traffic is what the data plane counted for a context.
type Traffic struct {
	TxPackets    uint64    `json:"tx_packets"`
	TxBytes      uint64    `json:"tx_bytes"`
	RxPackets    uint64    `json:"rx_packets"`
	RxBytes      uint64    `json:"rx_bytes"`
	LastSent     time.Time `json:"last_sent,omitzero"`
	LastReceived time.Time `json:"last_received,omitzero"`
}

// Locator is one address, local or of a peer, and what is known about it.
type Locator struct {
	Addr      netip.Addr `json:"addr"`
	Interface string     `json:"interface,omitempty"`
	// Verification is the method: "hba", "cga" or "none" (RFC 5533 §5.15.2).
	Verification string `json:"verification,omitempty"`
	// State is "verified", "pending", "failed" or "unverified" for peer
	// locators, "usable", "deprecated" or "excluded" for local ones.
	State      string `json:"state,omitempty"`
	Preference uint8  `json:"preference,omitempty"`
	Flags      uint8  `json:"flags,omitempty"`
	// Reachable is REAP's view: "ok", "probing", "failed" or "".
	Reachable string `json:"reachable,omitempty"`
}

// Locators is the answer to locators.list.
type Locators struct {
	Local []Locator `json:"local"`
	// Generation is the local Locator List Generation (RFC 5533 §5.15.1).
	Generation uint32 `json:"generation"`
}

// Stats is the answer to stats: named monotonic counters (engine, data plane
// and daemon), and a few gauges.
type Stats struct {
	Counters map[string]uint64 `json:"counters"`
	Gauges   map[string]int64  `json:"gauges,omitempty"`
}

// Event kinds. Most come from the protocol engine (the same names as
// engine.EventKind); context-created, local-locators, daemon and lost are
// the daemon's.
const (
	EventStateChange        = "state-change"
	EventContextUp          = "context-up" // established (again)
	EventContextDown        = "context-down"
	EventSwitched           = "locator-switch"
	EventVerificationFailed = "verification-failed"
	EventLocatorsUpdated    = "locators-updated" // the peer's locators changed
	EventContextConfusion   = "context-confusion"
	EventRecovery           = "recovery"
	EventPeerError          = "peer-error"
	EventLimit              = "limit"
	EventInsecure           = "insecure"
	EventUpdateAcked        = "update-acked"
	EventReap               = "reap"
	EventContextCreated     = "context-created" // by management
	EventLocalLocators      = "local-locators"
	EventDaemon             = "daemon"
	// EventLost tells a watcher that events were dropped because it read
	// too slowly; Attrs["dropped"] holds the count.
	EventLost = "lost"
)

// Event is one entry of the live event stream.
type Event struct {
	Time      time.Time         `json:"time"`
	Kind      string            `json:"kind"`
	Tag       uint64            `json:"tag,omitempty"`
	LocalULID netip.Addr        `json:"local_ulid,omitzero"`
	PeerULID  netip.Addr        `json:"peer_ulid,omitzero"`
	Message   string            `json:"message,omitempty"`
	Attrs     map[string]string `json:"attrs,omitempty"`
}
