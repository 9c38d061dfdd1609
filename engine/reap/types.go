package reap

import (
	"fmt"
	"net/netip"
)

// State is the REAP state of a context (RFC 5534 §6). The values are those
// of the Probe message's Sta field (§5.2).
type State uint8

const (
	// Operational: the current pair is assumed to work.
	Operational State = 0
	// Exploring: no traffic from the peer for a Send Timeout; probing.
	Exploring State = 1
	// InboundOk: traffic from the peer arrives, but the peer has not yet
	// confirmed that ours arrives; still probing.
	InboundOk State = 2
)

func (s State) String() string {
	switch s {
	case Operational:
		return "operational"
	case Exploring:
		return "exploring"
	case InboundOk:
		return "inbound-ok"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Pair is a locator pair: packets are sent from Local to Peer.
type Pair struct {
	Local, Peer netip.Addr
}

func (p Pair) String() string { return p.Local.String() + "->" + p.Peer.String() }

// IsValid reports whether both addresses are set.
func (p Pair) IsValid() bool { return p.Local.IsValid() && p.Peer.IsValid() }

// Flags are the Locator Preferences flags (RFC 5533 §5.15.3).
type Flags uint8

const (
	// Broken: the locator is known not to work.
	Broken Flags = 0x01
	// Transient: the locator is less stable (e.g. a care-of address).
	Transient Flags = 0x02
)

// Pref is one element of a Locator Preferences option (RFC 5533 §5.15.3):
// flags, priority (lower is preferred) and weight (load sharing within a
// priority), both with DNS SRV semantics (RFC 2782). The zero value means "no
// preference expressed".
type Pref struct {
	Flags    Flags
	Priority uint8
	Weight   uint8
}

// Locator is one local or peer locator with its preferences.
type Locator struct {
	Addr netip.Addr
	Pref Pref
	// Verified must be true for a peer locator to be probed or selected
	// (verified by HBA or CGA, RFC 5533 §7.2). Ignored for local locators.
	Verified bool
	// Deprecated marks a local address that is deprecated in the RFC 4862
	// sense (RFC 6724 destination rule 3). Ignored for peer locators.
	Deprecated bool
}

// ProbeReport is one set of probe fields (RFC 5534 §5.2): the source and
// destination the probe was sent with, its nonce and its data.
type ProbeReport struct {
	Src, Dst netip.Addr
	Nonce    uint32
	Data     uint32
}

// Probe is the content of a Probe message apart from the context tag
// (RFC 5534 §5.2). Sent[0] describes the message itself; Recvd copies
// probes received from the peer.
type Probe struct {
	State State
	Sent  []ProbeReport
	Recvd []ProbeReport
}

// Reason tells why the machine changed state or pair.
type Reason uint8

const (
	// ReasonNone: no particular reason.
	ReasonNone Reason = iota
	// ReasonSendTimeout: no return traffic within Send Timeout (§6.4).
	ReasonSendTimeout
	// ReasonPeerExploring: the peer sent a Probe with State Exploring (§6.7).
	ReasonPeerExploring
	// ReasonInbound: traffic from the peer arrived while exploring (§6.1, §6.6).
	ReasonInbound
	// ReasonPeerConfirmed: the peer reported our probes (§6.8, §6.9).
	ReasonPeerConfirmed
	// ReasonHint: the upper layer reported trouble (e.g. a TCP RTO).
	ReasonHint
	// ReasonLocators: a locator of the current pair went away or is BROKEN.
	ReasonLocators
	// ReasonReturn: going back to a better-ranked pair.
	ReasonReturn
	// ReasonPinned: the pair was set by management.
	ReasonPinned
	// ReasonFastReroute: the data plane moved payload to another pair on
	// its own (after a ULP hint, or following the peer); REAP confirms it.
	ReasonFastReroute
)

func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonSendTimeout:
		return "send-timeout"
	case ReasonPeerExploring:
		return "peer-exploring"
	case ReasonInbound:
		return "inbound"
	case ReasonPeerConfirmed:
		return "peer-confirmed"
	case ReasonHint:
		return "ulp-hint"
	case ReasonLocators:
		return "locators"
	case ReasonReturn:
		return "return"
	case ReasonPinned:
		return "pinned"
	case ReasonFastReroute:
		return "fast-reroute"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ActionKind tells what an Action asks the engine to do.
type ActionKind uint8

const (
	// SendKeepalive: send a Keepalive message (RFC 5534 §5.1) from
	// Pair.Local to Pair.Peer.
	SendKeepalive ActionKind = iota + 1
	// SendProbe: send a Probe message with content Probe from Pair.Local to
	// Pair.Peer (RFC 5534 §5.2).
	SendProbe
	// SwitchPair: make Pair the context's current locator pair (install it
	// in the data plane); Reason tells why.
	SwitchPair
	// StateChange: informational, the REAP state went From -> To.
	StateChange
)

func (k ActionKind) String() string {
	switch k {
	case SendKeepalive:
		return "send-keepalive"
	case SendProbe:
		return "send-probe"
	case SwitchPair:
		return "switch-pair"
	case StateChange:
		return "state-change"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one output of the machine.
type Action struct {
	Kind ActionKind
	// Pair: source and destination of a message, or the new current pair.
	Pair Pair
	// Probe is the content to send (SendProbe only). The slices are owned
	// by the action.
	Probe Probe
	// Reason of a SwitchPair or StateChange.
	Reason Reason
	// From and To of a StateChange.
	From, To State
}

func (a Action) String() string {
	switch a.Kind {
	case SendKeepalive:
		return "keepalive " + a.Pair.String()
	case SendProbe:
		return fmt.Sprintf("probe %s sta=%s sent=%d recvd=%d", a.Pair, a.Probe.State, len(a.Probe.Sent), len(a.Probe.Recvd))
	case SwitchPair:
		return fmt.Sprintf("switch %s (%s)", a.Pair, a.Reason)
	case StateChange:
		return fmt.Sprintf("state %s->%s (%s)", a.From, a.To, a.Reason)
	}
	return a.Kind.String()
}

// Stats counts what one machine did.
type Stats struct {
	KeepalivesSent, ProbesSent, ProbesReceived uint32
	Explorations, Switches                     uint32
	// ReportsIgnored counts peer reports of probes we did not send (or no
	// longer remember).
	ReportsIgnored uint32
	// HintsIgnored counts stale ULP hints (see Machine.HintStale).
	HintsIgnored uint32
}
