package engine

import (
	"bytes"
	"errors"
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/wire"
)

// Locator verification (RFC 5533 §7.2) with package cga: HBA (RFC 5535)
// and CGA (RFC 3972) with the Shim6 CGA signature (RFC 5533 §5.15.5).

// pdsEntry is an interned peer PDS with its cga.Verifier (which caches
// Hash1 per prefix): contexts with the same peer identity share one.
type pdsEntry struct {
	v    *cga.Verifier
	refs int
}

func (p *pdsEntry) bytes() []byte { return p.v.Bytes() }

// verifierFor returns the verifier of pds: the interned one, the last one
// built, or a new one.
func (e *Engine) verifierFor(pds []byte) (*cga.Verifier, error) {
	if p := e.pds[string(pds)]; p != nil {
		return p.v, nil
	}
	if e.lastVer != nil && bytes.Equal(e.lastVer.Bytes(), pds) {
		return e.lastVer, nil
	}
	v, err := cga.NewVerifier(pds)
	if err != nil {
		return nil, err
	}
	e.lastVer = v
	return v, nil
}

func (e *Engine) setPeerPDS(c *Context, b []byte) {
	if c.peerPDS != nil && bytes.Equal(c.peerPDS.bytes(), b) {
		return
	}
	v, err := e.verifierFor(b)
	if err != nil {
		return // checked before; cannot happen
	}
	e.releasePDS(c)
	p := e.pds[string(b)]
	if p == nil {
		p = &pdsEntry{v: v}
		e.pds[string(v.Bytes())] = p
	}
	p.refs++
	c.peerPDS = p
}

func (e *Engine) releasePDS(c *Context) {
	p := c.peerPDS
	if p == nil {
		return
	}
	c.peerPDS = nil
	if p.refs--; p.refs <= 0 {
		delete(e.pds, string(p.bytes()))
	}
}

// errVerify is returned by verifyLocators with the Error code to send
// (RFC 5533 §7.2: SHOULD send Error code 2) and the locator it is about
// (-1: the number of locators).
type errVerify struct {
	code  uint8
	index int
}

func (e *errVerify) Error() string { return "locator verification failed" }

// pointer returns the Error Pointer of ev in the message raw.
func (ev *errVerify) pointer(raw []byte) int {
	if ev.index >= 0 {
		if off, ok := wire.LocatorMethodOffset(raw, ev.index); ok {
			return off
		}
	}
	if off, ok := wire.OptionOffset(raw, wire.OptLocatorList); ok {
		return off + 8 // Num Locators
	}
	return 0
}

var errPDSMismatch = errors.New("PDS does not belong to the peer ULID")

// checkPDS enforces RFC 5533 §7.13, §7.16, §7.20, §10.4: a PDS in the
// message MUST correspond to ULID(peer).
func (e *Engine) checkPDS(peerULID netip.Addr, m *message) error {
	if len(m.pds) == 0 || e.cfg.Insecure {
		return nil
	}
	v, err := e.verifierFor(m.pds)
	if err == nil {
		err = v.Verify(peerULID)
	}
	if err != nil {
		e.stats.VerificationFailures++
		return errPDSMismatch
	}
	return nil
}

// verifyLocators checks the Locator List of m for the peer with ULID
// peerULID (RFC 5533 §7.2). stored is the peer's PDS received earlier,
// used when m carries none. It returns Ls(peer) with a verified flag per
// locator; a locator that fails HBA is kept, visible, but never selected.
// An unsupported or inconsistent verification method, a bad CGA signature
// or too many locators fail the whole list: the message MUST be ignored.
func (e *Engine) verifyLocators(now time.Time, c *Context, peerULID netip.Addr, m *message, stored *pdsEntry) ([]peerLocator, error) {
	if len(m.locs) > e.cfg.MaxPeerLocators {
		return nil, &errVerify{code: ErrCodeNumberOfLocators, index: -1}
	}
	var v *cga.Verifier
	switch {
	case len(m.pds) > 0:
		v, _ = e.verifierFor(m.pds) // checkPDS accepted it
	case stored != nil:
		v = stored.v
	}
	out := make([]peerLocator, 0, len(m.locs))
	// RFC 5533 §5.15.5: the signature covers every CGA locator of the
	// list, in list order (duplicates included).
	var cgaLocs []netip.Addr
	cgaFirst := -1
	for i, l := range m.locs {
		if l.method == MethodCGA {
			if cgaFirst < 0 {
				cgaFirst = i
			}
			cgaLocs = append(cgaLocs, l.addr)
		}
	}
	for i, l := range m.locs {
		pl := peerLocator{addr: l.addr.WithZone(""), method: l.method}
		if dupLocator(out, pl.addr) {
			continue
		}
		ok := unicast6(pl.addr) && !pl.addr.IsLoopback()
		switch {
		case e.cfg.Insecure:
			pl.verified = ok
		case l.method == MethodHBA:
			// RFC 5533 §7.2: the method must be consistent with the
			// PDS: HBA needs the multi-prefix extension.
			if v == nil || !v.IsHBA() {
				return nil, &errVerify{code: ErrCodeVerification, index: i}
			}
			pl.verified = ok && (pl.addr == peerULID || v.VerifyHBA(pl.addr) == nil)
		case l.method == MethodCGA:
			if v == nil || len(m.sig) == 0 {
				return nil, &errVerify{code: ErrCodeVerification, index: i}
			}
			pl.verified = ok
		default:
			// RFC 5533 §7.2: an unsupported method: MUST ignore.
			return nil, &errVerify{code: ErrCodeVerification, index: i}
		}
		if !pl.verified {
			e.stats.VerificationFailures++
			e.emit(Event{Time: now, Kind: EventVerificationFailed, Peer: pl.addr, Reason: "locator does not verify against the peer's parameters"}, c)
		}
		out = append(out, pl)
	}
	if len(cgaLocs) > 0 && !e.cfg.Insecure {
		// RFC 5533 §5.15.5: the signature covers the generation and
		// the CGA locators in list order.
		if err := v.VerifyLocatorSignature(m.locGen, cgaLocs, m.sig); err != nil {
			e.stats.VerificationFailures++
			e.emit(Event{Time: now, Kind: EventVerificationFailed, Reason: "bad CGA signature"}, c)
			return nil, &errVerify{code: ErrCodeVerification, index: cgaFirst}
		}
	}
	return out, nil
}

func dupLocator(ls []peerLocator, a netip.Addr) bool {
	for i := range ls {
		if ls[i].addr == a {
			return true
		}
	}
	return false
}

// inList reports whether a is a verified member of ls.
func inList(ls []peerLocator, a netip.Addr) bool {
	for i := range ls {
		if ls[i].addr == a {
			return ls[i].verified
		}
	}
	return false
}
