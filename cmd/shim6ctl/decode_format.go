package main

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/goshim6/goshim6/wire"
)

// decodeResult is one decoded (or failed) packet.
type decodeResult struct {
	src, dst netip.Addr
	skip     bool   // no Shim6 header (pcap input skips these)
	err      string // decoding failed ...
	offset   int    // ... at this octet of the input packet

	payload  *wire.PayloadHeader
	msg      wire.Message
	raw      []byte // the Shim6 header
	checksum bool   // control message checksum verifies
	reply    error  // a receiver would answer with an Error message
}

// decodePacket finds and decodes the Shim6 header of an IPv6 packet.
func decodePacket(pkt []byte) decodeResult {
	src, dst, off, err := wire.FindShim6(pkt)
	if err != nil {
		r := decodeFailure(err, 0)
		r.skip = errors.Is(err, wire.ErrNoShim6) || errors.Is(err, wire.ErrNotIPv6) || errors.Is(err, wire.ErrTruncated)
		return r
	}
	r := decodeShim6(pkt[off:], off)
	r.src, r.dst = src, dst
	return r
}

// decodeFailure turns a wire error into a result; base is the offset of the
// Shim6 header in the input.
func decodeFailure(err error, base int) decodeResult {
	var pe *wire.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if pe.Detail != "" {
			msg += ": " + pe.Detail
		}
		return decodeResult{err: msg, offset: base + pe.Offset}
	}
	return decodeResult{err: err.Error(), offset: base}
}

// decodeShim6 decodes the Shim6 header b found at offset base.
func decodeShim6(b []byte, base int) decodeResult {
	if wire.IsPayload(b) {
		h, err := wire.ParsePayloadHeader(b)
		if err != nil {
			return decodeFailure(err, base)
		}
		return decodeResult{payload: &h, raw: b[:wire.PayloadHeaderLen]}
	}
	m, err := wire.ParseIgnoringChecksum(b)
	if m == nil {
		return decodeFailure(err, base)
	}
	n := (int(b[1]) + 1) * 8
	return decodeResult{msg: m, raw: b[:n], checksum: wire.VerifyChecksum(b), reply: err}
}

// --- JSON (docs/decode-json.md) ---

type decodeErrorJSON struct {
	Error  string `json:"error"`
	Offset int    `json:"offset"`
}

type packetJSON struct {
	Src   string     `json:"src"`
	Dst   string     `json:"dst"`
	Shim6 *shim6JSON `json:"shim6"`
}

type shim6JSON struct {
	Kind string `json:"kind"` // "payload" or "control"

	ContextTag *uint64 `json:"context_tag,omitempty"`
	NextHeader *uint8  `json:"next_header,omitempty"`

	Type                string        `json:"type,omitempty"`
	TypeCode            *uint8        `json:"type_code,omitempty"`
	ChecksumValid       *bool         `json:"checksum_valid,omitempty"`
	InitiatorContextTag *uint64       `json:"initiator_context_tag,omitempty"`
	ResponderContextTag *uint64       `json:"responder_context_tag,omitempty"`
	ReceiverContextTag  *uint64       `json:"receiver_context_tag,omitempty"`
	PacketContextTag    *uint64       `json:"packet_context_tag,omitempty"`
	InitiatorNonce      *uint32       `json:"initiator_nonce,omitempty"`
	ResponderNonce      *uint32       `json:"responder_nonce,omitempty"`
	RequestNonce        *uint32       `json:"request_nonce,omitempty"`
	State               string        `json:"state,omitempty"`
	SentProbes          *[]probeJSON  `json:"sent_probes,omitempty"`
	ReceivedProbes      *[]probeJSON  `json:"received_probes,omitempty"`
	ErrorCode           *uint8        `json:"error_code,omitempty"`
	Pointer             *uint16       `json:"pointer,omitempty"`
	PacketInError       *string       `json:"packet_in_error,omitempty"`
	Options             *[]optionJSON `json:"options,omitempty"`
}

type probeJSON struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Nonce       uint32 `json:"nonce"`
	Data        uint32 `json:"data"`
}

type optionJSON struct {
	Type     uint16 `json:"type"`
	Name     string `json:"name"`
	Critical bool   `json:"critical"`

	Validator        *string           `json:"validator,omitempty"`
	Generation       *uint32           `json:"generation,omitempty"`
	Locators         *[]locatorJSON    `json:"locators,omitempty"`
	ElementLength    *uint8            `json:"element_length,omitempty"`
	Preferences      *[]preferenceJSON `json:"preferences,omitempty"`
	SenderULID       string            `json:"sender_ulid,omitempty"`
	ReceiverULID     string            `json:"receiver_ulid,omitempty"`
	FII              *uint32           `json:"fii,omitempty"`
	KeepaliveTimeout *uint16           `json:"keepalive_timeout,omitempty"`
	Signature        *string           `json:"signature,omitempty"`
	Data             *string           `json:"data,omitempty"`
}

type locatorJSON struct {
	Address            string `json:"address"`
	VerificationMethod uint8  `json:"verification_method"`
}

type preferenceJSON struct {
	Flags    uint8  `json:"flags"`
	Priority *uint8 `json:"priority,omitempty"`
	Weight   *uint8 `json:"weight,omitempty"`
}

func decodePtr[T any](v T) *T { return &v }

func decodeAddrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (r decodeResult) packetJSON() packetJSON {
	return packetJSON{Src: decodeAddrString(r.src), Dst: decodeAddrString(r.dst), Shim6: r.shim6JSON()}
}

func (r decodeResult) shim6JSON() *shim6JSON {
	if r.payload != nil {
		return &shim6JSON{Kind: "payload", ContextTag: decodePtr(r.payload.ContextTag), NextHeader: decodePtr(r.payload.NextHeader)}
	}
	t := r.msg.Type()
	s := &shim6JSON{Kind: "control", Type: t.String(), TypeCode: decodePtr(uint8(t)), ChecksumValid: decodePtr(r.checksum)}
	switch m := r.msg.(type) {
	case *wire.I1:
		s.InitiatorContextTag, s.InitiatorNonce = decodePtr(m.InitiatorTag), decodePtr(m.InitiatorNonce)
	case *wire.R1:
		s.InitiatorNonce, s.ResponderNonce = decodePtr(m.InitiatorNonce), decodePtr(m.ResponderNonce)
	case *wire.I2:
		s.InitiatorContextTag, s.InitiatorNonce, s.ResponderNonce = decodePtr(m.InitiatorTag), decodePtr(m.InitiatorNonce), decodePtr(m.ResponderNonce)
	case *wire.R2:
		s.ResponderContextTag, s.InitiatorNonce = decodePtr(m.ResponderTag), decodePtr(m.InitiatorNonce)
	case *wire.R1bis:
		s.PacketContextTag, s.ResponderNonce = decodePtr(m.PacketTag), decodePtr(m.ResponderNonce)
	case *wire.I2bis:
		s.InitiatorContextTag, s.InitiatorNonce, s.ResponderNonce = decodePtr(m.InitiatorTag), decodePtr(m.InitiatorNonce), decodePtr(m.ResponderNonce)
		s.PacketContextTag = decodePtr(m.PacketTag)
	case *wire.UpdateRequest:
		s.ReceiverContextTag, s.RequestNonce = decodePtr(m.ReceiverTag), decodePtr(m.RequestNonce)
	case *wire.UpdateAck:
		s.ReceiverContextTag, s.RequestNonce = decodePtr(m.ReceiverTag), decodePtr(m.RequestNonce)
	case *wire.Keepalive:
		s.ReceiverContextTag = decodePtr(m.ReceiverTag)
	case *wire.Probe:
		s.ReceiverContextTag, s.State = decodePtr(m.ReceiverTag), m.State.String()
		s.SentProbes, s.ReceivedProbes = decodePtr(decodeProbesJSON(m.Sent)), decodePtr(decodeProbesJSON(m.Received))
	case *wire.ErrorMessage:
		s.ErrorCode, s.Pointer, s.PacketInError = decodePtr(uint8(m.Code)), decodePtr(m.Pointer), decodePtr(hex.EncodeToString(m.Packet))
		return s
	}
	s.Options = decodePtr(decodeOptionsJSON(r.raw))
	return s
}

func decodeProbesJSON(rs []wire.ProbeRecord) []probeJSON {
	out := make([]probeJSON, len(rs))
	for i, p := range rs {
		out[i] = probeJSON{Source: p.Src.String(), Destination: p.Dst.String(), Nonce: p.Nonce, Data: p.Data}
	}
	return out
}

// decodeOptionsJSON lists the options in wire order. Known types are decoded
// when their contents are well formed; otherwise their contents are
// given as hex "data".
func decodeOptionsJSON(msg []byte) []optionJSON {
	raw, _ := wire.RawOptions(msg)
	out := make([]optionJSON, 0, len(raw))
	for _, o := range raw {
		j := optionJSON{Type: uint16(o.Type), Name: o.Type.String(), Critical: o.Critical}
		if !decodeOptionJSON(&j, o) {
			j.Data = decodePtr(hex.EncodeToString(o.Data))
		}
		out = append(out, j)
	}
	return out
}

func decodeOptionJSON(j *optionJSON, o wire.RawOption) bool {
	switch o.Type {
	case wire.OptResponderValidator:
		j.Validator = decodePtr(hex.EncodeToString(o.Data))
	case wire.OptLocatorList:
		ll, err := wire.DecodeLocatorList(o.Data)
		if err != nil {
			return false
		}
		locs := make([]locatorJSON, len(ll.Locators))
		for i, l := range ll.Locators {
			locs[i] = locatorJSON{Address: l.Addr.String(), VerificationMethod: uint8(l.Method)}
		}
		j.Generation, j.Locators = decodePtr(ll.Generation), &locs
	case wire.OptLocatorPreferences:
		lp, err := wire.DecodeLocatorPreferences(o.Data)
		if err != nil {
			return false
		}
		prefs := make([]preferenceJSON, len(lp.Elements))
		for i, e := range lp.Elements {
			prefs[i].Flags = e.Flags
			if lp.ElementLen >= 2 {
				prefs[i].Priority = decodePtr(e.Priority)
			}
			if lp.ElementLen >= 3 {
				prefs[i].Weight = decodePtr(e.Weight)
			}
		}
		j.Generation, j.ElementLength, j.Preferences = decodePtr(lp.Generation), decodePtr(lp.ElementLen), &prefs
	case wire.OptCGAParameterDataStructure:
		j.Data = decodePtr(hex.EncodeToString(o.Data))
	case wire.OptCGASignature:
		j.Signature = decodePtr(hex.EncodeToString(o.Data))
	case wire.OptULIDPair:
		u, err := wire.DecodeULIDPair(o.Data)
		if err != nil {
			return false
		}
		j.SenderULID, j.ReceiverULID = u.Sender.String(), u.Receiver.String()
	case wire.OptForkedInstanceIdentifier:
		v, err := wire.DecodeForkedInstanceID(o.Data)
		if err != nil {
			return false
		}
		j.FII = decodePtr(v)
	case wire.OptKeepaliveTimeout:
		v, err := wire.DecodeKeepaliveTimeout(o.Data)
		if err != nil {
			return false
		}
		j.KeepaliveTimeout = decodePtr(v)
	default:
		return false
	}
	return true
}

// --- text ---

var decodeProtoNames = map[uint8]string{0: "Hop-by-Hop", 6: "TCP", 17: "UDP", 43: "Routing", 44: "Fragment",
	50: "ESP", 51: "AH", 58: "ICMPv6", 59: "No Next Header", 60: "Destination Options", 132: "SCTP", 140: "Shim6"}

func decodeTagText(t uint64) string { return fmt.Sprintf("0x%012x (%d)", t, t) }

func (r decodeResult) text(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d ", n)
	if r.src.IsValid() {
		fmt.Fprintf(&b, "%s > %s ", r.src, r.dst)
	}
	if h := r.payload; h != nil {
		name := decodeProtoNames[h.NextHeader]
		if name != "" {
			name = " (" + name + ")"
		}
		fmt.Fprintf(&b, "Shim6 payload extension header: context tag %s, next header %d%s\n", decodeTagText(h.ContextTag), h.NextHeader, name)
		return b.String()
	}
	t := r.msg.Type()
	valid := "valid"
	if !r.checksum {
		valid = fmt.Sprintf("INVALID, should be 0x%04x", wire.Checksum(r.raw))
	}
	fmt.Fprintf(&b, "Shim6 %s (type %d), %d octets, checksum 0x%04x %s\n", t, uint8(t), len(r.raw), binary.BigEndian.Uint16(r.raw[4:6]), valid)
	field := func(name, value string) { fmt.Fprintf(&b, "    %-22s %s\n", name, value) }
	nonce := func(name string, v uint32) { field(name, fmt.Sprintf("0x%08x", v)) }
	switch m := r.msg.(type) {
	case *wire.I1:
		field("initiator context tag", decodeTagText(m.InitiatorTag))
		nonce("initiator nonce", m.InitiatorNonce)
	case *wire.R1:
		nonce("initiator nonce", m.InitiatorNonce)
		nonce("responder nonce", m.ResponderNonce)
	case *wire.I2:
		field("initiator context tag", decodeTagText(m.InitiatorTag))
		nonce("initiator nonce", m.InitiatorNonce)
		nonce("responder nonce", m.ResponderNonce)
	case *wire.R2:
		field("responder context tag", decodeTagText(m.ResponderTag))
		nonce("initiator nonce", m.InitiatorNonce)
	case *wire.R1bis:
		field("packet context tag", decodeTagText(m.PacketTag))
		nonce("responder nonce", m.ResponderNonce)
	case *wire.I2bis:
		field("initiator context tag", decodeTagText(m.InitiatorTag))
		nonce("initiator nonce", m.InitiatorNonce)
		nonce("responder nonce", m.ResponderNonce)
		field("packet context tag", decodeTagText(m.PacketTag))
	case *wire.UpdateRequest:
		field("receiver context tag", decodeTagText(m.ReceiverTag))
		nonce("request nonce", m.RequestNonce)
	case *wire.UpdateAck:
		field("receiver context tag", decodeTagText(m.ReceiverTag))
		nonce("request nonce", m.RequestNonce)
	case *wire.Keepalive:
		field("receiver context tag", decodeTagText(m.ReceiverTag))
	case *wire.Probe:
		field("receiver context tag", decodeTagText(m.ReceiverTag))
		field("state", m.State.String())
		for _, p := range []struct {
			name string
			rs   []wire.ProbeRecord
		}{{"sent probe", m.Sent}, {"received probe", m.Received}} {
			for i, rec := range p.rs {
				field(fmt.Sprintf("%s %d", p.name, i+1), fmt.Sprintf("%s > %s nonce 0x%08x data 0x%08x", rec.Src, rec.Dst, rec.Nonce, rec.Data))
			}
		}
	case *wire.ErrorMessage:
		field("error code", fmt.Sprintf("%d (%s)", m.Code, m.Code))
		field("pointer", fmt.Sprint(m.Pointer))
		field("packet in error", fmt.Sprintf("%d octets: %s", len(m.Packet), hex.EncodeToString(m.Packet)))
	}
	for _, o := range decodeOptionsJSON(r.raw) {
		decodeOptionText(&b, o, t)
	}
	if code, decodePtr, ok := wire.ErrorReply(r.reply); ok {
		fmt.Fprintf(&b, "    note: a receiver answers with an Error message, code %d (%s), pointer %d\n", code, code, decodePtr)
	}
	return b.String()
}

func decodeOptionText(b *strings.Builder, o optionJSON, t wire.MessageType) {
	crit := ""
	if o.Critical {
		crit = ", critical"
	}
	ignored := ""
	if !wire.AllowedOptions(t, wire.OptionType(o.Type)) {
		ignored = ", not defined for " + t.String()
	}
	fmt.Fprintf(b, "    option %s (type %d%s%s)", o.Name, o.Type, crit, ignored)
	switch {
	case o.Validator != nil:
		fmt.Fprintf(b, ": validator %s\n", *o.Validator)
	case o.Locators != nil:
		fmt.Fprintf(b, ": generation %d, %d locators\n", *o.Generation, len(*o.Locators))
		for i, l := range *o.Locators {
			fmt.Fprintf(b, "        [%d] %s %s\n", i+1, l.Address, wire.VerificationMethod(l.VerificationMethod))
		}
	case o.Preferences != nil:
		fmt.Fprintf(b, ": generation %d, element length %d\n", *o.Generation, *o.ElementLength)
		for i, p := range *o.Preferences {
			fmt.Fprintf(b, "        [%d] flags 0x%02x%s", i+1, p.Flags, decodeFlagText(p.Flags))
			if p.Priority != nil {
				fmt.Fprintf(b, " priority %d", *p.Priority)
			}
			if p.Weight != nil {
				fmt.Fprintf(b, " weight %d", *p.Weight)
			}
			b.WriteString("\n")
		}
	case o.SenderULID != "":
		fmt.Fprintf(b, ": sender %s, receiver %s\n", o.SenderULID, o.ReceiverULID)
	case o.FII != nil:
		fmt.Fprintf(b, ": %d\n", *o.FII)
	case o.KeepaliveTimeout != nil:
		fmt.Fprintf(b, ": %d s\n", *o.KeepaliveTimeout)
	case o.Signature != nil:
		fmt.Fprintf(b, ": %d octets %s\n", len(*o.Signature)/2, *o.Signature)
	case o.Data != nil:
		fmt.Fprintf(b, ": %d octets %s\n", len(*o.Data)/2, *o.Data)
	default:
		b.WriteString("\n")
	}
}

func decodeFlagText(f uint8) string {
	var s []string
	if f&wire.FlagBroken != 0 {
		s = append(s, "BROKEN")
	}
	if f&wire.FlagTransient != 0 {
		s = append(s, "TRANSIENT")
	}
	if len(s) == 0 {
		return ""
	}
	return " " + strings.Join(s, "|")
}
