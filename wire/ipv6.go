package wire

import (
	"fmt"
	"net/netip"
)

// IPv6 extension headers that may precede a Shim6 header (RFC 8200 §4.1).
const (
	protoHopByHop    = 0
	protoRouting     = 43
	protoFragment    = 44
	protoAH          = 51
	protoDestOptions = 60
)

// FindShim6 walks the IPv6 header and extension headers of the IPv6
// packet pkt (starting at the version nibble) and returns the source and
// destination addresses and the offset of the Shim6 header (Next Header
// 140). Hop-by-Hop, Routing, Destination Options and AH headers are
// skipped, and a Fragment header of a first fragment; anything else ends
// the walk with ErrNoShim6. The Shim6 bytes are pkt[off:].
func FindShim6(pkt []byte) (src, dst netip.Addr, off int, err error) {
	if len(pkt) < IPv6HeaderLen {
		return src, dst, 0, perr(ErrTruncated, len(pkt), "IPv6 header needs 40 octets")
	}
	if pkt[0]>>4 != 6 {
		return src, dst, 0, perr(ErrNotIPv6, 0, fmt.Sprintf("IP version %d", pkt[0]>>4))
	}
	src = netip.AddrFrom16([16]byte(pkt[8:24]))
	dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	next, off := pkt[6], IPv6HeaderLen
	for {
		switch next {
		case ProtocolNumber:
			return src, dst, off, nil
		case protoHopByHop, protoRouting, protoDestOptions:
			if len(pkt)-off < 2 {
				return src, dst, 0, perr(ErrTruncated, off, "extension header")
			}
			n := (int(pkt[off+1]) + 1) * 8
			next = pkt[off]
			off += n
		case protoAH:
			if len(pkt)-off < 2 {
				return src, dst, 0, perr(ErrTruncated, off, "authentication header")
			}
			n := (int(pkt[off+1]) + 2) * 4
			next = pkt[off]
			off += n
		case protoFragment:
			if len(pkt)-off < 8 {
				return src, dst, 0, perr(ErrTruncated, off, "fragment header")
			}
			if (uint16(pkt[off+2])<<8|uint16(pkt[off+3]))&^7 != 0 {
				return src, dst, 0, perr(ErrNoShim6, off, "non-first fragment")
			}
			next = pkt[off]
			off += 8
		default:
			return src, dst, 0, perr(ErrNoShim6, 6, fmt.Sprintf("next header %d", next))
		}
		if off > len(pkt) {
			return src, dst, 0, perr(ErrTruncated, len(pkt), "extension header runs past the packet")
		}
	}
}
