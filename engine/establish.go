package engine

import (
	"errors"
	"net/netip"
	"time"
)

// Context establishment and recovery: RFC 5533 §7 (I1, R1, I2, R2, R1bis,
// I2bis), the negative caches of §7.8 and context confusion (§7.15).

// Errors of the management calls that create contexts.
var (
	ErrExists   = errors.New("engine: context exists")
	ErrHolddown = errors.New("engine: peer in holddown (no Shim6 support seen recently)")
	ErrLimit    = errors.New("engine: context limit reached")
	ErrAddress  = errors.New("engine: not a unicast IPv6 address")
	// ErrSelf: the peer ULID is one of this host's own addresses.
	ErrSelf     = errors.New("engine: the peer ULID is a local address")
	ErrNotFound = errors.New("engine: no such context")
	ErrState    = errors.New("engine: context is not in a state that allows this")
	ErrLocator  = errors.New("engine: locator not usable (unknown, unverified or broken)")
)

func unicast6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast()
}

func (e *Engine) newContext(now time.Time, lu, pu netip.Addr, fii uint32) *Context {
	n := ns(now)
	e.stats.ContextsCreated++
	return &Context{
		heapIdx:    -1,
		localULID:  lu,
		peerULID:   pu,
		fii:        fii,
		lpLocal:    lu,
		lpPeer:     pu,
		created:    n,
		lastActive: n,
	}
}

// initiate creates a context for (lu, pu, fii) and sends I1
// (RFC 5533 §7.7).
func (e *Engine) initiate(now time.Time, lu, pu netip.Addr, fii uint32) (*Context, error) {
	lu, pu = lu.WithZone(""), pu.WithZone("")
	if !unicast6(lu) || !unicast6(pu) {
		return nil, ErrAddress
	}
	if pu == lu || e.localHas(pu) {
		// Traffic between two of our own addresses (the trigger
		// heuristic can count it: loopback traffic crosses the cgroup
		// hook) has no peer to multihome with; a context with ourselves
		// would answer its own I1 and hold a second mapping for nothing
		// (seen once in the e2e fail/heal cycles).
		e.drop(dropSelf)
		return nil, ErrSelf
	}
	key := ulidKey{lu, pu, fii}
	if c := e.byULID[key]; c != nil {
		if !c.state.negative() {
			return c, ErrExists
		}
		if c.expireAt > ns(now) {
			return c, ErrHolddown
		}
		e.remove(c)
	}
	if len(e.byULID) >= e.cfg.MaxContexts || e.pending() >= e.cfg.MaxPending {
		e.limit(now, "contexts or pending handshakes")
		return nil, ErrLimit
	}
	c := e.newContext(now, lu, pu, fii)
	c.initiator = true
	c.localTag = e.newLocalTag() // RFC 5533 §7.7: a tag no other context uses
	c.state = StateI1Sent
	e.insert(c)
	e.setNonce(c, e.newInitNonce())
	c.expireAt = ns(now) + int64(e.cfg.EstablishTimeout)
	e.emit(Event{Time: now, Kind: EventStateChange}, c)
	e.sendI1(c)
	// RFC 5533 §7.8: randomised between 0.5 and 1.5 of the nominal value.
	c.rtxAt = ns(now) + int64(e.backoff(I1Timeout, 0, 0))
	e.schedule(c, now)
	return c, nil
}

func (e *Engine) limit(now time.Time, what string) {
	e.stats.LimitDrops++
	e.drop(dropLimit)
	e.emit(Event{Time: now, Kind: EventLimit, Reason: what}, nil)
}

// ulidOption fills the ULID Pair option when the locators of the packet
// differ from the ULIDs (RFC 5533 §5.15.6: MUST) and the FII option when
// the context is forked (RFC 5533 §7.7: MUST).
func ulidOption(c *Context, m *message, local, peer netip.Addr) {
	if local != c.localULID || peer != c.peerULID {
		m.hasULIDs = true
		m.ulidSender, m.ulidRecv = c.localULID, c.peerULID
	}
	if c.fii != 0 {
		m.hasFII = true
		m.fii = c.fii
	}
}

func (e *Engine) sendI1(c *Context) {
	m := &e.tx
	m.reset()
	m.typ = typeI1
	m.tag = c.localTag
	m.initNonce = c.hs.initNonce
	ulidOption(c, m, c.lpLocal, c.lpPeer)
	e.send(c.lpLocal, c.lpPeer, m)
}

func (e *Engine) sendI2(c *Context) {
	m := &e.tx
	m.reset()
	m.typ = typeI2
	m.tag = c.localTag
	m.initNonce = c.hs.initNonce
	m.respNonce = c.hs.respNonce
	// RFC 5533 §5.6: the Responder Validator MUST be copied from R1.
	m.validator = c.hs.validator
	ulidOption(c, m, c.lpLocal, c.lpPeer)
	e.addLocalOptions(c, m)
	e.send(c.lpLocal, c.lpPeer, m)
}

func (e *Engine) sendI2bis(c *Context) {
	hs := c.hs
	m := &e.tx
	m.reset()
	m.typ = typeI2bis
	m.tag = c.localTag
	m.initNonce = hs.initNonce
	m.respNonce = hs.respNonce
	m.ptag = hs.r1bisTag
	m.validator = hs.validator
	// RFC 5533 §7.18: sent on the locator pair of the R1bis, with the
	// ULID Pair option when that pair is not the ULID pair.
	ulidOption(c, m, hs.local, hs.peer)
	e.addLocalOptions(c, m)
	e.send(hs.local, hs.peer, m)
}

// sendR2 answers I1, I2 or I2bis from c (RFC 5533 §7.14). Context
// confusion was checked when CT(peer) was recorded (adoptPeer).
func (e *Engine) sendR2(c *Context, from, to netip.Addr, initNonce uint32) {
	m := &e.tx
	m.reset()
	m.typ = typeR2
	m.tag = c.localTag
	m.initNonce = initNonce
	e.addLocalOptions(c, m)
	e.send(from, to, m)
}

// ulidsOf extracts the ULID pair and FII of an I1, I2 or I2bis
// (RFC 5533 §7.9, §7.13, §7.20): from the ULID Pair option, else the
// addresses; FII 0 without the option.
func ulidsOf(src, dst netip.Addr, m *message) ulidKey {
	k := ulidKey{local: dst, peer: src}
	if m.hasULIDs {
		k.local, k.peer = m.ulidRecv.WithZone(""), m.ulidSender.WithZone("")
	}
	if m.hasFII {
		k.fii = m.fii
	}
	return k
}

// ownULID: the local ULID of a request must be ours (the destination, or
// one of our locators).
func (e *Engine) ownULID(k ulidKey, dst netip.Addr) bool {
	return unicast6(k.local) && unicast6(k.peer) && (k.local == dst || e.localHas(k.local))
}

// ---- I1 ---------------------------------------------------------------

func (e *Engine) rcvI1(now time.Time, src, dst netip.Addr, m *message) {
	k := ulidsOf(src, dst, m)
	if !e.ownULID(k, dst) {
		e.drop(dropNotLocal)
		return
	}
	c := e.byULID[k]
	if c == nil || c.state.negative() {
		// IDLE (or a negative cache, processed as IDLE: RFC 5533
		// App. B): answer statelessly.
		e.sendR1(now, src, dst, m, k)
		return
	}
	switch c.state {
	case StateEstablished:
		// RFC 5533 §7.9: the initiator's locator must be in Ls(peer)
		// (only checked when the ULID Pair option is present).
		if m.hasULIDs && !c.peerHas(src) {
			e.sendR1(now, src, dst, m, k)
			return
		}
		if c.peerTag == m.tag {
			// Our R2 was lost: answer with the existing context.
			e.sendR2(c, dst, src, m.initNonce)
			return
		}
		// The peer lost the context and starts a new one.
		e.sendR1(now, src, dst, m, k)
	default:
		// RFC 5533 §7.4, §7.9: concurrent establishment; CT(peer)
		// stays unchanged and the answer is R2.
		e.sendR2(c, dst, src, m.initNonce)
	}
}

// sendR1 answers an I1 without creating state (RFC 5533 §7.10).
func (e *Engine) sendR1(now time.Time, src, dst netip.Addr, i1 *message, k ulidKey) {
	if !e.r1Limit.allow(now) {
		e.stats.R1Limited++
		e.drop(dropRateLimited)
		return
	}
	n := e.val.nonce(now)
	in := e.val.r1Input(n, i1.tag, k.local, k.peer, dst, src, k.fii, i1.hasFII)
	e.val.make(in, &e.valbuf)
	m := &e.tx
	m.reset()
	m.typ = typeR1
	m.initNonce = i1.initNonce
	m.respNonce = n
	m.validator = e.valbuf[:]
	e.send(dst, src, m)
}

// ---- R1 ---------------------------------------------------------------

func (e *Engine) rcvR1(now time.Time, src, dst netip.Addr, m *message) {
	// RFC 5533 §7.11, §12.4: by Initiator Nonce and locator pair.
	c := e.byNonce[m.initNonce]
	if c == nil || !c.peerHas(src) && src != c.lpPeer || dst != c.lpLocal && !e.localHas(dst) {
		e.drop(dropNoContext)
		return
	}
	if c.state != StateI1Sent {
		// RFC 5533 §7.11: any other state MUST silently discard.
		e.drop(dropWrongState)
		return
	}
	if len(m.validator) == 0 {
		e.drop(dropMalformed) // RFC 5533 §5.5: MUST be included
		return
	}
	c.hs.respNonce = m.respNonce
	c.hs.validator = append(c.hs.validator[:0], m.validator...)
	c.hs.retries = 0
	e.setState(c, StateI2Sent, ns(now))
	e.sendI2(c)
	c.rtxAt = ns(now) + int64(e.backoff(I2Timeout, 0, 0))
	e.schedule(c, now)
}

// ---- I2 and I2bis -----------------------------------------------------

func (e *Engine) rcvI2(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	k := ulidsOf(src, dst, m)
	if !e.ownULID(k, dst) {
		e.drop(dropNotLocal)
		return
	}
	// RFC 5533 §7.13: the Responder Nonce must be recent and the
	// validator the one we would have computed.
	in := e.val.r1Input(m.respNonce, m.tag, k.local, k.peer, dst, src, k.fii, m.hasFII)
	if !e.val.check(now, m.respNonce, in, m.validator) {
		e.drop(dropValidator)
		return
	}
	e.acceptI2(now, src, dst, m, raw, k, false)
}

func (e *Engine) rcvI2bis(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	k := ulidsOf(src, dst, m)
	if !e.ownULID(k, dst) {
		e.drop(dropNotLocal)
		return
	}
	// RFC 5533 §7.20: validator of the R1bis (locators, Responder Nonce,
	// Packet Context Tag).
	in := e.val.r1bisInput(m.respNonce, m.ptag, dst, src)
	if !e.val.check(now, m.respNonce, in, m.validator) {
		e.drop(dropValidator)
		return
	}
	e.acceptI2(now, src, dst, m, raw, k, true)
}

// acceptI2 is the common part of RFC 5533 §7.13 and §7.20 after the
// validator was verified.
func (e *Engine) acceptI2(now time.Time, src, dst netip.Addr, m *message, raw []byte, k ulidKey, bis bool) {
	// A PDS in the message MUST correspond to ULID(peer).
	if err := e.checkPDS(k.peer, m); err != nil {
		e.drop(dropVerification)
		e.emit(Event{Time: now, Kind: EventVerificationFailed, LocalULID: k.local, PeerULID: k.peer, FII: k.fii, Reason: err.Error()}, nil)
		return
	}
	c := e.byULID[k]
	if c != nil && c.state.negative() {
		e.remove(c)
		c = nil
	}
	var locs []peerLocator
	if m.hasLocList {
		var stored *pdsEntry
		if c != nil {
			stored = c.peerPDS
		}
		var err error
		if locs, err = e.verifyLocators(now, c, k.peer, m, stored); err != nil {
			e.verifyFailed(now, src, dst, err, raw)
			return
		}
	}
	if c == nil {
		// IDLE: create the context, ESTABLISHED at once.
		if len(e.byULID) >= e.cfg.MaxContexts {
			e.limit(now, "contexts")
			return
		}
		c = e.newContext(now, k.local, k.peer, k.fii)
		c.localTag = e.newLocalTag()
		if bis && c.localTag == m.ptag {
			// RFC 5533 §7.20: SHOULD NOT reuse the Packet Context Tag.
			c.localTag = e.newLocalTag()
		}
		c.state = StateEstablished
		e.insert(c)
		e.adoptPeer(now, c, src, dst, m, locs, true)
		e.emit(Event{Time: now, Kind: EventStateChange}, c)
		e.established(now, c)
		e.sendR2(c, dst, src, m.initNonce)
		return
	}
	// Existing context: the source locator must be in Ls(peer) or be a
	// verified locator of the message's list (RFC 5533 §7.13, §7.20).
	if !c.peerHas(src) && !inList(locs, src) {
		e.drop(dropLocators)
		return
	}
	e.adoptPeer(now, c, src, dst, m, locs, false)
	if c.dead {
		return
	}
	if c.state == StateI1Sent {
		e.setState(c, StateEstablished, ns(now))
		e.established(now, c)
	} else {
		e.install(c, now) // CT(peer) may have changed
		e.reapLocatorsChanged(c, now)
		e.schedule(c, now)
	}
	e.sendR2(c, dst, src, m.initNonce)
}

// adoptPeer records CT(peer), Ls(peer), the peer's PDS, preferences and
// Keepalive Timeout from an I2, I2bis or R2, picks the current pair, and
// looks for context confusion (RFC 5533 §7.14, §7.15). fresh: c was just
// created by this message.
func (e *Engine) adoptPeer(now time.Time, c *Context, src, dst netip.Addr, m *message, locs []peerLocator, fresh bool) {
	e.setPeerTag(c, m.tag)
	if m.hasLocList {
		c.peerLocs = locs
		c.peerGen = m.locGen
		c.peerGenSet = true
	}
	if len(m.pds) > 0 {
		e.setPeerPDS(c, m.pds)
	}
	if m.hasPrefs && c.peerGenSet && m.prefGen == c.peerGen && len(m.prefs) == len(c.peerLocs) {
		for i := range c.peerLocs {
			c.peerLocs[i].pref = m.prefs[i]
		}
	}
	if m.hasKATimeout {
		c.kaTimeout = m.kaTimeout
	}
	// The current pair: a new context uses the pair the message came
	// over when it is verified (recovery may run on other locators than
	// the ULIDs); an existing one keeps its pair while it stays valid.
	switch {
	case fresh && c.peerHas(src) && e.localOK(c, dst):
		c.lpLocal, c.lpPeer = dst, src
	case !c.peerHas(c.lpPeer):
		c.lpPeer = c.fallbackPeer()
	}
	if !e.localOK(c, c.lpLocal) {
		c.lpLocal = e.anyLocal(c)
	}
	e.checkConfusion(now, c)
}

// checkConfusion implements RFC 5533 §7.15: another context in ESTABLISHED
// or I2BIS-SENT with the same CT(peer) and overlapping Ls(peer) but a
// different ULID pair or FII means the peer lost that context and reused
// the tag; the old context MUST NOT be used any more.
func (e *Engine) checkConfusion(now time.Time, c *Context) {
	if c.peerTag == 0 {
		return
	}
	for o := e.byPeerTag[c.peerTag]; o != nil; {
		next := o.peerNext
		if o != c && o.state.hasPeer() && c.peerOverlap(o) && o.key() != c.key() {
			e.stats.ContextsConfused++
			e.emit(Event{Time: now, Kind: EventContextConfusion, Reason: "peer reused its context tag"}, o)
			k, wasUp := o.key(), o.state == StateEstablished
			e.deleteContext(now, o, "context confusion")
			if e.cfg.RecreateConfused && wasUp {
				// RFC 5533 §7.15: MAY re-establish with I1.
				_, _ = e.initiate(now, k.local, k.peer, k.fii)
			}
		}
		o = next
	}
}

// established finishes the move to ESTABLISHED.
func (e *Engine) established(now time.Time, c *Context) {
	var held []byte
	var hsrc, hdst netip.Addr
	if c.hs != nil && len(c.hs.held) > 0 {
		held, hsrc, hdst = c.hs.held, c.hs.heldSrc, c.hs.heldDst
	}
	e.dropHandshake(c)
	c.expireAt = never
	c.lastActive = ns(now)
	c.lastHeard = ns(now)
	e.stats.HandshakesEstablished++
	e.reapStart(c, now)
	e.install(c, now)
	e.emit(Event{Time: now, Kind: EventContextUp, Local: c.lpLocal, Peer: c.lpPeer}, c)
	e.schedule(c, now)
	if held != nil {
		e.processHeld(now, c, hsrc, hdst, held)
	}
}

// verifyFailed handles a Locator List that failed verification: the
// message is ignored and an Error sent (RFC 5533 §7.2: SHOULD, code 2).
func (e *Engine) verifyFailed(now time.Time, src, dst netip.Addr, err error, raw []byte) {
	e.drop(dropVerification)
	var ve *errVerify
	if errors.As(err, &ve) {
		e.sendError(now, dst, src, ve.code, ve.pointer(raw), raw)
	}
}

// ---- R2 ---------------------------------------------------------------

func (e *Engine) rcvR2(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	// RFC 5533 §7.16, §12.4: by Initiator Nonce and locator pair.
	c := e.byNonce[m.initNonce]
	if c == nil || !c.peerHas(src) && src != c.lpPeer || dst != c.lpLocal && !e.localHas(dst) {
		e.drop(dropNoContext)
		return
	}
	switch c.state {
	case StateI1Sent, StateI2Sent, StateI2bisSent:
	default:
		e.drop(dropWrongState) // ESTABLISHED: silently ignored
		return
	}
	if err := e.checkPDS(c.peerULID, m); err != nil {
		e.drop(dropVerification)
		e.emit(Event{Time: now, Kind: EventVerificationFailed, Reason: err.Error()}, c)
		return
	}
	var locs []peerLocator
	if m.hasLocList {
		var err error
		if locs, err = e.verifyLocators(now, c, c.peerULID, m, c.peerPDS); err != nil {
			e.verifyFailed(now, src, dst, err, raw)
			return
		}
	}
	recovered := c.state == StateI2bisSent
	e.adoptPeer(now, c, src, dst, m, locs, false)
	if c.dead {
		return
	}
	e.setState(c, StateEstablished, ns(now))
	if recovered {
		e.stats.Recoveries++
	}
	e.established(now, c)
}

// ---- R1bis ------------------------------------------------------------

// payloadUnknown handles a payload extension header, or a data-plane
// report of one, whose tag has no installed mapping (RFC 5533 §12.2).
func (e *Engine) payloadUnknown(now time.Time, src, dst netip.Addr, tag uint64) {
	c := e.byTag[tag]
	if c == nil {
		// RFC 5533 §7.17: SHOULD answer with R1bis.
		e.sendR1bis(now, src, dst, tag)
		return
	}
	e.nudge(now, c)
	if c.state == StateEstablished && !c.installed {
		e.install(c, now)
	}
}

// nudge implements the "send I2 / send I2bis" rows of RFC 5533 §10.4,
// §10.5 and §12.2: traffic from a peer that is already ESTABLISHED while we
// wait for its R2 means the R2 was lost. At most one per second per
// context, so that a packet stream does not become a message stream.
func (e *Engine) nudge(now time.Time, c *Context) {
	if c.state != StateI2Sent && c.state != StateI2bisSent {
		return
	}
	n := ns(now)
	if c.hs.lastNudge != 0 && n-c.hs.lastNudge < int64(time.Second) {
		return
	}
	c.hs.lastNudge = n
	if c.state == StateI2Sent {
		e.sendI2(c)
	} else {
		e.sendI2bis(c)
	}
}

// sendR1bis answers a packet for an unknown context tag (RFC 5533 §7.17),
// rate-limited: a spray of random tags costs no memory and bounded
// bandwidth.
func (e *Engine) sendR1bis(now time.Time, src, dst netip.Addr, tag uint64) {
	if !e.r1bisLimit.allow(now) {
		e.stats.R1bisLimited++
		e.drop(dropRateLimited)
		return
	}
	n := e.val.nonce(now)
	in := e.val.r1bisInput(n, tag, dst, src)
	e.val.make(in, &e.valbuf)
	m := &e.tx
	m.reset()
	m.typ = typeR1bis
	m.tag = tag
	m.respNonce = n
	m.validator = e.valbuf[:]
	e.send(dst, src, m)
}

func (e *Engine) rcvR1bis(now time.Time, src, dst netip.Addr, m *message) {
	// RFC 5533 §7.18, §12.4: CT(peer) = Packet Context Tag and the
	// locator pair.
	c := e.lookupPeerTag(m.tag, dst, src)
	if c == nil {
		e.drop(dropNoContext)
		return
	}
	if c.state != StateEstablished {
		e.drop(dropWrongState)
		return
	}
	if !e.localOK(c, dst) {
		// The I2bis would have to leave from dst (RFC 5533 §7.18),
		// which the peer does not have in Ls(peer) and would refuse
		// (§7.20); we never send from such an address, so the R1bis
		// answers no packet of ours.
		e.drop(dropLocators)
		return
	}
	if len(m.validator) == 0 {
		e.drop(dropMalformed)
		return
	}
	// The peer lost the context: keep CT(peer), go to I2BIS-SENT and
	// send I2bis over the R1bis's locator pair.
	e.setState(c, StateI2bisSent, ns(now))
	e.setNonce(c, e.newInitNonce())
	hs := c.hs
	hs.respNonce = m.respNonce
	hs.validator = append(hs.validator[:0], m.validator...)
	hs.r1bisTag = m.tag
	hs.local, hs.peer = dst, src
	hs.retries = 0
	e.emit(Event{Time: now, Kind: EventRecovery, Local: dst, Peer: src, Reason: "R1bis received, sending I2bis"}, c)
	e.sendI2bis(c)
	c.rtxAt = ns(now) + int64(e.backoff(I2bisTimeout, 0, 0))
	e.schedule(c, now)
}

// ---- timers -------------------------------------------------------------

// retransmit runs the establishment retransmission timer
// (RFC 5533 §7.8, §7.12, §7.19).
func (e *Engine) retransmit(c *Context, now time.Time) {
	if c.hs == nil {
		return
	}
	n := ns(now)
	c.hs.retries++
	switch c.state {
	case StateI1Sent:
		if c.hs.retries > I1RetriesMax {
			// RFC 5533 §7.8: the peer most likely has no Shim6;
			// remember for at most NO_R1_HOLDDOWN_TIME.
			e.fail(now, c, StateEFailed, NoR1HolddownTime, "no answer to I1")
			return
		}
		e.sendI1(c)
		c.rtxAt = n + int64(e.backoff(I1Timeout, c.hs.retries, 0))
	case StateI2Sent:
		if c.hs.retries > I2RetriesMax {
			// RFC 5533 §7.12: SHOULD fall back to I1.
			e.fallbackI1(now, c)
			return
		}
		e.sendI2(c)
		c.rtxAt = n + int64(e.backoff(I2Timeout, c.hs.retries, 0))
	case StateI2bisSent:
		if c.hs.retries > I2bisRetriesMax {
			// RFC 5533 §7.19: SHOULD fall back to I1.
			e.fallbackI1(now, c)
			return
		}
		e.sendI2bis(c)
		c.rtxAt = n + int64(e.backoff(I2bisTimeout, c.hs.retries, 0))
	}
}

// fallbackI1 restarts the exchange with I1 from I2-SENT or I2BIS-SENT.
func (e *Engine) fallbackI1(now time.Time, c *Context) {
	if c.state == StateI2bisSent {
		// CT(peer) is stale: the peer lost the context.
		e.uninstall(c)
		e.unlinkPeerTag(c)
		c.reap = nil
		c.upd = nil
		c.expireAt = ns(now) + int64(e.cfg.EstablishTimeout)
	}
	e.setState(c, StateI1Sent, ns(now))
	c.hs.retries = 0
	c.hs.validator = c.hs.validator[:0]
	c.hs.held = nil // an Update for the context the peer lost
	e.sendI1(c)
	c.rtxAt = ns(now) + int64(e.backoff(I1Timeout, 0, 0))
}

// fail moves c to a negative-cache state (E-FAILED or NO-SUPPORT) that
// only remembers the ULID pair until hold has passed (RFC 5533 §6.2,
// §7.8).
func (e *Engine) fail(now time.Time, c *Context, s State, hold time.Duration, why string) {
	if s == StateNoSupport {
		e.stats.NoSupport++
	} else {
		e.stats.HandshakesFailed++
	}
	e.dropHandshake(c)
	e.uninstall(c)
	e.unlinkPeerTag(c)
	e.freeTag(c)
	e.releasePDS(c)
	c.peerLocs, c.reap, c.upd = nil, nil, nil
	e.setState(c, s, ns(now))
	c.expireAt = ns(now) + int64(hold)
	e.emit(Event{Time: now, Kind: EventContextDown, Reason: why}, c)
	e.schedule(c, now)
}

// expire runs when a context's expiry passes: the end of a negative
// cache, or a handshake that never completed.
func (e *Engine) expire(c *Context, now time.Time) {
	switch {
	case c.state.negative():
		// RFC 5533 App. B: after the holddown, back to IDLE.
		e.remove(c)
	case c.state.pending():
		e.fail(now, c, StateEFailed, NoR1HolddownTime, "establishment timed out")
	}
}

// deleteContext removes c and reports it.
func (e *Engine) deleteContext(now time.Time, c *Context, why string) {
	if c.dead {
		return
	}
	e.stats.ContextsRemoved++
	switch why {
	case "idle":
		e.stats.ContextsIdle++
	case "unreachable":
		e.stats.ContextsUnreachable++
	}
	e.emit(Event{Time: now, Kind: EventContextDown, Reason: why}, c)
	e.remove(c)
}
