package reap

import (
	"net/netip"
	"slices"
	"time"
)

// Machine is the REAP state of one Shim6 context. It is not safe for
// concurrent use; the engine drives all machines from one goroutine.
//
// Every input appends the resulting actions to out and returns it, like
// append. After any input, NextDeadline tells when Timer must be called.
type Machine struct {
	cfg     *Config
	state   State
	pinned  bool
	primary Pair // the ULID pair
	current Pair // the pair payload uses
	best    Pair // best-ranked usable pair, cached
	local   []Locator
	peer    []Locator
	seed    uint64

	sendTimeout      time.Duration // per-context override; 0 = cfg
	keepaliveTimeout time.Duration // the peer's Keepalive Timeout option; 0 = default

	// Instants in nanoseconds since the Unix epoch; 0 = never / stopped.
	lastSent, lastRecv int64 // payload activity seen
	sendDue            int64 // Send Timer expiry
	kaEnd, kaNext      int64 // Keepalive Timer expiry, next keepalive
	returnDue          int64 // next attempt to go back to best
	exploringSince     int64 // last transition to Exploring
	hintHold           int64 // ULP hints before this are stale (Operational)
	returnTries        uint8

	ex    *exploration
	stats Stats
}

type sentProbe struct {
	ProbeReport
	acked bool
}

// exploration is allocated while exploring and for a while after.
type exploration struct {
	pairs     []Pair
	cursor    int
	count     int   // probes sent on schedule in this episode
	next      int64 // next scheduled probe; 0 = none
	lastProbe int64 // last probe sent
	lastEvent int64 // last probe sent or received (for release)
	began     int64 // start of the episode
	voluntary bool
	sent      []sentProbe   // oldest first, bounded
	recvd     []ProbeReport // oldest first, bounded
}

// New returns the machine of a context that has just been established:
// Operational, no timer running, payload on current (normally the ULID pair
// primary). local and peer are kept, not copied: the caller must replace,
// never modify, a slice it passed (one local slice can be shared by every
// machine).
func New(cfg *Config, now time.Time, primary, current Pair, local, peer []Locator) *Machine {
	m := &Machine{cfg: cfg, primary: primary, current: current, local: local, peer: peer}
	m.seed = cfg.rand().Uint64()
	m.best = m.rankFirst()
	m.scheduleReturn(ns(now))
	return m
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func tm(n int64) time.Time { return time.Unix(0, n) }

// State returns the REAP state.
func (m *Machine) State() State { return m.state }

// Current returns the current locator pair.
func (m *Machine) Current() Pair { return m.current }

// Primary returns the ULID pair the machine was created with.
func (m *Machine) Primary() Pair { return m.primary }

// Best returns the best-ranked usable pair (invalid if there is none).
func (m *Machine) Best() Pair { return m.best }

// Pinned reports whether management pinned the current pair.
func (m *Machine) Pinned() bool { return m.pinned }

// Stats returns the machine's counters.
func (m *Machine) Stats() Stats { return m.stats }

// Pairs returns the candidate pairs in exploration order, best first.
func (m *Machine) Pairs() []Pair {
	return OrderPairs(m.local, m.peer, m.primary, m.cfg.policy(), m.seed)
}

// SendTimeout returns the Send Timeout in use; the engine advertises it in a
// Keepalive Timeout option when it differs from DefaultSendTimeout (RFC 5534
// §5.3).
func (m *Machine) SendTimeout() time.Duration {
	if m.sendTimeout > 0 {
		return m.sendTimeout
	}
	return m.cfg.sendTimeout()
}

// SetSendTimeout overrides the Send Timeout of this context (0 restores the
// configured value). A running Send Timer keeps its expiry.
func (m *Machine) SetSendTimeout(d time.Duration) { m.sendTimeout = max(d, 0) }

// KeepaliveTimeout returns the peer's Keepalive Timeout in use.
func (m *Machine) KeepaliveTimeout() time.Duration {
	if m.keepaliveTimeout > 0 {
		return m.keepaliveTimeout
	}
	return DefaultKeepaliveTimeout
}

// SetKeepaliveTimeout records the value of the peer's Keepalive Timeout
// option (RFC 5534 §5.3, §7); 0 restores the default. It applies from the
// next start of the Keepalive Timer.
func (m *Machine) SetKeepaliveTimeout(d time.Duration) { m.keepaliveTimeout = max(d, 0) }

// SendTimer returns when the Send Timer expires, if it runs (RFC 5534 §6).
func (m *Machine) SendTimer() (time.Time, bool) {
	if m.sendDue == 0 || m.state == Exploring {
		return time.Time{}, false
	}
	return tm(m.sendDue), true
}

// KeepaliveTimer returns when the Keepalive Timer expires, if it runs.
func (m *Machine) KeepaliveTimer() (time.Time, bool) {
	if m.kaEnd == 0 || m.state != Operational {
		return time.Time{}, false
	}
	return tm(m.kaEnd), true
}

// NextDeadline returns when Timer must be called next, if at all.
func (m *Machine) NextDeadline() (time.Time, bool) {
	var d int64
	consider := func(t int64) {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	switch m.state {
	case Operational:
		consider(m.sendDue)
		if m.kaEnd != 0 {
			consider(m.kaNext)
		}
		consider(m.returnDue)
	case Exploring:
		if m.ex != nil {
			consider(m.ex.next)
		}
	case InboundOk:
		consider(m.sendDue)
		if m.ex != nil {
			consider(m.ex.next)
		}
	}
	if d == 0 {
		return time.Time{}, false
	}
	return tm(d), true
}

// Timer runs everything due at or before now.
func (m *Machine) Timer(now time.Time, out []Action) []Action {
	return m.runTimers(ns(now), true, out)
}

// Activity reports the data plane's view of the context: when the last
// payload packet was sent and received (zero: never). Advances of either
// instant are the events of RFC 5534 §6.1 and §6.2, applied in time order.
func (m *Machine) Activity(now, lastSent, lastReceived time.Time, out []Action) []Action {
	return m.ActivitySince(now, time.Time{}, lastSent, lastReceived, out)
}

// ActivitySince is Activity with the first packet sent after lastReceived
// as well (zero if unknown; see dataplane.Activity.FirstSent): the Send
// Timer then starts at that packet (§6.2) rather than at lastSent.
func (m *Machine) ActivitySince(now, firstSent, lastSent, lastReceived time.Time, out []Action) []Action {
	t := ns(now)
	s, r := min(ns(lastSent), t), min(ns(lastReceived), t)
	newS, newR := s > m.lastSent, r > m.lastRecv
	if f := ns(firstSent); newS && f > m.lastSent && f < s && f >= r {
		// An earlier send of the same report: only a received packet
		// before it comes first.
		if newR {
			out = m.payloadReceived(r, out)
			newR = false
		}
		out = m.payloadSent(f, out)
	}
	switch {
	case newS && newR && r < s:
		out = m.payloadReceived(r, out)
		out = m.payloadSent(s, out)
	case newS && newR:
		out = m.payloadSent(s, out)
		out = m.payloadReceived(r, out)
	case newS:
		out = m.payloadSent(s, out)
	case newR:
		out = m.payloadReceived(r, out)
	}
	// The events lie in the past: run what fell due since.
	return m.runTimers(t, false, out)
}

// PayloadSent reports one payload packet, or a Shim6 control message other
// than Keepalive and Probe, sent on the context (RFC 5534 §6.2).
func (m *Machine) PayloadSent(now time.Time, out []Action) []Action {
	return m.payloadSent(ns(now), out)
}

// PayloadReceived reports one payload packet, or a Shim6 control message
// other than Keepalive and Probe, received on the context (RFC 5534 §6.1).
func (m *Machine) PayloadReceived(now time.Time, out []Action) []Action {
	return m.payloadReceived(ns(now), out)
}

func (m *Machine) payloadSent(t int64, out []Action) []Action {
	out = m.runTimers(t, false, out)
	m.lastSent = max(m.lastSent, t)
	switch m.state {
	case Operational: // START Send, STOP Keepalive
		m.stopKeepalive()
		m.startSend(t)
		m.scheduleReturn(t)
	case InboundOk: // START Send
		m.startSend(t)
	}
	return out
}

func (m *Machine) payloadReceived(t int64, out []Action) []Action {
	out = m.runTimers(t, false, out)
	m.lastRecv = max(m.lastRecv, t)
	switch m.state {
	case Operational: // STOP Send, START Keepalive
		m.sendDue = 0
		if m.kaEnd == 0 {
			m.startKeepalive(t)
		}
		m.scheduleReturn(t)
	case Exploring: // SEND Probe InboundOk, START Send, GOTO InboundOk
		// Only a packet that arrived while exploring is news: one
		// received before the exploration began (reported late by the
		// data plane's poll) was already part of the evidence that led
		// to Exploring.
		if t > m.exploringSince {
			out = m.inboundWhileExploring(t, out)
		}
	case InboundOk: // STOP Send
		m.sendDue = 0
	}
	return out
}

// KeepaliveReceived reports a valid Keepalive message (RFC 5534 §6.6).
func (m *Machine) KeepaliveReceived(now time.Time, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	switch m.state {
	case Operational, InboundOk: // STOP Send
		m.sendDue = 0
	case Exploring:
		out = m.inboundWhileExploring(t, out)
	}
	return out
}

func (m *Machine) inboundWhileExploring(t int64, out []Action) []Action {
	out = m.setState(InboundOk, ReasonInbound, out)
	out = m.scheduledProbe(t, out)
	m.startSend(t)
	return out
}

// ULPTrouble is an external hint that the upper layer sees trouble on the
// context (e.g. a TCP retransmission timeout, RFC 5534 §3.3 "negative
// feedback"): an Operational machine starts exploring at once. While already
// exploring the hint changes nothing, and so it does while the hint is
// stale (see HintStale).
func (m *Machine) ULPTrouble(now time.Time, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	if m.state != Operational {
		return out
	}
	if m.hintStale(t) {
		m.stats.HintsIgnored++
		return out
	}
	return m.startExploring(t, ReasonHint, false, out)
}

// Trouble starts exploring at once, like ULPTrouble, for evidence that is
// not stale after a switch: an ICMP error about the current pair, a
// locator of the current pair that went away or became BROKEN, or
// management.
func (m *Machine) Trouble(now time.Time, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	if m.state == Operational {
		out = m.startExploring(t, ReasonHint, false, out)
	}
	return out
}

// FastReroute reports that the data plane moved payload to p on its own,
// without waiting for REAP: after a ULP hint (a TCP retransmission timeout)
// it moved to its precomputed backup pair, or it followed the peer, whose
// payload arrived on the reverse of p. Payload is flowing on p already; the
// machine must confirm p or choose another pair (RFC 5534 §4.2: the
// exploration decides the current pair). An Operational machine starts
// exploring at once with p first (then the usual order: the current pair,
// then the pairs that share no locator with it); an exploring machine
// probes p next. Unlike ULPTrouble the move is never stale: the data plane
// only makes it when the hint is not (see HintHold).
func (m *Machine) FastReroute(now time.Time, p Pair, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	if m.state == Operational {
		m.beginEpisode(t, false)
		m.ex.preferNext(p)
		m.stats.Explorations++
		out = m.setState(Exploring, ReasonFastReroute, out)
		m.exploringSince = t
		return m.scheduledProbe(t, out)
	}
	m.ex.preferNext(p)
	return out
}

// EpisodeStart returns when the current (or last) exploration episode
// began; zero if there was none.
func (m *Machine) EpisodeStart() time.Time {
	if m.ex == nil || m.ex.began == 0 {
		return time.Time{}
	}
	return tm(m.ex.began)
}

// SetCurrent makes p the current pair without any exploration: the engine
// changed it on its own (recovery adopted another pair, or it refused a
// switch the machine asked for). Nothing is sent.
func (m *Machine) SetCurrent(now time.Time, p Pair) {
	if p == m.current || !p.IsValid() {
		return
	}
	m.current = p
	m.returnDue = 0
	m.scheduleReturn(ns(now))
}

// HintHold returns the instant until which a ULP hint is stale if the
// machine is Operational then (see HintStale); zero if none.
func (m *Machine) HintHold() time.Time {
	if m.hintHold == 0 {
		return time.Time{}
	}
	return tm(m.hintHold)
}

// HintStale reports whether a ULP hint at now would be ignored: the
// machine is Operational and the peer confirmed the current pair recently.
//
// A probe exchange that confirms the current pair (§6.8, §6.9: the peer
// reports our probe on it, and its probe reached us) shows both directions
// working at that instant. The upper layer's retransmission timers were
// armed and backed off before it: a TCP sender's backed-off RTO fires once
// more after the repair, about as long after it as the trouble had lasted
// (the timer doubles), and that retransmission is what gets through. Such
// a hint says nothing about the pair now. So hints are ignored for the
// Send Timeout plus the length of the exploration episode (the trouble
// began at most one Send Timeout before the episode, or the Send Timer
// would have started it) after the confirmation. Failure detection does
// not suffer: a failure of the new pair in that window is still caught by
// the Send Timer, within the Send Timeout, as without hints.
func (m *Machine) HintStale(now time.Time) bool {
	return m.state == Operational && m.hintStale(ns(now))
}

func (m *Machine) hintStale(t int64) bool { return t < m.hintHold }

// confirmed records that the peer confirmed the current pair at t.
func (m *Machine) confirmed(t int64) {
	began := t
	if m.ex != nil && m.ex.began != 0 {
		began = min(m.ex.began, t)
	}
	m.hintHold = t + int64(m.SendTimeout()) + min(t-began, int64(m.cfg.maxProbeTimeout()))
}

// SetLocators replaces the local and peer locator lists (after an Update,
// an address change or new Locator Preferences). The slices are kept, not
// copied. If the current pair is no longer usable (a locator went away, is
// BROKEN or unverified) an Operational machine starts exploring at once.
func (m *Machine) SetLocators(now time.Time, local, peer []Locator, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	m.local, m.peer = local, peer
	m.best = m.rankFirst()
	usableNow := m.rank(m.current) >= 0
	switch {
	case m.state == Operational && !usableNow && !m.pinned:
		out = m.startExploring(t, ReasonLocators, false, out)
	case m.state != Operational:
		m.ex.pairs = m.explorationPairs(false)
		m.ex.cursor = 0
	}
	m.returnTries, m.returnDue = 0, 0
	m.scheduleReturn(t)
	return out
}

// Pin makes p the current pair and keeps it there (management); exploration
// still runs but only probes p.
func (m *Machine) Pin(now time.Time, p Pair, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	m.pinned = true
	m.returnDue = 0
	if p != m.current {
		m.current = p
		m.stats.Switches++
		out = append(out, Action{Kind: SwitchPair, Pair: p, Reason: ReasonPinned})
	}
	if m.state != Operational {
		m.ex.pairs = m.explorationPairs(false)
		m.ex.cursor = 0
	}
	return out
}

// Unpin lets the machine choose pairs again.
func (m *Machine) Unpin(now time.Time, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	m.pinned = false
	if m.state != Operational {
		m.ex.pairs = m.explorationPairs(false)
		m.ex.cursor = 0
	}
	m.returnTries = 0
	m.scheduleReturn(t)
	return out
}

// ProbeReceived reports a valid Probe message for this context that arrived
// from peer locator src at local locator dst (RFC 5534 §6.7-§6.9).
func (m *Machine) ProbeReceived(now time.Time, src, dst netip.Addr, p *Probe, out []Action) []Action {
	t := ns(now)
	out = m.runTimers(t, false, out)
	m.stats.ProbesReceived++
	if p.State == Exploring && m.state == Operational {
		m.beginEpisode(t, false)
	}
	m.ensureExploration(t)
	ex := m.ex
	ex.lastEvent = t
	confirmed := m.matchReports(p.Recvd)
	if len(p.Sent) > 0 {
		ex.remember(p.Sent[0], m.cfg.maxReports())
	}
	switch p.State {
	case Exploring: // §6.7
		changed := m.state != InboundOk
		m.stopKeepalive()
		out = m.setState(InboundOk, ReasonPeerExploring, out)
		ex.preferNext(Pair{Local: dst, Peer: src})
		if changed {
			out = m.scheduledProbe(t, out)
		} else {
			out = m.responseProbe(t, out)
		}
		m.restartSend(t)
	case InboundOk: // §6.8
		changed := m.state != Operational
		out = m.choose(confirmed, out)
		if slices.Contains(confirmed, m.current) {
			m.confirmed(t)
		}
		m.stopKeepalive()
		out = m.enterOperational(t, ReasonPeerConfirmed, out)
		if changed {
			out = m.probe(t, m.current, out)
		} else {
			out = m.responseProbe(t, out)
		}
		// The peer has not confirmed our current pair: answer also over
		// the reverse of the pair its probe came on, which worked one way
		// and most likely works the other, so that the peer learns its
		// probe arrived even if our current pair is dead.
		if rev := (Pair{Local: dst, Peer: src}); len(confirmed) == 0 && rev != m.current && m.rank(rev) >= 0 {
			out = m.probe(t, rev, out)
		}
		m.restartSend(t)
	default: // Operational, §6.9 (reserved values are treated alike)
		out = m.choose(confirmed, out)
		if slices.Contains(confirmed, m.current) {
			m.confirmed(t)
		}
		m.sendDue = 0
		if m.kaEnd == 0 {
			m.startKeepalive(t)
		}
		out = m.enterOperational(t, ReasonPeerConfirmed, out)
	}
	return out
}

// runTimers fires the timers due before t (or at t when inclusive).
func (m *Machine) runTimers(t int64, inclusive bool, out []Action) []Action {
	m.maybeRelease(t)
	due := func(d int64) bool { return d != 0 && (d < t || inclusive && d == t) }
	for range 8 {
		switch {
		case m.state != Exploring && due(m.sendDue): // §6.4
			expired := m.sendDue
			m.sendDue = 0
			if m.state == Operational {
				m.beginEpisode(t, false)
				m.ex.pairs = m.afterDiverse(m.ex.pairs)
				m.stats.Explorations++
				out = m.setState(Exploring, ReasonSendTimeout, out)
				out = m.scheduledProbe(t, out)
			} else {
				out = m.setState(Exploring, ReasonSendTimeout, out)
				m.ex.recvd = m.ex.recvd[:0]
				out = m.scheduledProbe(t, out)
			}
			// The exploration began when the timer expired, even if
			// the machine learns it later (a late activity report).
			m.exploringSince = expired
		case m.state == Operational && m.kaEnd != 0 && due(m.kaNext): // §4.1 (5), §6.3
			m.stats.KeepalivesSent++
			out = append(out, Action{Kind: SendKeepalive, Pair: m.current})
			if t >= m.kaEnd {
				m.stopKeepalive()
			} else {
				m.kaNext = min(t+int64(m.keepaliveInterval()), m.kaEnd)
			}
		case m.state != Operational && m.ex != nil && due(m.ex.next): // §6.5
			out = m.scheduledProbe(t, out)
			if m.state == InboundOk && m.sendDue == 0 {
				m.startSend(t)
			}
		case m.state == Operational && due(m.returnDue):
			m.returnDue = 0
			if m.wantReturn() && max(m.lastSent, m.lastRecv) >= t-int64(m.cfg.returnInterval()) {
				out = m.startExploring(t, ReasonReturn, true, out)
			}
		default:
			return out
		}
	}
	return out
}

func (m *Machine) startSend(t int64) {
	if m.sendDue == 0 {
		m.restartSend(t)
	}
}

func (m *Machine) restartSend(t int64) {
	m.sendDue = t + int64(jitter(m.cfg.rand(), m.SendTimeout(), 1-sendJitter, 1))
}

func (m *Machine) startKeepalive(t int64) {
	m.kaEnd = t + int64(m.KeepaliveTimeout())
	m.kaNext = t + int64(m.keepaliveInterval())
}

func (m *Machine) stopKeepalive() { m.kaEnd, m.kaNext = 0, 0 }

// keepaliveInterval is one third to one half of the Keepalive Timeout,
// randomised (RFC 5534 §4.1, §7).
func (m *Machine) keepaliveInterval() time.Duration {
	return jitter(m.cfg.rand(), m.KeepaliveTimeout(), 1.0/3, 1.0/2)
}

func (m *Machine) setState(to State, why Reason, out []Action) []Action {
	if m.state == to {
		return out
	}
	out = append(out, Action{Kind: StateChange, From: m.state, To: to, Reason: why})
	if to == Exploring {
		m.sendDue = 0 // no timer runs in Exploring (§6)
		m.stopKeepalive()
	}
	m.state = to
	return out
}

// startExploring leaves Operational for Exploring and sends the first probe
// (§6.4); voluntary explorations (going back) probe in rank order, the
// others probe the current pair first.
func (m *Machine) startExploring(t int64, why Reason, voluntary bool, out []Action) []Action {
	m.beginEpisode(t, voluntary)
	m.stats.Explorations++
	out = m.setState(Exploring, why, out)
	m.exploringSince = t
	return m.scheduledProbe(t, out)
}

func (m *Machine) enterOperational(t int64, why Reason, out []Action) []Action {
	if m.state == Operational {
		return out
	}
	out = m.setState(Operational, why, out)
	ex := m.ex
	ex.next = 0
	if ex.voluntary {
		if m.current == m.best {
			m.returnTries = 0
		} else if m.returnTries < 16 {
			m.returnTries++
		}
		ex.voluntary = false
	}
	m.returnDue = 0
	m.scheduleReturn(t)
	return out
}

// beginEpisode starts a new exploration episode: fresh reports, fresh
// back-off, pairs in exploration order.
func (m *Machine) beginEpisode(t int64, voluntary bool) {
	m.ensureExploration(t)
	ex := m.ex
	ex.sent, ex.recvd = ex.sent[:0], ex.recvd[:0]
	ex.count, ex.next, ex.cursor = 0, 0, 0
	ex.voluntary = voluntary
	ex.pairs = m.explorationPairs(!voluntary)
	ex.lastEvent, ex.began = t, t
}

func (m *Machine) ensureExploration(t int64) {
	if m.ex == nil {
		m.ex = &exploration{pairs: m.explorationPairs(true), lastEvent: t, began: t}
	}
}

// maybeRelease frees the exploration state of an Operational machine once
// late probes can no longer matter.
func (m *Machine) maybeRelease(t int64) {
	if m.ex != nil && m.state == Operational && t-m.ex.lastEvent > 2*int64(m.cfg.maxProbeTimeout()) {
		m.ex = nil
	}
}

// explorationPairs lists the pairs to probe: the pinned pair only, or the
// ranked candidates, with the current pair first for a failure exploration.
func (m *Machine) explorationPairs(currentFirst bool) []Pair {
	if m.pinned {
		return []Pair{m.current}
	}
	ps := m.Pairs()
	if currentFirst {
		// The current pair first, then the pairs that share no locator
		// with it (a failure usually takes one locator's path down), each
		// group in rank order.
		shared := func(p Pair) int {
			n := 0
			if p.Local == m.current.Local {
				n++
			}
			if p.Peer == m.current.Peer {
				n++
			}
			return n
		}
		if i := slices.Index(ps, m.current); i >= 0 {
			ps = slices.Delete(ps, i, i+1)
			ps = slices.Insert(ps, 0, m.current)
		}
		rest := ps
		if len(ps) > 0 && ps[0] == m.current {
			rest = ps[1:]
		}
		slices.SortStableFunc(rest, func(x, y Pair) int { return shared(x) - shared(y) })
	}
	if len(ps) == 0 && m.current.IsValid() {
		ps = append(ps, m.current) // nothing better to try
	}
	return ps
}

// afterDiverse reorders a failure exploration's pairs (current pair first,
// then those sharing no locator with it, then the rest) for a Send Timeout:
// the current pair then goes after the first of the pairs that share no
// locator with it. Nothing at all came back on it for a Send Timeout while
// we sent, so it is the pair least likely to work, and probing it first
// costs an Initial Probe Timeout (0.5 s) of every outage. (A ULP hint or an
// ICMP error keeps it first: those are often spurious or about one
// connection, and the current pair then usually still works.) RFC 5534 §5
// leaves the order to the node; the probing stays sequential.
func (m *Machine) afterDiverse(ps []Pair) []Pair {
	if len(ps) < 2 || ps[0] != m.current || ps[1].Local == m.current.Local || ps[1].Peer == m.current.Peer {
		return ps
	}
	ps[0], ps[1] = ps[1], ps[0]
	return ps
}

// rank returns the position of p among the candidates, -1 if unusable.
func (m *Machine) rank(p Pair) int {
	if m.pinned {
		if p == m.current {
			return 0
		}
		return -1
	}
	return slices.Index(m.Pairs(), p)
}

func (m *Machine) rankFirst() Pair {
	p, _ := bestPair(m.local, m.peer, m.primary, m.cfg.policy(), m.seed)
	return p
}

func (m *Machine) wantReturn() bool {
	return !m.pinned && m.cfg.returnInterval() > 0 && m.best.IsValid() && m.current != m.best
}

// scheduleReturn arms the return timer if the context is away from its
// best pair and the timer is not armed.
func (m *Machine) scheduleReturn(t int64) {
	if m.returnDue != 0 || m.state != Operational || !m.wantReturn() {
		return
	}
	d := m.cfg.returnInterval() << min(m.returnTries, 20)
	d = min(d, m.cfg.maxReturnInterval())
	m.returnDue = t + int64(jitter(m.cfg.rand(), d, 1-probeJitter, 1+probeJitter))
}

// choose makes the best-ranked pair among those the peer confirmed the
// current pair (§6.8: "if no received probes have been reported, the
// current address pair is unchanged").
func (m *Machine) choose(confirmed []Pair, out []Action) []Action {
	if len(confirmed) == 0 || m.pinned {
		return out
	}
	ps := m.Pairs()
	best := -1
	for _, c := range confirmed {
		if i := slices.Index(ps, c); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	if best < 0 || ps[best] == m.current {
		return out
	}
	m.current = ps[best]
	m.stats.Switches++
	why := ReasonPeerConfirmed
	if m.ex.voluntary {
		why = ReasonReturn
	}
	return append(out, Action{Kind: SwitchPair, Pair: m.current, Reason: why})
}

// matchReports returns the pairs of our probes that the peer reports
// having received, and marks them acknowledged. Reports that match no probe
// we remember are ignored (RFC 5534 §8: off-path attackers cannot guess
// nonces).
func (m *Machine) matchReports(rs []ProbeReport) []Pair {
	var out []Pair
	for _, r := range rs {
		found := false
		for i := range m.ex.sent {
			s := &m.ex.sent[i]
			if s.Nonce == r.Nonce && s.Src == r.Src && s.Dst == r.Dst {
				s.acked, found = true, true
				if !slices.Contains(out, Pair{s.Src, s.Dst}) {
					out = append(out, Pair{s.Src, s.Dst})
				}
				break
			}
		}
		if !found {
			m.stats.ReportsIgnored++
		}
	}
	return out
}

// scheduledProbe sends the next probe of the sequence and schedules the
// one after it: InitialProbes probes InitialProbeTimeout apart, then
// exponential back-off to MaxProbeTimeout, randomised (§4.3).
func (m *Machine) scheduledProbe(t int64, out []Action) []Action {
	ex := m.ex
	out = m.probe(t, ex.nextPair(), out)
	ex.count++
	ex.next = t + int64(m.probeInterval(ex.count))
	return out
}

// responseProbe answers a peer message without changing the schedule, at
// most one per responseSpacing.
func (m *Machine) responseProbe(t int64, out []Action) []Action {
	if m.ex.lastProbe != 0 && t-m.ex.lastProbe < int64(responseSpacing) {
		return out
	}
	p := m.current
	if m.state != Operational {
		p = m.ex.nextPair()
	}
	return m.probe(t, p, out)
}

func (m *Machine) probeInterval(k int) time.Duration {
	d := m.nominalInterval(k)
	d = jitter(m.cfg.rand(), d, 1-probeJitter, 1+probeJitter)
	return min(d, m.cfg.maxProbeTimeout())
}

// nominalInterval is the probe interval after k probes, before
// randomisation.
func (m *Machine) nominalInterval(k int) time.Duration {
	d := m.cfg.initialProbeTimeout()
	if n := k - m.cfg.initialProbes(); n >= 0 {
		d <<= min(n+1, 30)
	}
	return min(d, m.cfg.maxProbeTimeout())
}

// ProbingAtMax reports whether the machine is Exploring and its probe
// interval has grown to Max Probe Timeout: "Reaching the Max Probe Timeout
// may also serve as a hint to the garbage collection process that the
// context is no longer usable" (RFC 5534 §4.3).
func (m *Machine) ProbingAtMax() bool {
	return m.state == Exploring && m.ex != nil && m.ex.count > 0 &&
		m.nominalInterval(m.ex.count) >= m.cfg.maxProbeTimeout()
}

// probe sends one Probe from p.Local to p.Peer with the current state and
// the reports (§6.1).
func (m *Machine) probe(t int64, p Pair, out []Action) []Action {
	if !p.IsValid() {
		return out
	}
	ex := m.ex
	limit := m.cfg.maxReports()
	self := ProbeReport{Src: p.Local, Dst: p.Peer, Nonce: uint32(m.cfg.rand().Uint64())}
	pr := Probe{State: m.state, Sent: make([]ProbeReport, 1, min(limit, 1+len(ex.sent)))}
	pr.Sent[0] = self
	for i := len(ex.sent) - 1; i >= 0 && len(pr.Sent) < limit; i-- {
		if !ex.sent[i].acked {
			pr.Sent = append(pr.Sent, ex.sent[i].ProbeReport)
		}
	}
	// RFC 5534 §5.2: received probes are those that arrived since the
	// last transition to Exploring (ex.recvd is cleared then), included
	// whenever there are any, in every state. In InboundOk entered on
	// payload or a Keepalive (§6.1, §6.6) there may be none: the probe
	// then carries Precvd = 0, although §5.2 says "MUST include at least
	// one" (see docs/protocol-conformance.md); receivers accept it (§6.8).
	if n := min(len(ex.recvd), limit); n > 0 {
		pr.Recvd = make([]ProbeReport, 0, n)
		for i := len(ex.recvd) - 1; i >= 0 && len(pr.Recvd) < n; i-- {
			pr.Recvd = append(pr.Recvd, ex.recvd[i])
		}
	}
	if len(ex.sent) >= 2*limit {
		ex.sent = append(ex.sent[:0], ex.sent[1:]...)
	}
	ex.sent = append(ex.sent, sentProbe{ProbeReport: self})
	ex.lastProbe, ex.lastEvent = t, t
	m.stats.ProbesSent++
	return append(out, Action{Kind: SendProbe, Pair: p, Probe: pr})
}

func (ex *exploration) nextPair() Pair {
	if len(ex.pairs) == 0 {
		return Pair{}
	}
	p := ex.pairs[ex.cursor%len(ex.pairs)]
	ex.cursor++
	return p
}

// preferNext moves p, if it is a candidate, to the next position of the
// walk: the reverse of the pair a peer probe came over is the most likely
// to work (RFC 5534 Appendix A, example 4).
func (ex *exploration) preferNext(p Pair) {
	n := len(ex.pairs)
	if n == 0 {
		return
	}
	i := slices.Index(ex.pairs, p)
	if i < 0 {
		return
	}
	c := ex.cursor % n
	ex.cursor = c
	if i == c {
		return
	}
	// Rotate p into position c, keeping the relative order of the rest.
	if i > c {
		copy(ex.pairs[c+1:i+1], ex.pairs[c:i])
	} else {
		copy(ex.pairs[i:c], ex.pairs[i+1:c+1])
		c--
		ex.cursor = c
	}
	ex.pairs[c] = p
}

// remember records a received probe's own fields, bounded, without
// duplicates.
func (ex *exploration) remember(r ProbeReport, limit int) {
	if slices.Contains(ex.recvd, r) {
		return
	}
	if len(ex.recvd) >= limit {
		ex.recvd = append(ex.recvd[:0], ex.recvd[1:]...)
	}
	ex.recvd = append(ex.recvd, r)
}
