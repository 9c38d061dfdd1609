package cga

import (
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Masks of RFC 3972 §2: Mask1 keeps the interface identifier bits that
// Hash1 must match (Sec and the u and g bits are ignored).
const mask1 = 0x1cffffffffffffff

// Verify checks addr against the CGA Parameters data structure params:
// it succeeds when addr is a CGA of params (RFC 3972 §5) or a member of
// the HBA set that params describe (RFC 5535 §7.2). Errors are
// *VerifyError (wrapping ErrCollisionCount, ErrPrefixMismatch, ...) or wrap
// ErrMalformed. To verify several addresses against the same parameters,
// use NewVerifier once.
func Verify(addr netip.Addr, params []byte) error {
	v, err := NewVerifier(params)
	if err != nil {
		return err
	}
	return v.Verify(addr)
}

// Verifier holds one parsed CGA Parameters data structure and what can be
// computed once from it: Hash2 (which does not depend on the subnet prefix
// or collision count), Hash1 for each prefix already seen, and the RSA
// public key. It is immutable after NewVerifier and safe for concurrent use.
type Verifier struct {
	raw    []byte
	params *Params
	mp     *MultiPrefix
	// slots are the /64s whose Hash1 is cached: the multi-prefix
	// extension's prefixes, then the subnet prefix if it is not listed.
	slots []uint64
	h1    []h1Slot // Hash1 per slot, computed on first use
	// zeros is the number of leading zero bits of Hash2 (0..112).
	zeros int
	// subnetListed: the subnet prefix field is one of the listed prefixes,
	// as RFC 5535 §6 step 6.5 makes it; substitution requires it.
	subnetListed bool

	pubOnce sync.Once
	pub     *rsa.PublicKey
	pubErr  error
}

// NewVerifier parses params (copying them) and computes Hash2. It fails
// only if params are malformed.
func NewVerifier(params []byte) (*Verifier, error) {
	raw := append([]byte(nil), params...)
	p, mp, err := parse(raw)
	if err != nil {
		return nil, err
	}
	v := &Verifier{raw: raw, params: p, mp: mp}
	subnet := binary.BigEndian.Uint64(raw[offPrefix:])
	listed := false
	if mp != nil {
		v.slots = make([]uint64, 0, len(mp.Prefixes)+1)
		for _, q := range mp.Prefixes {
			x, _ := prefix64(q)
			v.slots = append(v.slots, x)
			listed = listed || x == subnet
		}
	}
	if !listed {
		v.slots = append(v.slots, subnet)
	}
	v.subnetListed = listed
	v.h1 = make([]h1Slot, len(v.slots))
	v.zeros = hash2Zeros(raw)
	return v, nil
}

// Params returns the parsed parameters. The caller must not modify them.
func (v *Verifier) Params() *Params { return v.params }

// Bytes returns the parameters as given to NewVerifier. The caller must not
// modify them.
func (v *Verifier) Bytes() []byte { return v.raw }

// MultiPrefix returns the multi-prefix extension, or nil for a plain CGA.
func (v *Verifier) MultiPrefix() *MultiPrefix { return v.mp }

// IsHBA reports whether the parameters describe an HBA set (they carry a
// multi-prefix extension).
func (v *Verifier) IsHBA() bool { return v.mp != nil }

// Verify succeeds when addr is a CGA of the parameters (RFC 3972 §5) or,
// when they carry a multi-prefix extension, a member of the HBA set
// (RFC 5535 §7.2: the address's /64 replaces the subnet prefix when it is
// listed). It computes at most one SHA-1 (none when this prefix was seen
// before) and does not allocate on success.
func (v *Verifier) Verify(addr netip.Addr) error {
	return v.verify(addr, true, true)
}

// VerifyCGA is strict RFC 3972 §5 verification: the address's /64 must be
// the subnet prefix field. Use it for a ULID verified by the CGA method.
func (v *Verifier) VerifyCGA(addr netip.Addr) error {
	return v.verify(addr, true, false)
}

// VerifyHBA is RFC 5535 §7.2 verification: the parameters must carry a
// multi-prefix extension and the address's /64 must be listed in it. Use it
// for a locator whose verification method is HBA (RFC 5533 §5.15.2).
func (v *Verifier) VerifyHBA(addr netip.Addr) error {
	if v.mp == nil {
		return &VerifyError{Addr: addr, Step: 0, Err: ErrNoMultiPrefix}
	}
	return v.verify(addr, false, true)
}

func (v *Verifier) verify(addr netip.Addr, allowSubnet, allowListed bool) error {
	if !addr.Is6() {
		return &VerifyError{Addr: addr, Err: ErrNotIPv6}
	}
	// RFC 3972 §5 step 1.
	if v.raw[offCC] > MaxCollisionCount {
		return &VerifyError{Addr: addr, Step: 1, Err: ErrCollisionCount}
	}
	a := addr.As16()
	pfx := binary.BigEndian.Uint64(a[:8])
	iid := binary.BigEndian.Uint64(a[8:])
	// RFC 3972 §5 step 2; RFC 5535 §7.2 step 1 (substitute a listed prefix).
	slot := -1
	if allowSubnet && pfx == binary.BigEndian.Uint64(v.raw[offPrefix:]) {
		slot = v.slotOf(pfx)
	} else if allowListed && v.mp != nil {
		if i := v.slotOf(pfx); i < len(v.mp.Prefixes) {
			if !v.subnetListed {
				// Not an RFC 5535 §6 HBA set: a conforming generator puts
				// one of the listed prefixes in the subnet prefix field.
				return &VerifyError{Addr: addr, Step: 2, Err: ErrSubnetNotListed}
			}
			slot = i
		}
	}
	if slot < 0 {
		return &VerifyError{Addr: addr, Step: 2, Err: ErrPrefixMismatch}
	}
	// RFC 3972 §5 steps 3-4.
	if v.hash1(slot)&mask1 != iid&mask1 {
		return &VerifyError{Addr: addr, Step: 4, Err: ErrHash1Mismatch}
	}
	// RFC 3972 §5 step 5; RFC 4982 §6 and SPEC-NOTES.md: only Sec 0-2.
	sec := int(iid >> 61)
	if sec > MaxSec {
		return &VerifyError{Addr: addr, Step: 5, Err: ErrUnsupportedSec}
	}
	// RFC 3972 §5 steps 6-7 (Hash2 was computed once in NewVerifier).
	if v.zeros < 16*sec {
		return &VerifyError{Addr: addr, Step: 7, Err: ErrHash2}
	}
	return nil
}

// slotOf returns the cache slot of a /64, or len(v.slots) when it has none.
func (v *Verifier) slotOf(pfx uint64) int {
	for i, s := range v.slots {
		if s == pfx {
			return i
		}
	}
	return len(v.slots)
}

// hash1 returns Hash1 (RFC 3972 §3) of the parameters with slot i's prefix
// in the subnet prefix field, computing it once.
func (v *Verifier) hash1(i int) uint64 {
	c := &v.h1[i]
	if c.ok.Load() {
		return c.v.Load()
	}
	// Concurrent first uses may both compute it; they store the same value.
	h := hash1With(v.raw, v.slots[i])
	c.v.Store(h)
	c.ok.Store(true)
	return h
}

type h1Slot struct {
	v  atomic.Uint64
	ok atomic.Bool
}

// hash1With is the leftmost 64 bits of SHA-1 over raw with its subnet
// prefix field replaced by pfx.
func hash1With(raw []byte, pfx uint64) uint64 {
	var stack [512]byte
	b := scratch(&stack, raw)
	binary.BigEndian.PutUint64(b[offPrefix:], pfx)
	s := sha1.Sum(b)
	return binary.BigEndian.Uint64(s[:8])
}

// scratch returns a copy of raw, in stack when it fits.
func scratch(stack *[512]byte, raw []byte) []byte {
	var b []byte
	if len(raw) <= len(stack) {
		b = stack[:len(raw)]
	} else {
		b = make([]byte, len(raw))
	}
	copy(b, raw)
	return b
}

// hash2Zeros returns the number of leading zero bits of Hash2 (RFC 3972
// §3: SHA-1 over the parameters with subnet prefix and collision count set
// to zero, truncated to 112 bits).
func hash2Zeros(raw []byte) int {
	var stack [512]byte
	b := scratch(&stack, raw)
	clear(b[offPrefix:fixedLen])
	s := sha1.Sum(b)
	return leadingZeros112(&s)
}

func leadingZeros112(s *[20]byte) int {
	hi := binary.BigEndian.Uint64(s[:8])
	if hi != 0 {
		return bits.LeadingZeros64(hi)
	}
	lo := binary.BigEndian.Uint64(s[6:14]) << 16 // bits 64..111
	if lo != 0 {
		return 64 + bits.LeadingZeros64(lo)
	}
	return 112
}

// Address returns the address with interface identifier Hash1 of the
// parameters for the /64 prefix (the subnet prefix field or one listed in
// the multi-prefix extension) and the given Sec (RFC 3972 §4 steps 5-7,
// RFC 5535 §6 step 6). It fails if the prefix does not belong to the
// parameters or Hash2 does not satisfy sec.
func (v *Verifier) Address(prefix netip.Prefix, sec int) (netip.Addr, error) {
	pfx, err := prefix64(prefix)
	if err != nil {
		return netip.Addr{}, err
	}
	if sec < 0 || sec > MaxSec {
		return netip.Addr{}, fmt.Errorf("%w: %d", ErrUnsupportedSec, sec)
	}
	if v.zeros < 16*sec {
		return netip.Addr{}, fmt.Errorf("%w: Sec %d", ErrHash2, sec)
	}
	i := v.slotOf(pfx)
	if i == len(v.slots) {
		return netip.Addr{}, fmt.Errorf("%w: %v is not a prefix of these parameters", ErrPrefixMismatch, prefix)
	}
	return addrFrom(pfx, v.hash1(i), sec), nil
}

// addrFrom forms the address from prefix and Hash1: Sec in the three
// leftmost bits, u and g bits cleared (RFC 3972 §4 step 6).
func addrFrom(pfx, h1 uint64, sec int) netip.Addr {
	iid := h1&mask1 | uint64(sec)<<61
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], pfx)
	binary.BigEndian.PutUint64(a[8:], iid)
	return netip.AddrFrom16(a)
}
