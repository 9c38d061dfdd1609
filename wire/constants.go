package wire

import "strconv"

// Protocol numbers and sizes (RFC 5533 §5, §5.1, §5.2).
const (
	// ProtocolNumber is the IPv6 Next Header value of every Shim6 header
	// (IANA; SPEC-NOTES: not the 61 of one old implementation).
	ProtocolNumber = 140
	// NoNextHeader is the Next Header value of control messages.
	NoNextHeader = 59

	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40
	// MinIPv6MTU bounds a Shim6 control packet including its IPv6 header
	// (RFC 5533 §5.1).
	MinIPv6MTU = 1280
	// MaxControlLen is the longest control message Append builds: the
	// minimum MTU less a bare IPv6 header.
	MaxControlLen = MinIPv6MTU - IPv6HeaderLen
	// MaxErrorPacketLen is the longest "packet in error" an Error message
	// can carry within MaxControlLen.
	MaxErrorPacketLen = MaxControlLen - 8

	// PayloadHeaderLen is the length of the payload extension header.
	PayloadHeaderLen = 8
	// MaxContextTag is the largest 47-bit context tag.
	MaxContextTag = 1<<47 - 1

	// ProbeRecordLen is the length of one sent or received probe record
	// in a Probe message (RFC 5534 §5.2).
	ProbeRecordLen = 40
	// MaxProbeRecords is the most sent (or received) probe records a
	// Probe message can carry: Psent and Precvd are 4-bit fields.
	MaxProbeRecords = 15
)

// MessageType is the 7-bit type of a control message (RFC 5533 §5.3,
// Table 1).
type MessageType uint8

// Control message types.
const (
	TypeI1            MessageType = 1
	TypeR1            MessageType = 2
	TypeI2            MessageType = 3
	TypeR2            MessageType = 4
	TypeR1bis         MessageType = 5
	TypeI2bis         MessageType = 6
	TypeUpdateRequest MessageType = 64
	TypeUpdateAck     MessageType = 65
	TypeKeepalive     MessageType = 66 // RFC 5534 §5.1
	TypeProbe         MessageType = 67 // RFC 5534 §5.2
	TypeError         MessageType = 68
)

var typeNames = map[MessageType]string{
	TypeI1: "I1", TypeR1: "R1", TypeI2: "I2", TypeR2: "R2",
	TypeR1bis: "R1bis", TypeI2bis: "I2bis",
	TypeUpdateRequest: "UpdateRequest", TypeUpdateAck: "UpdateAck",
	TypeKeepalive: "Keepalive", TypeProbe: "Probe", TypeError: "Error",
}

// String returns the name used by shim6ctl decode ("I1", "UpdateRequest",
// ...), or "MessageType(N)" for a type this package does not know.
func (t MessageType) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Known reports whether t is one of the types defined by RFC 5533/5534.
func (t MessageType) Known() bool { _, ok := typeNames[t]; return ok }

// TriggersR1bis reports whether a message of this type referring to an
// unknown context tag triggers an R1bis (type codes 64-127, RFC 5533 §5.3).
func (t MessageType) TriggersR1bis() bool { return t >= 64 && t <= 127 }

// OptionType is the 15-bit type of an option (RFC 5533 §5.15, Table 3).
type OptionType uint16

// Option types.
const (
	OptResponderValidator        OptionType = 1
	OptLocatorList               OptionType = 2
	OptLocatorPreferences        OptionType = 3
	OptCGAParameterDataStructure OptionType = 4
	OptCGASignature              OptionType = 5
	OptULIDPair                  OptionType = 6
	OptForkedInstanceIdentifier  OptionType = 7
	OptKeepaliveTimeout          OptionType = 10 // RFC 5534 §5.3
)

// MaxOptionType is the largest option type (15 bits).
const MaxOptionType = 1<<15 - 1

var optionNames = map[OptionType]string{
	OptResponderValidator:        "ResponderValidator",
	OptLocatorList:               "LocatorList",
	OptLocatorPreferences:        "LocatorPreferences",
	OptCGAParameterDataStructure: "CGAParameterDataStructure",
	OptCGASignature:              "CGASignature",
	OptULIDPair:                  "ULIDPair",
	OptForkedInstanceIdentifier:  "ForkedInstanceIdentifier",
	OptKeepaliveTimeout:          "KeepaliveTimeout",
}

// String returns the option's name as shim6ctl decode prints it
// ("LocatorList", ...), or "Unknown" for a type this package does not know.
func (t OptionType) String() string {
	if s, ok := optionNames[t]; ok {
		return s
	}
	return "Unknown"
}

// Known reports whether t is one of the option types defined by RFC
// 5533/5534.
func (t OptionType) Known() bool { _, ok := optionNames[t]; return ok }

// ErrorCode is the 7-bit code of an Error message (RFC 5533 §5.14, Table 2).
type ErrorCode uint8

// Error codes.
const (
	CodeUnknownType          ErrorCode = 0 // Pointer: first octet of the message type
	CodeCriticalOption       ErrorCode = 1 // Pointer: first octet of the option type
	CodeVerificationFailed   ErrorCode = 2 // Pointer: the inconsistent verification method octet
	CodeGenerationOutOfSync  ErrorCode = 3 // Pointer: the Locator Preferences' generation
	CodeLocatorCountMismatch ErrorCode = 4 // Pointer: the Locator Preferences' Length field
	// CodeDebugFirst..CodeDebugLast are reserved for debugging.
	CodeDebugFirst ErrorCode = 120
	CodeDebugLast  ErrorCode = 127
)

// MaxErrorCode is the largest 7-bit error code.
const MaxErrorCode = 127

func (c ErrorCode) String() string {
	switch c {
	case CodeUnknownType:
		return "unknown message type"
	case CodeCriticalOption:
		return "critical option not recognized"
	case CodeVerificationFailed:
		return "locator verification method failed"
	case CodeGenerationOutOfSync:
		return "locator list generation out of sync"
	case CodeLocatorCountMismatch:
		return "locator preferences count mismatch"
	}
	if c >= CodeDebugFirst && c <= CodeDebugLast {
		return "debug(" + strconv.Itoa(int(c)) + ")"
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// VerificationMethod says how a locator in a Locator List is verified
// (RFC 5533 §5.15.2, Table 4). SPEC-NOTES: 1 = HBA, 2 = CGA, as in the
// table of §5.15.2 (the IANA section of RFC 5533 has them reversed).
type VerificationMethod uint8

// Verification methods.
const (
	VerifyHBA VerificationMethod = 1
	VerifyCGA VerificationMethod = 2
)

func (v VerificationMethod) String() string {
	switch v {
	case VerifyHBA:
		return "HBA"
	case VerifyCGA:
		return "CGA"
	}
	return strconv.Itoa(int(v))
}

// ProbeState is the 2-bit Sta field of a Probe message (RFC 5534 §5.2).
type ProbeState uint8

// REAP states as carried in Probe messages.
const (
	StateOperational ProbeState = 0
	StateExploring   ProbeState = 1
	StateInboundOk   ProbeState = 2
)

// String returns "operational", "exploring" or "inbound_ok".
func (s ProbeState) String() string {
	switch s {
	case StateOperational:
		return "operational"
	case StateExploring:
		return "exploring"
	case StateInboundOk:
		return "inbound_ok"
	}
	return "ProbeState(" + strconv.Itoa(int(s)) + ")"
}

// Locator Preferences flags (RFC 5533 §5.15.3).
const (
	FlagBroken    uint8 = 0x01
	FlagTransient uint8 = 0x02
)
