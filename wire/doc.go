// Package wire encodes and decodes every Shim6 message (RFC 5533 §5) and
// REAP message (RFC 5534 §5): the control messages, their options, and
// the 8-octet payload extension header. It uses only the standard library.
//
// # Receiving
//
// A received IP protocol 140 payload is either a payload extension header
// (P=1) or a control message (P=0):
//
//	if wire.IsPayload(b) {
//		h, err := wire.ParsePayloadHeader(b) // no allocation
//		// h.ContextTag, h.NextHeader; the ULP packet is b[wire.PayloadHeaderLen:]
//	} else {
//		m, err := wire.Parse(b)
//		if code, ptr, ok := wire.ErrorReply(err); ok {
//			// answer with &wire.ErrorMessage{Code: code, Pointer: ...}
//		}
//		switch m := m.(type) {
//		case *wire.I1: ...
//		case *wire.Keepalive: ...
//		}
//	}
//
// Parse validates everything the RFCs make checkable: the buffer against
// Hdr Ext Len, the minimum Hdr Ext Len of each type, the checksum (over
// the Shim6 header only, no pseudo-header), the S bit (set means HIP), the
// message type, option lengths and padding, option contents (fixed
// lengths, locator list internal padding, element length 1-3), duplicate
// known options, Psent ≥ 1 and Sta ≤ 2 in probes, and the consistency of
// a Locator Preferences option with the Locator List of the same message.
// Reserved bits and padding are ignored on receipt. Every error is a
// *ParseError wrapping one of the Err* sentinels (use errors.Is) and
// carrying the offset where the problem was found; ErrorReply says
// whether RFC 5533 wants an Error message in reply, with which code and
// pointer. Parse never panics and never aliases its input.
//
// For a hot receive path, the per-type Unmarshal methods decode into a
// caller-owned value: (*Keepalive).Unmarshal does not allocate.
//
// Options of an unknown type, and known options that RFC 5533/5534 do not
// define for the message type, are kept raw in Options.Unknown with their
// C bit; when C=1 Parse fails with ErrCriticalOption (Error code 1,
// pointer at the option type) but still returns the decoded message.
//
// # Sending
//
// Build a message value and append it:
//
//	b, err := wire.Append(buf[:0], &wire.I2{
//		InitiatorTag: tag, InitiatorNonce: n1, ResponderNonce: n2,
//		Options: wire.Options{ResponderValidator: v, LocatorList: &ll},
//	})
//
// Append writes exact bytes: Next Header 59, reserved bits and padding
// zero, options in type order then Options.Unknown, and the checksum. It
// refuses (ErrInvalid) tags over 47 bits, non-IPv6 addresses, options the
// message type does not define, and (ErrTooBig) a control message that
// with a 40-octet IPv6 header would exceed 1280 octets. The payload
// extension header is written with PutPayloadHeader or
// AppendPayloadHeader.
//
// # Numbers
//
// Context tags are uint64 values of 47 bits (MaxContextTag). Verification
// methods are 1 = HBA, 2 = CGA (see SPEC-NOTES). Constants name the
// message types (TypeI1...), option types (OptLocatorList...), error codes
// (CodeCriticalOption...), probe states and preference flags.
//
// # Packets
//
// FindShim6 walks an IPv6 packet's extension headers (Hop-by-Hop,
// Routing, Destination Options, AH, first Fragment) to the Shim6 header.
// RawOptions lists a control message's options in wire order with their
// offsets, and OptionOffset and LocatorMethodOffset give the Pointer of
// Error messages with codes 2-4, which the engine decides.
//
// The decoder shim6ctl decode (cmd/shim6ctl) is built on this package;
// docs/wire.md describes the formats and the choices made where the RFCs
// are ambiguous.
package wire
