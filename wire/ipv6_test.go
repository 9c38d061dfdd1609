package wire

import (
	"errors"
	"path/filepath"
	"testing"
)

// ipv6 assembles an IPv6 packet: 40-octet header with the given first
// next header, then the given extension headers and payload.
func ipv6(next byte, rest ...[]byte) []byte {
	b := make([]byte, IPv6HeaderLen)
	b[0] = 0x60
	b[6] = next
	b[7] = 64
	s, d := addr1.As16(), addr2.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	n := 0
	for _, r := range rest {
		b = append(b, r...)
		n += len(r)
	}
	b[4], b[5] = byte(n>>8), byte(n)
	return b
}

// ext is an 8-octet extension header (Hop-by-Hop, Routing, Dest Options).
func ext(next byte) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} }

func samplePackets(t testing.TB) [][]byte {
	ka := readHex(t, filepath.Join("testdata", "golden", "keepalive.hex"))
	pl := readHex(t, filepath.Join("testdata", "golden", "payload.hex"))
	return [][]byte{
		ipv6(ProtocolNumber, ka),
		ipv6(protoHopByHop, ext(protoRouting), ext(protoDestOptions), ext(ProtocolNumber), ka),
		ipv6(ProtocolNumber, pl, []byte{0, 1, 2, 3}),
		ipv6(protoFragment, []byte{ProtocolNumber, 0, 0, 1, 0, 0, 0, 1}, ka),
		ipv6(protoAH, []byte{ProtocolNumber, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ka),
	}
}

func TestFindShim6(t *testing.T) {
	p := samplePackets(t)
	for i, want := range []int{40, 64, 40, 48, 64} {
		src, dst, off, err := FindShim6(p[i])
		if err != nil || off != want || src != addr1 || dst != addr2 {
			t.Errorf("packet %d: %v %v %d %v, want offset %d", i, src, dst, off, err, want)
		}
	}
	cases := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"short", p[0][:39], ErrTruncated},
		{"IPv4", append([]byte{0x45}, p[0][1:]...), ErrNotIPv6},
		{"TCP", ipv6(6, make([]byte, 20)), ErrNoShim6},
		{"after ESP", ipv6(50, make([]byte, 20)), ErrNoShim6},
		{"extension header truncated", ipv6(protoHopByHop, []byte{ProtocolNumber}), ErrTruncated},
		{"extension header past the end", ipv6(protoHopByHop, []byte{ProtocolNumber, 3, 0, 0}), ErrTruncated},
		{"non-first fragment", ipv6(protoFragment, []byte{ProtocolNumber, 0, 0, 8, 0, 0, 0, 1}), ErrNoShim6},
	}
	for _, c := range cases {
		if _, _, _, err := FindShim6(c.pkt); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
