package cga

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors. Every error returned by this package wraps one of these,
// so callers test them with errors.Is.
var (
	// ErrMalformed: the CGA Parameters data structure (or an extension in
	// it) is not well formed (RFC 3972 §3, RFC 4581 §2, RFC 5535 §5).
	ErrMalformed = errors.New("cga: malformed CGA parameters")
	// ErrNotIPv6: the address is not an IPv6 address.
	ErrNotIPv6 = errors.New("cga: not an IPv6 address")
	// ErrBadPrefix: a prefix given to the library is not an IPv6 /64.
	ErrBadPrefix = errors.New("cga: prefix is not an IPv6 /64")
	// ErrCollisionCount: RFC 3972 §5 step 1, collision count not 0, 1 or 2.
	ErrCollisionCount = errors.New("cga: collision count out of range")
	// ErrPrefixMismatch: RFC 3972 §5 step 2 (or RFC 5535 §7.2 step 1), the
	// address's /64 is neither the subnet prefix nor listed in the
	// multi-prefix extension.
	ErrPrefixMismatch = errors.New("cga: subnet prefix does not match")
	// ErrSubnetNotListed: RFC 5535 §7.2 substitution refused because the
	// subnet prefix field is not one of the listed prefixes (RFC 5535 §6
	// step 6.5 always makes it one). Wraps ErrPrefixMismatch.
	ErrSubnetNotListed = fmt.Errorf("%w: subnet prefix field is not listed in the multi-prefix extension", ErrPrefixMismatch)
	// ErrHash1Mismatch: RFC 3972 §5 steps 3-4, the interface identifier is
	// not Hash1 of the parameters.
	ErrHash1Mismatch = errors.New("cga: interface identifier does not match Hash1")
	// ErrUnsupportedSec: Sec 3-7 (RFC 4982 §6 registers only 0-2; see
	// SPEC-NOTES.md).
	ErrUnsupportedSec = errors.New("cga: unsupported Sec value (only 0, 1 and 2 are defined)")
	// ErrHash2: RFC 3972 §5 step 7, Hash2 lacks 16*Sec leading zero bits.
	ErrHash2 = errors.New("cga: Hash2 does not have 16*Sec leading zero bits")
	// ErrNoMultiPrefix: HBA verification was asked for parameters that carry
	// no multi-prefix extension (RFC 5533 §7.2 / RFC 5535 §7.2).
	ErrNoMultiPrefix = errors.New("cga: parameters have no multi-prefix extension")
	// ErrNotRSA: the public key is not a usable RSA public key (for
	// instance an HBA pseudo-key).
	ErrNotRSA = errors.New("cga: public key is not an RSA key")
	// ErrKeyTooSmall: RSA key shorter than MinRSABits (RFC 5533 §16).
	ErrKeyTooSmall = errors.New("cga: RSA key shorter than 1024 bits")
	// ErrSignature: the CGA signature does not verify.
	ErrSignature = errors.New("cga: signature verification failed")
	// ErrBadKeyFile: a key file could not be read as a PEM RSA private key.
	ErrBadKeyFile = errors.New("cga: bad private key file")
)

// VerifyError reports which step of RFC 3972 §5 (or RFC 5535 §7.2) failed
// for which address. It unwraps to one of the sentinel errors.
type VerifyError struct {
	Addr netip.Addr
	// Step is the RFC 3972 §5 step number that failed (1-7); 0 when the
	// failure is not a numbered step (address not IPv6).
	Step int
	Err  error
}

func (e *VerifyError) Error() string {
	if e.Step == 0 {
		return fmt.Sprintf("%v (%v)", e.Err, e.Addr)
	}
	return fmt.Sprintf("%v: %v fails RFC 3972 §5 step %d", e.Err, e.Addr, e.Step)
}

func (e *VerifyError) Unwrap() error { return e.Err }
