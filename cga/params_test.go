package cga

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
)

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFields(t *testing.T) {
	b := mustRead(t, "testdata/interop/hbacga-2prefix-sec1.params")
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.SubnetPrefix != netip.MustParsePrefix("2001:db8:beef:1::/64") || p.CollisionCount != 0 {
		t.Errorf("subnet %v cc %d", p.SubnetPrefix, p.CollisionCount)
	}
	if len(p.PublicKey) != 0xa2 || len(p.Extensions) != 1 || p.Extensions[0].Type != ExtMultiPrefix {
		t.Fatalf("key %d octets, extensions %+v", len(p.PublicKey), p.Extensions)
	}
	mp, ok, err := p.MultiPrefix()
	// The independent implementation writes the P flag word in host byte
	// order (octets 00 00 00 80): read per RFC 5535 §5, that is P clear and
	// reserved bit 0x80 set. Reserved bits are ignored on receipt and P
	// decides nothing in verification, so the set still verifies.
	if err != nil || !ok || mp.PublicKey || mp.Reserved != 0x80 {
		t.Fatalf("multi-prefix %+v %v %v", mp, ok, err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8:cafe:1::/64"), netip.MustParsePrefix("2001:db8:beef:1::/64")}
	if len(mp.Prefixes) != 2 || mp.Prefixes[0] != want[0] || mp.Prefixes[1] != want[1] {
		t.Errorf("prefixes %v, want %v", mp.Prefixes, want)
	}
	// Parse copies its input.
	b[0] ^= 0xff
	if p.Modifier[0] == b[0] {
		t.Error("Parse aliases its input")
	}
	// The pseudo-key of an HBA-only set has the P flag clear.
	p2, err := Parse(mustRead(t, "testdata/interop/hba-2prefix-sec1.params"))
	if err != nil {
		t.Fatal(err)
	}
	if mp, ok, _ := p2.MultiPrefix(); !ok || mp.PublicKey {
		t.Errorf("HBA-only set: P flag set or extension missing")
	}
	if _, err := ParsePublicKey(p2.PublicKey); !errors.Is(err, ErrNotRSA) {
		t.Errorf("pseudo-key parsed as RSA: %v", err)
	}
}

// Unknown extensions are kept, re-encoded byte for byte and hashed: the
// address of parameters with one changes when its data changes.
func TestUnknownExtensionKeptAndHashed(t *testing.T) {
	base := mustRead(t, "testdata/interop/cga-sec0-rsa1024.params")
	ext := []byte{0xff, 0xfd, 0x00, 0x03, 'a', 'b', 'c'} // Exp_FFFD (RFC 4581 §3)
	withExt := append(bytes.Clone(base), ext...)
	p, err := Parse(withExt)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Extensions) != 1 || p.Extensions[0].Type != 0xfffd || string(p.Extensions[0].Data) != "abc" {
		t.Fatalf("extensions %+v", p.Extensions)
	}
	out, _ := p.Marshal()
	if !bytes.Equal(out, withExt) {
		t.Fatal("round trip differs")
	}
	pfx := netip.MustParsePrefix("2001:db8:1:2::/64")
	v1, _ := NewVerifier(base)
	v2, _ := NewVerifier(withExt)
	a1, _ := v1.Address(pfx, 0)
	a2, err := v2.Address(pfx, 0)
	if err != nil || a1 == a2 {
		t.Fatalf("unknown extension not hashed: %v %v %v", a1, a2, err)
	}
	if err := v2.Verify(a2); err != nil {
		t.Error(err)
	}
	if err := v2.Verify(a1); !errors.Is(err, ErrHash1Mismatch) {
		t.Errorf("address without the extension: %v", err)
	}
	// A zero-length extension is valid too.
	if _, err := Parse(append(bytes.Clone(base), 0x12, 0x34, 0, 0)); err != nil {
		t.Error(err)
	}
}

func TestParseRejects(t *testing.T) {
	cga := mustRead(t, "testdata/interop/cga-sec0-rsa1024.params")
	hba := mustRead(t, "testdata/interop/hba-2prefix-sec1.params")
	keyEnd := fixedLen + 0xa2
	set := func(b []byte, i int, v ...byte) []byte { b = bytes.Clone(b); copy(b[i:], v); return b }
	ext := func(b []byte, typ uint16, data ...byte) []byte {
		b = binary.BigEndian.AppendUint16(bytes.Clone(b), typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		return append(b, data...)
	}
	mp := func(n int) []byte { return make([]byte, n) }
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"fixed part only", cga[:fixedLen]},
		{"truncated key", cga[:keyEnd-1]},
		{"key not a SEQUENCE", set(cga, fixedLen, 0x31)},
		{"indefinite length", set(cga, fixedLen+1, 0x80)},
		{"non-minimal length", set(hba, fixedLen+1, 0x81)},
		{"key length past end", set(cga, fixedLen+1, 0x81, 0xff)},
		{"no AlgorithmIdentifier", set(cga, fixedLen+3, 0x31)},
		{"no BIT STRING", set(cga, fixedLen+3+15, 0x04)},
		{"bad unused bits", set(cga, fixedLen+3+15+3, 0x08)},
		{"1 trailing octet", append(bytes.Clone(cga), 0)},
		{"3 trailing octets", append(bytes.Clone(cga), 0, 0x12, 0)},
		{"extension length past end", append(bytes.Clone(cga), 0, 1, 0, 5, 1, 2)},
		{"multi-prefix without prefixes", ext(cga, ExtMultiPrefix, mp(4)...)},
		{"multi-prefix short", ext(cga, ExtMultiPrefix, mp(3)...)},
		{"multi-prefix ragged", ext(cga, ExtMultiPrefix, mp(4+8+1)...)},
		{"two multi-prefix extensions", ext(hba, ExtMultiPrefix, mp(12)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse: %v, want ErrMalformed", err)
			}
			if _, err := NewVerifier(c.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("NewVerifier: %v, want ErrMalformed", err)
			}
			if err := Verify(netip.MustParseAddr("2001:db8:1:2:82a:9e1:8f4c:e22e"), c.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("Verify: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestMarshalRejects(t *testing.T) {
	good, _ := Parse(mustRead(t, "testdata/interop/cga-sec0-rsa1024.params"))
	for name, mod := range map[string]func(p *Params){
		"prefix /48":        func(p *Params) { p.SubnetPrefix = netip.MustParsePrefix("2001:db8::/48") },
		"IPv4 prefix":       func(p *Params) { p.SubnetPrefix = netip.MustParsePrefix("10.0.0.0/8") },
		"zero prefix":       func(p *Params) { p.SubnetPrefix = netip.Prefix{} },
		"key trailing byte": func(p *Params) { p.PublicKey = append(bytes.Clone(p.PublicKey), 0) },
		"no key":            func(p *Params) { p.PublicKey = nil },
		"huge extension":    func(p *Params) { p.Extensions = []Extension{{Type: 1, Data: make([]byte, 0x10000)}} },
		"bad multi-prefix":  func(p *Params) { p.Extensions = []Extension{{Type: ExtMultiPrefix, Data: make([]byte, 5)}} },
		"two multi-prefix": func(p *Params) {
			p.Extensions = []Extension{{Type: ExtMultiPrefix, Data: make([]byte, 12)}, {Type: ExtMultiPrefix, Data: make([]byte, 12)}}
		},
	} {
		p := *good
		mod(&p)
		if _, err := p.Marshal(); err == nil {
			t.Errorf("%s: Marshal succeeded", name)
		}
	}
	if _, err := (MultiPrefix{}).Extension(); !errors.Is(err, ErrBadPrefix) {
		t.Errorf("empty multi-prefix: %v", err)
	}
}

// The multi-prefix extension encodes as RFC 5535 §5 and §6 step 1 say:
// Ext Len = 4 + 8n, P flag in the top bit.
func TestMultiPrefixEncoding(t *testing.T) {
	m := MultiPrefix{PublicKey: true, Prefixes: []netip.Prefix{
		netip.MustParsePrefix("2001:db8:cafe:1::/64"), netip.MustParsePrefix("2001:db8:beef:1::/64")}}
	e, err := m.Extension()
	if err != nil {
		t.Fatal(err)
	}
	p := Params{SubnetPrefix: m.Prefixes[1], Extensions: []Extension{e}}
	ref := mustRead(t, "testdata/interop/hbacga-2prefix-sec1.params")
	rp, _ := Parse(ref)
	p.Modifier, p.PublicKey = rp.Modifier, rp.PublicKey
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Identical except the P flag word: ours is RFC 5535 §5 (80 00 00 00),
	// the interop vector's is 00 00 00 80 (see TestParseFields).
	word := len(ref) - 2*8 - 4
	if !bytes.Equal(out[:word], ref[:word]) || !bytes.Equal(out[word+4:], ref[word+4:]) {
		t.Errorf("built parameters differ from the interop vector\n%x\n%x", out, ref)
	}
	if got := binary.BigEndian.Uint32(out[word:]); got != 0x80000000 {
		t.Errorf("P flag word %08x, want 80000000", got)
	}
}
