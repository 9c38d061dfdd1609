package cga

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

func testPublicKey(t testing.TB) []byte {
	t.Helper()
	k, err := LoadPrivateKey("testdata/interop/key1024.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := MarshalPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func seeded(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

// sequentialModifier is RFC 3972 §4 steps 2-3 written the plain way.
func sequentialModifier(start [16]byte, rest []byte, sec int) [16]byte {
	m := start
	for {
		in := append(append(append([]byte(nil), m[:]...), make([]byte, 9)...), rest...)
		s := sha1.Sum(in)
		if leadingZeros112(&s) >= 16*sec {
			return m
		}
		incModifier(m[:])
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	pub := testPublicKey(t)
	for sec := 0; sec <= 1; sec++ {
		for i := range 3 {
			pfx := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%d:%d::/64", sec, i))
			addr, params, err := Generate(context.Background(), pfx, pub, Options{Sec: sec})
			if err != nil {
				t.Fatal(err)
			}
			if PrefixOf(addr) != pfx || int(addr.As16()[8]>>5) != sec || addr.As16()[8]&0x03 != 0 {
				t.Errorf("Sec %d: address %v has the wrong prefix, Sec or u/g bits", sec, addr)
			}
			if err := Verify(addr, params); err != nil {
				t.Errorf("Sec %d: %v", sec, err)
			}
			p, err := Parse(params)
			if err != nil || p.CollisionCount != 0 || p.SubnetPrefix != pfx || !bytes.Equal(p.PublicKey, pub) || len(p.Extensions) != 0 {
				t.Errorf("Sec %d: parameters %+v %v", sec, p, err)
			}
			// The modifier is the sequential algorithm's from the same start.
			if sec == 1 {
				ver, _ := NewVerifier(params)
				if ver.zeros < 16 {
					t.Errorf("Hash2 has %d zero bits", ver.zeros)
				}
			}
		}
	}
}

// The result does not depend on the number of workers: it is the modifier
// the sequential RFC 3972 §4 search finds from the same initial modifier.
func TestGenerateSameResultAnyWorkers(t *testing.T) {
	pub := testPublicKey(t)
	pfx := netip.MustParsePrefix("2001:db8:5::/64")
	for seed := range byte(3) {
		var start [16]byte
		seeded(seed).Read(start[:])
		want := sequentialModifier(start, pub, 1)
		for _, w := range []int{1, 2, 3, 8} {
			addr, params, err := Generate(context.Background(), pfx, pub, Options{Sec: 1, Workers: w, Rand: seeded(seed)})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(params[:16], want[:]) {
				t.Errorf("seed %d workers %d: modifier %x, sequential search gives %x", seed, w, params[:16], want)
			}
			if err := Verify(addr, params); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestModifierArithmetic(t *testing.T) {
	m := [16]byte{15: 0xff}
	incModifier(m[:])
	if m != [16]byte{14: 1} {
		t.Errorf("inc carry: %x", m)
	}
	all := [16]byte{}
	for i := range all {
		all[i] = 0xff
	}
	w := all
	incModifier(w[:])
	if w != [16]byte{} {
		t.Errorf("inc wrap: %x", w)
	}
	if got := addModifier(all, 2); got != [16]byte{15: 1} {
		t.Errorf("add wrap: %x", got)
	}
	if got := subModifier([16]byte{15: 1}, 2); got != all {
		t.Errorf("sub wrap: %x", got)
	}
	if got := subModifier([16]byte{7: 2}, 1); got != [16]byte{7: 1, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff} {
		t.Errorf("sub borrow: %x", got)
	}
	lo := [16]byte{7: 1, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
	if got := addModifier(lo, 1); got != [16]byte{7: 2} {
		t.Errorf("add carry into high half: %x", got)
	}
	// A search that starts just below 2^128 wraps and still agrees with the
	// sequential search.
	pub := testPublicKey(t)
	start := all
	start[15] = 0xf0
	r := bytes.NewReader(start[:])
	_, params, err := Generate(context.Background(), netip.MustParsePrefix("2001:db8::/64"), pub, Options{Sec: 1, Workers: 2, Rand: r})
	if err != nil {
		t.Fatal(err)
	}
	if want := sequentialModifier(start, pub, 1); !bytes.Equal(params[:16], want[:]) {
		t.Errorf("wrapped search: %x, want %x", params[:16], want)
	}
}

func TestGenerateRefusesSec3To7(t *testing.T) {
	pub := testPublicKey(t)
	for sec := 3; sec <= 7; sec++ {
		_, _, err := Generate(context.Background(), netip.MustParsePrefix("2001:db8::/64"), pub, Options{Sec: sec})
		if !errors.Is(err, ErrUnsupportedSec) {
			t.Errorf("Sec %d: %v", sec, err)
		}
		if _, err := GenerateHBA(context.Background(), []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, nil, Options{Sec: sec}); !errors.Is(err, ErrUnsupportedSec) {
			t.Errorf("HBA Sec %d: %v", sec, err)
		}
	}
	if _, _, err := Generate(context.Background(), netip.MustParsePrefix("2001:db8::/64"), pub, Options{Sec: -1}); !errors.Is(err, ErrUnsupportedSec) {
		t.Errorf("Sec -1: %v", err)
	}
}

// Verification refuses Sec 3-7 in the address even when Hash1 matches.
func TestVerifyRefusesSec3To7(t *testing.T) {
	v := loadInterop(t)[0]
	for _, vec := range loadInterop(t) {
		if vec.name == "cga-sec0-rsa1024" {
			v = vec
		}
	}
	for sec := 3; sec <= 7; sec++ {
		a := v.addrs[0].As16()
		a[8] = a[8]&0x1f | byte(sec)<<5
		err := Verify(netip.AddrFrom16(a), v.params)
		var ve *VerifyError
		if !errors.Is(err, ErrUnsupportedSec) || !errors.As(err, &ve) || ve.Step != 5 {
			t.Errorf("Sec %d: %v", sec, err)
		}
	}
}

func TestGenerateCancel(t *testing.T) {
	pub := testPublicKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reports int
	_, _, err := Generate(ctx, netip.MustParsePrefix("2001:db8::/64"), pub, Options{Sec: 2, ProgressInterval: 1,
		Progress: func(p Progress) {
			reports++
			cancel()
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Sec 2 generation: %v", err)
	}
	if reports == 0 {
		t.Error("no progress report")
	}
	// Already cancelled: no work at all.
	if _, err := GenerateHBA(ctx, []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}, nil, Options{Sec: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("pre-cancelled: %v", err)
	}
}

func TestGenerateProgress(t *testing.T) {
	pub := testPublicKey(t)
	var mu sync.Mutex
	var got []Progress
	_, _, err := Generate(context.Background(), netip.MustParsePrefix("2001:db8::/64"), pub, Options{Sec: 1, Rand: seeded(9),
		ProgressInterval: 1, Progress: func(p Progress) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || !got[len(got)-1].Done {
		t.Fatalf("reports %+v: the last must be Done", got)
	}
	for i, p := range got {
		if p.Sec != 1 || p.Expected != 65536 || (i > 0 && p.Attempts < got[i-1].Attempts) || (p.Done != (i == len(got)-1)) {
			t.Errorf("report %d: %+v", i, p)
		}
	}
	last := got[len(got)-1]
	if last.Attempts == 0 || last.Rate <= 0 || last.Remaining() <= 0 {
		t.Errorf("last report %+v", last)
	}
}

func TestGenerateHBASets(t *testing.T) {
	for n := 1; n <= 8; n++ {
		prefixes := make([]netip.Prefix, n)
		for i := range prefixes {
			prefixes[i] = netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x:%x::/64", n, i+1))
		}
		sec := n % 2 // Sec 0 and 1
		set, err := GenerateHBA(context.Background(), prefixes, nil, Options{Sec: sec, Rand: seeded(byte(n))})
		if err != nil {
			t.Fatal(err)
		}
		checkHBASet(t, set, prefixes, sec, false)
	}
}

func TestGenerateCGACompatibleHBASet(t *testing.T) {
	pub := testPublicKey(t)
	prefixes := []netip.Prefix{netip.MustParsePrefix("2001:db8:a::/64"), netip.MustParsePrefix("2001:db8:b::/64"), netip.MustParsePrefix("2001:db8:c::/64")}
	set, err := GenerateHBA(context.Background(), prefixes, pub, Options{Sec: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkHBASet(t, set, prefixes, 1, true)
	v, _ := NewVerifier(set.Params)
	if _, err := v.PublicKey(); err != nil {
		t.Errorf("CGA-compatible set: public key %v", err)
	}
	// Each member's own parameters (RFC 5535 §6 step 6.5: its prefix in the
	// subnet field) pass strict CGA verification (RFC 5535 §7.1).
	for i, a := range set.Addrs {
		p, _ := Parse(set.Params)
		p.SubnetPrefix = prefixes[i]
		own, _ := p.Marshal()
		ov, _ := NewVerifier(own)
		if err := ov.VerifyCGA(a); err != nil {
			t.Errorf("member %d as CGA: %v", i, err)
		}
	}
}

func checkHBASet(t *testing.T, set *HBASet, prefixes []netip.Prefix, sec int, real bool) {
	t.Helper()
	if len(set.Addrs) != len(prefixes) {
		t.Fatalf("%d addresses for %d prefixes", len(set.Addrs), len(prefixes))
	}
	p, err := Parse(set.Params)
	if err != nil {
		t.Fatal(err)
	}
	// The subnet prefix field holds the last prefix, as the interop data.
	if p.SubnetPrefix != prefixes[len(prefixes)-1] || p.CollisionCount != 0 {
		t.Errorf("subnet %v, cc %d", p.SubnetPrefix, p.CollisionCount)
	}
	mp, ok, err := p.MultiPrefix()
	if !ok || err != nil || mp.PublicKey != real || mp.Reserved != 0 || len(mp.Prefixes) != len(prefixes) {
		t.Fatalf("multi-prefix %+v %v %v", mp, ok, err)
	}
	if !real {
		if len(p.PublicKey) != len(pseudoKeyHeader)+48 || !bytes.Equal(p.PublicKey[:len(pseudoKeyHeader)], pseudoKeyHeader) {
			t.Errorf("pseudo-key %x", p.PublicKey)
		}
	}
	v, err := NewVerifier(set.Params)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range set.Addrs {
		if mp.Prefixes[i] != prefixes[i] || PrefixOf(a) != prefixes[i] || int(a.As16()[8]>>5) != sec {
			t.Errorf("address %d: %v for prefix %v", i, a, prefixes[i])
		}
		if err := v.VerifyHBA(a); err != nil {
			t.Errorf("VerifyHBA(%v): %v", a, err)
		}
		if err := Verify(a, set.Params); err != nil {
			t.Errorf("Verify(%v): %v", a, err)
		}
		// Only the member whose prefix is the subnet field is a strict CGA.
		if err := v.VerifyCGA(a); (err == nil) != (i == len(prefixes)-1) {
			t.Errorf("VerifyCGA(%v): %v", a, err)
		}
		// Moving a member's interface identifier to another member's prefix
		// fails (Hash1 depends on the prefix).
		if len(prefixes) > 1 {
			o := set.Addrs[(i+1)%len(prefixes)].As16()
			m := a.As16()
			copy(m[:8], o[:8])
			if err := v.Verify(netip.AddrFrom16(m)); !errors.Is(err, ErrHash1Mismatch) {
				t.Errorf("identifier moved to another prefix: %v", err)
			}
		}
	}
	// An unlisted prefix is refused at step 2.
	out := netip.MustParseAddr("2001:db8:ffff:ffff::1")
	var ve *VerifyError
	if err := v.VerifyHBA(out); !errors.As(err, &ve) || ve.Step != 2 || !errors.Is(err, ErrPrefixMismatch) {
		t.Errorf("unlisted prefix: %v", err)
	}
}

func TestGenerateHBARejects(t *testing.T) {
	ctx := context.Background()
	p := netip.MustParsePrefix("2001:db8::/64")
	for name, pfxs := range map[string][]netip.Prefix{
		"none":      nil,
		"duplicate": {p, netip.MustParsePrefix("2001:db8:1::/64"), p},
		"/48":       {netip.MustParsePrefix("2001:db8::/48")},
		"IPv4":      {netip.MustParsePrefix("192.0.2.0/24")},
	} {
		if _, err := GenerateHBA(ctx, pfxs, nil, Options{}); !errors.Is(err, ErrBadPrefix) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := Generate(ctx, netip.MustParsePrefix("2001:db8::/56"), testPublicKey(t), Options{}); !errors.Is(err, ErrBadPrefix) {
		t.Errorf("CGA /56: %v", err)
	}
	if _, _, err := Generate(ctx, p, []byte{0x30, 0}, Options{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad key: %v", err)
	}
}

func TestVerifyErrors(t *testing.T) {
	params := mustRead(t, "testdata/interop/cga-sec1-rsa1024.params")
	addr := netip.MustParseAddr("2001:db8:a:b:28e8:cf32:5fcf:cf77")
	v, _ := NewVerifier(params)
	if err := v.Verify(netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrNotIPv6) {
		t.Errorf("IPv4: %v", err)
	}
	if err := v.VerifyHBA(addr); !errors.Is(err, ErrNoMultiPrefix) {
		t.Errorf("HBA on a plain CGA: %v", err)
	}
	for cc := byte(1); cc != 0; cc++ {
		p := bytes.Clone(params)
		p[offCC] = cc
		err := Verify(addr, p)
		var ve *VerifyError
		if cc > 2 {
			if !errors.Is(err, ErrCollisionCount) || !errors.As(err, &ve) || ve.Step != 1 {
				t.Fatalf("collision count %d: %v", cc, err)
			}
		} else if !errors.Is(err, ErrHash1Mismatch) {
			t.Fatalf("collision count %d: %v", cc, err)
		}
	}
	err := Verify(netip.MustParseAddr("2001:db8:a:b::1"), params)
	if err == nil || err.Error() != "cga: interface identifier does not match Hash1: 2001:db8:a:b::1 fails RFC 3972 §5 step 4" {
		t.Errorf("message: %v", err)
	}
	if _, err := v.Address(netip.MustParsePrefix("2001:db8:9::/64"), 1); !errors.Is(err, ErrPrefixMismatch) {
		t.Errorf("Address of a foreign prefix: %v", err)
	}
	if _, err := v.Address(netip.MustParsePrefix("2001:db8:a:b::/64"), 3); !errors.Is(err, ErrUnsupportedSec) {
		t.Errorf("Address Sec 3: %v", err)
	}
}

// An HBA set whose subnet prefix field is not among the listed prefixes is
// not what RFC 5535 §6 builds: substitution is refused, but the subnet
// prefix itself is still a CGA (RFC 3972 §5).
func TestVerifySubnetNotListed(t *testing.T) {
	params := bytes.Clone(mustRead(t, "testdata/interop/hba-3prefix-sec0.params"))
	copy(params[offPrefix:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 9, 0, 0})
	v, err := NewVerifier(params)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(netip.MustParseAddr("2001:db8:1:0:18c6:457c:4e1b:10ec")); !errors.Is(err, ErrSubnetNotListed) {
		t.Errorf("substitution with unlisted subnet: %v", err)
	}
	a, err := v.Address(netip.MustParsePrefix("2001:db8:9::/64"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyCGA(a); err != nil {
		t.Errorf("subnet prefix as CGA: %v", err)
	}
}
