package engine

import (
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine/reap"
)

// Inputs other than Shim6 messages: data-plane activity and events, ICMPv6
// errors (RFC 5533 §8).

// HandleActivity feeds one context's data-plane counters: the idle clock
// of garbage collection (RFC 5533 §9) and REAP's send and keepalive timers
// (RFC 5534 §4.1). Reports for unknown tags are ignored.
//
// A direction counts as active only when its packet counter grew since the
// previous report: the instants alone are not trusted, because a data
// plane that converts them from another clock at every read (the eBPF data
// plane: time.Now() - CLOCK_MONOTONIC) reports the same old packet a few
// microseconds "newer" at the next read, and an old packet must not count
// as one received now (RFC 5534 §6.1: Exploring -> InboundOk only on a
// payload packet received). A counter that went down was reset (the
// mapping was removed and installed again): any packet counts.
func (e *Engine) HandleActivity(now time.Time, a dataplane.Activity) {
	c := e.byTag[a.LocalTag]
	if c == nil || !c.state.hasPeer() {
		return
	}
	n := ns(now)
	prevSent := c.lastSent
	sent := activityAdvance(&c.txPkts, a.TxPackets, a.LastSent, c.lastSent, n)
	recv := activityAdvance(&c.rxPkts, a.RxPackets, a.LastReceived, c.lastRecv, n)
	if sent == 0 && recv == 0 {
		return
	}
	// The first packet sent after the last one received, when it is new:
	// REAP's Send Timer starts there (RFC 5534 §6.2).
	var ft time.Time
	if f := ns(a.FirstSent); sent != 0 && !a.FirstSent.IsZero() && f > prevSent && f <= sent {
		ft = a.FirstSent
	}
	c.lastSent, c.lastRecv = max(c.lastSent, sent), max(c.lastRecv, recv)
	c.lastActive = max(c.lastActive, c.lastSent, c.lastRecv)
	c.lastHeard = max(c.lastHeard, c.lastRecv)
	var st, rt time.Time
	if c.lastSent != 0 {
		st = fromNS(c.lastSent)
	}
	if c.lastRecv != 0 {
		rt = fromNS(c.lastRecv)
	}
	e.reapActivity(c, now, ft, st, rt)
	e.schedule(c, now)
}

// activityAdvance returns the instant of the newest packet of one direction
// if the data plane counted new packets since the last report (0 if not),
// and records the counter. The instant is clamped to now and, since the
// packet is new, made later than the previous one.
func activityAdvance(seen *uint64, count uint64, at time.Time, prev, now int64) int64 {
	fresh := count > *seen || count < *seen && count > 0
	*seen = count
	if !fresh {
		return 0
	}
	t := now
	if !at.IsZero() {
		t = min(ns(at), now)
	}
	if t <= prev {
		t = min(prev+1, now)
	}
	return t
}

// HandleDataPlaneEvent handles a data-plane report: an unknown context tag
// (RFC 5533 §7.17: R1bis), a trigger to establish a context (RFC 5533 §4,
// deferred establishment), ULP trouble (RFC 5534 §3.5: start exploring)
// or a move of outbound traffic the data plane made on its own (fast
// reroute: REAP confirms or undoes it).
func (e *Engine) HandleDataPlaneEvent(now time.Time, ev dataplane.Event) {
	switch ev.Kind {
	case dataplane.EventUnknownTag:
		if !validAddrs(ev.Src, ev.Dst) {
			e.drop(dropAddress)
			return
		}
		e.payloadUnknown(now, ev.Src, ev.Dst, ev.Tag&tagMask)
	case dataplane.EventTrigger:
		_, _ = e.initiate(now, ev.Src, ev.Dst, 0)
	case dataplane.EventFastReroute, dataplane.EventPeerMoved:
		e.fastReroute(now, ev)
	case dataplane.EventULPTrouble:
		if c := e.byULID[ulidKey{ev.Src.WithZone(""), ev.Dst.WithZone(""), 0}]; c != nil && c.state == StateEstablished {
			e.reapHint(c, now)
			e.schedule(c, now)
		}
	}
}

// HandleICMP handles an ICMPv6 error from src whose packet in error
// (invoking, starting at its IPv6 header) was sent by this host.
//
//   - Parameter Problem "unrecognized Next Header" about an I1 (or I2) we
//     sent: the peer does not implement Shim6; NO-SUPPORT for
//     ICMP_HOLDDOWN_TIME (RFC 5533 §6.2, §7.8).
//   - Destination Unreachable (codes 0-3, 5, 6) and Time Exceeded about a
//     packet of an established context: the current pair is in trouble,
//     REAP explores (RFC 5533 §8).
//
// It reports whether the engine acted on the error; RFC 5533 §8 asks that
// errors not acted upon reach the ULP.
func (e *Engine) HandleICMP(now time.Time, src netip.Addr, typ, code uint8, invoking []byte) bool {
	if src.IsLoopback() {
		// Not about a path: the host's own (the daemon's RFC 6069 TCP-LD
		// errors to its sockets, daemon/tcpld.go, come from ::1).
		return false
	}
	isrc, idst, shim, ok := splitInvoking(invoking)
	if !isrc.IsValid() {
		return false
	}
	if !ok {
		// No Shim6 header: a packet of the ULID pair. Either it went
		// out on the ULID pair (the current pair, or the pair before a
		// switch), or it went out shimmed and the data plane translated
		// the error back to the ULIDs for the ULP (RFC 5533 §8), which
		// the eBPF data plane does only for errors about the current
		// mapping. Both are about the current pair but for a packet sent
		// just before a switch, which costs at most one probe of the
		// working current pair.
		if !pathError(typ, code) {
			return false
		}
		if c := e.byULID[ulidKey{isrc, idst, 0}]; c != nil && c.state == StateEstablished {
			e.reapTrouble(c, now, "ICMP error about a packet of the ULID pair")
			e.schedule(c, now)
			return true
		}
		return false
	}
	ptyp, tag, nonce, ok := peekShim6(shim)
	if !ok {
		return false
	}
	if shim[2]&0x80 != 0 {
		// Payload extension header: it carries CT(peer).
		c := e.lookupPeerTag(tag, isrc, idst)
		if c == nil || !pathError(typ, code) || c.state != StateEstablished {
			return false
		}
		if c.lpLocal != isrc || c.lpPeer != idst {
			// About a pair we no longer use (a packet sent before a
			// switch): no news about the current pair.
			return true
		}
		e.reapTrouble(c, now, "ICMP error on the current pair")
		e.schedule(c, now)
		return true
	}
	if typ == icmpParamProblem && code == icmpCodeUnrecNxtHdr && (ptyp == typeI1 || ptyp == typeI2) {
		c := e.byTag[tag]
		if c == nil || !c.state.pending() || c.hs == nil || c.hs.initNonce != nonce {
			return false
		}
		e.fail(now, c, StateNoSupport, ICMPHolddownTime, "ICMP unrecognized next header: peer has no Shim6")
		e.schedule(c, now)
		return true
	}
	return false
}

// pathError: the ICMP errors that Shim6 handles itself (RFC 5533 §8).
func pathError(typ, code uint8) bool {
	switch typ {
	case icmpDestUnreach:
		switch code {
		case 0, 1, 2, 3, 5, 6:
			return true
		}
	case icmpTimeExceeded:
		return true
	}
	return false
}

// PathTrouble reports whether the default context of the ULID pair
// (local, peer) is ESTABLISHED and REAP is exploring (Exploring or
// InboundOk, RFC 5534 §6): the context knows of no pair that carries its
// payload both ways right now. The daemon answers a TCP retransmission
// timeout on such a pair with an ICMPv6 "no route" error to the local
// socket (RFC 6069 TCP-LD), so that TCP keeps probing at its base RTO and
// resumes within one RTO of REAP's switch instead of after a backed-off
// one.
func (e *Engine) PathTrouble(local, peer netip.Addr) bool {
	c := e.byULID[ulidKey{local.WithZone(""), peer.WithZone(""), 0}]
	return c != nil && c.state == StateEstablished && c.reap != nil && c.reap.State() != reap.Operational
}
