package engine

import (
	"crypto"
	"errors"
	"net/netip"
)

// defaultVerifier implements verifier with package cga.
type defaultVerifier struct{}

func (defaultVerifier) PDSMatches(ulid netip.Addr, pds []byte) bool { return false }
func (defaultVerifier) HasMultiPrefix(pds []byte) bool              { return false }
func (defaultVerifier) InHBASet(loc netip.Addr, pds []byte) bool    { return false }
func (defaultVerifier) VerifySignature(pds []byte, gen uint32, locs []netip.Addr, sig []byte) bool {
	return false
}
func (defaultVerifier) Sign(key crypto.Signer, gen uint32, locs []netip.Addr) ([]byte, error) {
	return nil, errors.New("engine: CGA signatures not available")
}
