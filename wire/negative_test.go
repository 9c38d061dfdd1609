package wire

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
)

func golden(t testing.TB, name string) []byte {
	return readHex(t, filepath.Join("testdata", "golden", name))
}

// locatorListContents returns the contents of a Locator List option.
func locatorListContents(gen uint32, locs ...Locator) []byte {
	b := binary.BigEndian.AppendUint32(nil, gen)
	b = append(b, byte(len(locs)))
	for _, l := range locs {
		b = append(b, byte(l.Method))
	}
	b = appendZeros(b, locatorListPad(len(locs)))
	for _, l := range locs {
		a := l.Addr.As16()
		b = append(b, a[:]...)
	}
	return b
}

func prefsContents(gen uint32, elen byte, elems ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, gen)
	b = append(b, elen)
	return append(b, elems...)
}

// TestParseRejects has one case per validation rule of Parse.
func TestParseRejects(t *testing.T) {
	ll2 := opt(OptLocatorList, locatorListContents(5, Locator{addr1, VerifyHBA}, Locator{addr2, VerifyCGA}))
	cases := []struct {
		name    string
		b       []byte
		want    error
		offset  int
		reply   bool      // an Error message must answer
		code    ErrorCode // if reply
		partial bool      // the decoded message comes with the error
	}{
		{name: "shorter than 8 octets", b: golden(t, "keepalive.hex")[:7], want: ErrTruncated, offset: 7},
		{name: "empty", b: nil, want: ErrTruncated, offset: 0},
		{name: "payload header given to Parse (P=1)", b: golden(t, "payload.hex"), want: ErrNotControl, offset: 2},
		{name: "S bit set (HIP)", b: fixChecksum(func() []byte { b := golden(t, "keepalive.hex"); b[3] |= 1; return b }()), want: ErrHIP, offset: 3},
		{name: "Hdr Ext Len past the buffer", b: golden(t, "i1.hex")[:56], want: ErrTruncated, offset: 1},
		{name: "bad checksum", b: func() []byte { b := golden(t, "i2.hex"); b[30] ^= 0x40; return b }(), want: ErrChecksum, offset: 4},
		{name: "unknown type 7", b: rawMsg(7, 16), want: ErrUnknownType, offset: 2, reply: true, code: CodeUnknownType},
		{name: "unknown type 127", b: rawMsg(127, 16), want: ErrUnknownType, offset: 2, reply: true, code: CodeUnknownType},
		{name: "I1 Hdr Ext Len 0", b: rawMsg(TypeI1, 8), want: ErrHdrExtLen, offset: 1},
		{name: "R1 Hdr Ext Len 0", b: rawMsg(TypeR1, 8), want: ErrHdrExtLen, offset: 1},
		{name: "I2 Hdr Ext Len 1", b: rawMsg(TypeI2, 16), want: ErrHdrExtLen, offset: 1},
		{name: "R2 Hdr Ext Len 0", b: rawMsg(TypeR2, 8), want: ErrHdrExtLen, offset: 1},
		{name: "R1bis Hdr Ext Len 0", b: rawMsg(TypeR1bis, 8), want: ErrHdrExtLen, offset: 1},
		{name: "I2bis Hdr Ext Len 2", b: rawMsg(TypeI2bis, 24), want: ErrHdrExtLen, offset: 1},
		{name: "Update Request Hdr Ext Len 0", b: rawMsg(TypeUpdateRequest, 8), want: ErrHdrExtLen, offset: 1},
		{name: "Update Ack Hdr Ext Len 0", b: rawMsg(TypeUpdateAck, 8), want: ErrHdrExtLen, offset: 1},
		{name: "Keepalive Hdr Ext Len 0", b: rawMsg(TypeKeepalive, 8), want: ErrHdrExtLen, offset: 1},
		{name: "Error Hdr Ext Len 0", b: rawMsg(TypeError, 8), want: ErrHdrExtLen, offset: 1},
		{name: "Probe without room for one record", b: rawMsg(TypeProbe, 48), want: ErrHdrExtLen, offset: 1},
		{name: "Probe Psent 0", b: fixChecksum(func() []byte { b := golden(t, "probe.hex"); b[12] = 0x10; return b }()), want: ErrProbe, offset: 12},
		{name: "Probe Sta 3", b: fixChecksum(func() []byte { b := golden(t, "probe.hex"); b[13] = 0xc0; return b }()), want: ErrProbe, offset: 13},
		{name: "Probe records past Hdr Ext Len", b: fixChecksum(func() []byte { b := golden(t, "probe.hex"); b[12] = 0x22; return b }()), want: ErrHdrExtLen, offset: 1},
		{name: "option runs past the header", b: rawMsg(TypeI2, 24, rawOpt(OptResponderValidator, false, 5, []byte{1, 2, 3, 4})), want: ErrOptionLength, offset: 26},
		{name: "unknown critical option", b: rawMsg(TypeI2, 24, opt(OptResponderValidator, []byte{1}), rawOpt(300, true, 1, []byte{9})),
			want: ErrCriticalOption, offset: 32, reply: true, code: CodeCriticalOption, partial: true},
		{name: "unknown critical option, then a malformed option", b: rawMsg(TypeI2, 24, rawOpt(300, true, 1, []byte{9}), opt(OptULIDPair, make([]byte, 8))),
			want: ErrCriticalOption, offset: 24, reply: true, code: CodeCriticalOption},
		{name: "unknown critical option before inconsistent preferences", b: rawMsg(TypeI2, 24, rawOpt(300, true, 1, []byte{9}), ll2, opt(OptLocatorPreferences, prefsContents(6, 1, 0, 0))),
			want: ErrCriticalOption, offset: 24, reply: true, code: CodeCriticalOption, partial: true},
		{name: "critical option not allowed for the type", b: rawMsg(TypeI1, 16, rawOpt(OptLocatorList, true, len(ll2)-4, ll2[4:])),
			want: ErrCriticalOption, offset: 16, reply: true, code: CodeCriticalOption, partial: true},
		{name: "duplicate option", b: rawMsg(TypeI1, 16, opt(OptForkedInstanceIdentifier, []byte{0, 0, 0, 1}), opt(OptForkedInstanceIdentifier, []byte{0, 0, 0, 2})),
			want: ErrDuplicateOption, offset: 24},
		{name: "locator list shorter than 5", b: rawMsg(TypeI2, 24, opt(OptLocatorList, []byte{0, 0, 0, 1})), want: ErrOptionLength, offset: 26},
		{name: "locator list length does not match Num Locators", b: rawMsg(TypeI2, 24, opt(OptLocatorList, append(locatorListContents(1, Locator{addr1, VerifyHBA}), 0, 0, 0, 0))),
			want: ErrOptionLength, offset: 26},
		{name: "locator list Num Locators larger than the option", b: rawMsg(TypeI2, 24, opt(OptLocatorList, func() []byte { c := locatorListContents(1, Locator{addr1, VerifyHBA}); c[4] = 2; return c }())),
			want: ErrOptionLength, offset: 26},
		{name: "locator preferences shorter than 5", b: rawMsg(TypeI2, 24, opt(OptLocatorPreferences, []byte{0, 0, 0, 1})), want: ErrOptionLength, offset: 26},
		{name: "element length 0", b: rawMsg(TypeI2, 24, opt(OptLocatorPreferences, prefsContents(1, 0))), want: ErrOptionFormat, offset: 32},
		{name: "element length 4", b: rawMsg(TypeI2, 24, opt(OptLocatorPreferences, prefsContents(1, 4, 1, 2, 3, 4))), want: ErrOptionFormat, offset: 32},
		{name: "elements not a multiple of the element length", b: rawMsg(TypeI2, 24, opt(OptLocatorPreferences, prefsContents(1, 3, 1, 2, 3, 4))), want: ErrOptionLength, offset: 26},
		{name: "ULID pair length 32", b: rawMsg(TypeI1, 16, opt(OptULIDPair, make([]byte, 32))), want: ErrOptionLength, offset: 18},
		{name: "forked instance identifier length 8", b: rawMsg(TypeI1, 16, opt(OptForkedInstanceIdentifier, make([]byte, 8))), want: ErrOptionLength, offset: 18},
		{name: "keepalive timeout length 2", b: rawMsg(TypeI2, 24, opt(OptKeepaliveTimeout, make([]byte, 2))), want: ErrOptionLength, offset: 26},
		{name: "preferences generation differs from the locator list", b: rawMsg(TypeI2, 24, ll2, opt(OptLocatorPreferences, prefsContents(6, 1, 0, 0))),
			want: ErrGenerationMismatch, offset: 24 + 48 + 4, reply: true, code: CodeGenerationOutOfSync, partial: true},
		{name: "preferences count differs from the locator list", b: rawMsg(TypeI2, 24, ll2, opt(OptLocatorPreferences, prefsContents(5, 1, 0, 0, 0))),
			want: ErrLocatorCount, offset: 24 + 48 + 2, reply: true, code: CodeLocatorCountMismatch, partial: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse(c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse error %v, want %v", err, c.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Offset != c.offset {
				t.Errorf("offset %d, want %d (%v)", pe.Offset, c.offset, err)
			}
			code, pointer, reply := ErrorReply(err)
			if reply != c.reply || (reply && (code != c.code || pointer != c.offset)) {
				t.Errorf("ErrorReply = %v, %d, %v; want %v, %d, %v", code, pointer, reply, c.code, c.offset, c.reply)
			}
			if (m != nil) != c.partial {
				t.Errorf("message returned = %v, want %v", m != nil, c.partial)
			}
		})
	}
}

// TestParseIgnores checks what RFC 5533 says a receiver MUST ignore:
// reserved bits and fields, padding contents, Next Header, and octets
// after Hdr Ext Len. Non-critical unknown options are kept, not rejected.
func TestParseIgnores(t *testing.T) {
	for name, want := range goldenMessages() {
		t.Run(name, func(t *testing.T) {
			b := golden(t, name)
			b[0] = 6 // Next Header
			if want.Type() != TypeError {
				b[3] |= 0xfe // Reserved1
			}
			switch want.Type() {
			case TypeR1:
				b[6], b[7] = 0xff, 0xff // Reserved2
			case TypeI2:
				b[6] |= 0x80                                   // R
				copy(b[20:24], []byte{0xff, 0xff, 0xff, 0xff}) // Reserved2
			case TypeI2bis:
				b[6] |= 0x80
				copy(b[20:26], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
				b[26] |= 0x80 // last bit of Reserved2
			case TypeKeepalive:
				b[6] |= 0x80
				copy(b[12:16], []byte{0xff, 0xff, 0xff, 0xff})
			case TypeProbe:
				b[6] |= 0x80
				b[13] |= 0x3f
				b[14], b[15] = 0xff, 0xff
			case TypeI1, TypeR2, TypeR1bis, TypeUpdateRequest, TypeUpdateAck:
				b[6] |= 0x80
			}
			// Padding octets and reserved option fields.
			raw, err := RawOptions(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range raw {
				end := o.Offset + optionTotalLen(len(o.Data))
				for i := o.Offset + 4 + len(o.Data); i < end; i++ {
					b[i] = 0xee
				}
				switch o.Type {
				case OptULIDPair, OptKeepaliveTimeout:
					b[o.Offset+4], b[o.Offset+5] = 0xff, 0xff
				case OptLocatorList:
					n := int(o.Data[4])
					for i := 0; i < locatorListPad(n); i++ {
						b[o.Offset+4+5+n+i] = 0xee
					}
				}
			}
			b = append(fixChecksum(b), 1, 2, 3) // trailing payload
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestParsePayloadRejects(t *testing.T) {
	ok := golden(t, "payload.hex")
	cases := []struct {
		name   string
		b      []byte
		want   error
		offset int
	}{
		{"shorter than 8", ok[:7], ErrTruncated, 7},
		{"control message (P=0)", golden(t, "keepalive.hex"), ErrNotPayload, 2},
		{"Hdr Ext Len 1", func() []byte { b := append([]byte{}, ok...); b[1] = 1; return b }(), ErrHdrExtLen, 1},
	}
	for _, c := range cases {
		_, err := ParsePayloadHeader(c.b)
		var pe *ParseError
		if !errors.Is(err, c.want) || !errors.As(err, &pe) || pe.Offset != c.offset {
			t.Errorf("%s: %v, want %v at %d", c.name, err, c.want, c.offset)
		}
	}
	if _, err := AppendPayloadHeader(nil, PayloadHeader{ContextTag: MaxContextTag + 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("tag over 47 bits: %v", err)
	}
}

func TestUnmarshalWrongType(t *testing.T) {
	var ka Keepalive
	err := ka.Unmarshal(golden(t, "i1.hex"))
	if !errors.Is(err, ErrWrongType) {
		t.Fatalf("got %v", err)
	}
	var i1 I1
	if err := i1.Unmarshal(golden(t, "i1.hex")); err != nil || i1.InitiatorNonce != 0xdeadbeef {
		t.Fatalf("I1.Unmarshal: %v %+v", err, i1)
	}
}

// TestNotAllowedOptionKeptRaw: a known option that the message type does
// not define, with C=0, is ignored by the receiver (kept in Unknown).
func TestNotAllowedOptionKeptRaw(t *testing.T) {
	b := rawMsg(TypeR1, 16, opt(OptKeepaliveTimeout, []byte{0, 0, 0, 9}))
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	r1 := m.(*R1)
	want := []UnknownOption{{Type: OptKeepaliveTimeout, Data: []byte{0, 0, 0, 9}}}
	if r1.Options.KeepaliveTimeout != nil || !reflect.DeepEqual(r1.Options.Unknown, want) {
		t.Fatalf("options %+v", r1.Options)
	}
	if again := mustMarshal(t, m); string(again) != string(b) {
		t.Fatalf("rebuild % x, want % x", again, b)
	}
}

// TestBuildRejects has one case per validation rule of Append.
func TestBuildRejects(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	rec := ProbeRecord{addr1, addr2, 1, 2}
	many := func(n int) []ProbeRecord {
		r := make([]ProbeRecord, n)
		for i := range r {
			r[i] = rec
		}
		return r
	}
	cases := []struct {
		name string
		m    Message
		want error
	}{
		{"I1 tag over 47 bits", &I1{InitiatorTag: MaxContextTag + 1}, ErrInvalid},
		{"I2 tag over 47 bits", &I2{InitiatorTag: 1 << 63}, ErrInvalid},
		{"R2 tag over 47 bits", &R2{ResponderTag: MaxContextTag + 1}, ErrInvalid},
		{"R1bis tag over 47 bits", &R1bis{PacketTag: MaxContextTag + 1}, ErrInvalid},
		{"I2bis packet tag over 47 bits", &I2bis{PacketTag: MaxContextTag + 1}, ErrInvalid},
		{"Update Request tag over 47 bits", &UpdateRequest{ReceiverTag: MaxContextTag + 1}, ErrInvalid},
		{"Update Ack tag over 47 bits", &UpdateAck{ReceiverTag: MaxContextTag + 1}, ErrInvalid},
		{"Keepalive tag over 47 bits", &Keepalive{ReceiverTag: MaxContextTag + 1}, ErrInvalid},
		{"Probe tag over 47 bits", &Probe{ReceiverTag: MaxContextTag + 1, Sent: many(1)}, ErrInvalid},
		{"Probe without sent records", &Probe{}, ErrInvalid},
		{"Probe with 16 sent records", &Probe{Sent: many(16)}, ErrInvalid},
		{"Probe with 16 received records", &Probe{Sent: many(1), Received: many(16)}, ErrInvalid},
		{"Probe state 3", &Probe{Sent: many(1), State: 3}, ErrInvalid},
		{"Probe record with IPv4 address", &Probe{Sent: []ProbeRecord{{v4, addr2, 0, 0}}}, ErrInvalid},
		{"Probe record with zero address", &Probe{Sent: []ProbeRecord{{addr1, netip.Addr{}, 0, 0}}}, ErrInvalid},
		{"Probe too big", &Probe{Sent: many(15), Received: many(15), Options: Options{Unknown: []UnknownOption{{Type: 99, Data: make([]byte, 100)}}}}, ErrTooBig},
		{"Error code over 7 bits", &ErrorMessage{Code: 128}, ErrInvalid},
		{"Error packet too long", &ErrorMessage{Packet: make([]byte, MaxErrorPacketLen+1)}, ErrTooBig},
		{"option not allowed in type (validator in I1)", &I1{Options: Options{ResponderValidator: []byte{1}}}, ErrInvalid},
		{"option not allowed in type (locators in Keepalive)", &Keepalive{Options: Options{LocatorList: &LocatorList{}}}, ErrInvalid},
		{"option not allowed in type (keepalive timeout in Update Ack)", &UpdateAck{Options: Options{KeepaliveTimeout: ptr(uint16(1))}}, ErrInvalid},
		{"validator over 65535 octets", &R1{Options: Options{ResponderValidator: make([]byte, 70000)}}, ErrInvalid},
		{"256 locators", &I2{Options: Options{LocatorList: &LocatorList{Locators: make([]Locator, 256)}}}, ErrInvalid},
		{"IPv4 locator", &I2{Options: Options{LocatorList: &LocatorList{Locators: []Locator{{v4, VerifyHBA}}}}}, ErrInvalid},
		{"zero locator", &I2{Options: Options{LocatorList: &LocatorList{Locators: []Locator{{}}}}}, ErrInvalid},
		{"element length 0", &I2{Options: Options{LocatorPreferences: &LocatorPreferences{ElementLen: 0}}}, ErrInvalid},
		{"element length 4", &I2{Options: Options{LocatorPreferences: &LocatorPreferences{ElementLen: 4}}}, ErrInvalid},
		{"priority with element length 1", &I2{Options: Options{LocatorPreferences: &LocatorPreferences{ElementLen: 1, Elements: []Preference{{Priority: 1}}}}}, ErrInvalid},
		{"weight with element length 2", &I2{Options: Options{LocatorPreferences: &LocatorPreferences{ElementLen: 2, Elements: []Preference{{Weight: 1}}}}}, ErrInvalid},
		{"ULID pair with IPv4", &I1{Options: Options{ULIDPair: &ULIDPair{v4, addr1}}}, ErrInvalid},
		{"unknown option over 15 bits", &I1{Options: Options{Unknown: []UnknownOption{{Type: 0x8000}}}}, ErrInvalid},
		{"unknown option using an allowed known type", &I1{Options: Options{Unknown: []UnknownOption{{Type: OptULIDPair}}}}, ErrInvalid},
		{"unknown option over 65535 octets", &I1{Options: Options{Unknown: []UnknownOption{{Type: 99, Data: make([]byte, 1<<16)}}}}, ErrInvalid},
		{"over 1280 octets with IPv6 header", &I2{Options: Options{CGAParameterDataStructure: make([]byte, 1213)}}, ErrTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte{1, 2, 3}
			got, err := Append(dst, c.m)
			if !errors.Is(err, c.want) {
				t.Fatalf("Append error %v, want %v", err, c.want)
			}
			if len(got) != 3 {
				t.Errorf("Append changed dst on error: % x", got)
			}
		})
	}
}

// TestBuildLimit: the largest message that fits is built, one more
// option octet is refused.
func TestBuildLimit(t *testing.T) {
	// 24 fixed + 4 option header + n contents, padded, <= 1240.
	fits := &I2{Options: Options{CGASignature: make([]byte, MaxControlLen-24-4)}}
	b, err := Marshal(fits)
	if err != nil || len(b)+IPv6HeaderLen != MinIPv6MTU {
		t.Fatalf("largest I2: %d octets, %v", len(b), err)
	}
	fits.Options.CGASignature = append(fits.Options.CGASignature, 0)
	if _, err := Marshal(fits); !errors.Is(err, ErrTooBig) {
		t.Fatalf("one octet more: %v", err)
	}
	e := &ErrorMessage{Packet: make([]byte, MaxErrorPacketLen)}
	if b, err := Marshal(e); err != nil || len(b) != MaxControlLen {
		t.Fatalf("largest Error: %d, %v", len(b), err)
	}
}

// TestErrorPacketPadding: the packet in error is padded with zeros to
// a multiple of 8 octets, at least 8.
func TestErrorPacketPadding(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9} {
		b := mustMarshal(t, &ErrorMessage{Code: 2, Pointer: 3, Packet: make([]byte, n)})
		want := 8 + max(8, (n+7)&^7)
		if len(b) != want {
			t.Errorf("packet of %d: message of %d octets, want %d", n, len(b), want)
		}
	}
}

func TestPointerHelpers(t *testing.T) {
	b := golden(t, "i2.hex")
	if off, ok := OptionOffset(b, OptLocatorPreferences); !ok || off != 24+16+48 {
		t.Errorf("OptionOffset(LocatorPreferences) = %d, %v", off, ok)
	}
	if _, ok := OptionOffset(b, OptULIDPair); ok {
		t.Error("OptionOffset found an absent option")
	}
	// Locator List at 40: header 4, generation 4, count 1, methods from 49.
	if p, ok := LocatorMethodOffset(b, 1); !ok || p != 50 || b[p] != byte(VerifyCGA) {
		t.Errorf("LocatorMethodOffset(1) = %d, %v", p, ok)
	}
	if _, ok := LocatorMethodOffset(b, 2); ok {
		t.Error("LocatorMethodOffset past the list")
	}
	raw, err := RawOptions(b)
	if err != nil || len(raw) != 6 || raw[5].Type != OptKeepaliveTimeout || raw[5].Offset != 136 {
		t.Errorf("RawOptions = %+v, %v", raw, err)
	}
	if _, err := RawOptions(golden(t, "payload.hex")); !errors.Is(err, ErrNotControl) {
		t.Errorf("RawOptions(payload) = %v", err)
	}
	if raw, err := RawOptions(golden(t, "error.hex")); err != nil || len(raw) != 0 {
		t.Errorf("RawOptions(error) = %v, %v", raw, err)
	}
}
