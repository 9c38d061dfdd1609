package cga

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Shim6Tag is the 128-bit CGA Message Type tag of Shim6 (RFC 5533 §5.15.5,
// §17).
var Shim6Tag = [16]byte{0x4A, 0x30, 0x56, 0x62, 0x48, 0x58, 0x57, 0x4B, 0x36, 0x55, 0x41, 0x6F, 0x50, 0x6A, 0x6D, 0x48}

// Sign makes a CGA signature (RFC 3972 §6): RSASSA-PKCS1-v1_5 with SHA-1
// over the 128-bit type tag followed by msg. Keys below MinRSABits are
// refused.
func Sign(key *rsa.PrivateKey, tag [16]byte, msg []byte) ([]byte, error) {
	if err := CheckRSAKey(&key.PublicKey); err != nil {
		return nil, err
	}
	h := sha1.New()
	h.Write(tag[:])
	h.Write(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA1, h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("cga: sign: %w", err)
	}
	return sig, nil
}

// VerifySignature checks a CGA signature (RFC 3972 §6) made by Sign. It
// does not verify the CGA itself; (*Verifier).VerifyLocatorSignature does
// both. Keys below MinRSABits are refused.
func VerifySignature(pub *rsa.PublicKey, tag [16]byte, msg, sig []byte) error {
	if err := CheckRSAKey(pub); err != nil {
		return err
	}
	var in [16 + 4 + 16*16]byte
	b := append(append(in[:0], tag[:]...), msg...)
	d := sha1.Sum(b)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA1, d[:], sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// LocatorMessage returns what the Shim6 CGA Signature option signs after
// the tag (RFC 5533 §5.15.5): the Locator List Generation, then the
// locators whose verification method is CGA, in list order.
func LocatorMessage(generation uint32, cgaLocators []netip.Addr) []byte {
	b := make([]byte, 4, 4+16*len(cgaLocators))
	binary.BigEndian.PutUint32(b, generation)
	for _, l := range cgaLocators {
		a := l.As16()
		b = append(b, a[:]...)
	}
	return b
}

// SignLocators makes the content of a Shim6 CGA Signature option
// (RFC 5533 §5.15.5). cgaLocators are the locators of the Locator List
// option whose verification method is CGA, in the order of the list.
func SignLocators(key *rsa.PrivateKey, generation uint32, cgaLocators []netip.Addr) ([]byte, error) {
	return Sign(key, Shim6Tag, LocatorMessage(generation, cgaLocators))
}

// VerifyLocators checks a Shim6 CGA Signature option against pub
// (RFC 5533 §5.15.5). The option's padding must already be removed: sig is
// exactly as long as pub's modulus.
func VerifyLocators(pub *rsa.PublicKey, generation uint32, cgaLocators []netip.Addr, sig []byte) error {
	return VerifySignature(pub, Shim6Tag, LocatorMessage(generation, cgaLocators), sig)
}

// PublicKey returns the RSA public key of the parameters, parsed once. It
// fails with ErrNotRSA for an HBA pseudo-key and ErrKeyTooSmall below
// MinRSABits.
func (v *Verifier) PublicKey() (*rsa.PublicKey, error) {
	v.pubOnce.Do(func() {
		v.pub, v.pubErr = ParsePublicKey(v.params.PublicKey)
		if v.pubErr == nil {
			v.pubErr = CheckRSAKey(v.pub)
		}
	})
	return v.pub, v.pubErr
}

// VerifyLocatorSignature checks a Shim6 CGA Signature option with the
// public key of these parameters (RFC 5533 §5.15.5, RFC 3972 §6). The
// caller must also have verified the peer's ULID with VerifyCGA or Verify
// (RFC 3972 §6: accept only if both succeed).
func (v *Verifier) VerifyLocatorSignature(generation uint32, cgaLocators []netip.Addr, sig []byte) error {
	pub, err := v.PublicKey()
	if err != nil {
		return err
	}
	return VerifyLocators(pub, generation, cgaLocators, sig)
}
