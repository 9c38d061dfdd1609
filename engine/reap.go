package engine

import (
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// The edge to REAP (RFC 5534). The per-context machine lives in package
// engine/reap; this file adapts it: it feeds the machine the engine's
// inputs and turns its actions into Keepalive and Probe messages (with the
// context's tags) and pair switches (through the data plane). The engine
// owns the timer queue; the machine only reports its next deadline.

// reapRand lets the machines draw from the engine's injected random source.
type reapRand struct{ r *randSource }

func (r reapRand) Uint64() uint64 { return r.r.uint64() }

// reapLocal is Ls(local) for the machines of contexts that carry our
// Locator List: the advertised locators (RFC 5533 §5.15.2: with a
// verification method), one shared slice, replaced (never modified) when
// the local set changes.
func (e *Engine) rebuildReapLocal() {
	ls := make([]reap.Locator, 0, len(e.local.adv))
	for _, l := range e.local.adv {
		ls = append(ls, reap.Locator{Addr: l.Addr, Pref: reap.Pref{Flags: reap.Flags(l.Flags), Priority: l.Priority, Weight: l.Weight}})
	}
	e.reapLocal = ls
}

// reapLocalFor returns the local locators REAP may use for c: those the
// peer knows (localOK).
func (e *Engine) reapLocalFor(c *Context) []reap.Locator {
	if e.advertises(c.localULID) {
		return e.reapLocal
	}
	return []reap.Locator{{Addr: c.localULID}}
}

// localOK reports whether a may be c's local locator, as the source of
// payload and of every control message: a locator the peer has for us in
// its Ls(peer). That is one of the advertised locators (with a
// verification method) when our Locator List goes with c, else c's local
// ULID alone. Anything else, such as an address outside the HBA set
// (Method 0), the peer cannot verify and answers with R1bis
// (RFC 5533 §7.2, §10.4, §12.4); it is never used.
func (e *Engine) localOK(c *Context, a netip.Addr) bool {
	if !e.advertises(c.localULID) {
		return a == c.localULID && (len(e.local.all) == 0 || e.localHas(a))
	}
	for i := range e.local.adv {
		if e.local.adv[i].Addr == a {
			return true
		}
	}
	return false
}

// reapPeerFor returns Ls(peer) for the machine: the peer's list with
// verification flags and preferences, or its ULID (verified by definition)
// until it sent a list.
func reapPeerFor(c *Context) []reap.Locator {
	if !c.peerGenSet {
		return []reap.Locator{{Addr: c.peerULID, Verified: true}}
	}
	ls := make([]reap.Locator, 0, len(c.peerLocs))
	for _, l := range c.peerLocs {
		ls = append(ls, reap.Locator{
			Addr:     l.addr,
			Pref:     reap.Pref{Flags: reap.Flags(l.pref.flags), Priority: l.pref.priority, Weight: l.pref.weight},
			Verified: l.verified || l.addr == c.peerULID,
		})
	}
	return ls
}

// reapStart creates the REAP machine of a context that became ESTABLISHED,
// or refreshes it after a recovery.
func (e *Engine) reapStart(c *Context, now time.Time) {
	if c.reap != nil {
		e.reapSync(c, now)
		e.reapLocatorsChanged(c, now)
		return
	}
	c.reap = reap.New(e.reapCfg, now,
		reap.Pair{Local: c.localULID, Peer: c.peerULID},
		reap.Pair{Local: c.lpLocal, Peer: c.lpPeer},
		e.reapLocalFor(c), reapPeerFor(c))
	e.reapKeepaliveTimeout(c)
}

// reapApply carries out the machine's actions.
func (e *Engine) reapApply(c *Context, now time.Time, acts []reap.Action) {
	for i := range acts {
		if c.dead {
			break
		}
		a := &acts[i]
		switch a.Kind {
		case reap.SendKeepalive:
			m := &e.tx
			m.reset()
			m.typ = typeKeepalive
			m.tag = c.peerTag
			e.send(a.Pair.Local, a.Pair.Peer, m)
		case reap.SendProbe:
			e.sendProbe(c, a.Pair, &a.Probe)
		case reap.SwitchPair:
			if !e.switchPair(c, now, a.Pair.Local, a.Pair.Peer, a.Reason.String()) {
				// Refused (a locator no longer usable): the machine
				// must not believe otherwise, or it would confirm a
				// pair the data plane never uses.
				e.reapSync(c, now)
			}
		case reap.StateChange:
			e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer,
				Reason: a.From.String() + " -> " + a.To.String() + " (" + a.Reason.String() + ")"}, c)
		}
	}
	clear(acts)
	e.acts = acts[:0]
	e.frCheck(c, now)
}

func (e *Engine) sendProbe(c *Context, p reap.Pair, pr *reap.Probe) {
	m := &e.tx
	m.reset()
	m.typ = typeProbe
	m.tag = c.peerTag
	m.probeState = uint8(pr.State)
	for _, r := range pr.Sent {
		m.probeSent = append(m.probeSent, probeReport{r.Src, r.Dst, r.Nonce, r.Data})
	}
	for _, r := range pr.Recvd {
		m.probeRecvd = append(m.probeRecvd, probeReport{r.Src, r.Dst, r.Nonce, r.Data})
	}
	e.send(p.Local, p.Peer, m)
}

// reapActivity: the data plane's last-sent/last-received instants and the
// first send after the last receive, if known (RFC 5534 §6.1, §6.2).
func (e *Engine) reapActivity(c *Context, now time.Time, first, sent, recv time.Time) {
	if c.reap == nil || c.state != StateEstablished {
		return
	}
	e.reapApply(c, now, c.reap.ActivitySince(now, first, sent, recv, e.acts[:0]))
}

// reapControl: a Shim6 control message other than Keepalive and Probe was
// received (in) or sent (!in) on the context: payload for REAP
// (RFC 5534 §6.1, §6.2).
func (e *Engine) reapControl(c *Context, now time.Time, in bool) {
	if c.reap == nil || c.state != StateEstablished {
		return
	}
	if in {
		e.reapApply(c, now, c.reap.PayloadReceived(now, e.acts[:0]))
	} else {
		e.reapApply(c, now, c.reap.PayloadSent(now, e.acts[:0]))
	}
}

// reapTimer runs the machine's due timers.
func (e *Engine) reapTimer(c *Context, now time.Time) {
	if c.reap == nil {
		return
	}
	if c.state != StateEstablished {
		// No REAP while the context is being recovered: CT(peer) is
		// stale. The machine resumes after R2.
		return
	}
	e.reapApply(c, now, c.reap.Timer(now, e.acts[:0]))
}

// reapSync makes the machine's current pair the engine's (Lp(local),
// Lp(peer)), which recovery or a refused switch may have changed.
func (e *Engine) reapSync(c *Context, now time.Time) {
	if c.reap != nil {
		c.reap.SetCurrent(now, reap.Pair{Local: c.lpLocal, Peer: c.lpPeer})
	}
}

// reapLocatorsChanged gives the machine the new Ls(local)/Ls(peer); if the
// current pair is no longer usable it explores at once.
func (e *Engine) reapLocatorsChanged(c *Context, now time.Time) {
	if c.reap == nil {
		return
	}
	e.reapApply(c, now, c.reap.SetLocators(now, e.reapLocalFor(c), reapPeerFor(c), e.acts[:0]))
	if e.cfg.FastReroute && c.installed && !c.dead && c.state == StateEstablished {
		e.install(c, now) // new candidate pairs and backup
	}
}

// reapKeepaliveTimeout passes the peer's Keepalive Timeout option
// (RFC 5534 §5.3: SHOULD update the Keepalive Timeout).
func (e *Engine) reapKeepaliveTimeout(c *Context) {
	if c.reap != nil {
		c.reap.SetKeepaliveTimeout(time.Duration(c.kaTimeout) * time.Second)
	}
}

// reapTrouble starts exploration at once (ICMP errors, a BROKEN or lost
// current locator, management; RFC 5534 §3.3, §4.1).
func (e *Engine) reapTrouble(c *Context, now time.Time, why string) {
	if c.reap == nil || c.state != StateEstablished {
		return
	}
	e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer, Reason: "trouble: " + why}, c)
	e.reapApply(c, now, c.reap.Trouble(now, e.acts[:0]))
}

// reapHint is the ULP's negative advice (RFC 5534 §3.3, e.g. a TCP
// retransmission timeout): it explores at once, unless the peer confirmed
// the current pair so recently that the hint can only come from a timer
// armed before the repair (reap.Machine.HintStale); those are counted.
func (e *Engine) reapHint(c *Context, now time.Time) {
	if c.reap == nil || c.state != StateEstablished {
		return
	}
	if c.reap.HintStale(now) {
		e.stats.ULPHintsIgnored++
		return
	}
	e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer, Reason: "trouble: ULP trouble"}, c)
	e.reapApply(c, now, c.reap.ULPTrouble(now, e.acts[:0]))
}

// rcvReap handles Keepalive and Probe messages (RFC 5534 §5.1, §5.2): the
// context must exist with these locators and be ESTABLISHED.
func (e *Engine) rcvReap(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	c := e.lookupControl(now, src, dst, m)
	if c == nil || !e.controlState(now, c) || c.reap == nil {
		return
	}
	c.lastHeard = ns(now)
	if m.typ == typeKeepalive {
		// Keepalives and probes do not keep a context from being
		// collected: only the data plane's activity does (RFC 5533 §9),
		// or two idle peers would keep each other alive.
		e.reapApply(c, now, c.reap.KeepaliveReceived(now, e.acts[:0]))
	} else {
		p := reap.Probe{State: reap.State(m.probeState)}
		for _, r := range m.probeSent {
			p.Sent = append(p.Sent, reap.ProbeReport{Src: r.src, Dst: r.dst, Nonce: r.nonce, Data: r.data})
		}
		for _, r := range m.probeRecvd {
			p.Recvd = append(p.Recvd, reap.ProbeReport{Src: r.src, Dst: r.dst, Nonce: r.nonce, Data: r.data})
		}
		e.reapApply(c, now, c.reap.ProbeReceived(now, src, dst, &p, e.acts[:0]))
	}
	e.schedule(c, now)
}

// switchPair makes (local, peer) the current locator pair. The peer
// locator MUST be verified (RFC 5533 §7.2: never select an unverified
// locator) and the local one ours.
func (e *Engine) switchPair(c *Context, now time.Time, local, peer netip.Addr, why string) bool {
	if !c.peerHas(peer) || !e.localOK(c, local) {
		e.drop(dropLocators)
		return false
	}
	if c.lpLocal == local && c.lpPeer == peer {
		return true
	}
	e.frSwitched(c, now, c.lpLocal, c.lpPeer)
	c.lpLocal, c.lpPeer = local, peer
	e.stats.LocatorSwitches++
	e.install(c, now)
	e.emit(Event{Time: now, Kind: EventLocatorSwitch, Local: local, Peer: peer, Reason: why}, c)
	return true
}
