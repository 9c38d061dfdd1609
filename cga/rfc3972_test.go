package cga

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 3972 appendix A.
const appendixAKey = `
   305c 300d 0609 2a86 4886 f70d 0101 0105 0003 4b00 3048 0241
   00c2 c2f1 3730 5454 f10b d9ce a368 44b5 30e9 211a 4b26 2b16
   467c b7df ba1f 595c 0194 f275 be5a 4d38 6f2c 3c23 8250 8773
   c786 7f9b 3b9e 63a0 9c7b c48f 7a54 ebef af02 0301 0001`

var appendixAAddr = netip.MustParseAddr("fe80::3c4a:5bf6:ffb4:ca6c")

// The Hash2 values of the rejected and of the accepted modifier, Hash1 and
// the address, all as printed in the RFC.
func TestRFC3972AppendixAHashes(t *testing.T) {
	key := unhex(t, appendixAKey)
	hash2 := func(mod string) []byte {
		in := append(unhex(t, mod), make([]byte, 9)...)
		s := sha1.Sum(append(in, key...))
		return s[:14]
	}
	if got, want := hash2("89a8 a8b2 e858 d8b8 f263 3f44 d2d4 ce9a"), unhex(t, "436b 9a70 dbfd dbf1 926e 6e66 29c0"); !bytes.Equal(got, want) {
		t.Errorf("Hash2 of rejected modifier = %x, want %x", got, want)
	}
	if got, want := hash2("89a8 a8b2 e858 d8b8 f263 3f44 d2d4 ce9b"), unhex(t, "0000 01ca 680b 8388 8d09 12df fcce"); !bytes.Equal(got, want) {
		t.Errorf("Hash2 of accepted modifier = %x, want %x", got, want)
	}
	params := append(unhex(t, "89a8 a8b2 e858 d8b8 f263 3f44 d2d4 ce9b fe80 0000 0000 0000 00"), key...)
	if h := hash1With(params, 0xfe80000000000000); h != 0xfd4a5bf6ffb4ca6c {
		t.Errorf("Hash1 = %x, want fd4a5bf6ffb4ca6c", h)
	}
	if err := Verify(appendixAAddr, params); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// The rejected modifier gives parameters that do not verify at Sec 1.
	rejected := bytes.Clone(params)
	rejected[15] = 0x9a
	ver, err := NewVerifier(rejected)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := ver.Address(netip.MustParsePrefix("fe80::/64"), 0)
	if err != nil {
		t.Fatal(err)
	}
	a := addr.As16()
	a[8] |= 1 << 5 // claim Sec 1
	if err := ver.Verify(netip.AddrFrom16(a)); !errors.Is(err, ErrHash2) {
		t.Errorf("rejected modifier at Sec 1: %v, want ErrHash2", err)
	}
	var ve *VerifyError
	if !errors.As(ver.Verify(netip.AddrFrom16(a)), &ve) || ve.Step != 7 {
		t.Errorf("rejected modifier: want a VerifyError at step 7, got %v", ve)
	}
}

// Generation from the RFC's initial modifier finds the RFC's modifier
// (one increment) and the RFC's address, with any number of workers.
func TestRFC3972AppendixAGenerate(t *testing.T) {
	key := unhex(t, appendixAKey)
	want := append(unhex(t, "89a8 a8b2 e858 d8b8 f263 3f44 d2d4 ce9b fe80 0000 0000 0000 00"), key...)
	for _, w := range []int{1, 2, 5} {
		r := bytes.NewReader(unhex(t, "89a8 a8b2 e858 d8b8 f263 3f44 d2d4 ce9a"))
		addr, params, err := Generate(context.Background(), netip.MustParsePrefix("fe80::/64"), key, Options{Sec: 1, Workers: w, Rand: r})
		if err != nil {
			t.Fatal(err)
		}
		if addr != appendixAAddr || !bytes.Equal(params, want) {
			t.Errorf("workers %d: got %v %x, want %v %x", w, addr, params, appendixAAddr, want)
		}
	}
}
