package engine

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"
)

// Shim6 Error messages, sent and received (RFC 5533 §5.14, §12.3).

// decodeError is how codec.go reports a message that cannot be processed.
type decodeError struct {
	// reply: RFC 5533 asks for an Error message with code, its Pointer at
	// off (from the start of the Shim6 header).
	reply bool
	code  uint8
	off   int
	err   error
}

func (d *decodeError) Error() string { return d.err.Error() }
func (d *decodeError) Unwrap() error { return d.err }

// decodeFailed drops a message that did not decode; unknown types and
// unknown critical options are answered with an Error (RFC 5533 §12.3:
// code 0 pointing at the type, code 1 pointing at the option type; when
// C=1 the rest of the message MUST NOT be processed).
func (e *Engine) decodeFailed(now time.Time, src, dst netip.Addr, b []byte, err error) {
	var de *decodeError
	if !errors.As(err, &de) || !de.reply {
		e.drop(dropMalformed)
		return
	}
	switch de.code {
	case ErrCodeUnknownType:
		e.drop(dropUnknownType)
	case ErrCodeCriticalOption:
		e.drop(dropCritical)
	default:
		e.drop(dropVerification)
	}
	e.sendError(now, dst, src, de.code, de.off, b)
}

// sendError sends an Error message from local locator from to to about
// the invoking Shim6 message (which arrived from to at from). The packet
// in error is the invoking IPv6 packet: its header is rebuilt from the
// addresses, so the Pointer counts from the IPv6 header like ICMPv6's.
// Errors are rate-limited and never sent about Error messages.
func (e *Engine) sendError(now time.Time, from, to netip.Addr, code uint8, pointer int, invoking []byte) {
	if len(invoking) >= 3 && invoking[2]&0x80 == 0 && invoking[2]&0x7f == typeError {
		return
	}
	if !e.errLimit.allow(now) {
		e.stats.ErrorsLimited++
		return
	}
	// RFC 5533 §5.14: as much of the invoking packet as fits in the
	// minimum MTU: 1280 - IPv6 header - 8 octets of Error header.
	const maxPkt = MaxControlMessage - ipv6HeaderLen - 8
	p := e.errbuf[:0]
	p = append(p, 0x60, 0, 0, 0)
	p = binary.BigEndian.AppendUint16(p, uint16(len(invoking)))
	p = append(p, ipProtoShim6, 64)
	p = appendAddr(p, to)
	p = appendAddr(p, from)
	p = append(p, invoking...)
	if len(p) > maxPkt {
		p = p[:maxPkt]
	}
	e.errbuf = p[:0]
	m := &e.tx
	m.reset()
	m.typ = typeError
	m.errCode = code
	m.errPointer = uint16(ipv6HeaderLen + max(pointer, 0))
	m.errPacket = p
	e.send(from, to, m)
}

// peekShim6 reads the type, the context tag and the first nonce of a
// (possibly truncated) Shim6 message in a packet in error. For a payload
// extension header typ is 0 and only tag is set.
func peekShim6(p []byte) (typ uint8, tag uint64, nonce uint32, ok bool) {
	if len(p) < 8 {
		return 0, 0, 0, false
	}
	if p[2]&0x80 != 0 {
		return 0, binary.BigEndian.Uint64(p[:8]) & tagMask, 0, true
	}
	typ = p[2] & 0x7f
	if len(p) < 12 {
		return typ, 0, 0, true
	}
	tag = uint64(p[6]&0x7f)<<40 | uint64(p[7])<<32 | uint64(binary.BigEndian.Uint32(p[8:12]))
	if len(p) >= 16 {
		nonce = binary.BigEndian.Uint32(p[12:16])
	}
	return typ, tag, nonce, true
}

// splitInvoking separates the IPv6 header of a packet in error, when there
// is one, and skips extension headers up to the Shim6 header.
func splitInvoking(p []byte) (src, dst netip.Addr, shim []byte, ok bool) {
	if len(p) < ipv6HeaderLen || p[0]>>4 != 6 {
		return netip.Addr{}, netip.Addr{}, p, len(p) >= 8
	}
	src = netip.AddrFrom16([16]byte(p[8:24]))
	dst = netip.AddrFrom16([16]byte(p[24:40]))
	nh := p[6]
	rest := p[ipv6HeaderLen:]
	for i := 0; i < 8; i++ {
		switch nh {
		case ipProtoShim6:
			return src, dst, rest, true
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 8 {
				return src, dst, nil, false
			}
			l := (int(rest[1]) + 1) * 8
			if len(rest) < l {
				return src, dst, nil, false
			}
			nh, rest = rest[0], rest[l:]
		case 44: // fragment
			if len(rest) < 8 {
				return src, dst, nil, false
			}
			nh, rest = rest[0], rest[8:]
		default:
			return src, dst, rest, false
		}
	}
	return src, dst, nil, false
}

// rcvError handles a Shim6 Error message from the peer (RFC 5533 §5.14).
// It is dispatched through the packet in error (RFC 5533 §12.4): the
// message we sent, with our locators as source.
func (e *Engine) rcvError(now time.Time, src, dst netip.Addr, m *message) {
	isrc, idst, shim, ok := splitInvoking(m.errPacket)
	if !ok {
		e.drop(dropMalformed)
		return
	}
	typ, tag, nonce, ok := peekShim6(shim)
	if !ok {
		e.drop(dropMalformed)
		return
	}
	var c *Context
	switch typ {
	case typeI1, typeI2, typeI2bis:
		// Our own tag and nonce: an off-path sender cannot know them.
		c = e.byTag[tag]
		if c == nil || c.hs == nil || c.hs.initNonce != nonce || !c.peerHas(src) && src != c.lpPeer && (c.hs.peer != src) {
			e.drop(dropNoContext)
			return
		}
		e.emit(Event{Time: now, Kind: EventPeerError, Code: m.errCode, Peer: src}, c)
		// The peer cannot process our establishment messages: give up
		// and hold down like for an unanswered I1 (RFC 5533 §7.8).
		e.fail(now, c, StateEFailed, NoR1HolddownTime, "peer answered with a Shim6 Error")
		return
	default:
		// Messages carrying CT(peer): Lp(local) is the source, Lp(peer)
		// the destination of the packet in error.
		c = e.lookupPeerTag(tag, isrc, idst)
		if c == nil || !c.peerHas(src) {
			e.drop(dropNoContext)
			return
		}
	}
	e.emit(Event{Time: now, Kind: EventPeerError, Code: m.errCode, Peer: src}, c)
	if typ == typeUpdateReq && c.upd != nil && c.upd.nonce == nonce {
		switch m.errCode {
		case ErrCodeGenerationSync, ErrCodeNumberOfLocators:
			// The peer has another version of our list: send the
			// whole list again with a new nonce (RFC 5533 §10.3).
			e.startUpdate(c, now)
		default:
			// Unverifiable or not understood: retransmitting the same
			// request cannot help.
			c.upd = nil
			e.schedule(c, now)
		}
	}
}
