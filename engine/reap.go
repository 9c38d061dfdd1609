package engine

import (
	"net/netip"
	"time"
)

// The edge to REAP (RFC 5534). The per-context machine lives in package
// engine/reap; this file adapts it: it feeds it the engine's inputs and
// turns its actions into messages (with the context's tags) and pair
// switches (through the data plane). The engine owns the timer queue; the
// machine only reports its next deadline.

// reachability is what the engine needs from a per-context REAP machine.
type reachability interface {
	NextDeadline() (time.Time, bool)
}

// reapStart creates the REAP machine of a context that became ESTABLISHED.
func (e *Engine) reapStart(c *Context, now time.Time) {}

// reapSent: the data plane saw outgoing payload at t (RFC 5534 §6.2).
func (e *Engine) reapSent(c *Context, t time.Time) {}

// reapReceived: the data plane saw incoming payload at t (RFC 5534 §6.1).
func (e *Engine) reapReceived(c *Context, t time.Time) {}

// reapTimer runs the machine's due timers.
func (e *Engine) reapTimer(c *Context, now time.Time) {}

// reapLocatorsChanged gives the machine the new Ls(local)/Ls(peer).
func (e *Engine) reapLocatorsChanged(c *Context, now time.Time) {}

// reapKeepaliveTimeout passes the peer's Keepalive Timeout option
// (RFC 5534 §5.3).
func (e *Engine) reapKeepaliveTimeout(c *Context) {}

// reapTrouble starts exploration at once (ULP advice, ICMP errors, a
// BROKEN current locator; RFC 5534 §3.5, §4.1).
func (e *Engine) reapTrouble(c *Context, now time.Time, why string) {}

// rcvReap handles Keepalive and Probe messages (RFC 5534 §5.1, §5.2).
func (e *Engine) rcvReap(now time.Time, src, dst netip.Addr, m *message, raw []byte) {
	c := e.lookupControl(now, src, dst, m)
	if c == nil || !e.controlState(now, c) {
		return
	}
	if m.typ == typeKeepalive {
		c.lastActive = ns(now)
	}
}

// switchPair makes (local, peer) the current locator pair. The peer
// locator MUST be verified (RFC 5533 §7.2) and the local one ours;
// a pinned context does not move.
func (e *Engine) switchPair(c *Context, now time.Time, local, peer netip.Addr, why string) bool {
	if c.pinned && why != "pinned" {
		return false
	}
	if !c.peerHas(peer) || local != c.localULID && !e.localHas(local) {
		return false
	}
	if c.lpLocal == local && c.lpPeer == peer {
		return true
	}
	c.lpLocal, c.lpPeer = local, peer
	e.stats.LocatorSwitches++
	e.install(c)
	e.emit(Event{Time: now, Kind: EventLocatorSwitch, Local: local, Peer: peer, Reason: why}, c)
	return true
}
