package wire

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// sampleMessages returns one populated message of every type.
func sampleMessages() []Message {
	a1 := netip.MustParseAddr("2001:db8:1::1")
	a2 := netip.MustParseAddr("2001:db8:2::2")
	ll := &LocatorList{Generation: 7, Locators: []Locator{{a1, VerifyHBA}, {a2, VerifyCGA}}}
	lp := &LocatorPreferences{Generation: 7, ElementLen: 3, Elements: []Preference{{FlagBroken, 1, 2}, {FlagTransient, 3, 4}}}
	return []Message{
		&I1{InitiatorTag: MaxContextTag, InitiatorNonce: 0xdeadbeef, Options: Options{ULIDPair: &ULIDPair{a1, a2}, ForkedInstanceID: ptr(uint32(3))}},
		&R1{InitiatorNonce: 1, ResponderNonce: 2, Options: Options{ResponderValidator: []byte{1, 2, 3, 4, 5}}},
		&I2{InitiatorTag: 5, InitiatorNonce: 1, ResponderNonce: 2, Options: Options{ResponderValidator: []byte{9}, LocatorList: ll, LocatorPreferences: lp, CGAParameterDataStructure: []byte{1, 2, 3}, CGASignature: []byte{4}, KeepaliveTimeout: ptr(uint16(10))}},
		&R2{ResponderTag: 6, InitiatorNonce: 1, Options: Options{LocatorList: ll}},
		&R1bis{PacketTag: 7, ResponderNonce: 8, Options: Options{ResponderValidator: []byte{}}},
		&I2bis{InitiatorTag: 1, InitiatorNonce: 2, ResponderNonce: 3, PacketTag: MaxContextTag},
		&UpdateRequest{ReceiverTag: 9, RequestNonce: 10, Options: Options{LocatorList: ll, LocatorPreferences: lp}},
		&UpdateAck{ReceiverTag: 9, RequestNonce: 10, Options: Options{Unknown: []UnknownOption{{Type: 99, Data: []byte("x")}}}},
		&Keepalive{ReceiverTag: 11},
		&Probe{ReceiverTag: 12, State: StateInboundOk, Sent: []ProbeRecord{{a1, a2, 1, 2}}, Received: []ProbeRecord{{a2, a1, 3, 4}}},
		&ErrorMessage{Code: CodeCriticalOption, Pointer: 24, Packet: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	}
}

func TestSmokeRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: parse: %v", m.Type(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", m.Type(), got, m)
		}
	}
	var ka Keepalive
	b, _ := Marshal(&Keepalive{ReceiverTag: 1})
	b[4] ^= 1
	if err := ka.Unmarshal(b); !errors.Is(err, ErrChecksum) {
		t.Errorf("bad checksum: %v", err)
	}
}
