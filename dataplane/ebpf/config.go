package ebpf

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cilium/ebpf/link"
)

// Config tells Load where and how to run the data plane. The zero value of
// every field selects its default.
type Config struct {
	// Uplinks are the interfaces whose ingress gets the receive program
	// (and the XDP fast path when XDP is set): every interface that
	// carries one of the host's locators. More can be added with
	// AddUplink.
	Uplinks []string

	// PinPath is the bpffs directory for the pinned maps and links that
	// let forwarding survive a daemon restart. Default /sys/fs/bpf/goshim6.
	// A bpffs is mounted on its parent when there is none.
	PinPath string

	// ShimDevice names the veth pair that segments shimmed traffic; the
	// other end is named ShimDevice+"p". Default "shim6" (at most 14
	// characters).
	ShimDevice string
	// ShimMTU overrides the shim device's MTU, by default the smallest
	// uplink MTU minus ShimHeaderLen.
	ShimMTU int
	// ShimOffload selects the shim device's segmentation (default
	// OffloadGSO: TSO off, GSO on).
	ShimOffload Offload

	// RouteTable holds the route into the shim device. Default 21302.
	RouteTable int
	// RulePriority is the first of the three policy-rule priorities the
	// data plane uses (P, P+1, P+2; see docs/dataplane.md). It must come
	// before the host's own source-routing rules. Default 90.
	RulePriority int

	// CgroupPath is the cgroup v2 directory whose sockets are watched for
	// transmit activity, triggers and TCP RTOs. Default: the root of the
	// first cgroup2 mount.
	CgroupPath string

	// NetNS is the path of the network namespace to run in (for example
	// /run/netns/NAME or /proc/PID/ns/net); default the caller's.
	NetNS string

	// XDP also strips payload headers in XDP on the uplinks, so that GRO
	// merges the restored TCP segments.
	XDP bool
	// XDPFlags selects the XDP mode (default: native when the driver has
	// it, else generic).
	XDPFlags link.XDPAttachFlags

	// ForceClsact attaches tc programs through a clsact qdisc and netlink
	// even when the kernel has tcx (Linux >= 6.6); for tests.
	ForceClsact bool

	// TriggerPackets is the number of packets a ULID pair without a
	// context exchanges before the data plane raises one EventTrigger.
	// Default 50 (RFC 5533 §7.2's "more than 50 packets" spirit).
	TriggerPackets uint32
	// DisableTrigger turns the trigger heuristic off.
	DisableTrigger bool

	// EventBurst events of each kind per EventWindow per CPU leave the
	// data plane; the rest are counted and dropped. Defaults 64 per 100ms.
	EventBurst  uint32
	EventWindow time.Duration

	// UnknownTagPass passes payload packets with an unknown context tag
	// on to the stack (and the daemon's raw socket) after the event,
	// instead of dropping them.
	UnknownTagPass bool
	// NoICMPTranslate leaves ICMPv6 errors about shimmed packets as they
	// arrive (RFC 5533 §8 asks for the translation).
	NoICMPTranslate bool

	// MaxContexts sizes the context maps. Default 65536. Changing it
	// makes pinned maps incompatible.
	MaxContexts uint32

	// FastReroute lets the data plane move a context's outbound traffic
	// on its own, as the mappings' Backup and Pairs allow: at a TCP RTO
	// to the backup pair, or following the peer's payload onto another
	// pair (docs/dataplane.md). It attaches shim6_reroute to the egress
	// of every uplink and adds the mark rule. Without it those fields are
	// ignored.
	FastReroute bool
	// RerouteMark is the socket mark (SO_MARK) with which a TCP socket
	// whose RTO moved its pair is routed into the shim device (one policy
	// rule, priority RulePriority+3). Default 0x5336; NoRerouteMark
	// leaves sockets unmarked (their full-sized segments then cannot
	// take the moved pair until the mapping is installed).
	RerouteMark   uint32
	NoRerouteMark bool
	// MaxPairsPerContext bounds the fast-reroute pairs kept per context
	// (the best ones). Default 16.
	MaxPairsPerContext int

	Logger *slog.Logger
}

const (
	DefaultPinPath        = "/sys/fs/bpf/goshim6"
	DefaultShimDevice     = "shim6"
	DefaultRouteTable     = 21302
	DefaultRulePriority   = 90
	DefaultTriggerPackets = 50
	DefaultMaxContexts    = 65536
	DefaultRerouteMark    = 0x5336
	DefaultMaxPairs       = 16
)

func (c Config) withDefaults() (Config, error) {
	if c.PinPath == "" {
		c.PinPath = DefaultPinPath
	}
	if c.ShimDevice == "" {
		c.ShimDevice = DefaultShimDevice
	}
	if len(c.ShimDevice) > 14 {
		return c, fmt.Errorf("%w: shim device name %q longer than 14 characters", ErrConfig, c.ShimDevice)
	}
	if c.RouteTable == 0 {
		c.RouteTable = DefaultRouteTable
	}
	if c.RulePriority == 0 {
		c.RulePriority = DefaultRulePriority
	}
	if c.TriggerPackets == 0 {
		c.TriggerPackets = DefaultTriggerPackets
	}
	if c.EventBurst == 0 {
		c.EventBurst = 64
	}
	if c.EventWindow == 0 {
		c.EventWindow = 100 * time.Millisecond
	}
	if c.MaxContexts == 0 {
		c.MaxContexts = DefaultMaxContexts
	}
	if c.RerouteMark == 0 {
		c.RerouteMark = DefaultRerouteMark
	}
	if c.NoRerouteMark || !c.FastReroute {
		c.RerouteMark = 0
	}
	if c.MaxPairsPerContext <= 0 {
		c.MaxPairsPerContext = DefaultMaxPairs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for _, u := range c.Uplinks {
		if u == c.ShimDevice || u == c.ShimDevice+"p" {
			return c, fmt.Errorf("%w: uplink %q is the shim device", ErrConfig, u)
		}
	}
	return c, nil
}
