package engine

import (
	"errors"

	"github.com/goshim6/goshim6/wire"
)

// codec converts between message and the bytes on the wire through package
// wire. It keeps one value of each wire type and reuses it, so that the
// receive and send paths allocate little.
type codec struct {
	i1    wire.I1
	r1    wire.R1
	i2    wire.I2
	r2    wire.R2
	r1bis wire.R1bis
	i2bis wire.I2bis
	upd   wire.UpdateRequest
	ack   wire.UpdateAck
	ka    wire.Keepalive
	probe wire.Probe
	errm  wire.ErrorMessage

	// Option scratch for encoding.
	ll   wire.LocatorList
	lp   wire.LocatorPreferences
	up   wire.ULIDPair
	fii  uint32
	kat  uint16
	sent []wire.ProbeRecord
	rcvd []wire.ProbeRecord
}

var errShort = errors.New("engine: message too short")

func wrapWireErr(err error) error {
	code, ptr, ok := wire.ErrorReply(err)
	return &decodeError{reply: ok, code: uint8(code), off: ptr, err: err}
}

type unmarshaler interface {
	wire.Message
	Unmarshal([]byte) error
}

// decode parses b (a protocol-140 payload) into m. Parse errors come back
// as *decodeError, telling whether RFC 5533 wants an Error in reply; with
// an unknown critical option the message MUST NOT be processed
// (RFC 5533 §5.15), so that is an error too.
func (d *codec) decode(b []byte, m *message) error {
	if wire.IsPayload(b) {
		h, err := wire.ParsePayloadHeader(b)
		if err != nil {
			return wrapWireErr(err)
		}
		m.payload = true
		m.tag = h.ContextTag
		return nil
	}
	t, ok := wire.PeekType(b)
	if !ok {
		return &decodeError{err: errShort}
	}
	var wm unmarshaler
	switch t {
	case wire.TypeI1:
		wm = &d.i1
	case wire.TypeR1:
		wm = &d.r1
	case wire.TypeI2:
		wm = &d.i2
	case wire.TypeR2:
		wm = &d.r2
	case wire.TypeR1bis:
		wm = &d.r1bis
	case wire.TypeI2bis:
		wm = &d.i2bis
	case wire.TypeUpdateRequest:
		wm = &d.upd
	case wire.TypeUpdateAck:
		wm = &d.ack
	case wire.TypeKeepalive:
		wm = &d.ka
	case wire.TypeProbe:
		wm = &d.probe
	case wire.TypeError:
		wm = &d.errm
	default:
		_, err := wire.Parse(b)
		if err == nil {
			err = errShort
		}
		return wrapWireErr(err)
	}
	if err := wm.Unmarshal(b); err != nil {
		return wrapWireErr(err)
	}
	m.typ = uint8(t)
	switch w := wm.(type) {
	case *wire.I1:
		m.tag, m.initNonce = w.InitiatorTag, w.InitiatorNonce
	case *wire.R1:
		m.initNonce, m.respNonce = w.InitiatorNonce, w.ResponderNonce
	case *wire.I2:
		m.tag, m.initNonce, m.respNonce = w.InitiatorTag, w.InitiatorNonce, w.ResponderNonce
	case *wire.R2:
		m.tag, m.initNonce = w.ResponderTag, w.InitiatorNonce
	case *wire.R1bis:
		m.tag, m.respNonce = w.PacketTag, w.ResponderNonce
	case *wire.I2bis:
		m.tag, m.initNonce, m.respNonce, m.ptag = w.InitiatorTag, w.InitiatorNonce, w.ResponderNonce, w.PacketTag
	case *wire.UpdateRequest:
		m.tag, m.reqNonce = w.ReceiverTag, w.RequestNonce
	case *wire.UpdateAck:
		m.tag, m.reqNonce = w.ReceiverTag, w.RequestNonce
	case *wire.Keepalive:
		m.tag = w.ReceiverTag
	case *wire.Probe:
		m.tag = w.ReceiverTag
		m.probeState = uint8(w.State)
		for _, r := range w.Sent {
			m.probeSent = append(m.probeSent, probeReport{r.Src, r.Dst, r.Nonce, r.Data})
		}
		for _, r := range w.Received {
			m.probeRecvd = append(m.probeRecvd, probeReport{r.Src, r.Dst, r.Nonce, r.Data})
		}
	case *wire.ErrorMessage:
		m.errCode, m.errPointer, m.errPacket = uint8(w.Code), w.Pointer, w.Packet
		return nil
	}
	o := wm.Opts()
	m.validator = o.ResponderValidator
	if o.ULIDPair != nil {
		m.hasULIDs = true
		m.ulidSender, m.ulidRecv = o.ULIDPair.Sender, o.ULIDPair.Receiver
	}
	if o.ForkedInstanceID != nil {
		m.hasFII, m.fii = true, *o.ForkedInstanceID
	}
	if ll := o.LocatorList; ll != nil {
		m.hasLocList, m.locGen = true, ll.Generation
		for _, l := range ll.Locators {
			m.locs = append(m.locs, locEntry{addr: l.Addr, method: uint8(l.Method)})
		}
	}
	if lp := o.LocatorPreferences; lp != nil {
		m.hasPrefs, m.prefGen, m.prefElemLen = true, lp.Generation, lp.ElementLen
		for _, p := range lp.Elements {
			m.prefs = append(m.prefs, prefElem{flags: p.Flags, priority: p.Priority, weight: p.Weight})
		}
	}
	m.pds = o.CGAParameterDataStructure
	m.sig = o.CGASignature
	if o.KeepaliveTimeout != nil {
		m.hasKATimeout, m.kaTimeout = true, *o.KeepaliveTimeout
	}
	return nil
}

// encode appends the wire form of m to dst.
func (d *codec) encode(dst []byte, m *message) ([]byte, error) {
	var wm wire.Message
	var o *wire.Options
	switch m.typ {
	case typeI1:
		d.i1 = wire.I1{InitiatorTag: m.tag, InitiatorNonce: m.initNonce}
		wm, o = &d.i1, &d.i1.Options
	case typeR1:
		d.r1 = wire.R1{InitiatorNonce: m.initNonce, ResponderNonce: m.respNonce}
		wm, o = &d.r1, &d.r1.Options
	case typeI2:
		d.i2 = wire.I2{InitiatorTag: m.tag, InitiatorNonce: m.initNonce, ResponderNonce: m.respNonce}
		wm, o = &d.i2, &d.i2.Options
	case typeR2:
		d.r2 = wire.R2{ResponderTag: m.tag, InitiatorNonce: m.initNonce}
		wm, o = &d.r2, &d.r2.Options
	case typeR1bis:
		d.r1bis = wire.R1bis{PacketTag: m.tag, ResponderNonce: m.respNonce}
		wm, o = &d.r1bis, &d.r1bis.Options
	case typeI2bis:
		d.i2bis = wire.I2bis{InitiatorTag: m.tag, InitiatorNonce: m.initNonce, ResponderNonce: m.respNonce, PacketTag: m.ptag}
		wm, o = &d.i2bis, &d.i2bis.Options
	case typeUpdateReq:
		d.upd = wire.UpdateRequest{ReceiverTag: m.tag, RequestNonce: m.reqNonce}
		wm, o = &d.upd, &d.upd.Options
	case typeUpdateAck:
		d.ack = wire.UpdateAck{ReceiverTag: m.tag, RequestNonce: m.reqNonce}
		wm, o = &d.ack, &d.ack.Options
	case typeKeepalive:
		d.ka = wire.Keepalive{ReceiverTag: m.tag}
		wm, o = &d.ka, &d.ka.Options
	case typeProbe:
		d.sent, d.rcvd = d.sent[:0], d.rcvd[:0]
		for _, r := range m.probeSent {
			d.sent = append(d.sent, wire.ProbeRecord{Src: r.src, Dst: r.dst, Nonce: r.nonce, Data: r.data})
		}
		for _, r := range m.probeRecvd {
			d.rcvd = append(d.rcvd, wire.ProbeRecord{Src: r.src, Dst: r.dst, Nonce: r.nonce, Data: r.data})
		}
		d.probe = wire.Probe{ReceiverTag: m.tag, State: wire.ProbeState(m.probeState), Sent: d.sent, Received: d.rcvd}
		wm, o = &d.probe, &d.probe.Options
	case typeError:
		d.errm = wire.ErrorMessage{Code: wire.ErrorCode(m.errCode), Pointer: m.errPointer, Packet: m.errPacket}
		return wire.Append(dst, &d.errm)
	default:
		return dst, errShort
	}
	o.ResponderValidator = m.validator
	if m.hasULIDs {
		d.up = wire.ULIDPair{Sender: m.ulidSender, Receiver: m.ulidRecv}
		o.ULIDPair = &d.up
	}
	if m.hasFII {
		d.fii = m.fii
		o.ForkedInstanceID = &d.fii
	}
	if m.hasLocList {
		d.ll.Generation = m.locGen
		d.ll.Locators = d.ll.Locators[:0]
		for _, l := range m.locs {
			d.ll.Locators = append(d.ll.Locators, wire.Locator{Addr: l.addr, Method: wire.VerificationMethod(l.method)})
		}
		o.LocatorList = &d.ll
	}
	if m.hasPrefs {
		d.lp.Generation, d.lp.ElementLen = m.prefGen, m.prefElemLen
		d.lp.Elements = d.lp.Elements[:0]
		for _, p := range m.prefs {
			d.lp.Elements = append(d.lp.Elements, wire.Preference{Flags: p.flags, Priority: p.priority, Weight: p.weight})
		}
		o.LocatorPreferences = &d.lp
	}
	o.CGAParameterDataStructure = m.pds
	o.CGASignature = m.sig
	if m.hasKATimeout {
		d.kat = m.kaTimeout
		o.KeepaliveTimeout = &d.kat
	}
	return wire.Append(dst, wm)
}

// prefOffset returns the offset of a field of the Locator Preferences
// option of raw: 2 is its Length, 4 its generation (RFC 5533 §10.4).
func prefOffset(raw []byte, field int) int {
	if off, ok := wire.OptionOffset(raw, wire.OptLocatorPreferences); ok {
		return off + field
	}
	return 0
}
