package wire

import "encoding/binary"

// RFC 5533 §5.1: the first 17 bits are common to the payload extension
// header and to control messages.
//
//	 0                   1
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |P|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// IsPayload reports whether b starts with a Shim6 payload extension
// header (P=1), as opposed to a control message (P=0). It reports false if
// b is shorter than 3 octets.
func IsPayload(b []byte) bool { return len(b) >= 3 && b[2]&0x80 != 0 }

// PeekType returns the message type of the control message in b without
// validating anything else; ok is false if b is too short or is a payload
// extension header.
func PeekType(b []byte) (t MessageType, ok bool) {
	if len(b) < 3 || b[2]&0x80 != 0 {
		return 0, false
	}
	return MessageType(b[2] & 0x7f), true
}

// RFC 5533 §5.2: Shim6 Payload Extension Header.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |       0       |1|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                      Receiver Context Tag                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// PayloadHeader is the 8-octet Shim6 payload extension header that
// carries ULP packets while the locators differ from the ULIDs.
type PayloadHeader struct {
	NextHeader uint8  // protocol of the payload that follows (e.g. 6 for TCP)
	ContextTag uint64 // receiver context tag, 47 bits
}

// ParsePayloadHeader parses the payload extension header at the start of
// b. It does not allocate unless it fails. The payload follows at
// b[PayloadHeaderLen:].
func ParsePayloadHeader(b []byte) (PayloadHeader, error) {
	if len(b) < PayloadHeaderLen {
		return PayloadHeader{}, perr(ErrTruncated, len(b), "payload extension header needs 8 octets")
	}
	if b[2]&0x80 == 0 {
		return PayloadHeader{}, perr(ErrNotPayload, 2, "")
	}
	if b[1] != 0 { // RFC 5533 §5.2: Hdr Ext Len is 0
		return PayloadHeader{}, perr(ErrHdrExtLen, 1, "payload extension header must have Hdr Ext Len 0")
	}
	return PayloadHeader{NextHeader: b[0], ContextTag: getTag(b[2:8])}, nil
}

// PutPayloadHeader writes h into b[:8]; b must be at least 8 octets. The
// context tag is truncated to 47 bits.
func PutPayloadHeader(b []byte, h PayloadHeader) {
	_ = b[7]
	b[0] = h.NextHeader
	b[1] = 0
	putTag(b[2:8], h.ContextTag)
	b[2] |= 0x80 // P=1
}

// AppendPayloadHeader appends the 8 octets of h to dst. It fails with
// ErrInvalid if the tag does not fit in 47 bits.
func AppendPayloadHeader(dst []byte, h PayloadHeader) ([]byte, error) {
	if h.ContextTag > MaxContextTag {
		return dst, buildErr("context tag %#x exceeds 47 bits", h.ContextTag)
	}
	var b [PayloadHeaderLen]byte
	PutPayloadHeader(b[:], h)
	return append(dst, b[:]...), nil
}

// getTag reads a 47-bit context tag from 6 octets, ignoring the top bit
// (the reserved R bit in control messages, P in the payload header).
func getTag(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0]&0x7f)<<40 | uint64(b[1])<<32 | uint64(binary.BigEndian.Uint32(b[2:6]))
}

// putTag writes a 47-bit context tag into 6 octets with the top bit zero.
func putTag(b []byte, tag uint64) {
	_ = b[5]
	b[0] = byte(tag>>40) & 0x7f
	b[1] = byte(tag >> 32)
	binary.BigEndian.PutUint32(b[2:6], uint32(tag))
}
