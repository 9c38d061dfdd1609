package reap

import "github.com/goshim6/goshim6/wire"

// Wire returns the Probe message (RFC 5534 §5.2) carrying p, addressed to
// the peer's context tag.
func (p *Probe) Wire(receiverTag uint64) *wire.Probe {
	w := &wire.Probe{ReceiverTag: receiverTag, State: wire.ProbeState(p.State)}
	w.Sent = make([]wire.ProbeRecord, len(p.Sent))
	for i, r := range p.Sent {
		w.Sent[i] = wire.ProbeRecord(r)
	}
	if len(p.Recvd) > 0 {
		w.Received = make([]wire.ProbeRecord, len(p.Recvd))
		for i, r := range p.Recvd {
			w.Received[i] = wire.ProbeRecord(r)
		}
	}
	return w
}

// ProbeFromWire returns the content of a parsed Probe message.
func ProbeFromWire(w *wire.Probe) Probe {
	p := Probe{State: State(w.State)}
	p.Sent = make([]ProbeReport, len(w.Sent))
	for i, r := range w.Sent {
		p.Sent[i] = ProbeReport(r)
	}
	if len(w.Received) > 0 {
		p.Recvd = make([]ProbeReport, len(w.Received))
		for i, r := range w.Received {
			p.Recvd[i] = ProbeReport(r)
		}
	}
	return p
}

// Keepalive returns the Keepalive message (RFC 5534 §5.1) for the peer's
// context tag; it carries nothing else.
func Keepalive(receiverTag uint64) *wire.Keepalive {
	return &wire.Keepalive{ReceiverTag: receiverTag}
}
