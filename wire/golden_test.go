package wire

import (
	"bytes"
	"path/filepath"
	"reflect"
	"testing"
)

// goldenMessages are the values of the hand-assembled packets in
// testdata/golden (assembled octet by octet from the RFC diagrams, with a
// checksum computed by an independent implementation).
func goldenMessages() map[string]Message {
	return map[string]Message{
		"i1.hex": &I1{
			InitiatorTag: 0x0123456789ab, InitiatorNonce: 0xdeadbeef,
			Options: Options{ULIDPair: &ULIDPair{addr1, addr2}, ForkedInstanceID: ptr(uint32(42))},
		},
		"r1.hex": &R1{
			InitiatorNonce: 0x11223344, ResponderNonce: 0x55667788,
			Options: Options{ResponderValidator: []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0}},
		},
		"i2.hex": &I2{
			InitiatorTag: 12345, InitiatorNonce: 0x11223344, ResponderNonce: 0x55667788,
			Options: Options{
				ResponderValidator:        []byte{1, 2, 3, 4, 5, 6, 7, 8},
				LocatorList:               &LocatorList{Generation: 5, Locators: []Locator{{addr1, VerifyHBA}, {addr2, VerifyCGA}}},
				LocatorPreferences:        &LocatorPreferences{Generation: 5, ElementLen: 1, Elements: []Preference{{}, {Flags: FlagBroken}}},
				CGAParameterDataStructure: []byte{0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9},
				CGASignature:              []byte{0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5},
				KeepaliveTimeout:          ptr(uint16(15)),
			},
		},
		"r2.hex": &R2{
			ResponderTag: MaxContextTag, InitiatorNonce: 0x11223344,
			Options: Options{
				LocatorList:        &LocatorList{Generation: 0xffffffff, Locators: []Locator{{addr3, VerifyCGA}}},
				LocatorPreferences: &LocatorPreferences{Generation: 0xffffffff, ElementLen: 2, Elements: []Preference{{Flags: FlagTransient, Priority: 10}}},
				KeepaliveTimeout:   ptr(uint16(300)),
			},
		},
		"r1bis.hex": &R1bis{
			PacketTag: 0x0a0b0c0d, ResponderNonce: 0x99887766,
			Options: Options{ResponderValidator: []byte{0xca, 0xfe, 0xba, 0xbe}},
		},
		"i2bis.hex": &I2bis{
			InitiatorTag: 1, InitiatorNonce: 0x01020304, ResponderNonce: 0x05060708, PacketTag: 0x400000000002,
			Options: Options{
				ResponderValidator: []byte{0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7},
				ULIDPair:           &ULIDPair{addr1, addr2},
				ForkedInstanceID:   ptr(uint32(0)),
			},
		},
		"update_request.hex": &UpdateRequest{
			ReceiverTag: 7, RequestNonce: 0x12345678,
			Options: Options{
				LocatorList: &LocatorList{Generation: 9, Locators: []Locator{{addr1, VerifyHBA}, {addr2, VerifyHBA}, {addr3, VerifyCGA}}},
				LocatorPreferences: &LocatorPreferences{Generation: 9, ElementLen: 3, Elements: []Preference{
					{0, 1, 50}, {0, 1, 50}, {FlagBroken | FlagTransient, 2, 0}}},
			},
		},
		"update_ack.hex": &UpdateAck{
			ReceiverTag: 7, RequestNonce: 0x12345678,
			Options: Options{Unknown: []UnknownOption{{Type: 200, Data: []byte{1, 2, 3}}}},
		},
		"keepalive.hex": &Keepalive{ReceiverTag: 0x123456789a},
		"probe.hex": &Probe{
			ReceiverTag: 7, State: StateExploring,
			Sent:     []ProbeRecord{{addr1, addr2, 1, 0}, {addr3, addr2, 2, 0xaabbccdd}},
			Received: []ProbeRecord{{addr2, addr1, 0x87654321, 5}},
		},
		"error.hex": &ErrorMessage{
			Code: CodeCriticalOption, Pointer: 16,
			Packet: []byte{0x3b, 0x02, 0x01, 0x00, 0x12, 0x34, 0, 0, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef},
		},
	}
}

func TestGoldenControl(t *testing.T) {
	for name, want := range goldenMessages() {
		t.Run(name, func(t *testing.T) {
			golden := readHex(t, filepath.Join("testdata", "golden", name))
			if !VerifyChecksum(golden) {
				t.Fatalf("golden checksum does not verify")
			}
			got, err := Parse(golden)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, want)
			}
			built := mustMarshal(t, want)
			if !bytes.Equal(built, golden) {
				t.Errorf("Marshal:\n got % x\nwant % x", built, golden)
			}
			if c := Checksum(golden); c != uint16(golden[4])<<8|uint16(golden[5]) {
				t.Errorf("Checksum = %#04x, golden has % x", c, golden[4:6])
			}
		})
	}
}

func TestGoldenPayload(t *testing.T) {
	golden := readHex(t, filepath.Join("testdata", "golden", "payload.hex"))
	want := PayloadHeader{NextHeader: 6, ContextTag: 0x0123456789ab}
	got, err := ParsePayloadHeader(golden)
	if err != nil || got != want {
		t.Fatalf("ParsePayloadHeader = %+v, %v; want %+v", got, err, want)
	}
	if !IsPayload(golden) {
		t.Error("IsPayload = false")
	}
	built, err := AppendPayloadHeader(nil, want)
	if err != nil || !bytes.Equal(built, golden) {
		t.Errorf("AppendPayloadHeader = % x, %v; want % x", built, err, golden)
	}
	var b [8]byte
	PutPayloadHeader(b[:], want)
	if !bytes.Equal(b[:], golden) {
		t.Errorf("PutPayloadHeader = % x", b)
	}
}

// TestGoldenFieldPositions pins the octet positions that Wireshark 4.0
// gets wrong (it reads control fields one octet early): the type is in
// octet 2 after the P bit, the tag starts at octet 6 after the checksum.
func TestGoldenFieldPositions(t *testing.T) {
	b := readHex(t, filepath.Join("testdata", "golden", "keepalive.hex"))
	if b[2] != 66 || b[3] != 0 {
		t.Fatalf("type octets % x", b[2:4])
	}
	if getTag(b[6:12]) != 0x123456789a {
		t.Fatalf("tag octets % x", b[6:12])
	}
}
