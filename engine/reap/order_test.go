package reap_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/goshim6/goshim6/engine/reap"
)

func loc(s string, mods ...func(*reap.Locator)) reap.Locator {
	l := reap.Locator{Addr: addr(s), Verified: true}
	for _, f := range mods {
		f(&l)
	}
	return l
}

func flags(f reap.Flags) func(*reap.Locator) { return func(l *reap.Locator) { l.Pref.Flags = f } }
func prio(p uint8) func(*reap.Locator)       { return func(l *reap.Locator) { l.Pref.Priority = p } }
func weight(w uint8) func(*reap.Locator)     { return func(l *reap.Locator) { l.Pref.Weight = w } }
func unverified(l *reap.Locator)             { l.Verified = false }
func deprecated(l *reap.Locator)             { l.Deprecated = true }

func pairs(ss ...string) []reap.Pair {
	var out []reap.Pair
	for i := 0; i+1 < len(ss); i += 2 {
		out = append(out, pair(ss[i], ss[i+1]))
	}
	return out
}

func TestOrderPairs(t *testing.T) {
	const (
		a1 = "2001:db8:a1::1"
		a2 = "2001:db8:a2::1"
		b1 = "2001:db8:b1::1"
		b2 = "2001:db8:b2::1"
	)
	prim := pair(a1, b1)
	tests := []struct {
		name        string
		local, peer []reap.Locator
		primary     reap.Pair
		want        []reap.Pair
	}{
		{"two by two: ULID pair first, then peer locator order (destination major)",
			[]reap.Locator{loc(a1), loc(a2)}, []reap.Locator{loc(b1), loc(b2)}, prim,
			pairs(a1, b1, a2, b1, a1, b2, a2, b2)},
		{"ULID pair first even when listed last",
			[]reap.Locator{loc(a2), loc(a1)}, []reap.Locator{loc(b2), loc(b1)}, prim,
			pairs(a1, b1, a2, b2, a1, b2, a2, b1)},
		{"BROKEN peer and local locators are never used",
			[]reap.Locator{loc(a1), loc(a2, flags(reap.Broken))}, []reap.Locator{loc(b1, flags(reap.Broken)), loc(b2)}, prim,
			pairs(a1, b2)},
		{"unverified peer locators are never used",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc(b1, unverified), loc(b2)}, prim,
			pairs(a1, b2)},
		{"non-global locators are pruned (RFC 5534 §3.1)",
			[]reap.Locator{loc(a1), loc("fe80::1"), loc("::1"), loc("::ffff:192.0.2.1"), loc("fec0::1")},
			[]reap.Locator{loc(b1), loc("fe80::2"), loc("ff0e::1"), loc("::"), loc("fec0::2")}, prim,
			pairs(a1, b1)},
		{"TRANSIENT peer locator last",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc(b1, flags(reap.Transient)), loc(b2)}, prim,
			pairs(a1, b2, a1, b1)},
		{"TRANSIENT local locator after stable ones",
			[]reap.Locator{loc(a1, flags(reap.Transient)), loc(a2)}, []reap.Locator{loc(b1)}, prim,
			pairs(a2, b1, a1, b1)},
		{"peer priority: lower first, beats the ULID pair",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc(b1, prio(5)), loc(b2, prio(1))}, prim,
			pairs(a1, b2, a1, b1)},
		{"local priority after peer priority",
			[]reap.Locator{loc(a1, prio(9)), loc(a2, prio(1))}, []reap.Locator{loc(b1, prio(2)), loc(b2, prio(1))}, prim,
			pairs(a2, b2, a1, b2, a2, b1, a1, b1)},
		{"positive weight before weight 0 within a priority",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc(b1), loc(b2, weight(10))}, reap.Pair{},
			pairs(a1, b2, a1, b1)},
		{"the ULID pair before weights",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc(b1), loc(b2, weight(10))}, prim,
			pairs(a1, b1, a1, b2)},
		{"deprecated source last (RFC 6724 dest rule 3)",
			[]reap.Locator{loc(a1, deprecated), loc(a2)}, []reap.Locator{loc(b1)}, prim,
			pairs(a2, b1, a1, b1)},
		{"precedence: native before 6to4 before ULA (dest rule 6)",
			[]reap.Locator{loc(a1)}, []reap.Locator{loc("fd00:b::1"), loc("2002:c000:0201::1"), loc(b2)}, reap.Pair{},
			pairs(a1, b2, a1, "2002:c000:201::1", a1, "fd00:b::1")},
		{"matching label: ULA source for ULA destination (dest rule 5)",
			[]reap.Locator{loc(a1), loc("fd00:a::1")}, []reap.Locator{loc("fd00:b::1")}, reap.Pair{},
			pairs("fd00:a::1", "fd00:b::1", a1, "fd00:b::1")},
		{"longest matching prefix (dest rule 9)",
			[]reap.Locator{loc("2001:db8:ffff::1"), loc("2001:db8:b1:1::1")}, []reap.Locator{loc(b1)}, reap.Pair{},
			pairs("2001:db8:b1:1::1", b1, "2001:db8:ffff::1", b1)},
		{"nothing usable", []reap.Locator{loc("fe80::1")}, []reap.Locator{loc(b1)}, prim, []reap.Pair{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := reap.OrderPairs(tc.local, tc.peer, tc.primary, nil, 1)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// TestOrderWeights checks the DNS SRV semantics of weights: over many
// machines (seeds) a locator of weight 3 comes first three times as often
// as one of weight 1.
func TestOrderWeights(t *testing.T) {
	local := []reap.Locator{loc("2001:db8:a1::1")}
	peer := []reap.Locator{loc("2001:db8:b1::1", weight(1)), loc("2001:db8:b2::1", weight(3))}
	first := 0
	const n = 4000
	for seed := range uint64(n) {
		ps := reap.OrderPairs(local, peer, reap.Pair{}, nil, seed)
		if ps[0].Peer == addr("2001:db8:b2::1") {
			first++
		}
		// Stable for one seed.
		if !slices.Equal(ps, reap.OrderPairs(local, peer, reap.Pair{}, nil, seed)) {
			t.Fatal("order not stable for a seed")
		}
	}
	if f := float64(first) / n; f < 0.70 || f > 0.80 {
		t.Errorf("weight 3 first in %.2f of orders, want ~0.75", f)
	}
}

func TestCustomPolicy(t *testing.T) {
	pol := reap.DefaultPolicy()
	// Prefer one provider's prefix (RFC 6724 §10.5 style).
	pol = append(pol, reap.PolicyEntry{Prefix: netip.MustParsePrefix("2001:db8:b2::/48"), Precedence: 45, Label: 1})
	got := reap.OrderPairs([]reap.Locator{loc("2001:db8:a1::1")}, []reap.Locator{loc("2001:db8:b1::1"), loc("2001:db8:b2::1")}, reap.Pair{}, pol, 0)
	if got[0].Peer != addr("2001:db8:b2::1") {
		t.Errorf("custom policy ignored: %v", got)
	}
	cfgPairs := reap.New(&reap.Config{Policy: pol, Rand: seeded(1)}, t0, reap.Pair{}, reap.Pair{},
		[]reap.Locator{loc("2001:db8:a1::1")}, []reap.Locator{loc("2001:db8:b1::1"), loc("2001:db8:b2::1")}).Pairs()
	if !slices.Equal(cfgPairs, got) {
		t.Errorf("Config.Policy not used by the machine: %v", cfgPairs)
	}
}
