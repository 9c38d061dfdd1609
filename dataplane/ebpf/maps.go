package ebpf

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/goshim6/goshim6/dataplane"
)

// ShimHeaderLen is the length of the payload extension header (RFC 5533
// §5.2) and so the amount by which the data plane lowers the MTU of shimmed
// ULID pairs.
const ShimHeaderLen = 8

const (
	outFlagShimmed = 1 // OUT_F_SHIMMED
	outFlagBackup  = 2 // OUT_F_BACKUP
	outFlagFollow  = 4 // OUT_F_FOLLOW
	outFlagPass    = 8 // OUT_F_PASS
	inFlagFollow   = 1 // IN_F_FOLLOW
	pairFlagMAC    = 1 // PAIR_F_MAC

	cfgFlagUnknownTagPass  = 1 // CFG_F_UNKNOWN_TAG_PASS
	cfgFlagNoICMPTranslate = 2 // CFG_F_NO_ICMP_TRANSLATE

	afInet6 = 10
)

// shimHeader returns the payload extension header carrying tag, with next
// header 0 (the BPF program fills it per packet). RFC 5533 §5.2:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |       0       |1|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                      Receiver Context Tag                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
func shimHeader(tag uint64) [8]byte {
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], tag&dataplane.TagMask|1<<47)
	return h
}

func pairKey(local, peer netip.Addr) shim6UlidPair {
	return shim6UlidPair{Local: local.As16(), Peer: peer.As16()}
}

// validate checks what the data plane relies on.
func validate(m dataplane.Mapping) error {
	for _, a := range []struct {
		name string
		addr netip.Addr
	}{{"local ULID", m.LocalULID}, {"peer ULID", m.PeerULID}, {"local locator", m.LocalLocator}, {"peer locator", m.PeerLocator}} {
		if !a.addr.Is6() || a.addr.Is4In6() || a.addr.Zone() != "" {
			return fmt.Errorf("%w: %s %v is not an IPv6 address", ErrInvalidMapping, a.name, a.addr)
		}
		if a.addr.IsUnspecified() || a.addr.IsMulticast() || a.addr.IsLoopback() || a.addr.IsLinkLocalUnicast() {
			return fmt.Errorf("%w: %s %v is not a unicast address of global scope", ErrInvalidMapping, a.name, a.addr)
		}
	}
	if m.LocalTag > dataplane.TagMask || m.PeerTag > dataplane.TagMask {
		return fmt.Errorf("%w: context tags have 47 bits (local %#x, peer %#x)", ErrInvalidMapping, m.LocalTag, m.PeerTag)
	}
	return nil
}

func inValue(m dataplane.Mapping) shim6InVal {
	return shim6InVal{
		PeerUlid:  m.PeerULID.As16(),
		LocalUlid: m.LocalULID.As16(),
		LocalLoc:  m.LocalLocator.As16(),
		PeerLoc:   m.PeerLocator.As16(),
		PeerTag:   m.PeerTag,
		Fii:       m.FII,
	}
}

func mappingFromIn(tag uint64, v shim6InVal) dataplane.Mapping {
	return dataplane.Mapping{
		LocalULID:    netip.AddrFrom16(v.LocalUlid),
		PeerULID:     netip.AddrFrom16(v.PeerUlid),
		LocalLocator: netip.AddrFrom16(v.LocalLoc),
		PeerLocator:  netip.AddrFrom16(v.PeerLoc),
		LocalTag:     tag,
		PeerTag:      v.PeerTag,
		FII:          v.Fii,
	}
}

// route is where shimmed packets of a locator pair leave.
type route struct {
	ifindex int
	nexthop netip.Addr
}

func outValue(m dataplane.Mapping, r route) shim6OutVal {
	v := shim6OutVal{
		LocalLoc: m.LocalLocator.As16(),
		PeerLoc:  m.PeerLocator.As16(),
		ShimHdr:  shimHeader(m.PeerTag),
		LocalTag: m.LocalTag,
		Ifindex:  uint32(r.ifindex),
	}
	if m.Shimmed() {
		v.Flags = outFlagShimmed
	}
	if r.nexthop.IsValid() {
		v.Nh.Family = afInet6
		v.Nh.Addr = r.nexthop.As16()
	}
	return v
}

// frOut adds the fast-reroute fields to an out_map value: the backup pair
// (if it has a route: hasBackup) from afterNs on (CLOCK_MONOTONIC), the
// follow flag, the install generation.
func frOut(v *shim6OutVal, m dataplane.Mapping, gen uint32, hasBackup, follow bool, afterNs uint64) {
	v.Gen = gen
	if hasBackup {
		v.Flags |= outFlagBackup
		v.BkLocal = m.Backup.Local.As16()
		v.BkPeer = m.Backup.Peer.As16()
		v.BkAfterNs = afterNs
	}
	if follow {
		v.Flags |= outFlagFollow
	}
}

// frIn adds the fast-reroute fields to an in_map value.
func frIn(v *shim6InVal, m dataplane.Mapping, follow bool) {
	if !follow {
		return
	}
	v.Flags |= inFlagFollow
	if m.PeerPair.IsValid() {
		v.AccLocal = m.PeerPair.Local.As16()
		v.AccPeer = m.PeerPair.Peer.As16()
		if !m.PeerPairUntil.IsZero() {
			// Already over: 1, in the past of any running clock.
			v.AccUntilNs = max(monoNs(m.PeerPairUntil), 1)
		}
	}
}

func pairMapKey(tag uint64, p dataplane.Pair) shim6PairKey {
	return shim6PairKey{LocalTag: tag, Local: p.Local.As16(), Peer: p.Peer.As16()}
}

func pairMapValue(r route) shim6PairVal {
	v := shim6PairVal{Ifindex: uint32(r.ifindex)}
	if r.nexthop.IsValid() {
		v.Nh.Family = afInet6
		v.Nh.Addr = r.nexthop.As16()
	}
	return v
}

func icmpKey(m dataplane.Mapping) shim6IcmpKey {
	return shim6IcmpKey{PeerTag: m.PeerTag, LocalLoc: m.LocalLocator.As16(), PeerLoc: m.PeerLocator.As16()}
}

func icmpValue(m dataplane.Mapping) shim6IcmpVal {
	return shim6IcmpVal{LocalUlid: m.LocalULID.As16(), PeerUlid: m.PeerULID.As16()}
}

// sumActivity folds the per-CPU values of one activity entry: counters
// add up, times take the latest.
func sumActivity(per []shim6Activity) shim6Activity {
	var a shim6Activity
	for _, p := range per {
		a.LastTxNs = max(a.LastTxNs, p.LastTxNs)
		a.LastRxNs = max(a.LastRxNs, p.LastRxNs)
		a.TxPackets += p.TxPackets
		a.TxBytes += p.TxBytes
		a.RxPackets += p.RxPackets
		a.RxBytes += p.RxBytes
	}
	// The first transmit after the last receive on any CPU: each CPU knows
	// its first transmit after its own last receive; those before the
	// overall last receive do not count (a CPU that sent before and after
	// it then only reports LastTxNs).
	for _, p := range per {
		if p.FirstTxNs > a.LastRxNs && (a.FirstTxNs == 0 || p.FirstTxNs < a.FirstTxNs) {
			a.FirstTxNs = p.FirstTxNs
		}
	}
	return a
}
