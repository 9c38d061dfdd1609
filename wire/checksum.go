package wire

import "encoding/binary"

// RFC 5533 §5.3: the checksum is the 16-bit one's complement of the one's
// complement sum of the whole Shim6 header (Hdr Ext Len), with no
// pseudo-header and without any payload that follows.

// headerLen returns the length of the Shim6 header in b given its Hdr Ext
// Len, or -1 if b is too short to hold it.
func headerLen(b []byte) int {
	if len(b) < 2 {
		return -1
	}
	n := (int(b[1]) + 1) * 8
	if n > len(b) {
		return -1
	}
	return n
}

// onesSum adds b as big-endian 16-bit words, 32 bits at a time into a
// 64-bit accumulator (valid for one's complement since 2^16 = 1 mod
// 0xffff); fold reduces it to 16 bits.
func onesSum(b []byte) uint64 {
	var s uint64
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Checksum returns the checksum that belongs in octets 4-5 of the control
// message msg, computed over Hdr Ext Len with the checksum field taken as
// zero. It returns 0 when msg is shorter than its Hdr Ext Len says.
func Checksum(msg []byte) uint16 {
	n := headerLen(msg)
	if n < 8 {
		return 0
	}
	h := msg[:n]
	s := onesSum(h[:4]) + onesSum(h[6:])
	return ^fold(s)
}

// VerifyChecksum reports whether the checksum of the control message msg
// is correct (the one's complement sum over the header is 0xffff).
func VerifyChecksum(msg []byte) bool {
	n := headerLen(msg)
	if n < 8 {
		return false
	}
	return fold(onesSum(msg[:n])) == 0xffff
}

// SetChecksum computes the checksum of the control message msg and stores
// it in octets 4-5. It does nothing if msg is shorter than its Hdr Ext Len.
func SetChecksum(msg []byte) {
	n := headerLen(msg)
	if n < 8 {
		return
	}
	binary.BigEndian.PutUint16(msg[4:6], Checksum(msg))
}
