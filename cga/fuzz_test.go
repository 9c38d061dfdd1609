package cga

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"testing"
)

func addInteropSeeds(f *testing.F, withAddr bool) {
	for _, v := range loadInterop(f) {
		if withAddr {
			for _, a := range v.addrs {
				f.Add(v.params, a.AsSlice())
			}
		} else {
			f.Add(v.params)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts re-encodes to the
// same bytes.
func FuzzParse(f *testing.F) {
	addInteropSeeds(f, false)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			if _, verr := NewVerifier(b); verr == nil {
				t.Fatal("NewVerifier accepts what Parse refuses")
			}
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed parameters: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip differs:\n%x\n%x", b, out)
		}
		if _, _, err := p.MultiPrefix(); err != nil {
			t.Fatalf("MultiPrefix after Parse: %v", err)
		}
	})
}

// FuzzVerify: verification never panics and never accepts an address
// unless, computed independently here, its prefix belongs to the
// parameters, Hash1 matches under Mask1, Sec <= 2 and Hash2 has the zero
// bits.
func FuzzVerify(f *testing.F) {
	addInteropSeeds(f, true)
	f.Fuzz(func(t *testing.T, params, addr []byte) {
		if len(addr) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(addr))
		err := Verify(a, params)
		if err != nil {
			return
		}
		p, perr := Parse(params)
		if perr != nil {
			t.Fatalf("verified with unparsable parameters: %v", perr)
		}
		if p.CollisionCount > 2 {
			t.Fatal("verified with collision count > 2")
		}
		pfx := PrefixOf(a)
		ok := pfx == p.SubnetPrefix
		if mp, has, _ := p.MultiPrefix(); has && !ok {
			subnetListed := false
			for _, q := range mp.Prefixes {
				ok = ok || q == pfx
				subnetListed = subnetListed || q == p.SubnetPrefix
			}
			if ok && !subnetListed {
				t.Fatal("substituted a prefix with an unlisted subnet prefix field")
			}
		}
		if !ok {
			t.Fatalf("verified %v whose prefix is not in the parameters", a)
		}
		in := bytes.Clone(params)
		copy(in[16:24], addr[:8])
		h1 := sha1.Sum(in)
		if binary.BigEndian.Uint64(h1[:8])&0x1cffffffffffffff != binary.BigEndian.Uint64(addr[8:])&0x1cffffffffffffff {
			t.Fatalf("verified %v whose interface identifier is not Hash1", a)
		}
		sec := int(addr[8] >> 5)
		if sec > 2 {
			t.Fatalf("verified Sec %d", sec)
		}
		clear(in[16:25])
		h2 := sha1.Sum(in)
		for i := 0; i < 2*sec; i++ {
			if h2[i] != 0 {
				t.Fatalf("verified Sec %d with Hash2 %x", sec, h2[:14])
			}
		}
	})
}
