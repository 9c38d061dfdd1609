package netio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

var (
	srcA = netip.MustParseAddr("2001:db8:1:a::2")
	dstB = netip.MustParseAddr("2001:db8:2:b::2")
)

// ip6 builds an IPv6 header with next header nh followed by rest.
func ip6(nh uint8, rest ...[]byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	var plen int
	for _, r := range rest {
		plen += len(r)
	}
	binary.BigEndian.PutUint16(h[4:], uint16(plen))
	h[6], h[7] = nh, 64
	s, d := srcA.As16(), dstB.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	for _, r := range rest {
		h = append(h, r...)
	}
	return h
}

// ext builds an 8n-byte extension header.
func ext(nh uint8, units int) []byte {
	b := make([]byte, 8*units)
	b[0], b[1] = nh, byte(units-1)
	return b
}

func frag(nh uint8, offset uint16) []byte {
	b := make([]byte, 8)
	b[0] = nh
	binary.BigEndian.PutUint16(b[2:], offset<<3)
	return b
}

var shimMsg = []byte{59, 1, 0x01, 0, 0xab, 0xcd, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}

func TestParseInvoking(t *testing.T) {
	for _, tc := range []struct {
		name    string
		b       []byte
		nh      uint8
		off     int
		wantErr error
	}{
		{"shim6 directly", ip6(140, shimMsg), 140, 40, nil},
		{"hop-by-hop then shim6", ip6(0, ext(140, 1), shimMsg), 140, 48, nil},
		{"dstopts(2 units) then shim6", ip6(60, ext(140, 2), shimMsg), 140, 56, nil},
		{"routing, first fragment, shim6", ip6(43, ext(44, 1), frag(140, 0), shimMsg), 140, 56, nil},
		{"non-first fragment", ip6(44, frag(140, 100), shimMsg), 140, -1, nil},
		{"AH then shim6", ip6(51, append([]byte{140, 4}, make([]byte, 22)...), shimMsg), 140, 64, nil},
		{"udp", ip6(17, make([]byte, 8)), 17, 40, nil},
		{"ext header cut off", ip6(0, []byte{140, 0, 0}), 0, -1, nil},
		{"ext header longer than quoted", ip6(60, ext(140, 1)[:8], []byte{}), 140, -1, nil},
		{"nothing after header", ip6(140), 140, -1, nil},
		{"short", make([]byte, 39), 0, -1, ErrTruncated},
		{"ipv4", append([]byte{0x45}, make([]byte, 39)...), 0, -1, ErrNotIPv6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := ParseInvoking(tc.b)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if inv.NextHeader != tc.nh || inv.Offset != tc.off {
				t.Fatalf("got nh %d off %d, want %d %d", inv.NextHeader, inv.Offset, tc.nh, tc.off)
			}
			if inv.Src != srcA || inv.Dst != dstB {
				t.Fatalf("addresses %v %v", inv.Src, inv.Dst)
			}
		})
	}
}

func TestParseICMPError(t *testing.T) {
	quoted := ip6(140, shimMsg)
	ptb := append([]byte{2, 0, 0, 0, 0, 0, 0x05, 0x00}, quoted...)
	e, err := ParseICMPError(ptb)
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != ICMPPacketTooBig || e.Info != 1280 || !e.ShimRelated() || !bytes.Equal(e.Shim6(), shimMsg) || !bytes.Equal(e.Invoking, quoted) {
		t.Fatalf("%+v", e)
	}
	udp := append([]byte{1, 3, 0, 0, 0, 0, 0, 0}, ip6(17, make([]byte, 8))...)
	if e, err := ParseICMPError(udp); err != nil || e.ShimRelated() || e.Shim6() != nil {
		t.Fatalf("udp error: %+v %v", e, err)
	}
	if _, err := ParseICMPError(append([]byte{128, 0, 0, 0, 0, 0, 0, 0}, quoted...)); !errors.Is(err, ErrNotError) {
		t.Fatalf("echo request: %v", err)
	}
	if _, err := ParseICMPError([]byte{1, 0, 0}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short: %v", err)
	}
	if _, err := ParseICMPError(append([]byte{4, 1, 0, 0, 0, 0, 0, 6}, 0x60, 0)); !errors.Is(err, ErrTruncated) {
		t.Fatalf("short quote: %v", err)
	}
}

func FuzzParseICMPError(f *testing.F) {
	f.Add(append([]byte{2, 0, 0, 0, 0, 0, 0x05, 0x00}, ip6(140, shimMsg)...))
	f.Add(append([]byte{4, 1, 0, 0, 0, 0, 0, 6}, ip6(0, ext(44, 1), frag(140, 0), shimMsg)...))
	f.Add(append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, ip6(51, []byte{140, 255})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseICMPError(b)
		if err != nil {
			return
		}
		if e.ShimRelated() {
			s := e.Shim6()
			if len(s) == 0 || e.Packet.Offset+len(s) != len(e.Invoking) {
				t.Fatalf("Shim6() inconsistent: off %d len %d of %d", e.Packet.Offset, len(s), len(e.Invoking))
			}
		}
	})
}
