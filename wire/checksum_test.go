package wire

import (
	"math/rand/v2"
	"testing"
)

// naiveChecksum is RFC 1071 written the obvious way.
func naiveChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		if i == 4 {
			continue // the checksum field counts as zero
		}
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestChecksumMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		n := 8 * (1 + r.IntN(40))
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 {
			clear(b[8:]) // long runs of zeros
		} else if r.IntN(4) == 0 {
			for i := 8; i < n; i++ {
				b[i] = 0xff // carries
			}
		}
		b[1] = byte(n/8 - 1)
		if got, want := Checksum(b), naiveChecksum(b); got != want {
			t.Fatalf("Checksum = %#04x, naive %#04x for % x", got, want, b)
		}
		SetChecksum(b)
		if !VerifyChecksum(b) {
			t.Fatalf("VerifyChecksum false after SetChecksum: % x", b)
		}
		b[n-1] ^= 1
		if VerifyChecksum(b) {
			t.Fatalf("VerifyChecksum true after a flipped bit")
		}
	}
	// Payload after Hdr Ext Len is not covered (RFC 5533 §5.3).
	b := append(make([]byte, 16), 1, 2, 3)
	b[1] = 1
	SetChecksum(b)
	b[18] = 9
	if !VerifyChecksum(b) {
		t.Fatal("payload after the header changed the checksum")
	}
	if Checksum(b[:7]) != 0 || VerifyChecksum(b[:15]) {
		t.Fatal("short buffers")
	}
}
