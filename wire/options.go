package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// RFC 5533 §5.15: every option is a TLV padded to a multiple of 8 octets;
// Length counts the contents only, not the padding.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             Type            |C|             Length            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                          Contents                             ~
//	~                                               +-+-+-+-+-+-+-+-+
//	~                                               |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// optionHeaderLen is the Type/C/Length prefix of every option.
const optionHeaderLen = 4

// optionTotalLen is 4 + Length + padding to a multiple of 8 (§5.15).
func optionTotalLen(length int) int { return (optionHeaderLen + length + 7) &^ 7 }

// Options holds the options of a control message. A nil slice or pointer
// means the option is absent; a non-nil empty slice is an option with
// empty contents. Append emits the known options in type order, then
// Unknown in list order, and refuses a known option the message type does
// not allow (see AllowedOptions).
type Options struct {
	// ResponderValidator (1, §5.15.1): opaque to everyone but the responder.
	ResponderValidator []byte
	// LocatorList (2, §5.15.2).
	LocatorList *LocatorList
	// LocatorPreferences (3, §5.15.3).
	LocatorPreferences *LocatorPreferences
	// CGAParameterDataStructure (4, §5.15.4): the CGA PDS (RFC 3972),
	// with the HBA multi-prefix extension when HBA is used.
	CGAParameterDataStructure []byte
	// CGASignature (5, §5.15.5): RSASSA-PKCS1-v1_5 signature.
	CGASignature []byte
	// ULIDPair (6, §5.15.6).
	ULIDPair *ULIDPair
	// ForkedInstanceID (7, §5.15.7).
	ForkedInstanceID *uint32
	// KeepaliveTimeout (10, RFC 5534 §5.3), in seconds.
	KeepaliveTimeout *uint16
	// Unknown holds, in wire order, options of unknown types and known
	// options that the message type does not allow (both are ignored by a
	// receiver when C=0, RFC 5533 §5.15).
	Unknown []UnknownOption
}

// Locator is one entry of a Locator List.
type Locator struct {
	Addr   netip.Addr
	Method VerificationMethod
}

// LocatorList is the Locator List option (RFC 5533 §5.15.2).
//
//	|           Type = 2          |0|            Length             |
//	|                     Locator List Generation                   |
//	|  Num Locators |            N Octets of Verification Method    |
//	~                                               |    Padding    |
//	~                     Locators 1 through N                      ~
type LocatorList struct {
	Generation uint32
	Locators   []Locator // at most 255
}

// Preference is one element of a Locator Preferences option. Priority is
// encoded only when the element length is at least 2, Weight only when it
// is 3.
type Preference struct {
	Flags    uint8 // FlagBroken, FlagTransient
	Priority uint8
	Weight   uint8
}

// LocatorPreferences is the Locator Preferences option (RFC 5533 §5.15.3).
//
//	|           Type = 3          |0|            Length             |
//	|                     Locator List Generation                   |
//	|  Element Len  |  Element[1]   |  Element[2]   |  Element[3]   |
//	~                              ...              |    Padding    |
type LocatorPreferences struct {
	Generation uint32
	// ElementLen is 1 (flags), 2 (+priority) or 3 (+weight).
	ElementLen uint8
	// Elements refer, in order, to the locators of the Locator List with
	// the same generation.
	Elements []Preference
}

// ULIDPair is the ULID Pair option (RFC 5533 §5.15.6).
type ULIDPair struct {
	Sender   netip.Addr
	Receiver netip.Addr
}

// UnknownOption is an option kept as raw contents (without padding).
type UnknownOption struct {
	Type     OptionType
	Critical bool
	Data     []byte
}

type optSet uint16

func (s optSet) has(t OptionType) bool { return t < 16 && s&(1<<t) != 0 }

func opts(ts ...OptionType) optSet {
	var s optSet
	for _, t := range ts {
		s |= 1 << t
	}
	return s
}

var (
	locatorOpts = opts(OptLocatorList, OptLocatorPreferences, OptCGAParameterDataStructure, OptCGASignature, OptKeepaliveTimeout)
	allowedOpts = map[MessageType]optSet{
		// RFC 5533 §5.4-5.11, RFC 5534 §5.3 (Keepalive Timeout in I2,
		// I2bis, R2 and Update Request).
		TypeI1:            opts(OptULIDPair, OptForkedInstanceIdentifier),
		TypeR1:            opts(OptResponderValidator),
		TypeI2:            opts(OptResponderValidator, OptULIDPair, OptForkedInstanceIdentifier) | locatorOpts,
		TypeR2:            locatorOpts,
		TypeR1bis:         opts(OptResponderValidator),
		TypeI2bis:         opts(OptResponderValidator, OptULIDPair, OptForkedInstanceIdentifier) | locatorOpts,
		TypeUpdateRequest: locatorOpts,
	}
)

// AllowedOptions reports whether RFC 5533/5534 define option o for
// message type t. Options that are not allowed are treated as unknown.
func AllowedOptions(t MessageType, o OptionType) bool { return allowedOpts[t].has(o) }

// --- decoding ---

// optionParser walks the options area of a message.
type optionParser struct {
	msg  []byte // whole Shim6 header (Hdr Ext Len)
	off  int    // start of the current option
	seen optSet
	// critical is the first unknown critical option, reported after the
	// whole message has been decoded.
	critical *ParseError
	llOff    int // offset of the Locator List option, if seen
	lpOff    int // offset of the Locator Preferences option, if seen
}

// decodeOptions decodes msg[start:] into o for a message of type t.
func decodeOptions(msg []byte, start int, t MessageType, o *Options) error {
	p := optionParser{msg: msg, off: start}
	allowed := allowedOpts[t]
	for p.off < len(msg) {
		off := p.off
		if len(msg)-off < optionHeaderLen {
			return p.fail(perr(ErrTruncated, off, "option header"))
		}
		typ := OptionType(binary.BigEndian.Uint16(msg[off:]) >> 1)
		crit := msg[off+1]&1 != 0
		length := int(binary.BigEndian.Uint16(msg[off+2:]))
		total := optionTotalLen(length)
		if off+total > len(msg) {
			return p.fail(perr(ErrOptionLength, off+2, fmt.Sprintf("option %d of length %d runs past the header end", typ, length)))
		}
		data := msg[off+optionHeaderLen : off+optionHeaderLen+length]
		p.off += total
		if !allowed.has(typ) {
			if crit && p.critical == nil {
				// RFC 5533 §5.15, §12.3: Error code 1, Pointer at the
				// first octet of the Option Type.
				p.critical = preply(ErrCriticalOption, CodeCriticalOption, off, fmt.Sprintf("option type %d", typ))
			}
			o.Unknown = append(o.Unknown, UnknownOption{Type: typ, Critical: crit, Data: clone(data)})
			continue
		}
		if p.seen.has(typ) {
			return p.fail(perr(ErrDuplicateOption, off, typ.String()))
		}
		p.seen |= 1 << typ
		if err := p.decodeKnown(typ, off, data, o); err != nil {
			return p.fail(err)
		}
	}
	if p.critical != nil {
		// RFC 5533 §5.15: with C=1 the rest of the message MUST NOT be
		// processed; the critical option is the answer.
		return p.critical
	}
	return p.crossCheck(o)
}

// fail returns err, unless an unknown critical option came first: then
// that option decides (Error code 1), and the message is incomplete.
func (p *optionParser) fail(err error) error {
	if p.critical == nil {
		return err
	}
	c := *p.critical
	c.incomplete = true
	return &c
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func (p *optionParser) decodeKnown(typ OptionType, off int, data []byte, o *Options) error {
	switch typ {
	case OptResponderValidator:
		o.ResponderValidator = clone(data)
	case OptLocatorList:
		ll, err := DecodeLocatorList(data)
		if err != nil {
			return shift(err, off+optionHeaderLen)
		}
		o.LocatorList = &ll
		p.llOff = off
	case OptLocatorPreferences:
		lp, err := DecodeLocatorPreferences(data)
		if err != nil {
			return shift(err, off+optionHeaderLen)
		}
		o.LocatorPreferences = &lp
		p.lpOff = off
	case OptCGAParameterDataStructure:
		o.CGAParameterDataStructure = clone(data)
	case OptCGASignature:
		o.CGASignature = clone(data)
	case OptULIDPair:
		u, err := DecodeULIDPair(data)
		if err != nil {
			return shift(err, off+optionHeaderLen)
		}
		o.ULIDPair = &u
	case OptForkedInstanceIdentifier:
		v, err := DecodeForkedInstanceID(data)
		if err != nil {
			return shift(err, off+optionHeaderLen)
		}
		o.ForkedInstanceID = &v
	case OptKeepaliveTimeout:
		v, err := DecodeKeepaliveTimeout(data)
		if err != nil {
			return shift(err, off+optionHeaderLen)
		}
		o.KeepaliveTimeout = &v
	}
	return nil
}

// crossCheck validates a Locator Preferences option against the Locator
// List carried in the same message (RFC 5533 §10.4: once the list is
// accepted, its generation is the peer generation).
func (p *optionParser) crossCheck(o *Options) error {
	ll, lp := o.LocatorList, o.LocatorPreferences
	if ll == nil || lp == nil {
		return nil
	}
	if ll.Generation != lp.Generation {
		// Pointer: first octet of the generation in the preferences option.
		return preply(ErrGenerationMismatch, CodeGenerationOutOfSync, p.lpOff+optionHeaderLen,
			fmt.Sprintf("preferences generation %d, locator list generation %d", lp.Generation, ll.Generation))
	}
	if len(ll.Locators) != len(lp.Elements) {
		// Pointer: first octet of the Length field of the preferences option.
		return preply(ErrLocatorCount, CodeLocatorCountMismatch, p.lpOff+2,
			fmt.Sprintf("%d preferences for %d locators", len(lp.Elements), len(ll.Locators)))
	}
	return nil
}

// shift moves the offset of a *ParseError by d (errors from the option
// decoders are relative to the option contents).
func shift(err error, d int) error {
	if pe, ok := err.(*ParseError); ok {
		pe.Offset += d
	}
	return err
}

// locatorListPad is the internal padding after the N verification-method
// octets so that the locators start on an 8-octet boundary of the option
// (4 option header + 4 generation + 1 count + N methods + pad).
func locatorListPad(n int) int { return 7 - n%8 }

// locatorListLen is the Length field of a Locator List of n locators,
// internal padding included (RFC 5533 §5.15.2).
func locatorListLen(n int) int { return 4 + 1 + n + locatorListPad(n) + 16*n }

// DecodeLocatorList decodes the contents (after the 4-octet option
// header, without trailing padding) of a Locator List option. Error
// offsets are relative to data.
func DecodeLocatorList(data []byte) (LocatorList, error) {
	if len(data) < 5 {
		return LocatorList{}, perr(ErrOptionLength, -2, "locator list shorter than 5 octets")
	}
	n := int(data[4])
	if len(data) != locatorListLen(n) {
		return LocatorList{}, perr(ErrOptionLength, -2,
			fmt.Sprintf("locator list of %d locators needs length %d, have %d", n, locatorListLen(n), len(data)))
	}
	ll := LocatorList{Generation: binary.BigEndian.Uint32(data), Locators: make([]Locator, n)}
	addrs := data[5+n+locatorListPad(n):]
	for i := range n {
		ll.Locators[i] = Locator{
			Addr:   netip.AddrFrom16([16]byte(addrs[16*i : 16*i+16])),
			Method: VerificationMethod(data[5+i]),
		}
	}
	return ll, nil
}

// DecodeLocatorPreferences decodes the contents of a Locator Preferences
// option. Element lengths other than 1-3 are rejected (RFC 5533 §5.15.3
// defines only those).
func DecodeLocatorPreferences(data []byte) (LocatorPreferences, error) {
	if len(data) < 5 {
		return LocatorPreferences{}, perr(ErrOptionLength, -2, "locator preferences shorter than 5 octets")
	}
	el := int(data[4])
	if el < 1 || el > 3 {
		return LocatorPreferences{}, perr(ErrOptionFormat, 4, fmt.Sprintf("element length %d (1-3 defined)", el))
	}
	body := data[5:]
	if len(body)%el != 0 {
		return LocatorPreferences{}, perr(ErrOptionLength, -2,
			fmt.Sprintf("%d octets of elements is not a multiple of element length %d", len(body), el))
	}
	lp := LocatorPreferences{
		Generation: binary.BigEndian.Uint32(data),
		ElementLen: uint8(el),
		Elements:   make([]Preference, len(body)/el),
	}
	for i := range lp.Elements {
		e := body[i*el : i*el+el]
		lp.Elements[i].Flags = e[0]
		if el >= 2 {
			lp.Elements[i].Priority = e[1]
		}
		if el >= 3 {
			lp.Elements[i].Weight = e[2]
		}
	}
	return lp, nil
}

// DecodeULIDPair decodes the contents of a ULID Pair option (Length 36).
func DecodeULIDPair(data []byte) (ULIDPair, error) {
	if len(data) != 36 {
		return ULIDPair{}, perr(ErrOptionLength, -2, fmt.Sprintf("ULID pair length %d, want 36", len(data)))
	}
	return ULIDPair{
		Sender:   netip.AddrFrom16([16]byte(data[4:20])),
		Receiver: netip.AddrFrom16([16]byte(data[20:36])),
	}, nil
}

// DecodeForkedInstanceID decodes the contents of a Forked Instance
// Identifier option (Length 4).
func DecodeForkedInstanceID(data []byte) (uint32, error) {
	if len(data) != 4 {
		return 0, perr(ErrOptionLength, -2, fmt.Sprintf("forked instance identifier length %d, want 4", len(data)))
	}
	return binary.BigEndian.Uint32(data), nil
}

// DecodeKeepaliveTimeout decodes the contents of a Keepalive Timeout
// option (Length 4: 16 reserved bits, 16-bit timeout in seconds).
func DecodeKeepaliveTimeout(data []byte) (uint16, error) {
	if len(data) != 4 {
		return 0, perr(ErrOptionLength, -2, fmt.Sprintf("keepalive timeout length %d, want 4", len(data)))
	}
	return binary.BigEndian.Uint16(data[2:]), nil
}

// RawOption is one option as it appears on the wire.
type RawOption struct {
	Offset   int // of the option's first octet, from the start of the Shim6 header
	Type     OptionType
	Critical bool
	Data     []byte // contents without padding; aliases the message
}

// RawOptions returns the options of the control message msg in wire
// order, without decoding their contents (aliasing msg). It checks only
// the framing: the header, Hdr Ext Len and option lengths. It is meant for
// diagnostics (shim6ctl decode) and for finding Error message pointers.
func RawOptions(msg []byte) ([]RawOption, error) {
	n := headerLen(msg)
	if n < 8 {
		return nil, perr(ErrTruncated, 0, "")
	}
	if msg[2]&0x80 != 0 {
		return nil, perr(ErrNotControl, 2, "")
	}
	msg = msg[:n]
	t := MessageType(msg[2] & 0x7f)
	start, err := optionsStart(t, msg)
	if err != nil {
		return nil, err
	}
	var out []RawOption
	for off := start; off < len(msg); {
		if len(msg)-off < optionHeaderLen {
			return out, perr(ErrTruncated, off, "option header")
		}
		length := int(binary.BigEndian.Uint16(msg[off+2:]))
		total := optionTotalLen(length)
		if off+total > len(msg) {
			return out, perr(ErrOptionLength, off+2, "option runs past the header end")
		}
		out = append(out, RawOption{
			Offset:   off,
			Type:     OptionType(binary.BigEndian.Uint16(msg[off:]) >> 1),
			Critical: msg[off+1]&1 != 0,
			Data:     msg[off+optionHeaderLen : off+optionHeaderLen+length],
		})
		off += total
	}
	return out, nil
}

// OptionOffset returns the offset of the first option of type t in the
// control message msg, for the Pointer of an Error message.
func OptionOffset(msg []byte, t OptionType) (int, bool) {
	raw, _ := RawOptions(msg)
	for _, o := range raw {
		if o.Type == t {
			return o.Offset, true
		}
	}
	return 0, false
}

// LocatorMethodOffset returns the offset of the verification method octet
// of locator i in the Locator List of the control message msg: the Pointer
// of an Error message with code 2 (RFC 5533 §7.2).
func LocatorMethodOffset(msg []byte, i int) (int, bool) {
	raw, _ := RawOptions(msg)
	for _, o := range raw {
		if o.Type != OptLocatorList {
			continue
		}
		if len(o.Data) < 5 || i < 0 || i >= int(o.Data[4]) || 5+i >= len(o.Data) {
			return 0, false
		}
		return o.Offset + optionHeaderLen + 5 + i, true
	}
	return 0, false
}

// --- encoding ---

// appendOption appends one option with the given contents and zero padding.
func appendOption(b []byte, t OptionType, crit bool, contents ...[]byte) []byte {
	n := 0
	for _, c := range contents {
		n += len(c)
	}
	tc := uint16(t) << 1
	if crit {
		tc |= 1
	}
	b = binary.BigEndian.AppendUint16(b, tc)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	for _, c := range contents {
		b = append(b, c...)
	}
	return appendZeros(b, optionTotalLen(n)-optionHeaderLen-n)
}

func appendZeros(b []byte, n int) []byte {
	for range n {
		b = append(b, 0)
	}
	return b
}

// validate checks that o can be encoded in a message of type t.
func (o *Options) validate(t MessageType) error {
	allowed := allowedOpts[t]
	check := func(present bool, ot OptionType) error {
		if present && !allowed.has(ot) {
			return buildErr("%s option not allowed in %s", ot, t)
		}
		return nil
	}
	for _, c := range []struct {
		present bool
		t       OptionType
	}{
		{o.ResponderValidator != nil, OptResponderValidator},
		{o.LocatorList != nil, OptLocatorList},
		{o.LocatorPreferences != nil, OptLocatorPreferences},
		{o.CGAParameterDataStructure != nil, OptCGAParameterDataStructure},
		{o.CGASignature != nil, OptCGASignature},
		{o.ULIDPair != nil, OptULIDPair},
		{o.ForkedInstanceID != nil, OptForkedInstanceIdentifier},
		{o.KeepaliveTimeout != nil, OptKeepaliveTimeout},
	} {
		if err := check(c.present, c.t); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{o.ResponderValidator, o.CGAParameterDataStructure, o.CGASignature} {
		if len(b) > 0xffff {
			return buildErr("option contents of %d octets", len(b))
		}
	}
	if ll := o.LocatorList; ll != nil {
		if len(ll.Locators) > 255 {
			return buildErr("%d locators (at most 255)", len(ll.Locators))
		}
		for _, l := range ll.Locators {
			if !l.Addr.Is6() {
				return buildErr("locator %v is not an IPv6 address", l.Addr)
			}
		}
	}
	if lp := o.LocatorPreferences; lp != nil {
		if lp.ElementLen < 1 || lp.ElementLen > 3 {
			return buildErr("element length %d (1-3)", lp.ElementLen)
		}
		if 5+len(lp.Elements)*int(lp.ElementLen) > 0xffff {
			return buildErr("%d preferences", len(lp.Elements))
		}
		for i, e := range lp.Elements {
			if (lp.ElementLen < 2 && e.Priority != 0) || (lp.ElementLen < 3 && e.Weight != 0) {
				return buildErr("preference %d has fields that element length %d cannot carry", i, lp.ElementLen)
			}
		}
	}
	if u := o.ULIDPair; u != nil && (!u.Sender.Is6() || !u.Receiver.Is6()) {
		return buildErr("ULID pair %v, %v: not IPv6 addresses", u.Sender, u.Receiver)
	}
	for _, u := range o.Unknown {
		if u.Type > MaxOptionType {
			return buildErr("option type %d exceeds 15 bits", u.Type)
		}
		if allowed.has(u.Type) {
			return buildErr("option type %d (%s) must use its field, not Unknown", u.Type, u.Type)
		}
		if len(u.Data) > 0xffff {
			return buildErr("option contents of %d octets", len(u.Data))
		}
	}
	return nil
}

// appendOptions appends o in canonical order; o must have been validated.
func (o *Options) append(b []byte) []byte {
	if o.ResponderValidator != nil {
		b = appendOption(b, OptResponderValidator, false, o.ResponderValidator)
	}
	if ll := o.LocatorList; ll != nil {
		n := len(ll.Locators)
		b = binary.BigEndian.AppendUint16(b, uint16(OptLocatorList)<<1)
		b = binary.BigEndian.AppendUint16(b, uint16(locatorListLen(n)))
		b = binary.BigEndian.AppendUint32(b, ll.Generation)
		b = append(b, byte(n))
		for _, l := range ll.Locators {
			b = append(b, byte(l.Method))
		}
		b = appendZeros(b, locatorListPad(n))
		for _, l := range ll.Locators {
			a := l.Addr.As16()
			b = append(b, a[:]...)
		}
	}
	if lp := o.LocatorPreferences; lp != nil {
		el := int(lp.ElementLen)
		n := 5 + el*len(lp.Elements)
		b = binary.BigEndian.AppendUint16(b, uint16(OptLocatorPreferences)<<1)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = binary.BigEndian.AppendUint32(b, lp.Generation)
		b = append(b, lp.ElementLen)
		for _, e := range lp.Elements {
			elem := [3]byte{e.Flags, e.Priority, e.Weight}
			b = append(b, elem[:el]...)
		}
		b = appendZeros(b, optionTotalLen(n)-optionHeaderLen-n)
	}
	if o.CGAParameterDataStructure != nil {
		b = appendOption(b, OptCGAParameterDataStructure, false, o.CGAParameterDataStructure)
	}
	if o.CGASignature != nil {
		b = appendOption(b, OptCGASignature, false, o.CGASignature)
	}
	if u := o.ULIDPair; u != nil {
		s, r := u.Sender.As16(), u.Receiver.As16()
		b = appendOption(b, OptULIDPair, false, []byte{0, 0, 0, 0}, s[:], r[:])
	}
	if o.ForkedInstanceID != nil {
		b = appendOption(b, OptForkedInstanceIdentifier, false, binary.BigEndian.AppendUint32(nil, *o.ForkedInstanceID))
	}
	if o.KeepaliveTimeout != nil {
		b = appendOption(b, OptKeepaliveTimeout, false, []byte{0, 0, byte(*o.KeepaliveTimeout >> 8), byte(*o.KeepaliveTimeout)})
	}
	for _, u := range o.Unknown {
		b = appendOption(b, u.Type, u.Critical, u.Data)
	}
	return b
}

// len returns the encoded length of o.
func (o *Options) len() int {
	n := 0
	if o.ResponderValidator != nil {
		n += optionTotalLen(len(o.ResponderValidator))
	}
	if ll := o.LocatorList; ll != nil {
		n += optionTotalLen(locatorListLen(len(ll.Locators)))
	}
	if lp := o.LocatorPreferences; lp != nil {
		n += optionTotalLen(5 + int(lp.ElementLen)*len(lp.Elements))
	}
	if o.CGAParameterDataStructure != nil {
		n += optionTotalLen(len(o.CGAParameterDataStructure))
	}
	if o.CGASignature != nil {
		n += optionTotalLen(len(o.CGASignature))
	}
	if o.ULIDPair != nil {
		n += optionTotalLen(36)
	}
	if o.ForkedInstanceID != nil {
		n += 8
	}
	if o.KeepaliveTimeout != nil {
		n += 8
	}
	for _, u := range o.Unknown {
		n += optionTotalLen(len(u.Data))
	}
	return n
}
