package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ProtoShim6 is the IP protocol number of Shim6 (IANA; RFC 5533 §17).
const ProtoShim6 = 140

// ICMPv6 error types (RFC 4443 §3).
const (
	ICMPDestinationUnreachable = 1
	ICMPPacketTooBig           = 2
	ICMPTimeExceeded           = 3
	ICMPParameterProblem       = 4
)

const ipv6HeaderLen = 40

// Sentinel errors of invoking-packet parsing.
var (
	ErrTruncated = errors.New("netio: truncated packet")
	ErrNotIPv6   = errors.New("netio: not an IPv6 packet")
	ErrNotError  = errors.New("netio: not an ICMPv6 error message")
)

// isExtension reports whether next header nh is an IPv6 extension header
// that may precede the Shim6 header (RFC 8200 §4; Shim6 sits above
// hop-by-hop, routing and fragment headers and may be followed or preceded
// by destination options, RFC 5533 §5).
func isExtension(nh uint8) bool {
	switch nh {
	case 0, 43, 44, 60, 51: // hop-by-hop, routing, fragment, destination options, AH
		return true
	}
	return false
}

// Invoking describes the packet quoted in an ICMPv6 error.
type Invoking struct {
	Src, Dst netip.Addr
	// NextHeader is the upper-layer protocol, or ProtoShim6.
	NextHeader uint8
	// Offset is where that upper-layer header (e.g. the Shim6 header)
	// starts in the quoted bytes; -1 when the chain could not be followed
	// to it (truncated, or a non-first fragment).
	Offset int
}

// ParseInvoking follows the quoted packet's header chain (an IPv6 header
// and extension headers, as far as they were quoted) to its upper-layer
// header. It never panics on any input.
func ParseInvoking(b []byte) (Invoking, error) {
	inv := Invoking{Offset: -1}
	if len(b) < ipv6HeaderLen {
		return inv, fmt.Errorf("%w: %d bytes of IPv6 header", ErrTruncated, len(b))
	}
	if b[0]>>4 != 6 {
		return inv, ErrNotIPv6
	}
	inv.Src = netip.AddrFrom16([16]byte(b[8:24]))
	inv.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	nh := b[6]
	off := ipv6HeaderLen
	for hops := 0; isExtension(nh); hops++ {
		if hops > 16 || off+8 > len(b) {
			inv.NextHeader = nh
			return inv, nil // quoted too little to see further
		}
		var l int
		switch nh {
		case 44: // fragment: fixed 8 bytes
			if binary.BigEndian.Uint16(b[off+2:])&^7 != 0 {
				// Not the first fragment: no upper-layer header here.
				inv.NextHeader = b[off]
				return inv, nil
			}
			l = 8
		case 51: // AH: length in 4-octet units minus 2
			l = (int(b[off+1]) + 2) * 4
		default:
			l = (int(b[off+1]) + 1) * 8
		}
		nh = b[off]
		off += l
	}
	inv.NextHeader = nh
	if off < len(b) {
		inv.Offset = off
	}
	return inv, nil
}
