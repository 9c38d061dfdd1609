package cga

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"testing"
)

func benchVector(b *testing.B, name string) ([]byte, []netip.Addr) {
	b.Helper()
	for _, v := range loadInterop(b) {
		if v.name == name {
			return v.params, v.addrs
		}
	}
	b.Fatalf("no vector %s", name)
	return nil, nil
}

// BenchmarkSHA1Baseline is one SHA-1 over the 187-octet parameters of a
// 1024-bit-key CGA: verification costs two of these plus parsing.
func BenchmarkSHA1Baseline(b *testing.B) {
	params, _ := benchVector(b, "cga-sec1-rsa1024")
	b.ReportAllocs()
	for b.Loop() {
		sha1.Sum(params)
	}
}

// BenchmarkVerifyCGA is one-shot verification of a CGA (parse, Hash2,
// Hash1), as for a ULID in a received I2.
func BenchmarkVerifyCGA(b *testing.B) {
	params, addrs := benchVector(b, "cga-sec1-rsa1024")
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(addrs[0], params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHBA is one-shot verification of one member of a 3-prefix
// HBA set.
func BenchmarkVerifyHBA(b *testing.B) {
	params, addrs := benchVector(b, "hba-3prefix-sec0")
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(addrs[0], params); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyHBASet verifies every member of a 3-prefix set with one
// Verifier (a received Locator List), from scratch each time.
func BenchmarkVerifyHBASet(b *testing.B) {
	params, addrs := benchVector(b, "hba-3prefix-sec0")
	b.ReportAllocs()
	for b.Loop() {
		v, err := NewVerifier(params)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range addrs {
			if err := v.VerifyHBA(a); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkVerifyHBACached verifies a member against a Verifier that has
// seen its prefix before (no hashing).
func BenchmarkVerifyHBACached(b *testing.B) {
	params, addrs := benchVector(b, "hba-3prefix-sec0")
	v, err := NewVerifier(params)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.VerifyHBA(addrs[1]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchKey(b *testing.B, name string) *rsa.PrivateKey {
	b.Helper()
	k, err := LoadPrivateKey("testdata/interop/" + name)
	if err != nil {
		b.Fatal(err)
	}
	return k
}

var benchLocators = []netip.Addr{
	netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:2::1"), netip.MustParseAddr("2001:db8:3::1"),
}

func BenchmarkSign(b *testing.B) {
	for _, name := range []string{"key1024.pem", "key2048.pem"} {
		k := benchKey(b, name)
		b.Run(fmt.Sprintf("rsa%d", k.N.BitLen()), func(b *testing.B) {
			for b.Loop() {
				if _, err := SignLocators(k, 7, benchLocators); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifySignature(b *testing.B) {
	for _, name := range []string{"key1024.pem", "key2048.pem"} {
		k := benchKey(b, name)
		sig, err := SignLocators(k, 7, benchLocators)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("rsa%d", k.N.BitLen()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifyLocators(&k.PublicKey, 7, benchLocators, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerateSec1 generates Sec 1 CGAs (1024-bit key) with one
// worker and with all of them. The modifiers come from a seeded generator,
// so both runs do exactly the same searches: ns/op is comparable.
func BenchmarkGenerateSec1(b *testing.B) {
	params, _ := benchVector(b, "cga-sec1-rsa1024")
	p, err := Parse(params)
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			r := rand.NewChaCha8([32]byte{1})
			var attempts uint64
			for b.Loop() {
				_, _, err := Generate(context.Background(), p.SubnetPrefix, p.PublicKey, Options{Sec: 1, Workers: w, Rand: r,
					Progress: func(pr Progress) {
						if pr.Done {
							attempts += pr.Attempts
						}
					}})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(attempts)/float64(b.Elapsed().Seconds())/1e6, "Mhash/s")
		})
	}
}

// BenchmarkGenerateSec2 is the expensive one (2^32 SHA-1 on average, minutes
// on a laptop). It runs only with GOSHIM6_BENCH_SEC2=1 and -bench.
func BenchmarkGenerateSec2(b *testing.B) {
	if os.Getenv("GOSHIM6_BENCH_SEC2") == "" {
		b.Skip("set GOSHIM6_BENCH_SEC2=1: a Sec 2 generation takes minutes")
	}
	params, _ := benchVector(b, "cga-sec1-rsa1024")
	p, _ := Parse(params)
	for b.Loop() {
		addr, out, err := Generate(context.Background(), p.SubnetPrefix, p.PublicKey, Options{Sec: 2})
		if err != nil {
			b.Fatal(err)
		}
		if err := Verify(addr, out); err != nil {
			b.Fatal(err)
		}
	}
}
