package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"net/netip"
	"time"
)

// Responder validators (RFC 5533 §7.10.1, §7.17.1). The responder keeps no
// per-initiator state before a valid I2/I2bis: the Responder Nonce is a
// counter C that advances every ValidatorMinLifetime, and each counter value
// has its own random secret S. The validator is HMAC-SHA-256(S, inputs)
// truncated to validatorLen octets. Secrets rotate lazily when used; the
// current and the previous secret are accepted, so a nonce stays valid for
// at least ValidatorMinLifetime and at most twice that (RFC 5533 §7.13: "no
// older than VALIDATOR_MIN_LIFETIME SHOULD be considered recent"), and an
// I2 replayed later than that is refused.

const validatorLen = 16

// Domain separation between the two kinds of validators.
const (
	valKindR1    byte = 1
	valKindR1bis byte = 2
)

type validatorSecret struct {
	epoch uint32
	mac   hash.Hash
}

type validators struct {
	rand   *randSource
	period time.Duration
	cur    validatorSecret
	prev   validatorSecret
	start  int64 // when cur became current
	// hasPrev: prev became stale less than one period ago.
	hasPrev bool
	buf     [128]byte
	sum     [sha256.Size]byte
}

func newValidators(r *randSource) *validators {
	v := &validators{rand: r, period: ValidatorMinLifetime}
	v.cur = v.newSecret(r.uint32())
	return v
}

func (v *validators) newSecret(epoch uint32) validatorSecret {
	var key [32]byte
	v.rand.read(key[:])
	return validatorSecret{epoch: epoch, mac: hmac.New(sha256.New, key[:])}
}

// rotate advances the counter when the current secret is older than one
// period.
func (v *validators) rotate(now time.Time) {
	if v.start == 0 {
		v.start = ns(now)
		return
	}
	age := ns(now) - v.start
	if age < int64(v.period) {
		return
	}
	if age < 2*int64(v.period) {
		v.prev = v.cur
		v.hasPrev = true
	} else {
		v.prev = validatorSecret{}
		v.hasPrev = false
	}
	v.cur = v.newSecret(v.cur.epoch + 1)
	v.start = ns(now)
}

func (v *validators) secretFor(nonce uint32) hash.Hash {
	switch {
	case nonce == v.cur.epoch:
		return v.cur.mac
	case v.hasPrev && nonce == v.prev.epoch:
		return v.prev.mac
	}
	return nil
}

func appendAddr(b []byte, a netip.Addr) []byte {
	s := a.As16()
	return append(b, s[:]...)
}

// r1Input is the validator input of RFC 5533 §7.10.1 (without the
// Initiator Nonce, see SPEC-NOTES.md): Responder Nonce, Initiator Context
// Tag, the ULIDs, the locators and the FII.
func (v *validators) r1Input(nonce uint32, ctag uint64, respULID, initULID, respLoc, initLoc netip.Addr, fii uint32, hasFII bool) []byte {
	b := v.buf[:0]
	b = append(b, valKindR1)
	b = binary.BigEndian.AppendUint32(b, nonce)
	b = binary.BigEndian.AppendUint64(b, ctag)
	b = appendAddr(b, respULID)
	b = appendAddr(b, initULID)
	b = appendAddr(b, respLoc)
	b = appendAddr(b, initLoc)
	if hasFII {
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, fii)
	}
	return b
}

// r1bisInput is the validator input of RFC 5533 §7.17.1: Responder Nonce,
// the Receiver Context Tag of the triggering packet and its locators.
func (v *validators) r1bisInput(nonce uint32, ptag uint64, respLoc, initLoc netip.Addr) []byte {
	b := v.buf[:0]
	b = append(b, valKindR1bis)
	b = binary.BigEndian.AppendUint32(b, nonce)
	b = binary.BigEndian.AppendUint64(b, ptag)
	b = appendAddr(b, respLoc)
	b = appendAddr(b, initLoc)
	return b
}

func (v *validators) mac(h hash.Hash, in []byte, out []byte) {
	h.Reset()
	h.Write(in)
	sum := h.Sum(v.sum[:0])
	copy(out, sum[:validatorLen])
}

// make computes the validator for in under the current secret; in must
// have been built with nonce = v.nonce(now).
func (v *validators) make(in []byte, out *[validatorLen]byte) {
	v.mac(v.cur.mac, in, out[:])
}

// nonce returns the current Responder Nonce (the counter C).
func (v *validators) nonce(now time.Time) uint32 {
	v.rotate(now)
	return v.cur.epoch
}

// check verifies got against the validator of in for nonce.
func (v *validators) check(now time.Time, nonce uint32, in []byte, got []byte) bool {
	v.rotate(now)
	h := v.secretFor(nonce)
	if h == nil || len(got) != validatorLen {
		return false
	}
	var want [validatorLen]byte
	v.mac(h, in, want[:])
	return subtle.ConstantTimeCompare(want[:], got) == 1
}
