package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
)

// Environment builds the pieces of shim6d that touch the host. cmd/shim6d
// passes the real ones (eBPF data plane, raw socket, rtnetlink); the tests
// pass in-memory ones. Every field is required.
type Environment struct {
	// Preflight checks what the host must offer (root, BPF features)
	// before anything is changed, and says clearly what is missing.
	Preflight func(cfg *Config) error
	// OpenAddrs starts following the host's addresses.
	OpenAddrs func(ctx context.Context, log *slog.Logger) (AddrSource, error)
	// OpenDataPlane loads the data plane, or adopts the one a previous
	// run left (dataplane.keep_on_exit). uplinks are the interfaces that
	// carry locators now; a data plane that implements UplinkAdder is
	// told of new ones.
	OpenDataPlane func(ctx context.Context, cfg *Config, uplinks []string, log *slog.Logger) (DataPlane, error)
	// OpenPacketIO opens the raw socket for IP protocol 140 and ICMPv6
	// errors.
	OpenPacketIO func(ctx context.Context, log *slog.Logger) (PacketIO, error)
	// NewCore builds the protocol engine.
	NewCore func(p CoreParams) (Core, error)
	// AddAddress adds an HBA/CGA address to an interface (for
	// security.add_addresses); nil: not supported.
	AddAddress func(iface string, p netip.Prefix) error
	// OpenTCPLD opens what sends RFC 6069 ICMPv6 errors to local TCP
	// sockets (reap.tcp_ld, tcpld.go); nil: not supported.
	OpenTCPLD func() (TCPLD, error)
}

// TCPLD delivers the ICMPv6 "no route" error for the TCP connection of a
// retransmission-timeout event to the local stack (RFC 6069, tcpld.go).
type TCPLD interface {
	Send(ev dataplane.Event) error
	Close() error
}

// ackHolder is a data plane that can hold a ULID pair's acknowledgements
// for TCP-LD (ebpf.DataPlane.HoldAcks; LoopConfig.TCPLDHold).
type ackHolder interface {
	HoldAcks(local, peer netip.Addr, until, startUntil time.Time) error
}

// CoreParams is what NewCore gets.
type CoreParams struct {
	Config    *Config
	Identity  *Identity
	Locators  []LocalLocator
	Sender    Sender
	DataPlane dataplane.DataPlane
	// Emit publishes an event (the loop's Emit); call it only from Core
	// methods.
	Emit func(ev api.Event)
	// Traffic returns the last activity the loop read for a context (for
	// the Traffic of api.Context); call it only from Core methods.
	Traffic func(localTag uint64) (dataplane.Activity, bool)
	// SourceFor returns the source address the host would use towards a
	// peer (nil: ask the kernel).
	SourceFor func(peer netip.Addr) (netip.Addr, error)
	Logger    *slog.Logger
}

// Sender sends one Shim6 message (the proto-140 payload) from a local
// locator to a peer locator.
type Sender interface {
	Send(src, dst netip.Addr, msg []byte) error
}

// PacketIO is the raw socket.
type PacketIO interface {
	Sender
	// Run reads until ctx is done, handing each packet to the callbacks
	// (which never block).
	Run(ctx context.Context, packet func(Packet), icmp func(ICMPError)) error
	Counters() map[string]uint64
	Close() error
}

// DataPlane is the data plane as the daemon sees it.
type DataPlane interface {
	dataplane.DataPlane
	dataplane.ActivitySource
	// Run delivers data-plane events until ctx is done.
	Run(ctx context.Context, ev func(dataplane.Event)) error
	// Adopted lists the mappings found from a previous run (empty when
	// the data plane was loaded fresh).
	Adopted() []dataplane.Mapping
	// Kind names it for status ("ebpf", "memory", ...).
	Kind() string
	Counters() map[string]uint64
	// Close unloads it, or leaves it in place when keep is true.
	Close(keep bool) error
}

// LocatorAware is implemented by packet I/O that wants to know the local
// locators (to pick which ICMPv6 errors matter).
type LocatorAware interface {
	SetLocalLocators(addrs []netip.Addr)
}

// UplinkAdder is implemented by data planes that attach to the interfaces
// carrying locators.
type UplinkAdder interface {
	AddUplink(name string) error
}

// UplinkRemover is implemented by data planes that can detach from an
// interface that no longer carries locators.
type UplinkRemover interface {
	RemoveUplink(name string) error
}

// HostAddr is one address of the host as rtnetlink reports it.
type HostAddr struct {
	Addr       netip.Addr
	PrefixLen  int
	Interface  string
	Deprecated bool
	Tentative  bool
}

// AddrSource follows the host's addresses.
type AddrSource interface {
	// Snapshot returns the current addresses.
	Snapshot() ([]HostAddr, error)
	// Run calls fn with the full set after every change, until ctx is
	// done.
	Run(ctx context.Context, fn func([]HostAddr)) error
	Close() error
}
