package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The standard topology (defaults: 2 hosts, 2 providers):
//
//	        host a                      host b
//	   to-p1 /    \ to-p2          to-p1 /    \ to-p2
//	        /      \                    /      \
//	  to-a /   to-a \             to-b /   to-b \
//	     p1 -----------------------------------  p2      provider routers
//	  to-core \                          / to-core
//	           \ to-p1            to-p2 /
//	             ---------- core -------                 the "Internet"
//
// Provider i (1-based) owns 2001:db8:i::/48. The link between host j
// (a, b, ...) and provider i is 2001:db8:i:J::/64 with J = 0xa+j (so "a" is
// on 2001:db8:1:a::/64); the router is ::1 and the host ::2 on it. The link
// between provider i and the core is 2001:db8:ffff:i::/64, core ::1,
// provider ::2.
//
// Hosts route by source (as a real multihomed site does): a packet whose
// source is in provider i's prefix uses table 100+i, whose only route is
// the default via provider i. Unbound sockets use the main table, where
// provider 1 has the lowest metric. Providers drop packets from a host
// whose source is not in their own prefix (BCP 38) unless
// Config.NoIngressFilter, so a wrong source choice shows up as loss.

// Interface names used by the topology.
const (
	CoreIfname = "to-core" // on a provider, towards the core
)

// HostIfname is the host's interface towards provider i (1-based).
func HostIfname(provider int) string { return fmt.Sprintf("to-p%d", provider) }

// ProviderIfname is provider's interface towards host name ("a", "b").
func ProviderIfname(host string) string { return "to-" + host }

// HostName is the name of host j (0-based): "a", "b", ...
func HostName(j int) string { return string(rune('a' + j)) }

// ProviderName is the name of provider i (1-based): "p1", "p2", ...
func ProviderName(i int) string { return fmt.Sprintf("p%d", i) }

// HostLinkName names the link between host and provider i: "a-p1".
func HostLinkName(host string, provider int) string {
	return fmt.Sprintf("%s-%s", host, ProviderName(provider))
}

// CoreLinkName names the link between provider i and the core: "p1-core".
func CoreLinkName(provider int) string { return ProviderName(provider) + "-core" }

const maxNodes = 16

func addr16(words ...uint16) netip.Addr {
	var b [16]byte
	for i, w := range words {
		b[2*i], b[2*i+1] = byte(w>>8), byte(w)
	}
	return netip.AddrFrom16(b)
}

// ProviderPrefix is provider i's /48: 2001:db8:i::/48.
func ProviderPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(addr16(0x2001, 0xdb8, uint16(i)), 48)
}

// HostLinkPrefix is the /64 between host j (0-based) and provider i.
func HostLinkPrefix(provider, host int) netip.Prefix {
	return netip.PrefixFrom(addr16(0x2001, 0xdb8, uint16(provider), uint16(0xa+host)), 64)
}

func coreLinkPrefix(provider int) netip.Prefix {
	return netip.PrefixFrom(addr16(0x2001, 0xdb8, 0xffff, uint16(provider)), 64)
}

func withIID(p netip.Prefix, iid uint16) netip.Addr {
	b := p.Addr().As16()
	b[14], b[15] = byte(iid>>8), byte(iid)
	return netip.AddrFrom16(b)
}

// Config describes a standard topology.
type Config struct {
	// Prefix starts every namespace name: PREFIX-a, PREFIX-p1, PREFIX-core.
	// It must be unique on the machine (see nstest for tests).
	Prefix string
	// Hosts is the number of hosts, named a, b, c, ... (default 2, max 16).
	Hosts int
	// Providers is the number of providers, p1, p2, ... (default 2, max 16).
	Providers int
	// Delay is added in each direction on every host uplink (so the
	// round trip over one uplink grows by 2*Delay).
	Delay time.Duration
	// CoreDelay is added in each direction on every provider-core link.
	CoreDelay time.Duration
	// LinkDelay overrides Delay/CoreDelay for the named links ("a-p1",
	// "p2-core").
	LinkDelay map[string]time.Duration
	// NoIngressFilter turns off the providers' BCP 38 source filter.
	NoIngressFilter bool
	// Netem implements delays with the netem qdisc (which the CI kernel
	// lacks) instead of a userspace Relay.
	Netem bool
	// ExternalRelays makes Build leave the relays of delayed links to
	// another process, which calls StartRelays on an attached topology
	// (cmd/shim6lab does this so the lab outlives the command).
	ExternalRelays bool
}

func (c *Config) normalize() error {
	if c.Hosts == 0 {
		c.Hosts = 2
	}
	if c.Providers == 0 {
		c.Providers = 2
	}
	if c.Prefix == "" {
		return errors.New("netns: topology needs a Prefix")
	}
	if c.Hosts < 1 || c.Hosts > maxNodes || c.Providers < 1 || c.Providers > maxNodes {
		return fmt.Errorf("netns: topology wants 1-%d hosts and providers, got %d and %d", maxNodes, c.Hosts, c.Providers)
	}
	return nil
}

// Provider is a provider router.
type Provider struct {
	Name   string // "p1"
	Index  int    // 1-based
	NS     *NS
	Prefix netip.Prefix // the provider's /48
}

// Host is a multihomed host.
type Host struct {
	Name    string // "a"
	Index   int    // 0-based
	NS      *NS
	Uplinks []Uplink // one per provider, in provider order
}

// Uplink is a host's connection to one provider.
type Uplink struct {
	Provider int          // 1-based provider index
	Link     string       // link name, "a-p1"
	Ifname   string       // interface on the host, "to-p1"
	Prefix   netip.Prefix // the link's /64
	Addr     netip.Addr   // the host's static locator on the link
	Gateway  netip.Addr   // the provider router's address on the link
	Table    int          // the host's routing table for this provider's sources
}

// Locators returns the host's static locators, in provider order.
func (h *Host) Locators() []netip.Addr {
	out := make([]netip.Addr, len(h.Uplinks))
	for i, u := range h.Uplinks {
		out[i] = u.Addr
	}
	return out
}

// End is one side of a link.
type End struct {
	NS     *NS
	Ifname string
}

// Link is a point-to-point link of the topology.
type Link struct {
	Name  string
	Down  End // host side (or provider side of a core link)
	Up    End // provider side (or core side)
	Delay time.Duration

	behind netip.Prefix // addresses reached through the Down end
	netem  bool         // delay with netem rather than a relay
	setup  func() error // (re)applies addresses and routes; idempotent
}

// Topology is a built (or attached) standard topology.
type Topology struct {
	Config    Config
	Core      *NS
	Providers []*Provider
	Hosts     []*Host
	Links     []*Link // host links first, then core links

	relays []*Relay
}

// Host returns the host with the given name, or nil.
func (t *Topology) Host(name string) *Host {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Link returns the link with the given name, or nil.
func (t *Topology) Link(name string) *Link {
	for _, l := range t.Links {
		if l.Name == name {
			return l
		}
	}
	return nil
}

// NodeNames returns the namespace names of all nodes.
func (t *Topology) NodeNames() []string {
	return nodeNames(t.Config)
}

func nodeNames(c Config) []string {
	var out []string
	for j := 0; j < c.Hosts; j++ {
		out = append(out, c.Prefix+"-"+HostName(j))
	}
	for i := 1; i <= c.Providers; i++ {
		out = append(out, c.Prefix+"-"+ProviderName(i))
	}
	return append(out, c.Prefix+"-core")
}

func (t *Topology) all() []*NS {
	var out []*NS
	for _, h := range t.Hosts {
		if h.NS != nil {
			out = append(out, h.NS)
		}
	}
	for _, p := range t.Providers {
		if p.NS != nil {
			out = append(out, p.NS)
		}
	}
	if t.Core != nil {
		out = append(out, t.Core)
	}
	return out
}

// Build creates the topology described by cfg. On error everything it
// created is removed again.
func Build(cfg Config) (*Topology, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	t, err := assemble(cfg, true)
	if err != nil {
		return nil, err
	}
	if err := t.build(); err != nil {
		return nil, errors.Join(err, t.Destroy())
	}
	return t, nil
}

// Attach opens an existing topology that Build created with the same cfg
// (for a later process, such as `shim6lab fail`).
func Attach(cfg Config) (*Topology, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	return assemble(cfg, false)
}

// assemble creates or opens the namespaces and fills in the structure.
func assemble(cfg Config, create bool) (*Topology, error) {
	t := &Topology{Config: cfg}
	get := Open
	if create {
		get = Create
	}
	fail := func(err error) (*Topology, error) {
		// Only remove what this call created.
		if create {
			return nil, errors.Join(err, t.Destroy())
		}
		return nil, errors.Join(err, t.Close())
	}
	for j := 0; j < cfg.Hosts; j++ {
		n, err := get(cfg.Prefix + "-" + HostName(j))
		if err != nil {
			return fail(err)
		}
		t.Hosts = append(t.Hosts, &Host{Name: HostName(j), Index: j, NS: n})
	}
	for i := 1; i <= cfg.Providers; i++ {
		n, err := get(cfg.Prefix + "-" + ProviderName(i))
		if err != nil {
			return fail(err)
		}
		t.Providers = append(t.Providers, &Provider{Name: ProviderName(i), Index: i, NS: n, Prefix: ProviderPrefix(i)})
	}
	core, err := get(cfg.Prefix + "-core")
	if err != nil {
		return fail(err)
	}
	t.Core = core

	delay := func(name string, def time.Duration) time.Duration {
		if d, ok := cfg.LinkDelay[name]; ok {
			return d
		}
		return def
	}
	for _, h := range t.Hosts {
		for _, p := range t.Providers {
			pfx := HostLinkPrefix(p.Index, h.Index)
			u := Uplink{
				Provider: p.Index,
				Link:     HostLinkName(h.Name, p.Index),
				Ifname:   HostIfname(p.Index),
				Prefix:   pfx,
				Addr:     withIID(pfx, 2),
				Gateway:  withIID(pfx, 1),
				Table:    100 + p.Index,
			}
			h.Uplinks = append(h.Uplinks, u)
			h, p := h, p
			l := &Link{
				Name:  u.Link,
				Down:  End{NS: h.NS, Ifname: u.Ifname},
				Up:    End{NS: p.NS, Ifname: ProviderIfname(h.Name)},
				Delay: delay(u.Link, cfg.Delay),

				behind: pfx,
				netem:  cfg.Netem,
			}
			l.setup = func() error { return t.setupHostLink(h, p, u) }
			t.Links = append(t.Links, l)
		}
	}
	for _, p := range t.Providers {
		p := p
		name := CoreLinkName(p.Index)
		l := &Link{
			Name:  name,
			Down:  End{NS: p.NS, Ifname: CoreIfname},
			Up:    End{NS: t.Core, Ifname: HostIfname(p.Index)},
			Delay: delay(name, cfg.CoreDelay),

			behind: p.Prefix,
			netem:  cfg.Netem,
		}
		l.setup = func() error { return t.setupCoreLink(p) }
		t.Links = append(t.Links, l)
	}
	return t, nil
}

func (t *Topology) build() error {
	for _, h := range t.Hosts {
		if err := baseSysctls(h.NS, false); err != nil {
			return err
		}
	}
	for _, p := range t.Providers {
		if err := baseSysctls(p.NS, true); err != nil {
			return err
		}
	}
	if err := baseSysctls(t.Core, true); err != nil {
		return err
	}
	for _, l := range t.Links {
		if l.relayed() {
			if err := l.buildRelayed(); err != nil {
				return err
			}
		} else if err := Veth(l.Down.NS, l.Down.Ifname, l.Up.NS, l.Up.Ifname); err != nil {
			return err
		}
		if err := l.setup(); err != nil {
			return err
		}
		if err := l.applyDelay(); err != nil {
			return err
		}
	}
	if !t.Config.ExternalRelays {
		if err := t.StartRelays(); err != nil {
			return err
		}
	}
	for _, h := range t.Hosts {
		for _, u := range h.Uplinks {
			// RFC 6724 rule 5 aside, the kernel picks the route first:
			// make the source pick the provider.
			if err := h.NS.AddRule(Rule{Priority: 1000 + u.Provider, Src: ProviderPrefix(u.Provider), Table: u.Table}); err != nil {
				return err
			}
		}
	}
	if !t.Config.NoIngressFilter {
		for _, p := range t.Providers {
			for _, h := range t.Hosts {
				ifn := ProviderIfname(h.Name)
				if err := p.NS.AddRule(Rule{Priority: 100, Iif: ifn, Src: p.Prefix, Table: 254}); err != nil {
					return err
				}
				if err := p.NS.AddRule(Rule{Priority: 101, Iif: ifn, Action: RuleBlackhole}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func baseSysctls(n *NS, router bool) error {
	kv := [][2]string{
		{"net.ipv6.conf.all.accept_dad", "0"},
		{"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv6.conf.all.accept_ra", "0"},
		{"net.ipv6.conf.default.accept_ra", "0"},
		{"net.ipv6.conf.default.router_solicitations", "0"},
		// Keep static addresses when a link is set down, so that "fail
		// down" and "heal" do not lose configuration.
		{"net.ipv6.conf.all.keep_addr_on_down", "1"},
		{"net.ipv6.conf.default.keep_addr_on_down", "1"},
	}
	if router {
		kv = append(kv, [2]string{"net.ipv6.conf.all.forwarding", "1"})
	}
	for _, e := range kv {
		if err := n.SetSysctl(e[0], e[1]); err != nil {
			return err
		}
	}
	return nil
}

var defaultRoute = netip.MustParsePrefix("::/0")

func (t *Topology) setupHostLink(h *Host, p *Provider, u Uplink) error {
	if err := h.NS.AddAddr(u.Ifname, netip.PrefixFrom(u.Addr, 64)); err != nil {
		return err
	}
	if err := p.NS.AddAddr(ProviderIfname(h.Name), netip.PrefixFrom(u.Gateway, 64)); err != nil {
		return err
	}
	if err := h.NS.ReplaceRoute(Route{Dst: defaultRoute, Gw: u.Gateway, Dev: u.Ifname, Table: u.Table}); err != nil {
		return err
	}
	return h.NS.ReplaceRoute(Route{Dst: defaultRoute, Gw: u.Gateway, Dev: u.Ifname, Metric: 100 * u.Provider})
}

func (t *Topology) setupCoreLink(p *Provider) error {
	pfx := coreLinkPrefix(p.Index)
	coreAddr, provAddr := withIID(pfx, 1), withIID(pfx, 2)
	if err := p.NS.AddAddr(CoreIfname, netip.PrefixFrom(provAddr, 64)); err != nil {
		return err
	}
	if err := t.Core.AddAddr(HostIfname(p.Index), netip.PrefixFrom(coreAddr, 64)); err != nil {
		return err
	}
	if err := p.NS.ReplaceRoute(Route{Dst: defaultRoute, Gw: coreAddr, Dev: CoreIfname}); err != nil {
		return err
	}
	return t.Core.ReplaceRoute(Route{Dst: p.Prefix, Gw: provAddr, Dev: HostIfname(p.Index)})
}

// Direction says which way a blackhole drops.
type Direction uint8

// Directions. Out is from the Down end (host) to the Up end (provider);
// DirOut|DirIn == DirBoth.
const (
	DirNone Direction = 0
	DirOut  Direction = 1
	DirIn   Direction = 2
	DirBoth Direction = DirOut | DirIn
)

func (d Direction) String() string {
	switch d {
	case DirNone:
		return "none"
	case DirOut:
		return "out"
	case DirIn:
		return "in"
	case DirBoth:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// ParseDirection parses "out", "in" or "both" ("" is both).
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(s) {
	case "", "both":
		return DirBoth, nil
	case "out", "up":
		return DirOut, nil
	case "in", "down":
		return DirIn, nil
	}
	return DirNone, fmt.Errorf("netns: unknown direction %q (want out, in or both)", s)
}

// Method is how a link is broken.
type Method uint8

// Failure methods.
const (
	// Blackhole silently drops every packet the Up end (provider, or core
	// for a core link) would forward across the link, using blackhole
	// policy rules there. The link itself stays up: no carrier change, no
	// route change on the host, no ICMP error, neighbour discovery and the
	// router's own addresses still answer. This is an upstream failure that
	// only end-to-end reachability detection (REAP) notices. The host's
	// namespace is not touched, so a data plane there is undisturbed.
	Blackhole Method = iota + 1
	// LinkDown sets the Up end administratively down, so the Down end (the
	// host) sees its carrier go away (NO-CARRIER, an RTM_NEWLINK event);
	// its addresses and routes stay.
	LinkDown
)

func (m Method) String() string {
	switch m {
	case Blackhole:
		return "blackhole"
	case LinkDown:
		return "down"
	}
	return fmt.Sprintf("Method(%d)", uint8(m))
}

// ParseMethod parses "blackhole" or "down".
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(s) {
	case "blackhole", "drop", "silent":
		return Blackhole, nil
	case "down", "linkdown", "link-down":
		return LinkDown, nil
	}
	return 0, fmt.Errorf("netns: unknown failure method %q (want blackhole or down)", s)
}

// ErrNoLink is returned for an unknown link name.
var ErrNoLink = errors.New("netns: no such link")

func (t *Topology) link(name string) (*Link, error) {
	l := t.Link(name)
	if l == nil {
		var names []string
		for _, l := range t.Links {
			names = append(names, l.Name)
		}
		return nil, fmt.Errorf("%w: %q (links: %s)", ErrNoLink, name, strings.Join(names, ", "))
	}
	return l, nil
}

// BlackholePriority is the policy-rule priority of the failure rules:
// after "lookup local" (0), so that the router's own addresses and
// neighbour discovery keep working, and before everything else.
const BlackholePriority = 10

// blackholeRules are the rules on the Up end that drop direction d.
func (l *Link) blackholeRules(d Direction) []Rule {
	var rs []Rule
	if d&DirOut != 0 {
		rs = append(rs, Rule{Priority: BlackholePriority, Iif: l.Up.Ifname, Action: RuleBlackhole})
	}
	if d&DirIn != 0 {
		rs = append(rs, Rule{Priority: BlackholePriority, Dst: l.behind, Action: RuleBlackhole})
	}
	return rs
}

func (l *Link) applyDelay() error {
	if l.Delay == 0 || l.relayed() {
		return nil
	}
	if err := l.Down.NS.SetNetem(l.Down.Ifname, Netem{Delay: l.Delay}); err != nil {
		return err
	}
	return l.Up.NS.SetNetem(l.Up.Ifname, Netem{Delay: l.Delay})
}

// Fail breaks the named link. dir only matters for Blackhole (DirNone
// means both). Failing a failed link adds to its failure.
func (t *Topology) Fail(name string, m Method, dir Direction) error {
	l, err := t.link(name)
	if err != nil {
		return err
	}
	switch m {
	case Blackhole:
		if dir == DirNone {
			dir = DirBoth
		}
		for _, r := range l.blackholeRules(dir) {
			if err := l.Up.NS.AddRule(r); err != nil {
				return err
			}
		}
		return nil
	case LinkDown:
		if l.relayed() {
			// The host's direct peer is the relay's interface.
			if err := l.Up.NS.LinkDown(l.relayDown()); err != nil {
				return err
			}
		}
		return l.Up.NS.LinkDown(l.Up.Ifname)
	}
	return fmt.Errorf("netns: unknown failure method %d", m)
}

// Heal undoes any failure of the named link: blackhole rules removed,
// both ends up, addresses, routes and delay re-applied.
func (t *Topology) Heal(name string) error {
	l, err := t.link(name)
	if err != nil {
		return err
	}
	for _, r := range l.blackholeRules(DirBoth) {
		if err := l.Up.NS.DelRule(r); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	if err := l.Up.NS.LinkUp(l.Up.Ifname); err != nil {
		return err
	}
	if l.relayed() {
		if err := l.Up.NS.LinkUp(l.relayDown()); err != nil {
			return err
		}
	}
	if err := l.Down.NS.LinkUp(l.Down.Ifname); err != nil {
		return err
	}
	if err := l.applyDelay(); err != nil {
		return err
	}
	return l.setup()
}

// LinkStatus is the observed state of a link.
type LinkStatus struct {
	Name       string
	DownEndUp  bool      // Down end administratively up
	UpEndUp    bool      // Up end administratively up
	Carrier    bool      // the Down end has carrier
	Blackholed Direction // directions dropped by blackhole rules
}

// Failed reports whether the link is broken in any way.
func (s LinkStatus) Failed() bool {
	return !s.DownEndUp || !s.UpEndUp || !s.Carrier || s.Blackholed != DirNone
}

func (s LinkStatus) String() string {
	if !s.Failed() {
		return "ok"
	}
	var parts []string
	if !s.UpEndUp || !s.DownEndUp {
		parts = append(parts, "down")
	} else if !s.Carrier {
		parts = append(parts, "no-carrier")
	}
	if s.Blackholed != DirNone {
		parts = append(parts, "blackhole-"+s.Blackholed.String())
	}
	return strings.Join(parts, ",")
}

// Status reads the state of every link from the kernel.
func (t *Topology) Status() ([]LinkStatus, error) {
	var out []LinkStatus
	for _, l := range t.Links {
		s, err := l.status()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *Link) status() (LinkStatus, error) {
	s := LinkStatus{Name: l.Name}
	dl, err := l.Down.NS.Link(l.Down.Ifname)
	if err != nil {
		return s, err
	}
	ul, err := l.Up.NS.Link(l.Up.Ifname)
	if err != nil {
		return s, err
	}
	s.DownEndUp = dl.Attrs().Flags&net.FlagUp != 0
	s.UpEndUp = ul.Attrs().Flags&net.FlagUp != 0
	s.Carrier = dl.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
	for _, d := range []Direction{DirOut, DirIn} {
		has, err := l.Up.NS.HasRule(l.blackholeRules(d)[0])
		if err != nil {
			return s, err
		}
		if has {
			s.Blackholed |= d
		}
	}
	return s, nil
}

// Close stops the relays this value started and releases all handles;
// the namespaces stay.
func (t *Topology) Close() error {
	var errs []error
	t.stopRelays()
	for _, n := range t.all() {
		errs = append(errs, n.Close())
	}
	return errors.Join(errs...)
}

// Destroy kills every process left inside the topology's namespaces and
// removes them. The veths go with their namespaces.
func (t *Topology) Destroy() error {
	var errs []error
	t.stopRelays()
	for _, n := range t.all() {
		if pids, err := n.PIDs(); err == nil {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		errs = append(errs, n.Delete())
	}
	return errors.Join(errs...)
}

// RemoveByPrefix removes every namespace whose name starts with prefix,
// killing the processes inside first: the cleanup after a crash.
// It returns the names removed.
func RemoveByPrefix(prefix string) ([]string, error) {
	if prefix == "" {
		return nil, errors.New("netns: RemoveByPrefix needs a prefix")
	}
	names, err := List(prefix)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if n, err := Open(name); err == nil {
			if pids, err := n.PIDs(); err == nil {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			n.Close()
		}
		errs = append(errs, Remove(name))
	}
	return names, errors.Join(errs...)
}

// A delayed link without netem is built as two veth pairs joined by a
// Relay in the Up end's namespace:
//
//	Down.Ifname <-> rd-LINK ==relay== ru-LINK <-> Up.Ifname
//
// rd-/ru- have IPv6 disabled, so they only carry frames. Addresses,
// routes, rules and failures stay on Down.Ifname and Up.Ifname.
func (l *Link) relayed() bool { return l.Delay > 0 && !l.netem }

func (l *Link) relayDown() string { return "rd-" + l.Name }
func (l *Link) relayUp() string   { return "ru-" + l.Name }

func (l *Link) buildRelayed() error {
	if err := Veth(l.Down.NS, l.Down.Ifname, l.Up.NS, l.relayDown()); err != nil {
		return err
	}
	if err := Veth(l.Up.NS, l.Up.Ifname, l.Up.NS, l.relayUp()); err != nil {
		return err
	}
	for _, ifn := range []string{l.relayDown(), l.relayUp()} {
		if err := l.Up.NS.SetSysctl("net/ipv6/conf/"+ifn+"/disable_ipv6", "1"); err != nil {
			return err
		}
	}
	return nil
}

// StartRelays starts the relays of the delayed links (Build does this
// unless Config.ExternalRelays). They run until Close or Destroy.
func (t *Topology) StartRelays() error {
	for _, l := range t.Links {
		if !l.relayed() {
			continue
		}
		r, err := StartRelay(l.Up.NS, l.relayDown(), l.relayUp(), l.Delay)
		if err != nil {
			t.stopRelays()
			return err
		}
		t.relays = append(t.relays, r)
	}
	return nil
}

// Relayed reports whether the topology has links that need relays.
func (t *Topology) Relayed() bool {
	for _, l := range t.Links {
		if l.relayed() {
			return true
		}
	}
	return false
}

func (t *Topology) stopRelays() {
	for _, r := range t.relays {
		r.Close()
	}
	t.relays = nil
}
