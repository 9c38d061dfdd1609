package engine

import (
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine/reap"
)

// Fast reroute (docs/dataplane.md, docs/protocol-conformance.md): every
// installed mapping of an ESTABLISHED default context carries a backup
// pair and the context's candidate pairs. The data plane moves the
// context's outbound traffic on its own, at once, when the upper layer
// sees trouble (a TCP retransmission timeout: to the backup pair) or when
// the peer's payload arrives on another candidate pair (to its reverse:
// "following" the peer), and reports the move. The engine then lets REAP
// decide: it explores with the new pair first, and whatever REAP ends on
// is installed, which ends the data plane's move: confirmed when it is the
// new pair, undone otherwise (a spurious timeout, or another pair works).
//
// RFC 5533 lets a host send on any pair of verified locators (§7.2: a
// locator is used once verified); REAP (RFC 5534 §4.2, §6.9) still decides
// the current pair. What the data plane does ahead of REAP is only a
// guess of the pair REAP will confirm, limited to verified locators.

// frMaxRetries bounds the explorations of one move that end without any
// confirmation (frCheck) before the move is undone.
const frMaxRetries = 3

// frAvoidFor: a pair a move went to and REAP then rejected is not offered
// as the backup for this long (REAP's own return, 30 s after leaving the
// best pair, probes it again). Without it each TCP timeout moves the
// retransmission to the dead pair again, and TCP, whose only
// transmissions are then its retransmissions, never gets through.
const frAvoidFor = 30 * time.Second

// frState is a context's fast-reroute state, allocated at its first move.
type frState struct {
	// pending: the data plane moved traffic to pair and no mapping has
	// been installed since.
	pending bool
	follow  bool // the move followed the peer (EventPeerMoved)
	pair    dataplane.Pair
	since   int64
	// cur and hold: the current pair and REAP's HintHold when the move
	// was made; a confirmation by the peer changes one of them.
	cur     dataplane.Pair
	hold    int64
	retries uint8
	// peerPair: a pair the peer is known to send on although it is not
	// our current one, so that its payload there does not make the data
	// plane follow: our previous pair after a switch (the peer leaves it
	// one round trip later), or a pair we followed it to but REAP chose
	// another one (a unidirectional failure).
	peerPair dataplane.Pair
	// peerUntil ends peerPair (0: until the next switch).
	peerUntil int64
	// avoid: a pair a move went to that REAP rejected; not the backup
	// before avoidUntil (frAvoidFor).
	avoid      dataplane.Pair
	avoidUntil int64
}

// frSwitched records that the current pair of c changes from (local,
// peer) at now: the peer may still send on it for about a round trip
// (until it has our probe and switches too), which must not make the data
// plane follow it back. The exploration that led here took at least a
// round trip; twice its length (at least 50 ms, at most a Send Timeout)
// bounds that.
func (e *Engine) frSwitched(c *Context, now time.Time, local, peer netip.Addr) {
	if !e.cfg.FastReroute || c.fii != 0 {
		return
	}
	if c.fr == nil {
		c.fr = &frState{}
	}
	d := 50 * time.Millisecond
	if c.reap != nil {
		if b := c.reap.EpisodeStart(); !b.IsZero() && now.Sub(b) > d/2 {
			d = 2 * now.Sub(b)
		}
		d = min(d, c.reap.SendTimeout())
	}
	c.fr.peerPair = dataplane.Pair{Local: local, Peer: peer}
	c.fr.peerUntil = ns(now.Add(d))
}

// frFields fills the fast-reroute fields of the mapping of c: the
// candidate pairs in exploration order, the backup (the best pair that
// shares no locator with the current one, else the best other pair), and
// the instant before which a ULP hint is stale.
func (e *Engine) frFields(c *Context, now time.Time, m *dataplane.Mapping) {
	c.frAfter, c.frOn = 0, false
	if !e.cfg.FastReroute || c.reap == nil || c.fii != 0 || c.state != StateEstablished || c.reap.Pinned() {
		return
	}
	ps := c.reap.Pairs()
	if len(ps) < 2 {
		return
	}
	cur := reap.Pair{Local: c.lpLocal, Peer: c.lpPeer}
	var avoid dataplane.Pair
	if f := c.fr; f != nil && f.avoid.IsValid() {
		if ns(now) < f.avoidUntil && (f.avoid.Local != cur.Local || f.avoid.Peer != cur.Peer) {
			avoid = f.avoid
		} else {
			f.avoid, f.avoidUntil = dataplane.Pair{}, 0
		}
	}
	m.Pairs = make([]dataplane.Pair, 0, len(ps))
	var other, disjoint dataplane.Pair
	for _, p := range ps {
		dp := dataplane.Pair{Local: p.Local, Peer: p.Peer}
		m.Pairs = append(m.Pairs, dp)
		if p == cur || dp == avoid {
			continue
		}
		if !other.IsValid() {
			other = dp
		}
		if !disjoint.IsValid() && p.Local != cur.Local && p.Peer != cur.Peer {
			disjoint = dp
		}
	}
	m.Backup = disjoint
	if !m.Backup.IsValid() {
		m.Backup = other
	}
	m.BackupAfter = c.reap.HintHold()
	c.frAfter, c.frOn = ns(m.BackupAfter), true
	if c.fr != nil && c.fr.peerPair.IsValid() {
		m.PeerPair = c.fr.peerPair
		if c.fr.peerUntil != 0 {
			m.PeerPairUntil = fromNS(c.fr.peerUntil)
		}
	}
}

// frResolve ends a pending move when a mapping is about to be installed:
// confirmed if the current pair is the one the data plane moved to,
// undone otherwise.
func (e *Engine) frResolve(c *Context, now time.Time) {
	f := c.fr
	if f == nil || !f.pending {
		return
	}
	f.pending = false
	if c.lpLocal == f.pair.Local && c.lpPeer == f.pair.Peer {
		e.stats.FastReroutesConfirmed++
		if f.follow {
			// The peer moved there first: it no longer sends on
			// our previous pair.
			f.peerPair, f.peerUntil = dataplane.Pair{}, 0
		}
		e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer,
			Reason: "fast reroute confirmed: " + f.pair.String()}, c)
		return
	}
	e.stats.FastReroutesUndone++
	f.avoid, f.avoidUntil = f.pair, ns(now.Add(frAvoidFor))
	if f.follow {
		// REAP rejected the pair the peer sends on: not followed
		// again (until the next switch).
		f.peerPair, f.peerUntil = f.pair, 0
	}
	e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer,
		Reason: "fast reroute undone: back from " + f.pair.String() + " to " + c.lpLocal.String() + " > " + c.lpPeer.String()}, c)
}

// frCheck runs after REAP acted on c: once REAP is Operational again, the
// pair it ended on is installed, which ends a pending move (if REAP
// switched, the switch installed it already). A new stale-hint window
// (BackupAfter) is installed too.
func (e *Engine) frCheck(c *Context, now time.Time) {
	if c.reap == nil || !c.installed || c.dead {
		return
	}
	if f := c.fr; f != nil && f.pending && c.reap.State() == reap.Operational {
		confirmed := ns(c.reap.HintHold()) != f.hold || c.lpLocal != f.cur.Local || c.lpPeer != f.cur.Peer
		if !confirmed {
			// REAP went Operational on a probe that reported none of
			// ours (RFC 5534 §6.8: the current pair is then
			// unchanged; a peer that entered InboundOk on payload has
			// no probe of ours to report): no evidence for the
			// current pair nor against the moved one, which is the
			// better guess (an RTO or the peer's own move led there).
			// The move stays; the peer's next probes report ours and
			// REAP chooses. If none comes within a Send Timeout,
			// explore again with the moved pair first (a new episode:
			// reports of the old one no longer count), at most
			// frMaxRetries times, then undo.
			if ns(now)-f.since < int64(c.reap.SendTimeout()) {
				return
			}
			if f.retries < frMaxRetries {
				f.retries++
				f.since = ns(now)
				f.hold = ns(c.reap.HintHold())
				e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer,
					Reason: "fast reroute: nothing confirmed; exploring " + f.pair.String() + " again"}, c)
				e.reapApply(c, now, c.reap.FastReroute(now, reap.Pair{Local: f.pair.Local, Peer: f.pair.Peer}, e.acts[:0]))
				return
			}
		}
		e.install(c, now)
		return
	}
	if c.frOn && ns(c.reap.HintHold()) != c.frAfter {
		e.install(c, now)
	}
}

// fastReroute handles EventFastReroute and EventPeerMoved: the data plane
// moved the traffic of ev's ULID pair to ev.Pair.
func (e *Engine) fastReroute(now time.Time, ev dataplane.Event) {
	follow := ev.Kind == dataplane.EventPeerMoved
	if follow {
		e.stats.PeerMovesFollowed++
	} else {
		e.stats.FastReroutesEngaged++
	}
	c := e.byULID[ulidKey{ev.Src.WithZone(""), ev.Dst.WithZone(""), 0}]
	if c == nil || (ev.Tag != 0 && ev.Tag&tagMask != c.localTag) {
		// No context, or the event is about a mapping replaced since:
		// installing the new one ended the move.
		e.stats.FastReroutesUndone++
		return
	}
	p := ev.Pair
	if c.lpLocal == p.Local && c.lpPeer == p.Peer {
		// REAP switched there already (and installed it).
		e.stats.FastReroutesConfirmed++
		return
	}
	if c.fr == nil {
		c.fr = &frState{}
	}
	f := c.fr
	f.pending, f.follow, f.pair, f.since, f.retries = true, follow, p, ns(now), 0
	f.cur = dataplane.Pair{Local: c.lpLocal, Peer: c.lpPeer}
	if c.reap != nil {
		f.hold = ns(c.reap.HintHold())
	}
	why := "fast reroute: traffic moved to " + p.String() + " (ULP trouble)"
	if follow {
		why = "fast reroute: the peer moved, traffic follows to " + p.String()
	}
	usable := validAddrs(p.Local, p.Peer) && c.peerHas(p.Peer) && e.localOK(c, p.Local)
	if c.state != StateEstablished || c.reap == nil || !e.cfg.FastReroute || !usable {
		// REAP cannot confirm it: undo.
		e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer, Reason: why}, c)
		if c.installed {
			e.install(c, now)
		} else {
			e.frResolve(c, now)
		}
		return
	}
	e.emit(Event{Time: now, Kind: EventReapState, Local: c.lpLocal, Peer: c.lpPeer, Reason: why}, c)
	e.reapSync(c, now)
	e.reapApply(c, now, c.reap.FastReroute(now, reap.Pair{Local: p.Local, Peer: p.Peer}, e.acts[:0]))
	e.schedule(c, now)
}

// frPair is a helper for tests and ContextInfo: the pair the data plane
// moved to, if a move is pending.
func (c *Context) frPair() (netip.Addr, netip.Addr, bool) {
	if c.fr == nil || !c.fr.pending {
		return netip.Addr{}, netip.Addr{}, false
	}
	return c.fr.pair.Local, c.fr.pair.Peer, true
}
