package sim

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

// FlowOptions shape an upper-layer flow.
type FlowOptions struct {
	// Interval between packets in each direction (default 100 ms).
	Interval time.Duration
	// OneWay: only the first end sends (the second stays silent, as a
	// receiver of a one-way stream, RFC 5534 Appendix A example 3).
	OneWay bool
	// Acks: the second end sends nothing of its own but answers every
	// packet it receives with one packet, like the receiver of a bulk TCP
	// transfer sending ACKs; RTO then applies to the first end only (the
	// TCP sender). Ignored with OneWay.
	Acks bool
	// Size of the payload (at least 16 octets; default 100).
	Size int
	// FII picks the forked context the flow uses (RFC 5533 §4.2).
	FII uint32
	// RTO, if set, makes each sending end behave like TCP after a
	// retransmission timeout: when nothing came back for RTO it tells the
	// data plane "ULP trouble" (RFC 5534 §3.3), then again after 2×RTO,
	// 4×RTO, ... up to 60 s, until packets arrive again. As in TCP, a
	// timer that has backed off still fires once after packets arrive
	// again (the retransmission that then gets through): one stale hint
	// after a repair.
	RTO time.Duration
	// Gap is the silence at a receiver that counts as an outage (default
	// 3×Interval).
	Gap time.Duration
}

// Outage is an interval during which a receiver got nothing.
type Outage struct {
	From, To time.Time
}

// Duration returns To - From.
func (o Outage) Duration() time.Duration { return o.To.Sub(o.From) }

// FlowStats are one direction's counters, seen from its receiver.
type FlowStats struct {
	Sent, Received, Duplicates uint64
	LastReceived               time.Time
	Outages                    []Outage
	// Hints counts "ULP trouble" reports made by the sending end.
	Hints uint64
}

type endpoint struct {
	f        *Flow
	h        *Host
	local    netip.Addr // ULID
	peer     netip.Addr // ULID
	dir      byte       // 0: first end sends, 1: second end sends
	sending  bool
	seq      uint64
	seen     map[uint64]bool
	stats    FlowStats // of the packets this end receives
	sent     uint64
	hints    uint64
	rto      time.Duration
	nextHint time.Time
	// recovered: packets arrived while the timer was backed off; it
	// still fires once (a stale hint), then starts afresh.
	recovered bool
}

// Flow is an upper-layer conversation between two ULIDs through both
// hosts' data planes: packets carry a flow id and sequence numbers so that
// end-to-end delivery (right addresses, no loss, no duplicates) can be
// asserted.
type Flow struct {
	w       *World
	id      uint32
	opts    FlowOptions
	a, b    *endpoint
	running bool
}

// NewFlow starts a flow between a (ULID aULID) and b (ULID bULID).
func (w *World) NewFlow(a *Host, aULID netip.Addr, b *Host, bULID netip.Addr, opts FlowOptions) *Flow {
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	if opts.Size < 16 {
		opts.Size = 100
	}
	if opts.Gap <= 0 {
		opts.Gap = 3 * opts.Interval
	}
	w.flows++
	id := w.flows
	f := &Flow{w: w, id: id, opts: opts}
	f.a = &endpoint{f: f, h: a, local: aULID, peer: bULID, dir: 0, sending: true, seen: map[uint64]bool{}}
	f.b = &endpoint{f: f, h: b, local: bULID, peer: aULID, dir: 1, sending: !opts.OneWay && !opts.Acks, seen: map[uint64]bool{}}
	a.endpoints[id] = f.a
	b.endpoints[id] = f.b
	f.Start()
	return f
}

// Start (re)starts sending.
func (f *Flow) Start() {
	if f.running {
		return
	}
	f.running = true
	for _, e := range []*endpoint{f.a, f.b} {
		if e.sending {
			e.rto = f.opts.RTO
			e.nextHint = f.w.now.Add(e.rto)
			f.w.After(0, e.tick)
		}
	}
}

// Stop stops sending (the hosts keep their state).
func (f *Flow) Stop() { f.running = false }

// AtoB returns the statistics of the first end's packets, seen by the
// second end; BtoA the reverse.
func (f *Flow) AtoB() FlowStats { return f.b.snapshot(f.a) }

// BtoA returns the statistics of the second end's packets.
func (f *Flow) BtoA() FlowStats { return f.a.snapshot(f.b) }

func (e *endpoint) snapshot(sender *endpoint) FlowStats {
	s := e.stats
	s.Sent = sender.sent
	s.Hints = sender.hints
	s.Outages = append([]Outage(nil), s.Outages...)
	return s
}

func (e *endpoint) tick() {
	f := e.f
	if !f.running {
		return
	}
	w := f.w
	e.send()
	if e.rto > 0 && e.h.up && !w.now.Before(e.nextHint) {
		e.hints++
		w.tracef("%s: ULP trouble %s->%s (nothing received since %v)", e.h.Name, e.local, e.peer, e.stats.LastReceived.Sub(Epoch))
		e.h.dp.ReportULPTrouble(e.local, e.peer)
		e.rto = min(2*e.rto, 60*time.Second)
		if e.recovered {
			e.rto, e.recovered = f.opts.RTO, false
		}
		e.nextHint = w.now.Add(e.rto)
	}
	w.After(f.opts.Interval, e.tick)
}

// send sends the endpoint's next packet.
func (e *endpoint) send() {
	f := e.f
	e.seq++
	e.sent++
	b := make([]byte, f.opts.Size)
	binary.BigEndian.PutUint32(b[0:4], f.id)
	b[4] = e.dir
	binary.BigEndian.PutUint64(b[8:16], e.seq)
	e.h.SendULP(dataplane.Packet{Src: e.local, Dst: e.peer, Proto: 17, FII: f.opts.FII, Payload: b})
}

// deliverULP hands a restored packet to the flow endpoint it belongs to.
func (h *Host) deliverULP(p dataplane.Packet) {
	if len(p.Payload) < 16 {
		h.Misdelivered++
		return
	}
	id := binary.BigEndian.Uint32(p.Payload[0:4])
	e := h.endpoints[id]
	dir := p.Payload[4]
	if e == nil || e.dir == dir || p.Dst != e.local || p.Src != e.peer {
		h.Misdelivered++
		return
	}
	seq := binary.BigEndian.Uint64(p.Payload[8:16])
	now := h.w.now
	if e.seen[seq] {
		e.stats.Duplicates++
		return
	}
	e.seen[seq] = true
	e.stats.Received++
	if last := e.stats.LastReceived; !last.IsZero() && now.Sub(last) > e.f.opts.Gap {
		e.stats.Outages = append(e.stats.Outages, Outage{From: last, To: now})
	}
	e.stats.LastReceived = now
	switch {
	case e.f.opts.RTO <= 0:
	case e.rto > e.f.opts.RTO:
		// Backed off: the armed timer still fires (TCP retransmits
		// only then, and that retransmission is what gets through).
		e.recovered = true
	default:
		e.rto = e.f.opts.RTO
		e.nextHint = now.Add(e.rto)
	}
	if e.dir == 1 && e.f.opts.Acks && !e.f.opts.OneWay && e.f.running {
		e.send() // the ACK of what just arrived
	}
}

// LongestOutage returns the longest outage of s that ended after since,
// and the one still running at now (if the last packet is older than the
// flow's gap threshold).
func (s FlowStats) LongestOutage(since, now time.Time, gap time.Duration) time.Duration {
	var longest time.Duration
	for _, o := range s.Outages {
		if o.To.After(since) {
			longest = max(longest, o.Duration())
		}
	}
	if !s.LastReceived.IsZero() && now.Sub(s.LastReceived) > gap {
		longest = max(longest, now.Sub(s.LastReceived))
	}
	return longest
}

// Gap returns the flow's outage threshold.
func (f *Flow) Gap() time.Duration { return f.opts.Gap }
