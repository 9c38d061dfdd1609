package engine

import "net/netip"

// Message types (RFC 5533 §5.3, Table 1; RFC 5534 §5).
const (
	typeI1        uint8 = 1
	typeR1        uint8 = 2
	typeI2        uint8 = 3
	typeR2        uint8 = 4
	typeR1bis     uint8 = 5
	typeI2bis     uint8 = 6
	typeUpdateReq uint8 = 64
	typeUpdateAck uint8 = 65
	typeKeepalive uint8 = 66
	typeProbe     uint8 = 67
	typeError     uint8 = 68
)

// locEntry is one locator of a Locator List option (RFC 5533 §5.15.2).
type locEntry struct {
	addr   netip.Addr
	method uint8
}

// prefElem is one Locator Preferences element (RFC 5533 §5.15.3).
type prefElem struct {
	flags, priority, weight uint8
}

// probeReport is one sent/received probe record of a Probe message
// (RFC 5534 §5.2).
type probeReport struct {
	src, dst netip.Addr
	nonce    uint32
	data     uint32
}

// message is the engine's view of one decoded (or to be encoded) Shim6
// message; codec.go converts between it and package wire. Fields not used
// by a type are zero.
type message struct {
	typ uint8
	// tag is the context tag the message carries: the Initiator Context
	// Tag (I1, I2, I2bis), the Responder Context Tag (R2), the Packet
	// Context Tag (R1bis) or the Receiver Context Tag (others, and the
	// payload extension header).
	tag       uint64
	payload   bool // a Shim6 Payload Extension header, not a control message
	initNonce uint32
	respNonce uint32
	// ptag is the Packet Context Tag of an I2bis (RFC 5533 §5.9).
	ptag     uint64
	reqNonce uint32 // Update Request/Ack nonce

	validator []byte

	hasULIDs             bool
	ulidSender, ulidRecv netip.Addr

	hasFII bool
	fii    uint32

	hasLocList bool
	locGen     uint32
	locs       []locEntry

	hasPrefs     bool
	prefGen      uint32
	prefElemLen  uint8
	prefs        []prefElem
	pds          []byte
	sig          []byte
	hasKATimeout bool
	kaTimeout    uint16

	// Error message (RFC 5533 §5.14).
	errCode    uint8
	errPointer uint16
	errPacket  []byte

	// Probe (RFC 5534 §5.2).
	probeState uint8
	probeSent  []probeReport
	probeRecvd []probeReport
}

// reset clears m for reuse, keeping slice capacity.
func (m *message) reset() {
	locs, prefs, sent, recvd := m.locs[:0], m.prefs[:0], m.probeSent[:0], m.probeRecvd[:0]
	*m = message{locs: locs, prefs: prefs, probeSent: sent, probeRecvd: recvd}
}
