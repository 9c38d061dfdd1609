package cga

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestLocatorList(t *testing.T) {
	k := testKey(t, "key1024.pem")
	pub, _ := MarshalPublicKey(&k.PublicKey)
	prefixes := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParsePrefix("2001:db8:2::/64")}
	set, err := GenerateHBA(context.Background(), prefixes, pub, Options{Rand: seeded(4)})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(set.Params)
	extra := netip.MustParseAddr("2001:db8:99::7") // not in the set: CGA method
	locs := []netip.Addr{set.Addrs[0], extra, set.Addrs[1]}
	methods := []uint8{MethodHBA, MethodCGA, MethodHBA}
	sig, err := SignLocatorList(k, 9, locs, methods)
	if err != nil || sig == nil {
		t.Fatal(err)
	}
	// The signature covers only the CGA locator.
	if err := VerifyLocators(&k.PublicKey, 9, []netip.Addr{extra}, sig); err != nil {
		t.Errorf("signature does not cover exactly the CGA subset: %v", err)
	}
	if err := v.VerifyLocatorList(9, locs, methods, sig); err != nil {
		t.Fatal(err)
	}
	// No CGA locator: no signature needed.
	if s, err := SignLocatorList(k, 9, set.Addrs, []uint8{MethodHBA, MethodHBA}); s != nil || err != nil {
		t.Errorf("HBA-only list signed: %x %v", s, err)
	}
	if err := v.VerifyLocatorList(9, set.Addrs, []uint8{MethodHBA, MethodHBA}, nil); err != nil {
		t.Error(err)
	}
	check := func(name string, err error, index int, want error) {
		t.Helper()
		var le *LocatorError
		if !errors.As(err, &le) || le.Index != index || !errors.Is(err, want) {
			t.Errorf("%s: %v, want index %d and %v", name, err, index, want)
		}
	}
	check("extra as HBA", v.VerifyLocatorList(9, locs, []uint8{MethodHBA, MethodHBA, MethodHBA}, sig), 1, ErrPrefixMismatch)
	check("unknown method", v.VerifyLocatorList(9, locs, []uint8{MethodHBA, MethodCGA, 7}, sig), 2, ErrUnknownMethod)
	check("no signature", v.VerifyLocatorList(9, locs, methods, nil), -1, ErrNoSignature)
	check("wrong generation", v.VerifyLocatorList(10, locs, methods, sig), -1, ErrSignature)
	check("CGA locator changed", v.VerifyLocatorList(9, []netip.Addr{locs[0], netip.MustParseAddr("2001:db8:99::8"), locs[2]}, methods, sig), -1, ErrSignature)
	// HBA method with parameters that have no multi-prefix extension, CGA
	// method with a pseudo-key.
	cv, _ := NewVerifier(mustRead(t, "testdata/interop/cga-sec1-rsa1024.params"))
	check("HBA on plain CGA", cv.VerifyLocatorList(9, locs, methods, sig), 0, ErrNoMultiPrefix)
	hset, _ := GenerateHBA(context.Background(), prefixes, nil, Options{})
	hv, _ := NewVerifier(hset.Params)
	check("CGA with pseudo-key", hv.VerifyLocatorList(9, []netip.Addr{hset.Addrs[0], extra}, []uint8{MethodHBA, MethodCGA}, sig), 1, ErrNotRSA)
	if err := v.VerifyLocatorList(9, locs, methods[:2], sig); !errors.Is(err, ErrMalformed) {
		t.Errorf("length mismatch: %v", err)
	}
}
