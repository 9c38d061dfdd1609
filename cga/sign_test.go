package cga

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func testKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	k, err := LoadPrivateKey(filepath.Join("testdata/interop", name))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var locs = []netip.Addr{
	netip.MustParseAddr("2001:db8:cafe:1:348a:a548:2250:603a"),
	netip.MustParseAddr("2001:db8:beef:1:28a1:ce37:de7c:51c2"),
	netip.MustParseAddr("2001:db8:77::1"),
}

// The signed octets are exactly RFC 5533 §5.15.5: tag, generation, locators.
func TestLocatorMessage(t *testing.T) {
	if want := []byte{0x4a, 0x30, 0x56, 0x62, 0x48, 0x58, 0x57, 0x4b, 0x36, 0x55, 0x41, 0x6f, 0x50, 0x6a, 0x6d, 0x48}; !bytes.Equal(Shim6Tag[:], want) {
		t.Fatalf("tag %x", Shim6Tag)
	}
	m := LocatorMessage(0x01020304, locs[:2])
	want := append([]byte{1, 2, 3, 4}, locs[0].AsSlice()...)
	want = append(want, locs[1].AsSlice()...)
	if !bytes.Equal(m, want) {
		t.Errorf("message %x, want %x", m, want)
	}
	// The signature is plain PKCS#1 v1.5 SHA-1 over tag | message: check it
	// with the standard library directly.
	k := testKey(t, "key1024.pem")
	sig, err := SignLocators(k, 0x01020304, locs[:2])
	if err != nil {
		t.Fatal(err)
	}
	d := sha1.Sum(append(Shim6Tag[:], want...))
	if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA1, d[:], sig); err != nil {
		t.Errorf("not RSASSA-PKCS1-v1_5/SHA-1 over tag|generation|locators: %v", err)
	}
}

func TestSignVerifyAndTamper(t *testing.T) {
	for _, name := range []string{"key1024.pem", "key2048.pem"} {
		k := testKey(t, name)
		const gen = 42
		sig, err := SignLocators(k, gen, locs)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != k.Size() {
			t.Errorf("%s: signature of %d octets", name, len(sig))
		}
		if err := VerifyLocators(&k.PublicKey, gen, locs, sig); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bad := func(what string, g uint32, l []netip.Addr, s []byte) {
			t.Helper()
			if err := VerifyLocators(&k.PublicKey, g, l, s); !errors.Is(err, ErrSignature) {
				t.Errorf("%s: %s: %v, want ErrSignature", name, what, err)
			}
		}
		bad("generation+1", gen+1, locs, sig)
		bad("fewer locators", gen, locs[:2], sig)
		bad("no locators", gen, nil, sig)
		bad("reordered", gen, []netip.Addr{locs[1], locs[0], locs[2]}, sig)
		l2 := bytes.Clone(locs[2].AsSlice())
		l2[15] ^= 1
		bad("locator bit", gen, []netip.Addr{locs[0], locs[1], netip.AddrFrom16([16]byte(l2))}, sig)
		for i := range sig {
			s := bytes.Clone(sig)
			s[i] ^= 0x10
			bad("signature byte", gen, locs, s)
		}
		bad("truncated", gen, locs, sig[:len(sig)-1])
		bad("padded", gen, locs, append(bytes.Clone(sig), 0))
		// Another key's signature.
		other := testKey(t, map[string]string{"key1024.pem": "key2048.pem", "key2048.pem": "key1024.pem"}[name])
		osig, _ := SignLocators(other, gen, locs)
		bad("other key", gen, locs, osig)
		// A different tag is a different message (RFC 3972 §6).
		tsig, _ := Sign(k, [16]byte{1}, LocatorMessage(gen, locs))
		bad("other tag", gen, locs, tsig)
	}
}

// With the parameters of a CGA-compatible HBA set (a real key), the
// verifier takes the key from the parameters; with a pseudo-key it refuses.
func TestVerifierLocatorSignature(t *testing.T) {
	k := testKey(t, "key1024.pem")
	v, err := NewVerifier(mustRead(t, "testdata/interop/hbacga-2prefix-sec1.params"))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := SignLocators(k, 3, locs)
	if err := v.VerifyLocatorSignature(3, locs, sig); err != nil {
		t.Error(err)
	}
	if err := v.VerifyLocatorSignature(4, locs, sig); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong generation: %v", err)
	}
	k2 := testKey(t, "key2048.pem")
	v2, _ := NewVerifier(mustRead(t, "testdata/interop/cga-sec1-rsa2048.params"))
	sig2, _ := SignLocators(k2, 3, locs)
	if err := v2.VerifyLocatorSignature(3, locs, sig2); err != nil {
		t.Error(err)
	}
	if err := v2.VerifyLocatorSignature(3, locs, sig); !errors.Is(err, ErrSignature) {
		t.Errorf("key1024 signature under key2048 parameters: %v", err)
	}
	pv, _ := NewVerifier(mustRead(t, "testdata/interop/hba-2prefix-sec1.params"))
	if err := pv.VerifyLocatorSignature(3, locs, sig); !errors.Is(err, ErrNotRSA) {
		t.Errorf("pseudo-key: %v", err)
	}
	// RFC 3972 appendix A's 512-bit key verifies as an address but cannot
	// verify a Shim6 signature (RFC 5533 §16).
	av, _ := NewVerifier(mustRead(t, "testdata/interop/rfc3972-appendix-a.params"))
	if err := av.VerifyLocatorSignature(3, locs, sig); !errors.Is(err, ErrKeyTooSmall) {
		t.Errorf("512-bit key: %v", err)
	}
}

func TestSmallKeysRefused(t *testing.T) {
	small := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 1000), E: 65537}}
	if _, err := SignLocators(small, 1, locs); !errors.Is(err, ErrKeyTooSmall) {
		t.Errorf("sign with 1001-bit key: %v", err)
	}
	if err := VerifyLocators(&small.PublicKey, 1, locs, make([]byte, 126)); !errors.Is(err, ErrKeyTooSmall) {
		t.Errorf("verify with 1001-bit key: %v", err)
	}
	if _, err := GenerateKey(nil, 768); !errors.Is(err, ErrKeyTooSmall) {
		t.Errorf("GenerateKey 768: %v", err)
	}
	if err := CheckRSAKey(nil); !errors.Is(err, ErrNotRSA) {
		t.Errorf("nil key: %v", err)
	}
	// A PEM file holding a 512-bit key is refused on load.
	der := x509.MarshalPKCS1PrivateKey(&rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 511), E: 3}, D: big.NewInt(3), Primes: []*big.Int{big.NewInt(5), big.NewInt(7)}})
	if _, err := ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("512-bit PEM key accepted")
	}
}

func TestKeyFiles(t *testing.T) {
	k := testKey(t, "key1024.pem")
	dir := t.TempDir()
	// PKCS#8 written, 0600, refuses to overwrite.
	p8 := filepath.Join(dir, "k8.pem")
	if err := SavePrivateKey(p8, k); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p8); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(p8); !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("not PKCS#8 PEM: %.40s", b)
	}
	if err := SavePrivateKey(p8, k); err == nil {
		t.Error("overwrote an existing key file")
	}
	k8, err := LoadPrivateKey(p8)
	if err != nil || !k8.Equal(k) {
		t.Errorf("PKCS#8 round trip: %v", err)
	}
	// PKCS#1 read.
	p1 := filepath.Join(dir, "k1.pem")
	os.WriteFile(p1, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600)
	if k1, err := LoadPrivateKey(p1); err != nil || !k1.Equal(k) {
		t.Errorf("PKCS#1: %v", err)
	}
	// A leading non-key block is skipped.
	mixed := append([]byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"), mustRead(t, p8)...)
	if km, err := ParsePrivateKeyPEM(mixed); err != nil || !km.Equal(k) {
		t.Errorf("key after another block: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":       nil,
		"garbage":     []byte("not a key"),
		"bad PKCS#8":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"bad PKCS#1":  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"encrypted":   pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"legacy enc.": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}}),
	} {
		if _, err := ParsePrivateKeyPEM(b); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadPrivateKey(filepath.Join(dir, "missing")); !errors.Is(err, ErrBadKeyFile) {
		t.Errorf("missing file: %v", err)
	}
	// The interop parameters hold exactly this key.
	pub, _ := MarshalPublicKey(&k.PublicKey)
	p, _ := Parse(mustRead(t, "testdata/interop/cga-sec1-rsa1024.params"))
	if !bytes.Equal(pub, p.PublicKey) {
		t.Error("MarshalPublicKey differs from the interop encoding")
	}
}
