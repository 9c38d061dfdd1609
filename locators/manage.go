package locators

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AddOptions tune AddAddress.
type AddOptions struct {
	// NoDAD skips duplicate address detection (IFA_F_NODAD). Leave it
	// off for real HBA/CGA addresses: DAD is what tells a collision.
	NoDAD bool
	// NoPrefixRoute does not add a route for the prefix
	// (IFA_F_NOPREFIXROUTE), e.g. when the interface already has one.
	NoPrefixRoute bool
	// PreferredLifetime and ValidLifetime; zero means forever (a zero
	// PreferredLifetime with a ValidLifetime means "as long as valid").
	PreferredLifetime, ValidLifetime time.Duration
	// Deprecated adds the address already deprecated (preferred
	// lifetime 0), as a host does with an address it is phasing out.
	Deprecated bool
}

// ErrNotIPv6 is returned for a non-IPv6 prefix.
var ErrNotIPv6 = errors.New("locators: not an IPv6 address")

// AddAddress adds (or updates) address p.Addr() with prefix length
// p.Bits() on interface ifname, in the calling thread's network namespace.
func AddAddress(ifname string, p netip.Prefix, opts AddOptions) error {
	if !p.Addr().Is6() || p.Addr().Is4In6() {
		return fmt.Errorf("%w: %s", ErrNotIPv6, p)
	}
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("locators: %s: %w", ifname, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
	if opts.NoDAD {
		a.Flags |= unix.IFA_F_NODAD
	}
	if opts.NoPrefixRoute {
		a.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	if opts.PreferredLifetime > 0 || opts.ValidLifetime > 0 || opts.Deprecated {
		valid := seconds(opts.ValidLifetime)
		pref := valid
		if opts.PreferredLifetime > 0 {
			pref = seconds(opts.PreferredLifetime)
		}
		if opts.Deprecated {
			pref = 0
		}
		if uint32(pref) > uint32(valid) {
			return fmt.Errorf("locators: preferred lifetime %v exceeds valid lifetime %v", opts.PreferredLifetime, opts.ValidLifetime)
		}
		a.PreferedLft, a.ValidLft = pref, valid
	}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("locators: add %s on %s: %w", p, ifname, err)
	}
	return nil
}

func seconds(d time.Duration) int {
	if d <= 0 {
		return int(^uint32(0)) // infinity
	}
	return int(d / time.Second)
}

// DelAddress removes address p.Addr() from interface ifname. Removing an
// address that is not there is not an error.
func DelAddress(ifname string, p netip.Prefix) error {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("locators: %s: %w", ifname, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
	if err := netlink.AddrDel(l, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("locators: del %s on %s: %w", p, ifname, err)
	}
	return nil
}
