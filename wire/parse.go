package wire

import "fmt"

// Parse decodes and validates the control message at the start of b (the
// payload of an IPv6 packet with Next Header 140). Octets after Hdr Ext
// Len are ignored. The returned message never aliases b.
//
// Errors are *ParseError values wrapping a sentinel. When the error asks
// for an Error message in reply (ErrorReply reports ok: an unknown
// critical option, code 1, or a Locator Preferences option inconsistent
// with the Locator List of the same message, codes 3 and 4), the fully
// decoded message is returned along with the error (for diagnostics: RFC
// 5533 §5.15 forbids processing a message with an unknown critical
// option); otherwise the message is nil. An unknown message type (code 0),
// or a critical option followed by malformed options, returns a nil
// message with the reply error.
func Parse(b []byte) (Message, error) { return parse(b, true) }

// ParseIgnoringChecksum is Parse without the checksum verification, for
// diagnostics (shim6ctl decode shows messages whose checksum is wrong).
func ParseIgnoringChecksum(b []byte) (Message, error) { return parse(b, false) }

func parse(b []byte, verify bool) (Message, error) {
	h, err := checkHeader(b, verify)
	if err != nil {
		return nil, err
	}
	t := MessageType(h[2] & 0x7f)
	m := newMessage(t)
	if m == nil {
		// RFC 5533 §12.3: Error code 0, Pointer at the message type.
		return nil, preply(ErrUnknownType, CodeUnknownType, 2, fmt.Sprintf("type %d", t))
	}
	if err := m.decodeFixed(h); err != nil {
		if pe, ok := err.(*ParseError); ok && pe.Reply && !pe.incomplete {
			return m, err
		}
		return nil, err
	}
	return m, nil
}

// checkHeader validates what is common to all control messages and
// returns the header (b cut to Hdr Ext Len).
func checkHeader(b []byte, verify bool) ([]byte, error) {
	if len(b) < 8 {
		return nil, perr(ErrTruncated, len(b), "control header needs 8 octets")
	}
	if b[2]&0x80 != 0 {
		return nil, perr(ErrNotControl, 2, "")
	}
	if b[3]&1 != 0 { // RFC 5533 §5.3: S=1 is HIP
		return nil, perr(ErrHIP, 3, "")
	}
	n := headerLen(b)
	if n < 0 { // RFC 5533 §12.3: must not claim to end past the packet
		return nil, perr(ErrTruncated, 1, fmt.Sprintf("Hdr Ext Len %d means %d octets, have %d", b[1], (int(b[1])+1)*8, len(b)))
	}
	h := b[:n]
	if verify && !VerifyChecksum(h) { // RFC 5533 §12.3
		return nil, perr(ErrChecksum, 4, fmt.Sprintf("checksum %#04x, want %#04x", uint16(h[4])<<8|uint16(h[5]), Checksum(h)))
	}
	return h, nil
}

func unmarshal(m Message, b []byte) error {
	h, err := checkHeader(b, true)
	if err != nil {
		return err
	}
	if t := MessageType(h[2] & 0x7f); t != m.Type() {
		return perr(ErrWrongType, 2, fmt.Sprintf("have %s, want %s", t, m.Type()))
	}
	return m.decodeFixed(h)
}

// Unmarshal decodes b into m like Parse, but accepts only this type
// (ErrWrongType otherwise). It does not allocate for a Keepalive without
// options, so a receive loop can reuse one value.
func (m *Keepalive) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *I1) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *R1) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *I2) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *R2) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *R1bis) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *I2bis) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *UpdateRequest) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *UpdateAck) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *Probe) Unmarshal(b []byte) error { return unmarshal(m, b) }

// Unmarshal decodes b into m; see Keepalive.Unmarshal.
func (m *ErrorMessage) Unmarshal(b []byte) error { return unmarshal(m, b) }
