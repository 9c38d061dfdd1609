package wire

import (
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

var (
	addr1 = netip.MustParseAddr("2001:db8:1::1")
	addr2 = netip.MustParseAddr("2001:db8:2::2")
	addr3 = netip.MustParseAddr("2001:db8:3::3")
)

// readHex reads a golden file: hex octets, '#' starts a comment.
func readHex(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// fixChecksum recomputes the checksum of a hand-mutated message.
func fixChecksum(b []byte) []byte { SetChecksum(b); return b }

// mustMarshal builds m or fails the test.
func mustMarshal(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatalf("Marshal(%s): %v", m.Type(), err)
	}
	return b
}

// rawMsg assembles a control message of type t whose fixed part is
// fixedLen octets (zero, apart from the given tweaks) followed by the raw
// option bytes, with Hdr Ext Len and checksum computed.
func rawMsg(t MessageType, fixedLen int, options ...[]byte) []byte {
	b := make([]byte, fixedLen)
	b[0] = NoNextHeader
	b[2] = byte(t)
	for _, o := range options {
		b = append(b, o...)
	}
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	b[1] = byte(len(b)/8 - 1)
	return fixChecksum(b)
}

// rawOpt assembles one option: type, C bit, a Length field, the given
// contents, and zero padding to 8 octets counted from the contents length
// actually supplied (so a wrong Length field can be tested).
func rawOpt(typ OptionType, crit bool, length int, contents []byte) []byte {
	tc := uint16(typ) << 1
	if crit {
		tc |= 1
	}
	b := []byte{byte(tc >> 8), byte(tc), byte(length >> 8), byte(length)}
	b = append(b, contents...)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	return b
}

// opt is rawOpt with a correct Length.
func opt(typ OptionType, contents []byte) []byte { return rawOpt(typ, false, len(contents), contents) }
