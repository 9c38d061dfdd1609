package wire

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one
// of them; test with errors.Is.
var (
	// ErrTruncated: the buffer ends before the header, a field, or the
	// length given by Hdr Ext Len (RFC 5533 §12.3).
	ErrTruncated = errors.New("shim6: truncated")
	// ErrHdrExtLen: Hdr Ext Len is below the minimum for the message type,
	// or not 0 in a payload extension header (RFC 5533 §5.2-5.14).
	ErrHdrExtLen = errors.New("shim6: bad Hdr Ext Len")
	// ErrChecksum: the control message checksum does not verify
	// (RFC 5533 §5.3, §12.3).
	ErrChecksum = errors.New("shim6: bad checksum")
	// ErrHIP: the S bit is set; the packet is HIP, not Shim6 (RFC 5533 §5.3).
	ErrHIP = errors.New("shim6: S bit set (HIP packet)")
	// ErrNotControl: P=1, a payload extension header was given where a
	// control message was expected.
	ErrNotControl = errors.New("shim6: payload extension header, not a control message")
	// ErrNotPayload: P=0, a control message was given where a payload
	// extension header was expected.
	ErrNotPayload = errors.New("shim6: control message, not a payload extension header")
	// ErrUnknownType: the message type is not defined; answer with an Error
	// message, code 0 (RFC 5533 §12.3).
	ErrUnknownType = errors.New("shim6: unknown message type")
	// ErrWrongType: Unmarshal of one message type was given another.
	ErrWrongType = errors.New("shim6: wrong message type")
	// ErrCriticalOption: an option with C=1 is not known (or not valid for
	// this message type); answer with an Error message, code 1
	// (RFC 5533 §5.15, §12.3).
	ErrCriticalOption = errors.New("shim6: critical option not recognized")
	// ErrOptionLength: an option's Length is inconsistent with its type or
	// runs past the end of the message (RFC 5533 §5.15).
	ErrOptionLength = errors.New("shim6: bad option length")
	// ErrOptionFormat: an option's contents are malformed (e.g. element
	// length 0, a locator list whose Length does not match Num Locators).
	ErrOptionFormat = errors.New("shim6: malformed option")
	// ErrDuplicateOption: a known option appears twice in one message.
	ErrDuplicateOption = errors.New("shim6: duplicate option")
	// ErrGenerationMismatch: a Locator Preferences option refers to a
	// generation other than the Locator List in the same message; answer
	// with an Error message, code 3 (RFC 5533 §10.4).
	ErrGenerationMismatch = errors.New("shim6: locator list generation out of sync")
	// ErrLocatorCount: a Locator Preferences option has a different number
	// of elements than the Locator List in the same message; answer with an
	// Error message, code 4 (RFC 5533 §10.4).
	ErrLocatorCount = errors.New("shim6: locator preferences count mismatch")
	// ErrProbe: a Probe message has Psent = 0 or Sta = 3 (RFC 5534 §5.2).
	ErrProbe = errors.New("shim6: malformed probe")
	// ErrNoShim6: an IPv6 packet carries no Shim6 header.
	ErrNoShim6 = errors.New("shim6: no Shim6 header in packet")
	// ErrNotIPv6: not an IPv6 packet.
	ErrNotIPv6 = errors.New("shim6: not an IPv6 packet")

	// ErrInvalid: Append was given a message with a field it cannot
	// encode (tag over 47 bits, zero or IPv4 address, too many records,
	// option not allowed in this message type, ...).
	ErrInvalid = errors.New("shim6: invalid message for building")
	// ErrTooBig: the built control message with its IPv6 header would
	// exceed 1280 octets (RFC 5533 §5.1).
	ErrTooBig = errors.New("shim6: control message larger than 1280 bytes with IPv6 header")
)

// ParseError describes why a packet was rejected.
type ParseError struct {
	// Err is the sentinel (ErrTruncated, ErrChecksum, ...).
	Err error
	// Offset is the octet offset, from the first octet of the Shim6
	// header, where the problem was detected.
	Offset int
	// Reply is true when RFC 5533 requires (or recommends) answering with
	// an Error message carrying Code, with Offset as its Pointer. When
	// Reply is false the packet must be silently dropped.
	Reply bool
	// Code is the Error message code; meaningful only when Reply is true.
	Code ErrorCode
	// Detail is a human-readable explanation.
	Detail string

	incomplete bool // the message could not be decoded to the end
}

func (e *ParseError) Error() string {
	s := e.Err.Error() + " at offset " + strconv.Itoa(e.Offset)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrorReply reports whether err asks for an Error message in reply
// (RFC 5533 §5.14) and with which code and pointer. The pointer is
// relative to the first octet of the Shim6 header; add the offset of the
// Shim6 header when the packet in error starts with the IPv6 header.
func ErrorReply(err error) (code ErrorCode, pointer int, ok bool) {
	var pe *ParseError
	if errors.As(err, &pe) && pe.Reply {
		return pe.Code, pe.Offset, true
	}
	return 0, 0, false
}

func perr(sentinel error, off int, detail string) *ParseError {
	return &ParseError{Err: sentinel, Offset: off, Detail: detail}
}

func preply(sentinel error, code ErrorCode, off int, detail string) *ParseError {
	return &ParseError{Err: sentinel, Offset: off, Reply: true, Code: code, Detail: detail}
}
