package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Veth creates a veth pair: aName in a, bName in b, both brought up.
// Interface names only need to be unique inside their namespace.
func Veth(a *NS, aName string, b *NS, bName string) error {
	b.mu.Lock()
	bfd, bclosed := b.fd, b.closed
	b.mu.Unlock()
	if bclosed {
		return ErrClosed
	}
	err := a.netlinkDo(func(h *netlink.Handle) error {
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: aName},
			PeerName:      bName,
			PeerNamespace: netlink.NsFd(bfd),
		}
		return h.LinkAdd(v)
	})
	if err != nil {
		return fmt.Errorf("netns: veth %s/%s - %s/%s: %w", a.name, aName, b.name, bName, err)
	}
	if err := a.LinkUp(aName); err != nil {
		return err
	}
	return b.LinkUp(bName)
}

// Link returns the named link in the namespace.
func (n *NS) Link(ifname string) (netlink.Link, error) {
	var l netlink.Link
	err := n.netlinkDo(func(h *netlink.Handle) (err error) {
		l, err = h.LinkByName(ifname)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %s: link %s: %w", n.name, ifname, err)
	}
	return l, nil
}

// LinkIndex returns the interface index of ifname.
func (n *NS) LinkIndex(ifname string) (int, error) {
	l, err := n.Link(ifname)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// LinkUp sets ifname administratively up.
func (n *NS) LinkUp(ifname string) error {
	return n.withLink(ifname, "up", func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetUp(l) })
}

// LinkDown sets ifname administratively down.
func (n *NS) LinkDown(ifname string) error {
	return n.withLink(ifname, "down", func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetDown(l) })
}

// LinkDel deletes ifname (for a veth, both ends go).
func (n *NS) LinkDel(ifname string) error {
	return n.withLink(ifname, "del", func(h *netlink.Handle, l netlink.Link) error { return h.LinkDel(l) })
}

// SetMTU sets the MTU of ifname.
func (n *NS) SetMTU(ifname string, mtu int) error {
	return n.withLink(ifname, "mtu", func(h *netlink.Handle, l netlink.Link) error { return h.LinkSetMTU(l, mtu) })
}

func (n *NS) withLink(ifname, what string, f func(*netlink.Handle, netlink.Link) error) error {
	err := n.netlinkDo(func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		return f(h, l)
	})
	if err != nil {
		return fmt.Errorf("netns: %s: %s %s: %w", n.name, what, ifname, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// AddAddr adds (or replaces) address p.Addr() with prefix length p.Bits()
// on ifname. IPv6 addresses get IFA_F_NODAD so that they are usable at once.
func (n *NS) AddAddr(ifname string, p netip.Prefix) error {
	return n.withLink(ifname, "addr add "+p.String(), func(h *netlink.Handle, l netlink.Link) error {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		return h.AddrReplace(l, a)
	})
}

// DelAddr removes address p from ifname.
func (n *NS) DelAddr(ifname string, p netip.Prefix) error {
	return n.withLink(ifname, "addr del "+p.String(), func(h *netlink.Handle, l netlink.Link) error {
		return h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)})
	})
}

// RouteType selects what a Route does.
type RouteType uint8

// Route types.
const (
	RouteUnicast     RouteType = iota // forward (via Gw and/or Dev)
	RouteBlackhole                    // drop silently
	RouteUnreachable                  // drop with ICMPv6 unreachable
)

// Route is a route to add. Zero fields are left out.
type Route struct {
	Dst    netip.Prefix // required; ::/0 for default
	Gw     netip.Addr
	Dev    string
	Src    netip.Addr // preferred source
	Table  int        // 0 = main
	Metric int
	Type   RouteType
}

func (n *NS) nlRoute(h *netlink.Handle, r Route) (*netlink.Route, error) {
	if !r.Dst.IsValid() {
		return nil, errors.New("route without destination")
	}
	nr := &netlink.Route{Dst: ipNet(r.Dst), Table: r.Table, Priority: r.Metric}
	if r.Dst.Addr().Is6() {
		nr.Family = netlink.FAMILY_V6
	} else {
		nr.Family = netlink.FAMILY_V4
	}
	if r.Gw.IsValid() {
		nr.Gw = net.IP(r.Gw.AsSlice())
	}
	if r.Src.IsValid() {
		nr.Src = net.IP(r.Src.AsSlice())
	}
	if r.Dev != "" {
		l, err := h.LinkByName(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	switch r.Type {
	case RouteBlackhole:
		nr.Type = unix.RTN_BLACKHOLE
	case RouteUnreachable:
		nr.Type = unix.RTN_UNREACHABLE
	}
	return nr, nil
}

// ReplaceRoute adds r, replacing a route with the same key.
func (n *NS) ReplaceRoute(r Route) error {
	err := n.netlinkDo(func(h *netlink.Handle) error {
		nr, err := n.nlRoute(h, r)
		if err != nil {
			return err
		}
		return h.RouteReplace(nr)
	})
	if err != nil {
		return fmt.Errorf("netns: %s: route %s: %w", n.name, r.Dst, err)
	}
	return nil
}

// DelRoute deletes r.
func (n *NS) DelRoute(r Route) error {
	err := n.netlinkDo(func(h *netlink.Handle) error {
		nr, err := n.nlRoute(h, r)
		if err != nil {
			return err
		}
		return h.RouteDel(nr)
	})
	if err != nil {
		return fmt.Errorf("netns: %s: route del %s: %w", n.name, r.Dst, err)
	}
	return nil
}

// RuleAction is what a policy rule does when it matches.
type RuleAction uint8

// Rule actions.
const (
	RuleLookup    RuleAction = iota // look up Table
	RuleBlackhole                   // drop silently
)

// Rule is an IPv6 policy routing rule.
type Rule struct {
	Priority int
	Src      netip.Prefix // zero: any
	Dst      netip.Prefix // zero: any
	Iif      string       // zero: any
	Table    int          // for RuleLookup
	Action   RuleAction
}

func (r Rule) nl() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V6
	nr.Priority = r.Priority
	if r.Src.IsValid() {
		nr.Src = ipNet(r.Src)
	}
	if r.Dst.IsValid() {
		nr.Dst = ipNet(r.Dst)
	}
	nr.IifName = r.Iif
	switch r.Action {
	case RuleLookup:
		nr.Table = r.Table
	case RuleBlackhole:
		nr.Type = unix.RTN_BLACKHOLE // == FR_ACT_BLACKHOLE
	}
	return nr
}

// AddRule adds r; an identical existing rule is not an error.
func (n *NS) AddRule(r Rule) error {
	err := n.netlinkDo(func(h *netlink.Handle) error { return h.RuleAdd(r.nl()) })
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netns: %s: rule %d: %w", n.name, r.Priority, err)
	}
	return nil
}

// DelRule deletes r.
func (n *NS) DelRule(r Rule) error {
	err := n.netlinkDo(func(h *netlink.Handle) error { return h.RuleDel(r.nl()) })
	if err != nil {
		return fmt.Errorf("netns: %s: rule del %d: %w", n.name, r.Priority, err)
	}
	return nil
}

// Netem is the egress impairment of one interface.
type Netem struct {
	Delay  time.Duration // added to every packet
	Jitter time.Duration
	Loss   float64 // percent, 0-100; 100 drops everything silently
	Limit  uint32  // queue length in packets; 0 means 10000
}

// Zero reports whether e impairs nothing.
func (e Netem) Zero() bool { return e.Delay == 0 && e.Jitter == 0 && e.Loss == 0 }

// SetNetem replaces ifname's root qdisc with netem e; a zero e removes the
// root qdisc (back to the default).
func (n *NS) SetNetem(ifname string, e Netem) error {
	return n.withLink(ifname, "netem", func(h *netlink.Handle, l netlink.Link) error {
		attrs := netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
		if e.Zero() {
			err := h.QdiscDel(&netlink.GenericQdisc{QdiscAttrs: attrs, QdiscType: "netem"})
			if err != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL)) {
				return nil
			}
			return err
		}
		limit := e.Limit
		if limit == 0 {
			limit = 10000
		}
		q := netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
			Latency: uint32(e.Delay / time.Microsecond),
			Jitter:  uint32(e.Jitter / time.Microsecond),
			Loss:    float32(e.Loss),
			Limit:   limit,
		})
		if err := h.QdiscReplace(q); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return ErrNoNetem
			}
			return err
		}
		return nil
	})
}

// GetNetem returns ifname's root netem settings (zero when it has none).
func (n *NS) GetNetem(ifname string) (Netem, error) {
	var out Netem
	err := n.withLink(ifname, "qdisc show", func(h *netlink.Handle, l netlink.Link) error {
		qs, err := h.QdiscList(l)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return err
		}
		for _, q := range qs {
			ne, ok := q.(*netlink.Netem)
			if !ok || q.Attrs().Parent != netlink.HANDLE_ROOT {
				continue
			}
			out = Netem{
				Delay:  ticks(ne.Latency),
				Jitter: ticks(ne.Jitter),
				Loss:   float64(ne.Loss) / float64(^uint32(0)) * 100,
				Limit:  ne.Limit,
			}
		}
		return nil
	})
	return out, err
}

// ticks converts netem's psched ticks back to a duration (rounded to µs).
func ticks(t uint32) time.Duration {
	return time.Duration(float64(t)/netlink.TickInUsec()+0.5) * time.Microsecond
}

// HasRule reports whether a rule matching r (priority, selectors, action)
// exists.
func (n *NS) HasRule(r Rule) (bool, error) {
	var rules []netlink.Rule
	err := n.netlinkDo(func(h *netlink.Handle) (err error) {
		rules, err = h.RuleList(netlink.FAMILY_V6)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			rules, err = h.RuleList(netlink.FAMILY_V6)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("netns: %s: rule list: %w", n.name, err)
	}
	want := r.nl()
	for _, x := range rules {
		if x.Priority == want.Priority && x.IifName == want.IifName &&
			sameNet(x.Src, want.Src) && sameNet(x.Dst, want.Dst) && sameAction(x, *want) {
			return true, nil
		}
	}
	return false, nil
}

func sameNet(a, b *net.IPNet) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.String() == b.String()
}

// sameAction compares a listed rule with a wanted one. netlink does not
// report a rule's action type, but only table lookups have a table.
func sameAction(listed, want netlink.Rule) bool {
	if want.Type == unix.RTN_BLACKHOLE {
		return listed.Table == 0
	}
	return listed.Table == want.Table
}

// ErrNoNetem is returned by SetNetem on kernels without sch_netem.
var ErrNoNetem = errors.New("netns: the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)")
