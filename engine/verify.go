package engine

import (
	"crypto"
	"errors"
	"net/netip"
	"time"
)

// verifier is the engine's view of package cga: HBA (RFC 5535) and CGA
// (RFC 3972) checks and the Shim6 CGA signature (RFC 5533 §5.15.5).
type verifier interface {
	// PDSMatches reports whether pds is the parameter data structure of
	// ulid: ulid is the CGA of pds, or a member of the HBA set of pds
	// (RFC 5533 §7.13, §7.16, §10.4).
	PDSMatches(ulid netip.Addr, pds []byte) bool
	// HasMultiPrefix reports whether pds carries the HBA multi-prefix
	// extension (RFC 5535 §3.1).
	HasMultiPrefix(pds []byte) bool
	// InHBASet reports whether loc belongs to the HBA set of pds
	// (RFC 5535 §5).
	InHBASet(loc netip.Addr, pds []byte) bool
	// VerifySignature checks a CGA Signature option over gen and the
	// CGA-verified locators, in list order (RFC 5533 §5.15.5), with the
	// public key of pds.
	VerifySignature(pds []byte, gen uint32, locs []netip.Addr, sig []byte) bool
	// Sign makes that signature.
	Sign(key crypto.Signer, gen uint32, locs []netip.Addr) ([]byte, error)
}

// pdsEntry is an interned peer PDS: contexts with the same peer identity
// share one copy.
type pdsEntry struct {
	b    []byte
	refs int
}

func (e *Engine) internPDS(b []byte) *pdsEntry {
	if p := e.pds[string(b)]; p != nil {
		p.refs++
		return p
	}
	p := &pdsEntry{b: append([]byte(nil), b...), refs: 1}
	e.pds[string(p.b)] = p
	return p
}

func (e *Engine) setPeerPDS(c *Context, b []byte) {
	if c.peerPDS != nil && string(c.peerPDS.b) == string(b) {
		return
	}
	e.releasePDS(c)
	c.peerPDS = e.internPDS(b)
}

func (e *Engine) releasePDS(c *Context) {
	p := c.peerPDS
	if p == nil {
		return
	}
	c.peerPDS = nil
	if p.refs--; p.refs <= 0 {
		delete(e.pds, string(p.b))
	}
}

// errVerify is returned by verifyLocators with the Error code and Pointer
// to send (RFC 5533 §7.2: SHOULD send Error code 2).
type errVerify struct {
	code    uint8
	pointer int
}

func (e *errVerify) Error() string { return "locator verification failed" }

var errPDSMismatch = errors.New("PDS does not belong to the peer ULID")

// checkPDS enforces RFC 5533 §7.13, §7.16, §7.20, §10.4: a PDS in the
// message MUST correspond to ULID(peer).
func (e *Engine) checkPDS(peerULID netip.Addr, m *message) error {
	if len(m.pds) == 0 || e.cfg.Insecure {
		return nil
	}
	if !e.ver.PDSMatches(peerULID, m.pds) {
		e.stats.VerificationFailures++
		return errPDSMismatch
	}
	return nil
}

// verifyLocators checks the Locator List of m for the peer with ULID
// peerULID (RFC 5533 §7.2). storedPDS is the PDS received earlier, used
// when m carries none. It returns Ls(peer) with a verified flag per
// locator; locators that fail HBA are kept but never selected. An
// unsupported or inconsistent verification method, a bad CGA signature or
// too many locators fail the whole list (the message MUST be ignored).
func (e *Engine) verifyLocators(now time.Time, c *Context, peerULID netip.Addr, m *message, storedPDS []byte) ([]peerLocator, error) {
	if len(m.locs) > e.cfg.MaxPeerLocators {
		return nil, &errVerify{code: ErrCodeNumberOfLocators, pointer: m.locMethodOff - 1}
	}
	pds := m.pds
	if len(pds) == 0 {
		pds = storedPDS
	}
	out := make([]peerLocator, 0, len(m.locs))
	var cgaLocs []netip.Addr
	cgaFirst := -1
	for i, l := range m.locs {
		pl := peerLocator{addr: l.addr.WithZone(""), method: l.method}
		if dupLocator(out, pl.addr) {
			continue
		}
		unicast := l.addr.Is6() && !l.addr.Is4In6() && !l.addr.IsUnspecified() && !l.addr.IsMulticast() && !l.addr.IsLoopback()
		switch {
		case e.cfg.Insecure:
			pl.verified = unicast
		case l.method == MethodHBA:
			// RFC 5533 §7.2: the method must be consistent with the
			// PDS (HBA needs the multi-prefix extension).
			if len(pds) == 0 || !e.ver.HasMultiPrefix(pds) {
				return nil, &errVerify{code: ErrCodeVerification, pointer: m.locMethodOff + i}
			}
			pl.verified = unicast && (pl.addr == peerULID || e.ver.InHBASet(pl.addr, pds))
		case l.method == MethodCGA:
			if len(pds) == 0 || len(m.sig) == 0 {
				return nil, &errVerify{code: ErrCodeVerification, pointer: m.locMethodOff + i}
			}
			if cgaFirst < 0 {
				cgaFirst = i
			}
			cgaLocs = append(cgaLocs, l.addr)
			pl.verified = unicast
		default:
			// RFC 5533 §7.2: unsupported method: MUST ignore.
			return nil, &errVerify{code: ErrCodeVerification, pointer: m.locMethodOff + i}
		}
		if !pl.verified {
			e.stats.VerificationFailures++
			e.emit(Event{Time: now, Kind: EventVerificationFailed, Peer: pl.addr, Reason: "locator not in the peer's HBA set"}, c)
		}
		out = append(out, pl)
	}
	if len(cgaLocs) > 0 && !e.cfg.Insecure {
		// RFC 5533 §5.15.5: the signature covers the generation and
		// the CGA locators in list order.
		if !e.ver.VerifySignature(pds, m.locGen, cgaLocs, m.sig) {
			e.stats.VerificationFailures++
			e.emit(Event{Time: now, Kind: EventVerificationFailed, Reason: "bad CGA signature"}, c)
			return nil, &errVerify{code: ErrCodeVerification, pointer: m.locMethodOff + cgaFirst}
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
