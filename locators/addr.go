package locators

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Addr is one IPv6 address of the host.
type Addr struct {
	Addr      netip.Addr
	PrefixLen int
	Interface string
	IfIndex   int
	// Flags from the kernel (IFA_F_*).
	Deprecated bool // preferred lifetime over: use for existing traffic only
	Tentative  bool // DAD still running: not yet usable
	DADFailed  bool // duplicate: never usable
	Temporary  bool // RFC 8981 privacy address
	Permanent  bool // configured, not from SLAAC
	// LinkUp is whether the interface is up and has carrier.
	LinkUp bool
	// PreferredLifetime and ValidLifetime; zero when infinite.
	PreferredLifetime, ValidLifetime time.Duration
}

// Usable reports whether the address can be a locator now: DAD finished
// and succeeded, and its link is up. Deprecated addresses are usable (with
// a lower preference).
func (a Addr) Usable() bool { return !a.Tentative && !a.DADFailed && a.LinkUp }

func (a Addr) String() string {
	var fl []string
	for _, f := range []struct {
		on   bool
		name string
	}{{a.Deprecated, "deprecated"}, {a.Tentative, "tentative"}, {a.DADFailed, "dadfailed"}, {a.Temporary, "temporary"}, {!a.LinkUp, "link-down"}} {
		if f.on {
			fl = append(fl, f.name)
		}
	}
	s := fmt.Sprintf("%s/%d on %s", a.Addr, a.PrefixLen, a.Interface)
	if len(fl) > 0 {
		s += " (" + strings.Join(fl, ",") + ")"
	}
	return s
}

// key identifies an address on an interface.
type key struct {
	ifindex int
	addr    netip.Addr
}

// Global reports whether a is a candidate locator at all: a global-scope
// unicast IPv6 address (this includes unique local addresses), not
// loopback, link-local, multicast or IPv4-mapped.
func Global(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && !a.IsLinkLocalUnicast()
}

// Filter restricts which addresses are locators. The zero Filter accepts
// every global address on every interface except loopback.
type Filter struct {
	// Interfaces, if not empty, are the only interfaces used.
	Interfaces []string
	// ExcludeInterfaces are never used.
	ExcludeInterfaces []string
	// Prefixes, if not empty, are the only prefixes addresses may be in.
	Prefixes []netip.Prefix
	// ExcludePrefixes are never used.
	ExcludePrefixes []netip.Prefix
	// NoTemporary leaves out temporary (privacy) addresses.
	NoTemporary bool
}

// MatchInterface reports whether the interface passes the filter.
func (f Filter) MatchInterface(name string) bool {
	if name == "lo" || name == "" {
		return false
	}
	if len(f.Interfaces) > 0 && !slices.Contains(f.Interfaces, name) {
		return false
	}
	return !slices.Contains(f.ExcludeInterfaces, name)
}

// Match reports whether a passes the filter (whatever its flags).
func (f Filter) Match(a Addr) bool {
	if !Global(a.Addr) || !f.MatchInterface(a.Interface) {
		return false
	}
	if f.NoTemporary && a.Temporary {
		return false
	}
	if len(f.Prefixes) > 0 && !slices.ContainsFunc(f.Prefixes, func(p netip.Prefix) bool { return p.Contains(a.Addr) }) {
		return false
	}
	return !slices.ContainsFunc(f.ExcludePrefixes, func(p netip.Prefix) bool { return p.Contains(a.Addr) })
}

// sortAddrs orders by interface index, then address.
func sortAddrs(as []Addr) {
	slices.SortFunc(as, func(x, y Addr) int {
		if x.IfIndex != y.IfIndex {
			return x.IfIndex - y.IfIndex
		}
		return x.Addr.Compare(y.Addr)
	})
}

// EventKind says what changed.
type EventKind uint8

// Event kinds.
const (
	Added      EventKind = iota + 1 // a new address
	Removed                         // an address is gone
	Deprecated                      // its preferred lifetime ended
	Preferred                       // no longer deprecated
	Ready                           // DAD finished: no longer tentative
	DADFailed                       // DAD found a duplicate
	LinkDown                        // its interface lost carrier or went down
	LinkUp                          // its interface is up with carrier again
	Resync                          // events were lost (socket overflow); All is re-read
)

var kindNames = [...]string{"", "added", "removed", "deprecated", "preferred", "ready", "dadfailed", "link-down", "link-up", "resync"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one change.
type Event struct {
	Kind EventKind
	// Addr is the address concerned (for LinkDown/LinkUp: zero, see
	// Interface).
	Addr Addr
	// Interface is the interface concerned.
	Interface string
	// All is the whole filtered set after this change.
	All []Addr
}

func (e Event) String() string {
	if e.Kind == LinkDown || e.Kind == LinkUp || e.Kind == Resync {
		return fmt.Sprintf("%s %s", e.Kind, e.Interface)
	}
	return fmt.Sprintf("%s %s", e.Kind, e.Addr)
}
