package cga

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// interopVector is one NAME.params with its NAME.addr from testdata/interop
// (output of an independent C/OpenSSL implementation; see its README).
type interopVector struct {
	name   string
	params []byte
	addrs  []netip.Addr
}

func loadInterop(t testing.TB) []interopVector {
	t.Helper()
	files, err := filepath.Glob("testdata/interop/*.params")
	if err != nil || len(files) == 0 {
		t.Fatalf("no interop vectors: %v", err)
	}
	var vs []interopVector
	for _, f := range files {
		p, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		a, err := os.ReadFile(strings.TrimSuffix(f, ".params") + ".addr")
		if err != nil {
			t.Fatal(err)
		}
		v := interopVector{name: strings.TrimSuffix(filepath.Base(f), ".params"), params: p}
		sc := bufio.NewScanner(bytes.NewReader(a))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			addr, err := netip.ParseAddr(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			v.addrs = append(v.addrs, addr)
		}
		if len(v.addrs) == 0 {
			t.Fatalf("%s: no addresses", f)
		}
		vs = append(vs, v)
	}
	return vs
}

// Every vector must verify; the count guards against a silently empty folder.
func TestInteropVectorsVerify(t *testing.T) {
	vs := loadInterop(t)
	if len(vs) < 7 {
		t.Fatalf("only %d interop vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(v.name, func(t *testing.T) {
			ver, err := NewVerifier(v.params)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			for _, a := range v.addrs {
				if err := Verify(a, v.params); err != nil {
					t.Errorf("Verify(%v): %v", a, err)
				}
				if err := ver.Verify(a); err != nil {
					t.Errorf("Verifier.Verify(%v): %v", a, err)
				}
				if ver.IsHBA() {
					if err := ver.VerifyHBA(a); err != nil {
						t.Errorf("VerifyHBA(%v): %v", a, err)
					}
				}
				// Address recomputes the same address from prefix and Sec.
				sec := int(a.As16()[8] >> 5)
				got, err := ver.Address(PrefixOf(a), sec)
				if err != nil || got != a {
					t.Errorf("Address(%v, %d) = %v, %v; want %v", PrefixOf(a), sec, got, err, a)
				}
			}
			// Parse/Marshal round trip is byte-exact.
			p, err := Parse(v.params)
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Marshal()
			if err != nil || !bytes.Equal(out, v.params) {
				t.Fatalf("Marshal round trip differs: %v", err)
			}
		})
	}
}

// Changing any single bit of the interface identifier (other than the five
// bits Hash1 ignores, which are Sec and u/g) must fail; so must changing
// any byte of the parameters.
func TestInteropVectorsTamper(t *testing.T) {
	for _, v := range loadInterop(t) {
		t.Run(v.name, func(t *testing.T) {
			for _, a := range v.addrs {
				b := a.As16()
				for bit := 0; bit < 128; bit++ {
					c := b
					c[bit/8] ^= 0x80 >> (bit % 8)
					ta := netip.AddrFrom16(c)
					err := Verify(ta, v.params)
					iidBit := bit - 64
					switch {
					case bit < 64:
						// A different /64: not the subnet prefix and not
						// listed, or another member's prefix (Hash1 then
						// differs).
						if !errors.Is(err, ErrPrefixMismatch) && !errors.Is(err, ErrHash1Mismatch) {
							t.Errorf("prefix bit %d flipped: %v, want ErrPrefixMismatch", bit, err)
						}
					case iidBit == 6 || iidBit == 7:
						// u and g bits are ignored (RFC 3972 §5 step 4).
						if err != nil {
							t.Errorf("u/g bit %d flipped: %v, want success", iidBit, err)
						}
					case iidBit < 3:
						// Sec changes: Hash1 still matches, then Sec/Hash2
						// decides; it must never verify with a wrong Sec
						// unless Hash2 really has the zero bits.
						if err == nil {
							ver, _ := NewVerifier(v.params)
							if ver.zeros < 16*int(c[8]>>5) {
								t.Errorf("Sec bit %d flipped: verified", iidBit)
							}
						} else if !errors.Is(err, ErrHash2) && !errors.Is(err, ErrUnsupportedSec) {
							t.Errorf("Sec bit %d flipped: %v", iidBit, err)
						}
					default:
						if !errors.Is(err, ErrHash1Mismatch) {
							t.Errorf("IID bit %d flipped: %v, want ErrHash1Mismatch", iidBit, err)
						}
					}
				}
				for i := range v.params {
					for _, x := range []byte{0x01, 0x80, 0xff} {
						p := bytes.Clone(v.params)
						p[i] ^= x
						err := Verify(a, p)
						if err == nil && sameHBASet(v.params, p) {
							// The subnet prefix field now holds another
							// listed prefix: the same HBA set, which RFC
							// 5535 §7.2 verifies by substitution; strict
							// CGA verification passes only for the member
							// whose prefix is now in the field.
							ver, verr := NewVerifier(p)
							if verr != nil || (ver.VerifyCGA(a) == nil) != (PrefixOf(a) == ver.Params().SubnetPrefix) {
								t.Errorf("params byte %d ^ %#x: strict CGA verification of %v wrong", i, x, a)
							}
							continue
						}
						if err == nil {
							t.Errorf("params byte %d ^ %#x: %v still verifies", i, x, a)
						}
					}
				}
			}
		})
	}
}

// sameHBASet reports whether q differs from p only in the subnet prefix
// field and both hold prefixes listed in p's multi-prefix extension.
func sameHBASet(p, q []byte) bool {
	if len(p) != len(q) || !bytes.Equal(p[:offPrefix], q[:offPrefix]) || !bytes.Equal(p[offCC:], q[offCC:]) {
		return false
	}
	pp, err := Parse(p)
	if err != nil {
		return false
	}
	mp, ok, _ := pp.MultiPrefix()
	if !ok {
		return false
	}
	qq, err := Parse(q)
	if err != nil {
		return false
	}
	for _, x := range mp.Prefixes {
		if x == qq.SubnetPrefix {
			return true
		}
	}
	return false
}
