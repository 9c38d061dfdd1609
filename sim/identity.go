package sim

import (
	"context"
	"crypto/rsa"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/engine"
)

// Identity is what a host proves its locators with: the CGA Parameter
// Data Structure (an HBA set, RFC 5535, or a CGA, RFC 3972), the private key
// for CGA signatures, and every locator it may ever use. The first locator
// is the host's usual ULID.
type Identity struct {
	PDS      []byte
	Key      *rsa.PrivateKey
	Locators []engine.LocalLocator
}

// Addrs returns the identity's locator addresses.
func (id Identity) Addrs() []netip.Addr {
	out := make([]netip.Addr, len(id.Locators))
	for i, l := range id.Locators {
		out[i] = l.Addr
	}
	return out
}

type chachaReader struct{ r *rand.ChaCha8 }

func (c chachaReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func prefixes(ps []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, len(ps))
	for i, s := range ps {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// HBAIdentity generates, deterministically from seed, an HBA set (Sec 0)
// with one address in each /64 prefix; every address is an HBA locator.
func HBAIdentity(seed uint64, prefixList ...string) (Identity, error) {
	ps, err := prefixes(prefixList)
	if err != nil {
		return Identity{}, err
	}
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	set, err := cga.GenerateHBA(context.Background(), ps, nil, cga.Options{Rand: chachaReader{rand.NewChaCha8(s)}, Workers: 1})
	if err != nil {
		return Identity{}, err
	}
	id := Identity{PDS: set.Params}
	for _, a := range set.Addrs {
		id.Locators = append(id.Locators, engine.LocalLocator{Addr: a, Method: engine.MethodHBA})
	}
	return id, nil
}

// CGAIdentity generates, deterministically from seed, a CGA (Sec 0) for
// key in the first prefix: the ULID. The other prefixes get the address
// prefix::1, as locators that the CGA Signature option vouches for
// (RFC 5533 §5.15.5).
func CGAIdentity(key *rsa.PrivateKey, seed uint64, prefixList ...string) (Identity, error) {
	ps, err := prefixes(prefixList)
	if err != nil {
		return Identity{}, err
	}
	if len(ps) == 0 {
		return Identity{}, fmt.Errorf("sim: CGAIdentity needs a prefix")
	}
	pub, err := cga.MarshalPublicKey(&key.PublicKey)
	if err != nil {
		return Identity{}, err
	}
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	ulid, pds, err := cga.Generate(context.Background(), ps[0], pub, cga.Options{Rand: chachaReader{rand.NewChaCha8(s)}, Workers: 1})
	if err != nil {
		return Identity{}, err
	}
	id := Identity{PDS: pds, Key: key}
	id.Locators = append(id.Locators, engine.LocalLocator{Addr: ulid, Method: engine.MethodCGA})
	for _, p := range ps[1:] {
		b := p.Masked().Addr().As16()
		b[15] = 1
		id.Locators = append(id.Locators, engine.LocalLocator{Addr: netip.AddrFrom16(b), Method: engine.MethodCGA})
	}
	return id, nil
}
