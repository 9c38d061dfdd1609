package ebpf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/dataplane"
)

// The shim device is a veth pair. Policy rules route the packets of shimmed
// ULID pairs into its first end (Config.ShimDevice), whose MTU is the
// uplinks' minus 8 and which has TSO off, so the stack segments TCP's large
// packets there. shim6_out, on the ingress of the other end, then rewrites
// one wire packet at a time and redirects it to the uplink. See
// docs/dataplane.md for why (Linux has no GSO handler for next header 140).

const (
	frActNOP           = 3   // FR_ACT_NOP
	in6AddrGenModeNone = 1   // IN6_ADDR_GEN_MODE_NONE
	ipprotoShim6       = 140 // IANA; RFC 5533 §5
)

func (d *DataPlane) peerName() string { return d.cfg.ShimDevice + "p" }

// setupShimDevice creates (or adopts) the veth pair, its offloads, the
// table with the default route into it and the NOP anchor rule.
func (d *DataPlane) setupShimDevice(mtu int) error {
	name, peer := d.cfg.ShimDevice, d.peerName()
	l, err := d.nl.LinkByName(name)
	if err == nil {
		if _, ok := l.(*netlink.Veth); !ok {
			return fmt.Errorf("%w: %s exists and is not a veth", ErrConfig, name)
		}
	} else {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}, PeerName: peer}
		if err := d.nl.LinkAdd(veth); err != nil {
			return fmt.Errorf("create shim device %s: %w", name, err)
		}
		if l, err = d.nl.LinkByName(name); err != nil {
			return err
		}
	}
	p, err := d.nl.LinkByName(peer)
	if err != nil {
		return fmt.Errorf("shim device peer %s: %w", peer, err)
	}
	for _, x := range []netlink.Link{l, p} {
		// No link-local address: nothing of ours chatters (DAD, RS, MLD).
		if err := d.nl.LinkSetIP6AddrGenMode(x, in6AddrGenModeNone); err != nil {
			return fmt.Errorf("addrgenmode of %s: %w", x.Attrs().Name, err)
		}
		if x.Attrs().MTU != mtu {
			if err := d.nl.LinkSetMTU(x, mtu); err != nil {
				return fmt.Errorf("mtu of %s: %w", x.Attrs().Name, err)
			}
		}
	}
	// NOARP: the kernel addresses frames to the device itself; nobody
	// needs to answer neighbour solicitations for the ULIDs there.
	if err := d.nl.LinkSetARPOff(l); err != nil {
		return err
	}
	err = d.ns.do(func() error {
		// The peer end only feeds shim6_out; IPv6 off there keeps
		// anything shim6_out lets through from the stack.
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+peer+"/disable_ipv6", []byte("1"), 0); err != nil {
			return err
		}
		gso := d.cfg.ShimOffload == OffloadGSO
		if err := setFeature(name, ethtoolSTSO, false); err != nil {
			return err
		}
		if err := setFeature(name, ethtoolSGSO, gso); err != nil {
			return err
		}
		// GRO on the receiving end would merge the segments again.
		return setFeature(peer, ethtoolSGRO, false)
	})
	if err != nil {
		return fmt.Errorf("configure shim device: %w", err)
	}
	// TCP builds GSO packets whatever the device's features; only
	// gso_max_segs 1 makes it send wire-sized ones.
	segs := 65535
	if d.cfg.ShimOffload == OffloadNone {
		segs = 1
	}
	if l.Attrs().GSOMaxSegs != uint32(segs) {
		if err := d.nl.LinkSetGSOMaxSegs(l, segs); err != nil {
			return fmt.Errorf("gso_max_segs of %s: %w", name, err)
		}
	}
	for _, x := range []netlink.Link{l, p} {
		if err := d.nl.LinkSetUp(x); err != nil {
			return err
		}
	}
	d.shimIndex, d.peerIndex = l.Attrs().Index, p.Attrs().Index

	rt := &netlink.Route{
		LinkIndex: d.shimIndex,
		Dst:       &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
		Table:     d.cfg.RouteTable,
		Family:    netlink.FAMILY_V6,
	}
	if err := d.nl.RouteReplace(rt); err != nil {
		return fmt.Errorf("route into shim device (table %d): %w", d.cfg.RouteTable, err)
	}
	anchor := d.anchorRule()
	if err := d.nl.RuleAdd(anchor); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("anchor rule: %w", err)
	}
	return nil
}

// Rule priorities: P bypasses Shim6 control messages (IP protocol 140) of
// the pair to P+2, P routes the pair into the shim device's table, P+2 is
// a no-op anchor for the goto.
func (d *DataPlane) anchorRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V6
	r.Priority = d.cfg.RulePriority + 2
	r.Type = frActNOP
	r.Table = -1
	return r
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(128, 128)}
}

func (d *DataPlane) pairRules(local, peer netip.Addr) (bypass, shim *netlink.Rule) {
	bypass = netlink.NewRule()
	bypass.Family = netlink.FAMILY_V6
	bypass.Priority = d.cfg.RulePriority
	bypass.Src, bypass.Dst = hostNet(local), hostNet(peer)
	bypass.IPProto = ipprotoShim6
	bypass.Goto = d.cfg.RulePriority + 2
	bypass.Table = -1

	shim = netlink.NewRule()
	shim.Family = netlink.FAMILY_V6
	shim.Priority = d.cfg.RulePriority + 1
	shim.Src, shim.Dst = hostNet(local), hostNet(peer)
	shim.Table = d.cfg.RouteTable
	return bypass, shim
}

// addRules steers the ULID pair into the shim device. Adding a rule bumps
// the routing generation, so connected sockets look their route up again
// and move to the shim device (and its smaller MTU) at once.
func (d *DataPlane) addRules(local, peer netip.Addr) error {
	bypass, shim := d.pairRules(local, peer)
	if err := d.nl.RuleAdd(bypass); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("bypass rule for %v->%v: %w", local, peer, err)
	}
	if err := d.nl.RuleAdd(shim); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("shim rule for %v->%v: %w", local, peer, err)
	}
	return nil
}

func (d *DataPlane) delRules(local, peer netip.Addr) error {
	bypass, shim := d.pairRules(local, peer)
	var errs []error
	for _, r := range []*netlink.Rule{shim, bypass} {
		if err := d.nl.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type pairRule struct{ local, peer netip.Addr }

// listRules returns the ULID pairs that have a shim rule.
func (d *DataPlane) listRules() (map[pairRule]bool, error) {
	rules, err := d.nl.RuleList(netlink.FAMILY_V6)
	if err != nil {
		return nil, err
	}
	out := make(map[pairRule]bool)
	for _, r := range rules {
		if r.Priority != d.cfg.RulePriority && r.Priority != d.cfg.RulePriority+1 {
			continue
		}
		if r.Src == nil || r.Dst == nil {
			continue
		}
		l, ok1 := netip.AddrFromSlice(r.Src.IP)
		p, ok2 := netip.AddrFromSlice(r.Dst.IP)
		if ok1 && ok2 {
			out[pairRule{l, p}] = true
		}
	}
	return out, nil
}

// resolve finds the uplink and next hop for packets from local to peer
// locator, as the routing tables (including source routing) say.
func (d *DataPlane) resolve(local, peer netip.Addr) (route, error) {
	routes, err := d.nl.RouteGetWithOptions(net.IP(peer.AsSlice()), &netlink.RouteGetOptions{SrcAddr: net.IP(local.AsSlice())})
	if err != nil {
		return route{}, fmt.Errorf("%w %v->%v: %v", ErrNoRoute, local, peer, err)
	}
	if len(routes) == 0 {
		return route{}, fmt.Errorf("%w %v->%v", ErrNoRoute, local, peer)
	}
	r := routes[0]
	if r.LinkIndex == 0 || r.LinkIndex == d.shimIndex {
		return route{}, fmt.Errorf("%w %v->%v: the locator pair is itself a shimmed ULID pair", ErrNoRoute, local, peer)
	}
	nh := peer
	if r.Gw != nil {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			nh = gw.Unmap()
		}
	}
	return route{ifindex: r.LinkIndex, nexthop: nh}, nil
}

// resolveAll resolves the fast-reroute pairs (and the pass-through route of
// a ULID pair) in one go; pairs without a route get ifindex 0. A pair that
// is a shimmed ULID pair (its rules send it into the shim device) cannot be
// looked up directly (route lookups cannot say "IP protocol 140", which
// would take the bypass rule: RTA_IP_PROTO only knows TCP, UDP and ICMP):
// its route is the one remembered from when it was not shimmed, if any.
func (d *DataPlane) resolveAll(pairs []dataplane.Pair) []route {
	out := make([]route, len(pairs))
	for i, p := range pairs {
		k := pairRule{p.Local, p.Peer}
		if d.ruled[k] {
			out[i] = d.direct[k]
			continue
		}
		r, err := d.resolve(p.Local, p.Peer)
		if err != nil {
			continue
		}
		out[i] = r
		if _, ok := d.direct[k]; ok || d.isULIDPair(k) {
			d.direct[k] = r
		}
	}
	return out
}

// linkAddr is a resolved next hop: its link-layer address and the
// uplink's.
type linkAddr struct {
	dst, src [6]byte
}

// warmNeighbours makes sure the next hops of the given routes have a
// usable neighbour entry, or starts resolving them (RTM_NEWNEIGH with
// NTF_USE, as a packet to them would), and returns the link-layer
// addresses of those that are resolved. A move sends with them directly
// (see fr_redirect in shim6.c): bpf_redirect_neigh queues a packet whose
// neighbour is unresolved (a provider that just came back) and the queue
// is later sent by the neighbour of the route the packet came with: lost.
func (d *DataPlane) warmNeighbours(routes []route) map[route]linkAddr {
	out := make(map[route]linkAddr)
	byLink := make(map[int][]netlink.Neigh)
	own := make(map[int]net.HardwareAddr)
	for _, r := range routes {
		if r.ifindex == 0 || !r.nexthop.IsValid() {
			continue
		}
		if _, done := out[r]; done {
			continue
		}
		ns, ok := byLink[r.ifindex]
		if !ok {
			ns, _ = d.nl.NeighList(r.ifindex, netlink.FAMILY_V6)
			byLink[r.ifindex] = ns
			if l, err := d.nl.LinkByIndex(r.ifindex); err == nil {
				own[r.ifindex] = l.Attrs().HardwareAddr
			}
		}
		usable := false
		for _, n := range ns {
			if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == r.nexthop &&
				n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
				usable = true
				if len(n.HardwareAddr) == 6 && len(own[r.ifindex]) == 6 {
					var la linkAddr
					copy(la.dst[:], n.HardwareAddr)
					copy(la.src[:], own[r.ifindex])
					out[r] = la
				}
				break
			}
		}
		if usable {
			continue
		}
		err := d.nl.NeighSet(&netlink.Neigh{LinkIndex: r.ifindex, Family: netlink.FAMILY_V6, IP: net.IP(r.nexthop.AsSlice()), Flags: netlink.NTF_USE})
		if err != nil {
			d.log.Debug("fast reroute: resolve next hop", "ifindex", r.ifindex, "nexthop", r.nexthop, "err", err)
		}
	}
	return out
}

// putPair writes one pair_map entry; a next hop that is not resolved now
// keeps the link-layer addresses it had (the provider may be down).
func (d *DataPlane) putPair(k shim6PairKey, r route, macs map[route]linkAddr) error {
	v := pairMapValue(r)
	if la, ok := macs[r]; ok {
		v.Dmac, v.Smac, v.Flags = la.dst, la.src, pairFlagMAC
	} else {
		var old shim6PairVal
		if d.objs.PairMap.Lookup(k, &old) == nil && old.Flags&pairFlagMAC != 0 &&
			old.Ifindex == v.Ifindex && old.Nh == v.Nh {
			v.Dmac, v.Smac, v.Flags = old.Dmac, old.Smac, pairFlagMAC
		}
	}
	return d.objs.PairMap.Put(k, v)
}

// isULIDPair reports whether an installed default context has this ULID
// pair (only those can be shimmed and so need their direct route kept).
func (d *DataPlane) isULIDPair(k pairRule) bool {
	for _, m := range d.mappings {
		if m.FII == 0 && m.LocalULID == k.local && m.PeerULID == k.peer {
			return true
		}
	}
	return false
}

// fwmarkRule routes sockets the fast reroute marked into the shim device.
// It comes after the pair rules and their anchor (P+3), before the host's
// own rules.
func (d *DataPlane) fwmarkRule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V6
	r.Priority = d.cfg.RulePriority + 3
	r.Mark = d.cfg.RerouteMark
	m := uint32(0xffffffff)
	r.Mask = &m
	r.Table = d.cfg.RouteTable
	return r
}

// removeShimDevice deletes the veth pair, its route and the anchor rule.
func (d *DataPlane) removeShimDevice() error {
	var errs []error
	if err := d.nl.RuleDel(d.anchorRule()); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, err)
	}
	if err := d.delFwmarkRule(); err != nil {
		errs = append(errs, err)
	}
	if l, err := d.nl.LinkByName(d.cfg.ShimDevice); err == nil {
		if err := d.nl.LinkDel(l); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// delFwmarkRule removes the fast reroute's mark rule (whatever its mark:
// an earlier run may have used another), if there is one.
func (d *DataPlane) delFwmarkRule() error {
	rules, err := d.nl.RuleList(netlink.FAMILY_V6)
	if err != nil {
		return err
	}
	var errs []error
	for i := range rules {
		r := &rules[i]
		if r.Priority != d.cfg.RulePriority+3 || r.Table != d.cfg.RouteTable {
			continue
		}
		if err := d.nl.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var _ dataplane.DataPlane = (*DataPlane)(nil)
