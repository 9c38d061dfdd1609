// Package cga implements Cryptographically Generated Addresses (RFC 3972,
// with the extension format of RFC 4581 and the Sec registry of RFC 4982),
// Hash-Based Addresses (RFC 5535) and the Shim6 CGA Signature
// (RFC 5533 §5.15.5). It is what lets Shim6 trust a peer's locators.
//
// # Parameters
//
// A CGA Parameters data structure (the content of the Shim6 CGA Parameter
// Data Structure option, RFC 5533 §5.15.4) travels as bytes. Parse decodes
// it strictly into Params (modifier, subnet prefix, collision count, DER
// SubjectPublicKeyInfo, RFC 4581 extensions, unknown ones kept byte for
// byte); Params.Marshal encodes it back. The HBA multi-prefix extension
// (type 0x0012) is MultiPrefix.
//
// # Verification
//
// NewVerifier parses parameters once and computes Hash2 (independent of the
// subnet prefix); its Verify method then checks one address with at most one
// SHA-1, none when that /64 was seen before, and no allocation. Verify
// accepts a CGA (RFC 3972 §5) and any member of an HBA set (RFC 5535 §7.2:
// a /64 listed in the multi-prefix extension replaces the subnet prefix);
// VerifyCGA and VerifyHBA are the strict forms for the Shim6 verification
// methods CGA (2) and HBA (1). Failures are *VerifyError, naming the RFC 3972
// §5 step, and wrap sentinels (ErrCollisionCount, ErrPrefixMismatch,
// ErrHash1Mismatch, ErrUnsupportedSec, ErrHash2). The package-level Verify
// is the one-shot form.
//
// Sec 0, 1 and 2 are generated and accepted; Sec 3-7, for which RFC 4982
// registers no algorithm, are refused with ErrUnsupportedSec (see
// SPEC-NOTES.md: RFC 3972 asked verifiers to accept them).
//
// # Generation
//
// Generate makes a CGA, GenerateHBA an HBA set (with a random 384-bit
// pseudo-key, or with a real key for a CGA-compatible set). The Hash2 search
// runs on Options.Workers goroutines (all cores by default), stops when its
// context is cancelled, reports Progress, and returns the modifier that the
// sequential algorithm of RFC 3972 §4 would find from the same initial
// modifier, whatever the number of workers.
//
// # Signatures and keys
//
// SignLocators and VerifyLocators (or Verifier.VerifyLocatorSignature,
// which takes the key from the parameters) make and check the Shim6 CGA
// Signature: RSASSA-PKCS1-v1_5 with SHA-1 over Shim6Tag, the Locator List
// Generation and the CGA-verified locators in list order.
// Verifier.VerifyLocatorList checks a whole Locator List (HBA members,
// inconsistent or unknown methods, the signature over the CGA subset) and
// reports the failing index (*LocatorError). RSA keys below
// 1024 bits are refused (RFC 5533 §16). LoadPrivateKey reads PEM PKCS#1 or
// PKCS#8; SavePrivateKey writes PKCS#8 to a new 0600 file.
package cga
