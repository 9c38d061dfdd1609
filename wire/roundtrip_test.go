package wire

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// randGen produces random valid messages.
type randGen struct{ r *rand.Rand }

func (g randGen) bytes(max int) []byte {
	b := make([]byte, g.r.IntN(max+1))
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g randGen) addr() netip.Addr {
	var a [16]byte
	for i := range a {
		a[i] = byte(g.r.Uint32())
	}
	return netip.AddrFrom16(a)
}

func (g randGen) tag() uint64 { return g.r.Uint64() & MaxContextTag }

func (g randGen) maybe() bool { return g.r.IntN(2) == 0 }

func (g randGen) options(t MessageType) Options {
	var o Options
	allowed := allowedOpts[t]
	if allowed.has(OptResponderValidator) && g.maybe() {
		o.ResponderValidator = g.bytes(40)
	}
	if allowed.has(OptLocatorList) && g.maybe() {
		ll := &LocatorList{Generation: g.r.Uint32(), Locators: make([]Locator, g.r.IntN(6))}
		for i := range ll.Locators {
			ll.Locators[i] = Locator{g.addr(), VerificationMethod(g.r.IntN(256))}
		}
		o.LocatorList = ll
	}
	if allowed.has(OptLocatorPreferences) && g.maybe() {
		lp := &LocatorPreferences{Generation: g.r.Uint32(), ElementLen: uint8(1 + g.r.IntN(3)), Elements: make([]Preference, g.r.IntN(6))}
		if o.LocatorList != nil { // must agree with the list in the same message
			lp.Generation = o.LocatorList.Generation
			lp.Elements = make([]Preference, len(o.LocatorList.Locators))
		}
		for i := range lp.Elements {
			e := Preference{Flags: uint8(g.r.Uint32())}
			if lp.ElementLen >= 2 {
				e.Priority = uint8(g.r.Uint32())
			}
			if lp.ElementLen >= 3 {
				e.Weight = uint8(g.r.Uint32())
			}
			lp.Elements[i] = e
		}
		o.LocatorPreferences = lp
	}
	if allowed.has(OptCGAParameterDataStructure) && g.maybe() {
		o.CGAParameterDataStructure = g.bytes(200)
	}
	if allowed.has(OptCGASignature) && g.maybe() {
		o.CGASignature = g.bytes(128)
	}
	if allowed.has(OptULIDPair) && g.maybe() {
		o.ULIDPair = &ULIDPair{g.addr(), g.addr()}
	}
	if allowed.has(OptForkedInstanceIdentifier) && g.maybe() {
		o.ForkedInstanceID = ptr(g.r.Uint32())
	}
	if allowed.has(OptKeepaliveTimeout) && g.maybe() {
		o.KeepaliveTimeout = ptr(uint16(g.r.Uint32()))
	}
	for range g.r.IntN(3) {
		typ := OptionType(g.r.IntN(MaxOptionType + 1))
		if allowed.has(typ) {
			continue
		}
		o.Unknown = append(o.Unknown, UnknownOption{Type: typ, Data: g.bytes(20)})
	}
	return o
}

func (g randGen) records(min, max int) []ProbeRecord {
	n := min + g.r.IntN(max-min+1)
	if n == 0 {
		return nil
	}
	r := make([]ProbeRecord, n)
	for i := range r {
		r[i] = ProbeRecord{g.addr(), g.addr(), g.r.Uint32(), g.r.Uint32()}
	}
	return r
}

func (g randGen) message(t MessageType) Message {
	switch t {
	case TypeI1:
		return &I1{g.tag(), g.r.Uint32(), g.options(t)}
	case TypeR1:
		return &R1{g.r.Uint32(), g.r.Uint32(), g.options(t)}
	case TypeI2:
		return &I2{g.tag(), g.r.Uint32(), g.r.Uint32(), g.options(t)}
	case TypeR2:
		return &R2{g.tag(), g.r.Uint32(), g.options(t)}
	case TypeR1bis:
		return &R1bis{g.tag(), g.r.Uint32(), g.options(t)}
	case TypeI2bis:
		return &I2bis{g.tag(), g.r.Uint32(), g.r.Uint32(), g.tag(), g.options(t)}
	case TypeUpdateRequest:
		return &UpdateRequest{g.tag(), g.r.Uint32(), g.options(t)}
	case TypeUpdateAck:
		return &UpdateAck{g.tag(), g.r.Uint32(), g.options(t)}
	case TypeKeepalive:
		return &Keepalive{g.tag(), g.options(t)}
	case TypeProbe:
		return &Probe{g.tag(), ProbeState(g.r.IntN(3)), g.records(1, 8), g.records(0, 8), g.options(t)}
	case TypeError:
		p := g.bytes(300)
		p = append(p, make([]byte, max(8, (len(p)+7)&^7)-len(p))...) // as parsed: padded
		return &ErrorMessage{ErrorCode(g.r.IntN(128)), uint16(g.r.Uint32()), p}
	}
	panic(t)
}

var allTypes = []MessageType{TypeI1, TypeR1, TypeI2, TypeR2, TypeR1bis, TypeI2bis,
	TypeUpdateRequest, TypeUpdateAck, TypeKeepalive, TypeProbe, TypeError}

// TestRandomRoundTrip: build -> parse -> equal, for random messages of
// every type, and the rebuilt bytes are identical.
func TestRandomRoundTrip(t *testing.T) {
	g := randGen{rand.New(rand.NewPCG(1, 2))}
	n := 2000
	if testing.Short() {
		n = 200
	}
	built := map[MessageType]int{}
	for i := 0; i < n; i++ {
		typ := allTypes[i%len(allTypes)]
		m := g.message(typ)
		b, err := Marshal(m)
		if errors.Is(err, ErrTooBig) {
			continue
		}
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", m, err)
		}
		if len(b)%8 != 0 || int(b[1]+1)*8 != len(b) || !VerifyChecksum(b) {
			t.Fatalf("%s: bad framing % x", typ, b)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%s): %v\n% x", typ, err, b)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip %s:\n got %#v\nwant %#v", typ, got, m)
		}
		again := mustMarshal(t, got)
		if string(again) != string(b) {
			t.Fatalf("rebuild differs for %s", typ)
		}
		built[typ]++
	}
	for _, typ := range allTypes {
		if built[typ] < n/len(allTypes)/2 {
			t.Errorf("%s: only %d round trips", typ, built[typ])
		}
	}
}

func TestRandomPayloadRoundTrip(t *testing.T) {
	g := randGen{rand.New(rand.NewPCG(3, 4))}
	for range 1000 {
		h := PayloadHeader{NextHeader: uint8(g.r.Uint32()), ContextTag: g.tag()}
		b, err := AppendPayloadHeader(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePayloadHeader(b)
		if err != nil || got != h {
			t.Fatalf("%+v -> % x -> %+v, %v", h, b, got, err)
		}
	}
}
