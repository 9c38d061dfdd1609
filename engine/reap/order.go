package reap

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// PolicyEntry is one row of the RFC 6724 policy table (§2.1).
type PolicyEntry struct {
	Prefix     netip.Prefix
	Precedence uint8
	Label      uint8
}

// defaultPolicy is the default policy table of RFC 6724 §2.1.
var defaultPolicy = []PolicyEntry{
	{netip.MustParsePrefix("::1/128"), 50, 0},
	{netip.MustParsePrefix("::/0"), 40, 1},
	{netip.MustParsePrefix("::ffff:0:0/96"), 35, 4},
	{netip.MustParsePrefix("2002::/16"), 30, 2},
	{netip.MustParsePrefix("2001::/32"), 5, 5},
	{netip.MustParsePrefix("fc00::/7"), 3, 13},
	{netip.MustParsePrefix("::/96"), 1, 3},
	{netip.MustParsePrefix("fec0::/10"), 1, 11},
	{netip.MustParsePrefix("3ffe::/16"), 1, 12},
}

// DefaultPolicy returns a copy of the default policy table of RFC 6724 §2.1.
func DefaultPolicy() []PolicyEntry { return slices.Clone(defaultPolicy) }

// lookup returns the entry of the longest prefix matching a (RFC 6724 §2.1).
func lookup(table []PolicyEntry, a netip.Addr) (prec, label uint8) {
	best := -1
	for _, e := range table {
		if e.Prefix.Bits() > best && e.Prefix.Contains(a) {
			best, prec, label = e.Prefix.Bits(), e.Precedence, e.Label
		}
	}
	return prec, label
}

// Scope values (RFC 6724 §3.1, RFC 4291 §2.7).
const (
	scopeLink   = 0x2
	scopeSite   = 0x5
	scopeGlobal = 0xe
)

// scope returns Scope(a) as in RFC 6724 §3.1-§3.4.
func scope(a netip.Addr) uint8 {
	switch {
	case a.IsMulticast():
		return a.As16()[1] & 0x0f
	case a.IsLoopback(), a.IsLinkLocalUnicast():
		return scopeLink // §3.4: loopback has link-local scope
	case a.Is6() && !a.Is4In6() && a.As16()[0] == 0xfe && a.As16()[1]&0xc0 == 0xc0:
		return scopeSite // fec0::/10
	}
	return scopeGlobal
}

// usable reports whether a can be a Shim6 locator: an IPv6 global unicast
// or unique local address, not link-local, site-local, multicast, loopback,
// unspecified, IPv4-mapped or zoned (RFC 5534 §3.1).
func usable(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.Zone() == "" && a.IsGlobalUnicast() && scope(a) == scopeGlobal
}

// commonPrefixLen is CommonPrefixLen(s, d) of RFC 6724 §2.2, with the
// source prefix taken as /64.
func commonPrefixLen(s, d netip.Addr) int {
	a, b := s.As16(), d.As16()
	n := 0
	for i := 0; i < 8; i++ {
		x := a[i] ^ b[i]
		if x == 0 {
			n += 8
			continue
		}
		for x&0x80 == 0 {
			n++
			x <<= 1
		}
		return n
	}
	return n
}

// cand is a candidate pair with everything its rank depends on.
type cand struct {
	Pair
	li, pi         int
	scopeMismatch  bool // RFC 6724 dest rule 2
	deprecated     bool // dest rule 3
	labelMismatch  bool // dest rule 5, source rule 6
	prec           uint8
	dscope         uint8
	peerTransient  bool
	localTransient bool
	peerPrio       uint8
	localPrio      uint8
	notPrimary     bool
	peerKey        float64
	localKey       float64
	cpl            int
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareCand orders a before b (negative) when a is the better pair.
func compareCand(a, b *cand) int {
	if c := boolCmp(a.scopeMismatch, b.scopeMismatch); c != 0 {
		return c
	}
	if c := boolCmp(a.deprecated, b.deprecated); c != 0 {
		return c
	}
	if c := boolCmp(a.labelMismatch, b.labelMismatch); c != 0 {
		return c
	}
	if c := cmp.Compare(b.prec, a.prec); c != 0 { // dest rule 6: higher precedence
		return c
	}
	if c := cmp.Compare(a.dscope, b.dscope); c != 0 { // dest rule 8: smaller scope
		return c
	}
	// Locator Preferences (RFC 5533 §5.15.3): stable before TRANSIENT,
	// then priority (lower first), peer's before ours.
	if c := boolCmp(a.peerTransient, b.peerTransient); c != 0 {
		return c
	}
	if c := boolCmp(a.localTransient, b.localTransient); c != 0 {
		return c
	}
	if c := cmp.Compare(a.peerPrio, b.peerPrio); c != 0 {
		return c
	}
	if c := cmp.Compare(a.localPrio, b.localPrio); c != 0 {
		return c
	}
	// The ULID pair needs no payload extension header (RFC 5533 §4).
	if c := boolCmp(a.notPrimary, b.notPrimary); c != 0 {
		return c
	}
	// Weight within a priority (RFC 2782): weighted random order.
	if c := cmp.Compare(b.peerKey, a.peerKey); c != 0 {
		return c
	}
	if c := cmp.Compare(b.localKey, a.localKey); c != 0 {
		return c
	}
	if c := cmp.Compare(b.cpl, a.cpl); c != 0 { // dest rule 9
		return c
	}
	if c := cmp.Compare(a.pi, b.pi); c != 0 { // dest rule 10: list order
		return c
	}
	return cmp.Compare(a.li, b.li)
}

// weightKey turns an SRV weight into a sort key (higher first) such that
// sorting by it draws the order at random with probability proportional to
// the weight (Efraimidis-Spirakis: u^(1/w)). u derives from seed and the
// address, so one machine always ranks the same locators the same way.
// Weight 0 ranks after every positive weight (RFC 2782: "very small
// chance").
func weightKey(seed uint64, a netip.Addr, w uint8) float64 {
	if w == 0 {
		return 0
	}
	b := a.As16()
	h := seed ^ 0x9e3779b97f4a7c15
	h = mix(h ^ binary.BigEndian.Uint64(b[:8]))
	h = mix(h ^ binary.BigEndian.Uint64(b[8:]))
	u := (float64(h>>11) + 1) / (1 << 53) // (0, 1]
	return math.Pow(u, 1/float64(w))
}

// mix is the splitmix64 finaliser.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

type localInfo struct {
	ok     bool
	label  uint8
	scope  uint8
	weight float64
}

// eachCand calls fn with every usable pair, in list order (peer major).
func eachCand(local, peer []Locator, primary Pair, policy []PolicyEntry, seed uint64, fn func(*cand)) {
	var buf [16]localInfo
	li := buf[:0]
	if len(local) > len(buf) {
		li = make([]localInfo, 0, len(local))
	}
	for _, l := range local {
		x := localInfo{ok: l.Pref.Flags&Broken == 0 && usable(l.Addr)}
		if x.ok {
			_, x.label = lookup(policy, l.Addr)
			x.scope = scope(l.Addr)
			x.weight = weightKey(seed, l.Addr, l.Pref.Weight)
		}
		li = append(li, x)
	}
	var c cand
	for pi, p := range peer {
		if !p.Verified || p.Pref.Flags&Broken != 0 || !usable(p.Addr) {
			continue
		}
		dprec, dlabel := lookup(policy, p.Addr)
		dscope := scope(p.Addr)
		pkey := weightKey(seed, p.Addr, p.Pref.Weight)
		for i, l := range local {
			x := &li[i]
			if !x.ok {
				continue
			}
			pair := Pair{l.Addr, p.Addr}
			c = cand{
				Pair:           pair,
				li:             i,
				pi:             pi,
				scopeMismatch:  x.scope != dscope,
				deprecated:     l.Deprecated,
				labelMismatch:  x.label != dlabel,
				prec:           dprec,
				dscope:         dscope,
				peerTransient:  p.Pref.Flags&Transient != 0,
				localTransient: l.Pref.Flags&Transient != 0,
				peerPrio:       p.Pref.Priority,
				localPrio:      l.Pref.Priority,
				notPrimary:     pair != primary,
				peerKey:        pkey,
				localKey:       x.weight,
				cpl:            commonPrefixLen(l.Addr, p.Addr),
			}
			fn(&c)
		}
	}
}

// candidates returns the usable pairs, best first.
func candidates(local, peer []Locator, primary Pair, policy []PolicyEntry, seed uint64) []cand {
	out := make([]cand, 0, len(local)*len(peer))
	eachCand(local, peer, primary, policy, seed, func(c *cand) { out = append(out, *c) })
	slices.SortStableFunc(out, func(a, b cand) int { return compareCand(&a, &b) })
	return out
}

// bestPair returns the best usable pair without allocating.
func bestPair(local, peer []Locator, primary Pair, policy []PolicyEntry, seed uint64) (Pair, bool) {
	var best cand
	found := false
	eachCand(local, peer, primary, policy, seed, func(c *cand) {
		if !found || compareCand(c, &best) < 0 {
			best, found = *c, true
		}
	})
	return best.Pair, found
}

// OrderPairs returns the locator pairs REAP explores, best first (RFC 5534
// §4.3): every combination of a usable local locator with a usable, verified
// peer locator, minus BROKEN ones, ordered by the RFC 6724 rules that apply
// to a pair list (policy table precedence and labels, scope, deprecated
// sources, longest matching prefix, list order) combined with the Locator
// Preferences (TRANSIENT last, priority, weight) of both ends; the primary
// (ULID) pair ranks first among equals. policy nil selects RFC 6724's default
// table; seed fixes the weighted random order among equal priorities.
func OrderPairs(local, peer []Locator, primary Pair, policy []PolicyEntry, seed uint64) []Pair {
	if policy == nil {
		policy = defaultPolicy
	}
	cs := candidates(local, peer, primary, policy, seed)
	out := make([]Pair, len(cs))
	for i := range cs {
		out[i] = cs[i].Pair
	}
	return out
}
