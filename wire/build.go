package wire

import (
	"fmt"
	"slices"
)

func buildErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Append appends the encoding of m to dst: Next Header 59, Hdr Ext Len,
// reserved fields zero, options in canonical order with zero padding, and
// the checksum. It fails (returning dst unchanged) with an error wrapping
// ErrInvalid if a field cannot be encoded, or ErrTooBig if the message
// with a 40-octet IPv6 header would exceed 1280 octets (RFC 5533 §5.1).
func Append(dst []byte, m Message) ([]byte, error) {
	if err := m.validate(); err != nil {
		return dst, err
	}
	fixed := m.fixedLen()
	total := fixed
	if e, ok := m.(*ErrorMessage); ok {
		total += max(8, (len(e.Packet)+7)&^7)
	} else {
		total += m.Opts().len()
	}
	if total > MaxControlLen {
		return dst, fmt.Errorf("%w: %s of %d octets", ErrTooBig, m.Type(), total)
	}
	start := len(dst)
	dst = slices.Grow(dst, total)
	b := dst[start : start+fixed]
	clear(b)
	b[0] = NoNextHeader
	b[1] = byte(total/8 - 1)
	b[2] = byte(m.Type()) // P=0
	m.putFixed(b)
	dst = dst[:start+fixed]
	if e, ok := m.(*ErrorMessage); ok {
		dst = append(dst, e.Packet...)
		dst = appendZeros(dst, start+total-len(dst))
	} else {
		dst = m.Opts().append(dst)
	}
	if len(dst)-start != total {
		panic(fmt.Sprintf("wire: built %d octets for %s, computed %d", len(dst)-start, m.Type(), total))
	}
	SetChecksum(dst[start:])
	return dst, nil
}

// Marshal returns the encoding of m; see Append.
func Marshal(m Message) ([]byte, error) { return Append(nil, m) }
