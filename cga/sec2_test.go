package cga

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func loadSec2(t *testing.T) ([]byte, netip.Addr) {
	t.Helper()
	params := mustRead(t, "testdata/sec2/cga-sec2-rsa1024.params")
	addr := netip.MustParseAddr(strings.TrimSpace(string(mustRead(t, "testdata/sec2/cga-sec2-rsa1024.addr"))))
	return params, addr
}

func TestSec2Vector(t *testing.T) {
	params, addr := loadSec2(t)
	if addr.As16()[8]>>5 != 2 {
		t.Fatalf("%v is not Sec 2", addr)
	}
	v, err := NewVerifier(params)
	if err != nil {
		t.Fatal(err)
	}
	if v.zeros < 32 {
		t.Fatalf("Hash2 has %d leading zero bits", v.zeros)
	}
	if err := v.VerifyCGA(addr); err != nil {
		t.Fatal(err)
	}
	// Lower Sec claims verify too (fewer zero bits needed); Sec 3 is refused.
	for sec, want := range map[byte]error{0: nil, 1: nil, 3: ErrUnsupportedSec} {
		a := addr.As16()
		a[8] = a[8]&0x1f | sec<<5
		if err := v.Verify(netip.AddrFrom16(a)); !errors.Is(err, want) {
			t.Errorf("Sec %d claim: %v, want %v", sec, err, want)
		}
	}
	// The key is the one of key1024.pem: it signs for this CGA.
	k := testKey(t, "key1024.pem")
	sig, _ := SignLocators(k, 1, []netip.Addr{addr})
	if err := v.VerifyLocatorSignature(1, []netip.Addr{addr}, sig); err != nil {
		t.Error(err)
	}
	// A modifier one lower does not have the zero bits at Sec 2.
	p := bytes.Clone(params)
	m := subModifier([16]byte(p[:16]), 1)
	copy(p, m[:])
	pv, _ := NewVerifier(p)
	a, _ := pv.Address(netip.MustParsePrefix("2001:db8:2:2::/64"), 0)
	b := a.As16()
	b[8] |= 2 << 5
	if err := pv.Verify(netip.AddrFrom16(b)); !errors.Is(err, ErrHash2) {
		t.Errorf("modifier-1 at Sec 2: %v", err)
	}
}

// The Sec 2 search (32 zero bits) started shortly before the known modifier
// finds exactly it, also across a chunk boundary with several workers.
func TestSec2SearchFindsKnownModifier(t *testing.T) {
	params, addr := loadSec2(t)
	pk, _ := Parse(params)
	for _, c := range []struct {
		back    uint64
		workers int
	}{{100, 1}, {chunkLen + 300, 2}, {3*chunkLen + 7, 3}} {
		start := subModifier(pk.Modifier, c.back)
		got, out, err := Generate(context.Background(), pk.SubnetPrefix, pk.PublicKey, Options{Sec: 2, Workers: c.workers, Rand: bytes.NewReader(start[:])})
		if err != nil {
			t.Fatal(err)
		}
		if got != addr || !bytes.Equal(out, params) {
			t.Errorf("start -%d, %d workers: %v, want %v", c.back, c.workers, got, addr)
		}
	}
}

// subModifier returns m - n modulo 2^128.
func subModifier(m [16]byte, n uint64) [16]byte {
	lo := binary.BigEndian.Uint64(m[8:])
	hi := binary.BigEndian.Uint64(m[:8])
	if lo < n {
		hi--
	}
	binary.BigEndian.PutUint64(m[8:], lo-n)
	binary.BigEndian.PutUint64(m[:8], hi)
	return m
}
