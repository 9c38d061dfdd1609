package engine

import (
	"net/netip"
	"time"
)

// Updating the peer: RFC 5533 §10.

// startUpdate sends a new Update Request with the current Locator List and
// Locator Preferences. At most one is outstanding (RFC 5533 §10.3): newer
// information abandons the previous request and uses a new nonce.
func (e *Engine) startUpdate(c *Context, now time.Time) {
	c.upd = &pendingUpdate{nonce: e.rand.uint32()}
	e.stats.UpdatesSent++
	e.sendUpdate(c)
	c.upd.at = ns(now) + int64(e.backoff(UpdateTimeout, 0, MaxUpdateTimeout))
	e.schedule(c, now)
}

func (e *Engine) sendUpdate(c *Context) {
	if c.state != StateEstablished || c.peerTag == 0 {
		return // resent once ESTABLISHED again
	}
	m := &e.tx
	m.reset()
	m.typ = typeUpdateReq
	m.tag = c.peerTag
	m.reqNonce = c.upd.nonce
	e.addLocalOptions(c, m)
	e.send(e.srcFor(c), c.lpPeer, m)
}

// retransmitUpdate: binary exponential backoff up to MAX_UPDATE_TIMEOUT,
// randomised, and no retry limit (RFC 5533 §10.2: retransmissions continue
// until the context is discarded).
func (e *Engine) retransmitUpdate(c *Context, now time.Time) {
	u := c.upd
	u.retries++
	e.sendUpdate(c)
	u.at = ns(now) + int64(e.backoff(UpdateTimeout, u.retries, MaxUpdateTimeout))
}

// lookupControl finds the context of a control message carrying a
// Receiver Context Tag (Update, Update Ack, Keepalive, Probe). Unknown
// tags and stale contexts (the locators are not in Ls(peer)/Ls(local))
// are answered with R1bis (RFC 5533 §7.17, §10.4, §10.5, §12.4).
func (e *Engine) lookupControl(now time.Time, src, dst netip.Addr, m *message) *Context {
	c := e.byTag[m.tag]
	if c == nil || !c.peerHas(src) || dst != c.lpLocal && dst != c.localULID && !e.localHas(dst) {
		e.drop(dropNoContext)
		e.sendR1bis(now, src, dst, m.tag)
		return nil
	}
	return c
}

// controlState applies the per-state rows of RFC 5533 §12.2 to Keepalive
// and Probe (RFC 5534 §5): only ESTABLISHED processes; I2-SENT and
// I2BIS-SENT resend I2/I2bis. REAP does not run in those states: CT(peer)
// is not known (I2-SENT) or possibly stale (I2BIS-SENT).
func (e *Engine) controlState(now time.Time, c *Context) bool {
	switch c.state {
	case StateEstablished:
		return true
	case StateI2Sent, StateI2bisSent:
		e.nudge(now, c)
	}
	e.drop(dropWrongState)
	return false
}

func (e *Engine) rcvUpdateReq(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	c := e.lookupControl(now, src, dst, m)
	if c == nil {
		return
	}
	// RFC 5533 §10.4: a PDS MUST correspond to ULID(peer), else the
	// message is silently discarded.
	if err := e.checkPDS(c.peerULID, m); err != nil {
		e.drop(dropVerification)
		e.emit(Event{Time: now, Kind: EventVerificationFailed, Reason: err.Error()}, c)
		return
	}
	switch c.state {
	case StateEstablished:
	case StateI2Sent, StateI2bisSent:
		// RFC 5533 §10.4: "send I2 [I2bis] and proceed to process the
		// message". Processing ends with an Update Acknowledgement to
		// CT(peer), which is unknown in I2-SENT and possibly stale in
		// I2BIS-SENT: the request (the last one) is kept and processed
		// as soon as the R2 makes the context ESTABLISHED.
		e.nudge(now, c)
		c.hs.held = append(c.hs.held[:0], raw...)
		c.hs.heldSrc, c.hs.heldDst = src, dst
		return
	default: // I1-SENT: discard
		e.drop(dropWrongState)
		return
	}
	e.processUpdateReq(now, c, src, dst, m, raw)
}

// processHeld processes an Update Request kept in I2-SENT/I2BIS-SENT,
// now that c is ESTABLISHED. Its locators must still match the context
// (the R2 may have brought a new Ls(peer)); if not, it is dropped quietly:
// the peer retransmits what is still current.
func (e *Engine) processHeld(now time.Time, c *Context, src, dst netip.Addr, raw []byte) {
	var m message
	if e.codec.decode(raw, &m) != nil || m.typ != typeUpdateReq || c.dead || c.state != StateEstablished ||
		!c.peerHas(src) || dst != c.lpLocal && dst != c.localULID && !e.localHas(dst) {
		e.drop(dropNoContext)
		return
	}
	e.processUpdateReq(now, c, src, dst, &m, raw)
}

// processUpdateReq is RFC 5533 §10.4 after the lookup and the PDS check.
func (e *Engine) processUpdateReq(now time.Time, c *Context, src, dst netip.Addr, m *message, raw []byte) {
	c.lastHeard = ns(now)
	changed := false
	if m.hasLocList {
		locs, err := e.verifyLocators(now, c, c.peerULID, m, c.peerPDS)
		if err != nil {
			// RFC 5533 §10.4: Error code 2, no further processing.
			e.verifyFailed(now, src, dst, err, raw)
			return
		}
		if len(m.pds) > 0 {
			e.setPeerPDS(c, m.pds)
		}
		c.peerLocs = locs
		c.peerGen = m.locGen
		c.peerGenSet = true
		changed = true
	}
	if m.hasPrefs {
		// RFC 5533 §10.4: generation must match (Error 3) and the
		// element count must match Ls(peer) (Error 4).
		if !c.peerGenSet || m.prefGen != c.peerGen {
			e.sendError(now, dst, src, ErrCodeGenerationSync, prefOffset(raw, 4), raw)
			e.drop(dropVerification)
			return
		}
		if len(m.prefs) != len(c.peerLocs) {
			e.sendError(now, dst, src, ErrCodeNumberOfLocators, prefOffset(raw, 2), raw)
			e.drop(dropVerification)
			return
		}
		for i := range c.peerLocs {
			c.peerLocs[i].pref = m.prefs[i]
		}
		changed = true
	}
	if m.hasKATimeout {
		c.kaTimeout = m.kaTimeout
		e.reapKeepaliveTimeout(c)
	}
	c.lastActive = ns(now)
	e.reapControl(c, now, true)
	// Acknowledge with CT(peer) and the request's nonce.
	a := &e.tx
	a.reset()
	a.typ = typeUpdateAck
	a.tag = c.peerTag
	a.reqNonce = m.reqNonce
	e.send(dst, src, a)
	if changed {
		e.emit(Event{Time: now, Kind: EventLocatorsUpdated}, c)
		e.reapLocatorsChanged(c, now)
		// RFC 5533 §10.4: if Lp(peer) is now BROKEN or gone, REAP
		// verifies a new locator before Lp(peer) changes.
		if !e.peerUsable(c, c.lpPeer) {
			e.reapTrouble(c, now, "peer locator gone or broken")
		}
	}
	e.schedule(c, now)
}

// peerUsable: a verified member of Ls(peer) not marked BROKEN.
func (e *Engine) peerUsable(c *Context, a netip.Addr) bool {
	for i := range c.peerLocs {
		if c.peerLocs[i].addr == a {
			return c.peerLocs[i].verified && c.peerLocs[i].pref.flags&PrefBroken == 0
		}
	}
	return a == c.peerULID
}

func (e *Engine) rcvUpdateAck(now time.Time, src, dst netip.Addr, m *message) {
	c := e.lookupControl(now, src, dst, m)
	if c == nil {
		return
	}
	switch c.state {
	case StateEstablished:
	case StateI2Sent, StateI2bisSent:
		// RFC 5533 §10.5 (with §10.4/§12.2 for what to resend, see
		// SPEC-NOTES): resend I2/I2bis and proceed to process. An Ack
		// that matches our outstanding request's nonce shows the peer
		// has it; there is nothing to answer.
		e.nudge(now, c)
	default:
		e.drop(dropWrongState)
		return
	}
	// RFC 5533 §10.5: an Ack that does not match the last request's
	// nonce is silently ignored.
	if c.upd == nil || c.upd.nonce != m.reqNonce {
		e.drop(dropNonce)
		return
	}
	c.upd = nil
	c.lastHeard = ns(now)
	if c.state == StateEstablished {
		c.lastActive = ns(now)
		e.reapControl(c, now, true)
	}
	e.stats.UpdatesAcked++
	e.emit(Event{Time: now, Kind: EventUpdateAcked}, c)
	e.schedule(c, now)
}
