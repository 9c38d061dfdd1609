package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// RFC 5533 §5.3: Common Shim6 Control Header.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |P|     Type    |Type-specific|S|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Checksum           |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
//	|                    Type-specific format                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Octet 2 holds P (top bit) and the 7-bit Type; octet 3 holds 7
// type-specific bits (Reserved1, or the Error Code) and S (low bit).
// Context tags take 6 octets: a reserved R bit and 47 bits of tag.

// Message is a Shim6 control message: one of *I1, *R1, *I2, *R2, *R1bis,
// *I2bis, *UpdateRequest, *UpdateAck, *Keepalive, *Probe, *ErrorMessage.
// Only pointers implement it.
type Message interface {
	// Type returns the message type.
	Type() MessageType
	// Opts returns the message's options (nil for *ErrorMessage, which
	// carries the packet in error instead).
	Opts() *Options

	fixedLen() int
	putFixed(b []byte)            // b is the fixed part, octets 0-5 already written
	decodeFixed(hdr []byte) error // hdr is the whole header, len >= fixedLen checked by caller for non-Probe
	validate() error
}

// I1 starts context establishment (RFC 5533 §5.4).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 1   |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                  Initiator Context Tag                        |
//	|                    Initiator Nonce                            |
//	+                         Options                               +
type I1 struct {
	InitiatorTag   uint64
	InitiatorNonce uint32
	Options        Options // ULIDPair, ForkedInstanceID
}

// R1 answers an I1 without creating state (RFC 5533 §5.5).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 2   |   Reserved1 |0|
//	|            Checksum           |           Reserved2           |
//	|                    Initiator Nonce                            |
//	|                    Responder Nonce                            |
//	+                         Options                               +
type R1 struct {
	InitiatorNonce uint32
	ResponderNonce uint32
	Options        Options // ResponderValidator (MUST)
}

// I2 is the third establishment message (RFC 5533 §5.6).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 3   |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                  Initiator Context Tag                        |
//	|                    Initiator Nonce                            |
//	|                    Responder Nonce                            |
//	|                       Reserved2                               |
//	+                         Options                               +
type I2 struct {
	InitiatorTag   uint64
	InitiatorNonce uint32
	ResponderNonce uint32
	Options        Options // ResponderValidator, ULIDPair, ForkedInstanceID, LocatorList, LocatorPreferences, CGA*, KeepaliveTimeout
}

// R2 completes establishment (RFC 5533 §5.7).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 4   |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                  Responder Context Tag                        |
//	|                    Initiator Nonce                            |
//	+                         Options                               +
type R2 struct {
	ResponderTag   uint64
	InitiatorNonce uint32
	Options        Options // LocatorList, LocatorPreferences, CGA*, KeepaliveTimeout
}

// R1bis answers a packet for an unknown context (RFC 5533 §5.8).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 5   |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                     Packet Context Tag                        |
//	|                    Responder Nonce                            |
//	+                         Options                               +
type R1bis struct {
	PacketTag      uint64
	ResponderNonce uint32
	Options        Options // ResponderValidator
}

// I2bis answers an R1bis (RFC 5533 §5.9).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 6  |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                  Initiator Context Tag                        |
//	|                    Initiator Nonce                            |
//	|                    Responder Nonce                            |
//	|                       Reserved2                               |
//	|                                 +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                 |                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                     Packet Context Tag                        |
//	+                         Options                               +
type I2bis struct {
	InitiatorTag   uint64
	InitiatorNonce uint32
	ResponderNonce uint32
	PacketTag      uint64
	Options        Options // as I2
}

// UpdateRequest carries a new locator list and/or preferences
// (RFC 5533 §5.10).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 64  |   Reserved1 |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                   Receiver Context Tag                        |
//	|                    Request Nonce                              |
//	+                         Options                               +
type UpdateRequest struct {
	ReceiverTag  uint64
	RequestNonce uint32
	Options      Options // LocatorList, LocatorPreferences, CGA*, KeepaliveTimeout
}

// UpdateAck acknowledges an Update Request (RFC 5533 §5.11); same layout
// as UpdateRequest with Type = 65. No options are defined for it.
type UpdateAck struct {
	ReceiverTag  uint64
	RequestNonce uint32
	Options      Options
}

// Keepalive is the REAP keepalive (RFC 5534 §5.1).
//
//	|  Next Header  |  Hdr Ext Len  |0|  Type = 66  |  Reserved1  |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                    Receiver Context Tag                       |
//	|                           Reserved2                           |
//	+                            Options                            +
type Keepalive struct {
	ReceiverTag uint64
	Options     Options
}

// ProbeRecord is one sent or received probe in a Probe message.
type ProbeRecord struct {
	Src   netip.Addr
	Dst   netip.Addr
	Nonce uint32
	Data  uint32
}

// Probe is the REAP probe (RFC 5534 §5.2). Sent records come first on the
// wire, then received ones, then options.
//
//	|  Next Header  |  Hdr Ext Len  |0|  Type = 67  |   Reserved  |0|
//	|            Checksum           |R|                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                             |
//	|                    Receiver Context Tag                       |
//	| Precvd| Psent |Sta|                 Reserved2                 |
//	+        Psent x (source, destination, nonce, data), 40 octets each
//	+        Precvd x (source, destination, nonce, data)
//	//                         Options                             //
type Probe struct {
	ReceiverTag uint64
	State       ProbeState
	Sent        []ProbeRecord // 1-15; Sent[0] describes this probe
	Received    []ProbeRecord // 0-15
	Options     Options
}

// ErrorMessage is the Shim6 Error message (RFC 5533 §5.14).
//
//	|       59      |  Hdr Ext Len  |0|  Type = 68  |  Error Code |0|
//	|            Checksum           |            Pointer            |
//	+                         Packet in error                       +
//
// The packet in error fills the rest of the header: Append pads it with
// zeros to a multiple of 8 octets (at least 8), and Parse returns it with
// that padding.
type ErrorMessage struct {
	Code    ErrorCode // 7 bits
	Pointer uint16
	Packet  []byte // at most MaxErrorPacketLen octets
}

func (*I1) Type() MessageType            { return TypeI1 }
func (*R1) Type() MessageType            { return TypeR1 }
func (*I2) Type() MessageType            { return TypeI2 }
func (*R2) Type() MessageType            { return TypeR2 }
func (*R1bis) Type() MessageType         { return TypeR1bis }
func (*I2bis) Type() MessageType         { return TypeI2bis }
func (*UpdateRequest) Type() MessageType { return TypeUpdateRequest }
func (*UpdateAck) Type() MessageType     { return TypeUpdateAck }
func (*Keepalive) Type() MessageType     { return TypeKeepalive }
func (*Probe) Type() MessageType         { return TypeProbe }
func (*ErrorMessage) Type() MessageType  { return TypeError }

func (m *I1) Opts() *Options            { return &m.Options }
func (m *R1) Opts() *Options            { return &m.Options }
func (m *I2) Opts() *Options            { return &m.Options }
func (m *R2) Opts() *Options            { return &m.Options }
func (m *R1bis) Opts() *Options         { return &m.Options }
func (m *I2bis) Opts() *Options         { return &m.Options }
func (m *UpdateRequest) Opts() *Options { return &m.Options }
func (m *UpdateAck) Opts() *Options     { return &m.Options }
func (m *Keepalive) Opts() *Options     { return &m.Options }
func (m *Probe) Opts() *Options         { return &m.Options }
func (m *ErrorMessage) Opts() *Options  { return nil }

// Fixed part lengths (RFC 5533 §5.4-5.14, RFC 5534 §5).
func (*I1) fixedLen() int            { return 16 }
func (*R1) fixedLen() int            { return 16 }
func (*I2) fixedLen() int            { return 24 }
func (*R2) fixedLen() int            { return 16 }
func (*R1bis) fixedLen() int         { return 16 }
func (*I2bis) fixedLen() int         { return 32 }
func (*UpdateRequest) fixedLen() int { return 16 }
func (*UpdateAck) fixedLen() int     { return 16 }
func (*Keepalive) fixedLen() int     { return 16 }
func (m *Probe) fixedLen() int       { return 16 + ProbeRecordLen*(len(m.Sent)+len(m.Received)) }
func (*ErrorMessage) fixedLen() int  { return 8 }

// newMessage returns a zero message of type t, or nil if t is unknown.
func newMessage(t MessageType) Message {
	switch t {
	case TypeI1:
		return new(I1)
	case TypeR1:
		return new(R1)
	case TypeI2:
		return new(I2)
	case TypeR2:
		return new(R2)
	case TypeR1bis:
		return new(R1bis)
	case TypeI2bis:
		return new(I2bis)
	case TypeUpdateRequest:
		return new(UpdateRequest)
	case TypeUpdateAck:
		return new(UpdateAck)
	case TypeKeepalive:
		return new(Keepalive)
	case TypeProbe:
		return new(Probe)
	case TypeError:
		return new(ErrorMessage)
	}
	return nil
}

// minLen checks the minimum Hdr Ext Len of a type (RFC 5533 §5.4-5.14:
// "At least N, since the header is ... octets when there are no options").
func minLen(hdr []byte, n int) error {
	if len(hdr) < n {
		return perr(ErrHdrExtLen, 1, fmt.Sprintf("Hdr Ext Len %d, this type needs at least %d", hdr[1], n/8-1))
	}
	return nil
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

func (m *I1) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = I1{InitiatorTag: getTag(h[6:12]), InitiatorNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeI1, &m.Options)
}

func (m *R1) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = R1{InitiatorNonce: be32(h[8:12]), ResponderNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeR1, &m.Options)
}

func (m *I2) decodeFixed(h []byte) error {
	if err := minLen(h, 24); err != nil {
		return err
	}
	*m = I2{InitiatorTag: getTag(h[6:12]), InitiatorNonce: be32(h[12:16]), ResponderNonce: be32(h[16:20])}
	return decodeOptions(h, 24, TypeI2, &m.Options)
}

func (m *R2) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = R2{ResponderTag: getTag(h[6:12]), InitiatorNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeR2, &m.Options)
}

func (m *R1bis) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = R1bis{PacketTag: getTag(h[6:12]), ResponderNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeR1bis, &m.Options)
}

func (m *I2bis) decodeFixed(h []byte) error {
	if err := minLen(h, 32); err != nil {
		return err
	}
	*m = I2bis{
		InitiatorTag:   getTag(h[6:12]),
		InitiatorNonce: be32(h[12:16]),
		ResponderNonce: be32(h[16:20]),
		PacketTag:      getTag(h[26:32]), // after 49 bits of Reserved2
	}
	return decodeOptions(h, 32, TypeI2bis, &m.Options)
}

func (m *UpdateRequest) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = UpdateRequest{ReceiverTag: getTag(h[6:12]), RequestNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeUpdateRequest, &m.Options)
}

func (m *UpdateAck) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = UpdateAck{ReceiverTag: getTag(h[6:12]), RequestNonce: be32(h[12:16])}
	return decodeOptions(h, 16, TypeUpdateAck, &m.Options)
}

func (m *Keepalive) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = Keepalive{ReceiverTag: getTag(h[6:12])}
	return decodeOptions(h, 16, TypeKeepalive, &m.Options)
}

// probeFixedLen validates the Psent/Precvd/Sta octets of a Probe and
// returns the length of its fixed part (RFC 5534 §5.2).
func probeFixedLen(h []byte) (ns, nr int, err error) {
	if err := minLen(h, 16+ProbeRecordLen); err != nil {
		return 0, 0, err
	}
	nr, ns = int(h[12]>>4), int(h[12]&0x0f)
	if ns == 0 { // "the minimum value for this field is 1"
		return 0, 0, perr(ErrProbe, 12, "Psent is 0")
	}
	if ProbeState(h[13]>>6) > StateInboundOk { // "three legal values"
		return 0, 0, perr(ErrProbe, 13, "Sta is 3")
	}
	if need := 16 + ProbeRecordLen*(ns+nr); need > len(h) {
		return 0, 0, perr(ErrHdrExtLen, 1, fmt.Sprintf("%d probe records need %d octets, header has %d", ns+nr, need, len(h)))
	}
	return ns, nr, nil
}

func (m *Probe) decodeFixed(h []byte) error {
	ns, nr, err := probeFixedLen(h)
	if err != nil {
		return err
	}
	*m = Probe{ReceiverTag: getTag(h[6:12]), State: ProbeState(h[13] >> 6)}
	rec := func(off int) ProbeRecord {
		r := h[off : off+ProbeRecordLen]
		return ProbeRecord{
			Src:   netip.AddrFrom16([16]byte(r[0:16])),
			Dst:   netip.AddrFrom16([16]byte(r[16:32])),
			Nonce: be32(r[32:36]),
			Data:  be32(r[36:40]),
		}
	}
	off := 16
	m.Sent = make([]ProbeRecord, ns)
	for i := range m.Sent {
		m.Sent[i] = rec(off)
		off += ProbeRecordLen
	}
	if nr > 0 {
		m.Received = make([]ProbeRecord, nr)
		for i := range m.Received {
			m.Received[i] = rec(off)
			off += ProbeRecordLen
		}
	}
	return decodeOptions(h, off, TypeProbe, &m.Options)
}

func (m *ErrorMessage) decodeFixed(h []byte) error {
	if err := minLen(h, 16); err != nil {
		return err
	}
	*m = ErrorMessage{
		Code:    ErrorCode(h[3] >> 1),
		Pointer: binary.BigEndian.Uint16(h[6:8]),
		Packet:  clone(h[8:]),
	}
	return nil
}

// optionsStart returns where the options of a message of type t start in
// the header msg (len(msg) for an Error message, which has none).
func optionsStart(t MessageType, msg []byte) (int, error) {
	var n int
	switch t {
	case TypeProbe:
		ns, nr, err := probeFixedLen(msg)
		if err != nil {
			return 0, err
		}
		return 16 + ProbeRecordLen*(ns+nr), nil
	case TypeError:
		n = len(msg)
		if err := minLen(msg, 16); err != nil {
			return 0, err
		}
		return n, nil
	}
	m := newMessage(t)
	if m == nil {
		return 0, preply(ErrUnknownType, CodeUnknownType, 2, fmt.Sprintf("type %d", t))
	}
	n = m.fixedLen()
	if err := minLen(msg, n); err != nil {
		return 0, err
	}
	return n, nil
}

// --- encoding of the fixed parts ---

func (m *I1) putFixed(b []byte) {
	putTag(b[6:12], m.InitiatorTag)
	binary.BigEndian.PutUint32(b[12:16], m.InitiatorNonce)
}

func (m *R1) putFixed(b []byte) {
	binary.BigEndian.PutUint32(b[8:12], m.InitiatorNonce)
	binary.BigEndian.PutUint32(b[12:16], m.ResponderNonce)
}

func (m *I2) putFixed(b []byte) {
	putTag(b[6:12], m.InitiatorTag)
	binary.BigEndian.PutUint32(b[12:16], m.InitiatorNonce)
	binary.BigEndian.PutUint32(b[16:20], m.ResponderNonce)
}

func (m *R2) putFixed(b []byte) {
	putTag(b[6:12], m.ResponderTag)
	binary.BigEndian.PutUint32(b[12:16], m.InitiatorNonce)
}

func (m *R1bis) putFixed(b []byte) {
	putTag(b[6:12], m.PacketTag)
	binary.BigEndian.PutUint32(b[12:16], m.ResponderNonce)
}

func (m *I2bis) putFixed(b []byte) {
	putTag(b[6:12], m.InitiatorTag)
	binary.BigEndian.PutUint32(b[12:16], m.InitiatorNonce)
	binary.BigEndian.PutUint32(b[16:20], m.ResponderNonce)
	putTag(b[26:32], m.PacketTag)
}

func (m *UpdateRequest) putFixed(b []byte) {
	putTag(b[6:12], m.ReceiverTag)
	binary.BigEndian.PutUint32(b[12:16], m.RequestNonce)
}

func (m *UpdateAck) putFixed(b []byte) {
	putTag(b[6:12], m.ReceiverTag)
	binary.BigEndian.PutUint32(b[12:16], m.RequestNonce)
}

func (m *Keepalive) putFixed(b []byte) { putTag(b[6:12], m.ReceiverTag) }

func (m *Probe) putFixed(b []byte) {
	putTag(b[6:12], m.ReceiverTag)
	b[12] = byte(len(m.Received))<<4 | byte(len(m.Sent))
	b[13] = byte(m.State) << 6
	off := 16
	for _, rs := range [][]ProbeRecord{m.Sent, m.Received} {
		for _, r := range rs {
			s, d := r.Src.As16(), r.Dst.As16()
			copy(b[off:], s[:])
			copy(b[off+16:], d[:])
			binary.BigEndian.PutUint32(b[off+32:], r.Nonce)
			binary.BigEndian.PutUint32(b[off+36:], r.Data)
			off += ProbeRecordLen
		}
	}
}

func (m *ErrorMessage) putFixed(b []byte) {
	b[3] = byte(m.Code) << 1
	binary.BigEndian.PutUint16(b[6:8], m.Pointer)
}

// --- validation before encoding ---

func checkTag(name string, t uint64) error {
	if t > MaxContextTag {
		return buildErr("%s %#x exceeds 47 bits", name, t)
	}
	return nil
}

func (m *I1) validate() error {
	return firstErr(checkTag("initiator context tag", m.InitiatorTag), m.Options.validate(TypeI1))
}
func (m *R1) validate() error { return m.Options.validate(TypeR1) }
func (m *I2) validate() error {
	return firstErr(checkTag("initiator context tag", m.InitiatorTag), m.Options.validate(TypeI2))
}
func (m *R2) validate() error {
	return firstErr(checkTag("responder context tag", m.ResponderTag), m.Options.validate(TypeR2))
}
func (m *R1bis) validate() error {
	return firstErr(checkTag("packet context tag", m.PacketTag), m.Options.validate(TypeR1bis))
}
func (m *I2bis) validate() error {
	return firstErr(checkTag("initiator context tag", m.InitiatorTag),
		checkTag("packet context tag", m.PacketTag), m.Options.validate(TypeI2bis))
}
func (m *UpdateRequest) validate() error {
	return firstErr(checkTag("receiver context tag", m.ReceiverTag), m.Options.validate(TypeUpdateRequest))
}
func (m *UpdateAck) validate() error {
	return firstErr(checkTag("receiver context tag", m.ReceiverTag), m.Options.validate(TypeUpdateAck))
}
func (m *Keepalive) validate() error {
	return firstErr(checkTag("receiver context tag", m.ReceiverTag), m.Options.validate(TypeKeepalive))
}

func (m *Probe) validate() error {
	if err := checkTag("receiver context tag", m.ReceiverTag); err != nil {
		return err
	}
	if len(m.Sent) < 1 || len(m.Sent) > MaxProbeRecords {
		return buildErr("%d sent probe records (1-15)", len(m.Sent))
	}
	if len(m.Received) > MaxProbeRecords {
		return buildErr("%d received probe records (0-15)", len(m.Received))
	}
	if m.State > StateInboundOk {
		return buildErr("probe state %d", m.State)
	}
	for _, rs := range [][]ProbeRecord{m.Sent, m.Received} {
		for _, r := range rs {
			if !r.Src.Is6() || !r.Dst.Is6() {
				return buildErr("probe record %v -> %v: not IPv6 addresses", r.Src, r.Dst)
			}
		}
	}
	return m.Options.validate(TypeProbe)
}

func (m *ErrorMessage) validate() error {
	if m.Code > MaxErrorCode {
		return buildErr("error code %d exceeds 7 bits", m.Code)
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
