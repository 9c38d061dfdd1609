package cga

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// CGA Parameters data structure, RFC 3972 §3:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Modifier (16 octets)                     +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Subnet Prefix (8 octets)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Collision Count|                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                  Public Key (variable length)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~           Extension Fields (optional, variable length)        ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension fields, RFC 4581 §2 (a sequence of TLVs):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Extension Type        |   Extension Data Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Extension Data                          ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

const (
	// ModifierLen is the length of the modifier field.
	ModifierLen = 16
	// fixedLen is modifier + subnet prefix + collision count.
	fixedLen = 25
	// offPrefix and offCC locate the subnet prefix and collision count.
	offPrefix = 16
	offCC     = 24
	// MaxCollisionCount is the largest valid collision count (RFC 3972 §3).
	MaxCollisionCount = 2
	// MaxSec is the largest Sec this package generates or accepts
	// (RFC 4982 §6; SPEC-NOTES.md).
	MaxSec = 2
	// ExtMultiPrefix is the CGA extension type of the HBA multi-prefix
	// extension (RFC 5535 §10).
	ExtMultiPrefix uint16 = 0x0012
	// maxExtData is the largest extension data length (16-bit field).
	maxExtData = 0xffff
)

// Extension is one RFC 4581 extension field. Unknown types are kept
// byte for byte: they are part of both hashes (RFC 3972 §5).
type Extension struct {
	Type uint16
	Data []byte
}

// Params is a parsed CGA Parameters data structure (RFC 3972 §3).
//
// Parse fills it from bytes; Marshal turns it back into exactly the same
// bytes. Slices alias the buffer given to Parse's copy, not the caller's.
type Params struct {
	Modifier [ModifierLen]byte
	// SubnetPrefix is always an IPv6 /64.
	SubnetPrefix   netip.Prefix
	CollisionCount uint8
	// PublicKey is the DER SubjectPublicKeyInfo as carried, which for an
	// HBA-only set is the pseudo-key (RFC 5535 §6 step 2).
	PublicKey  []byte
	Extensions []Extension
}

// Parse strictly decodes a CGA Parameters data structure: the public key
// must be one DER SubjectPublicKeyInfo, what follows it must be whole
// RFC 4581 TLVs, a multi-prefix extension (at most one) must be well formed.
// The collision count is not range-checked here (that is verification step
// 1). Parse copies b. It never panics.
func Parse(b []byte) (*Params, error) {
	p, _, err := parse(append([]byte(nil), b...))
	return p, err
}

// parse decodes b without copying; it also returns the multi-prefix
// extension when there is one.
func parse(b []byte) (*Params, *MultiPrefix, error) {
	if len(b) < fixedLen {
		return nil, nil, fmt.Errorf("%w: %d octets, need at least %d before the public key", ErrMalformed, len(b), fixedLen)
	}
	p := &Params{CollisionCount: b[offCC]}
	copy(p.Modifier[:], b[:ModifierLen])
	p.SubnetPrefix = prefixFrom64(binary.BigEndian.Uint64(b[offPrefix:]))
	keyLen, err := spkiLen(b[fixedLen:])
	if err != nil {
		return nil, nil, err
	}
	p.PublicKey = b[fixedLen : fixedLen+keyLen : fixedLen+keyLen]
	var mp *MultiPrefix
	rest := b[fixedLen+keyLen:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return nil, nil, fmt.Errorf("%w: %d trailing octets are not an extension header (RFC 4581 §2)", ErrMalformed, len(rest))
		}
		typ := binary.BigEndian.Uint16(rest)
		n := int(binary.BigEndian.Uint16(rest[2:]))
		if len(rest)-4 < n {
			return nil, nil, fmt.Errorf("%w: extension type %#04x claims %d octets, %d left", ErrMalformed, typ, n, len(rest)-4)
		}
		data := rest[4 : 4+n : 4+n]
		if typ == ExtMultiPrefix {
			if mp != nil {
				return nil, nil, fmt.Errorf("%w: more than one multi-prefix extension", ErrMalformed)
			}
			m, err := ParseMultiPrefix(data)
			if err != nil {
				return nil, nil, err
			}
			mp = &m
		}
		p.Extensions = append(p.Extensions, Extension{Type: typ, Data: data})
		rest = rest[4+n:]
	}
	return p, mp, nil
}

// Marshal encodes p. It fails if the subnet prefix is not an IPv6 /64,
// the public key is not one DER SubjectPublicKeyInfo, an extension is
// longer than 65535 octets, or the multi-prefix extension is malformed or
// repeated: whatever Marshal returns, Parse accepts.
func (p *Params) Marshal() ([]byte, error) { return p.AppendBinary(nil) }

// AppendBinary appends the encoding of p to b (encoding.BinaryAppender).
func (p *Params) AppendBinary(b []byte) ([]byte, error) {
	pfx, err := prefix64(p.SubnetPrefix)
	if err != nil {
		return nil, err
	}
	if n, err := spkiLen(p.PublicKey); err != nil {
		return nil, err
	} else if n != len(p.PublicKey) {
		return nil, fmt.Errorf("%w: %d octets after the SubjectPublicKeyInfo", ErrMalformed, len(p.PublicKey)-n)
	}
	b = append(b, p.Modifier[:]...)
	b = binary.BigEndian.AppendUint64(b, pfx)
	b = append(b, p.CollisionCount)
	b = append(b, p.PublicKey...)
	multi := false
	for _, e := range p.Extensions {
		if len(e.Data) > maxExtData {
			return nil, fmt.Errorf("%w: extension type %#04x has %d octets (max %d)", ErrMalformed, e.Type, len(e.Data), maxExtData)
		}
		// What Marshal writes, Parse accepts.
		if e.Type == ExtMultiPrefix {
			if multi {
				return nil, fmt.Errorf("%w: more than one multi-prefix extension", ErrMalformed)
			}
			if _, err := ParseMultiPrefix(e.Data); err != nil {
				return nil, err
			}
			multi = true
		}
		b = binary.BigEndian.AppendUint16(b, e.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b, nil
}

// MultiPrefix returns the HBA multi-prefix extension, or ok=false when
// there is none (the parameters then describe a plain CGA).
func (p *Params) MultiPrefix() (m MultiPrefix, ok bool, err error) {
	for _, e := range p.Extensions {
		if e.Type == ExtMultiPrefix {
			m, err = ParseMultiPrefix(e.Data)
			return m, err == nil, err
		}
	}
	return MultiPrefix{}, false, nil
}

// Multi-prefix extension data, RFC 5535 §5 (after the RFC 4581 type and
// length):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|P|                         Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Prefix[1]                           |
//	+                                                               +
//	...                                                           ...
//	|                           Prefix[n]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

// MultiPrefix is the HBA multi-prefix extension (RFC 5535 §5).
type MultiPrefix struct {
	// PublicKey is the P flag: set when the Public Key field holds a real
	// public key (a CGA-compatible HBA set), clear for a pseudo-key.
	PublicKey bool
	// Reserved holds the 31 reserved bits as received: zero when
	// generated, ignored on receipt (but hashed as part of the data).
	Reserved uint32
	// Prefixes are IPv6 /64s, in order.
	Prefixes []netip.Prefix
}

// ParseMultiPrefix decodes the data of a multi-prefix extension. At least
// one prefix is required.
func ParseMultiPrefix(data []byte) (MultiPrefix, error) {
	if len(data) < 12 || (len(data)-4)%8 != 0 {
		return MultiPrefix{}, fmt.Errorf("%w: multi-prefix extension of %d octets (need 4 + 8n, n >= 1; RFC 5535 §5)", ErrMalformed, len(data))
	}
	w := binary.BigEndian.Uint32(data)
	m := MultiPrefix{PublicKey: w&0x80000000 != 0, Reserved: w & 0x7fffffff}
	m.Prefixes = make([]netip.Prefix, 0, (len(data)-4)/8)
	for i := 4; i < len(data); i += 8 {
		m.Prefixes = append(m.Prefixes, prefixFrom64(binary.BigEndian.Uint64(data[i:])))
	}
	return m, nil
}

// Extension encodes m as a CGA extension (type 0x0012). RFC 5535 §6 step 1.
func (m MultiPrefix) Extension() (Extension, error) {
	if len(m.Prefixes) == 0 {
		return Extension{}, fmt.Errorf("%w: multi-prefix extension without prefixes", ErrBadPrefix)
	}
	if 4+8*len(m.Prefixes) > maxExtData {
		return Extension{}, fmt.Errorf("%w: %d prefixes do not fit one extension", ErrBadPrefix, len(m.Prefixes))
	}
	w := m.Reserved & 0x7fffffff
	if m.PublicKey {
		w |= 0x80000000
	}
	d := binary.BigEndian.AppendUint32(make([]byte, 0, 4+8*len(m.Prefixes)), w)
	for _, p := range m.Prefixes {
		v, err := prefix64(p)
		if err != nil {
			return Extension{}, err
		}
		d = binary.BigEndian.AppendUint64(d, v)
	}
	return Extension{Type: ExtMultiPrefix, Data: d}, nil
}

// prefix64 returns the 64 prefix bits of an IPv6 /64.
func prefix64(p netip.Prefix) (uint64, error) {
	if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() != 64 {
		return 0, fmt.Errorf("%w: %v", ErrBadPrefix, p)
	}
	a := p.Masked().Addr().As16()
	return binary.BigEndian.Uint64(a[:8]), nil
}

func prefixFrom64(v uint64) netip.Prefix {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], v)
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// PrefixOf returns the /64 of an IPv6 address.
func PrefixOf(a netip.Addr) netip.Prefix {
	p, _ := a.Prefix(64)
	return p
}

// spkiLen checks that b starts with a DER SubjectPublicKeyInfo
// (SEQUENCE { AlgorithmIdentifier SEQUENCE { OID ... }, BIT STRING }) and
// returns its encoded length. The content of the BIT STRING is not
// interpreted: an HBA pseudo-key is random octets (RFC 5535 §6 step 2).
func spkiLen(b []byte) (int, error) {
	tag, content, rest, err := derElem(b)
	if err != nil {
		return 0, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	if tag != 0x30 {
		return 0, fmt.Errorf("%w: public key: tag %#02x is not a SEQUENCE", ErrMalformed, tag)
	}
	n := len(b) - len(rest)
	tag, alg, content, err := derElem(content)
	if err != nil || tag != 0x30 {
		return 0, fmt.Errorf("%w: public key: no AlgorithmIdentifier", ErrMalformed)
	}
	if tag, _, _, err := derElem(alg); err != nil || tag != 0x06 {
		return 0, fmt.Errorf("%w: public key: AlgorithmIdentifier without OID", ErrMalformed)
	}
	tag, bits, content, err := derElem(content)
	if err != nil || tag != 0x03 || len(bits) < 1 || bits[0] > 7 || (len(bits) == 1 && bits[0] != 0) {
		return 0, fmt.Errorf("%w: public key: no BIT STRING", ErrMalformed)
	}
	if len(content) != 0 {
		return 0, fmt.Errorf("%w: public key: %d octets after the BIT STRING", ErrMalformed, len(content))
	}
	return n, nil
}

// derElem reads one DER element (low tag numbers, definite minimal length).
func derElem(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errTruncatedDER
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("high tag number form")
	}
	l := int(b[1])
	b = b[2:]
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 || n > 3 {
			return 0, nil, nil, fmt.Errorf("unsupported length form")
		}
		if len(b) < n {
			return 0, nil, nil, errTruncatedDER
		}
		if b[0] == 0 {
			return 0, nil, nil, fmt.Errorf("non-minimal length")
		}
		l = 0
		for _, c := range b[:n] {
			l = l<<8 | int(c)
		}
		if l < 0x80 {
			return 0, nil, nil, fmt.Errorf("non-minimal length")
		}
		b = b[n:]
	}
	if len(b) < l {
		return 0, nil, nil, errTruncatedDER
	}
	return tag, b[:l:l], b[l:], nil
}

var errTruncatedDER = fmt.Errorf("truncated DER")
