package cga

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
)

// Verification methods of the Shim6 Locator List option (RFC 5533
// §5.15.2, Table 4; SPEC-NOTES.md: 1 = HBA, 2 = CGA).
const (
	MethodHBA uint8 = 1
	MethodCGA uint8 = 2
)

var (
	// ErrUnknownMethod: a verification method other than HBA or CGA.
	ErrUnknownMethod = errors.New("cga: unsupported verification method")
	// ErrNoSignature: CGA-verified locators without a CGA Signature option.
	ErrNoSignature = errors.New("cga: locators use the CGA method but there is no signature")
)

// LocatorError says which entry of a Locator List failed (RFC 5533 §7.2:
// the Error message's Pointer refers to its verification method octet).
// Index is -1 when the signature, not one locator, failed.
type LocatorError struct {
	Index   int
	Locator netip.Addr
	Method  uint8
	Err     error
}

func (e *LocatorError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("locator list signature: %v", e.Err)
	}
	return fmt.Sprintf("locator %d (%v, method %d): %v", e.Index, e.Locator, e.Method, e.Err)
}

func (e *LocatorError) Unwrap() error { return e.Err }

// CGALocators returns the locators whose method is CGA, in list order: the
// ones the CGA Signature option covers (RFC 5533 §5.15.5).
func CGALocators(locators []netip.Addr, methods []uint8) []netip.Addr {
	var out []netip.Addr
	for i, l := range locators {
		if i < len(methods) && methods[i] == MethodCGA {
			out = append(out, l)
		}
	}
	return out
}

// SignLocatorList makes the CGA Signature for a Locator List, or returns
// nil when no locator uses the CGA method (no option is needed then).
func SignLocatorList(key *rsa.PrivateKey, generation uint32, locators []netip.Addr, methods []uint8) ([]byte, error) {
	if len(methods) != len(locators) {
		return nil, fmt.Errorf("%w: %d methods for %d locators", ErrMalformed, len(methods), len(locators))
	}
	c := CGALocators(locators, methods)
	if len(c) == 0 {
		return nil, nil
	}
	return SignLocators(key, generation, c)
}

// VerifyLocatorList checks a peer's Locator List against its parameters
// (RFC 5533 §7.2): every HBA locator must be a member of the HBA set, and
// when some locators use the CGA method, sig (the CGA Signature option's
// content, or nil if absent) must sign them with the key of the
// parameters. Methods inconsistent with the parameters (HBA without a
// multi-prefix extension, CGA without an RSA key) and unknown methods
// fail. The first failure is returned as a *LocatorError. The caller must
// also verify the peer's ULID against the same parameters (Verify).
func (v *Verifier) VerifyLocatorList(generation uint32, locators []netip.Addr, methods []uint8, sig []byte) error {
	if len(methods) != len(locators) {
		return fmt.Errorf("%w: %d methods for %d locators", ErrMalformed, len(methods), len(locators))
	}
	firstCGA := -1
	for i, l := range locators {
		switch methods[i] {
		case MethodHBA:
			if err := v.VerifyHBA(l); err != nil {
				return &LocatorError{Index: i, Locator: l, Method: methods[i], Err: err}
			}
		case MethodCGA:
			if firstCGA < 0 {
				firstCGA = i
				if _, err := v.PublicKey(); err != nil {
					return &LocatorError{Index: i, Locator: l, Method: methods[i], Err: err}
				}
			}
		default:
			return &LocatorError{Index: i, Locator: l, Method: methods[i], Err: ErrUnknownMethod}
		}
	}
	if firstCGA < 0 {
		return nil
	}
	if sig == nil {
		return &LocatorError{Index: -1, Err: ErrNoSignature}
	}
	if err := v.VerifyLocatorSignature(generation, CGALocators(locators, methods), sig); err != nil {
		return &LocatorError{Index: -1, Err: err}
	}
	return nil
}
