package ebpf

import (
	"errors"
	"strings"
	"testing"

	cebpf "github.com/cilium/ebpf"
)

func TestFeatures(t *testing.T) {
	requireRoot(t)
	// CI runs on Linux 6.x: everything the data plane needs is there.
	if err := checkFeatures(Config{XDP: true}); err != nil {
		t.Fatal(err)
	}
	missing := []featureCheck{
		{"something", "9.9", func() error { return nil }},
		{"time travel", "42.0", func() error { return cebpf.ErrNotSupported }},
	}
	err := checkFeatureList(missing)
	if !errors.Is(err, ErrKernelFeature) || !strings.Contains(err.Error(), "time travel (Linux 42.0 or later)") {
		t.Fatalf("err = %v", err)
	}
	other := errors.New("EPERM")
	if err := checkFeatureList([]featureCheck{{"x", "1", func() error { return other }}}); !errors.Is(err, other) || errors.Is(err, ErrKernelFeature) {
		t.Fatalf("probe failure reported as %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.PinPath != DefaultPinPath || c.ShimDevice != "shim6" || c.TriggerPackets != 50 || c.RulePriority != 90 || c.MaxContexts != 65536 {
		t.Fatalf("%+v", c)
	}
	for _, bad := range []Config{
		{ShimDevice: "averyveryverylongname"},
		{Uplinks: []string{"shim6p"}},
	} {
		if _, err := bad.withDefaults(); !errors.Is(err, ErrConfig) {
			t.Fatalf("%+v: err = %v", bad, err)
		}
	}
}

func TestValidateMapping(t *testing.T) {
	good := shimmed
	if err := validate(good); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(){
		"v4 ULID":         func() { good.LocalULID = mustAddr("192.0.2.1") },
		"link-local":      func() { good.PeerLocator = mustAddr("fe80::1") },
		"multicast":       func() { good.PeerULID = mustAddr("ff02::1") },
		"48-bit tag":      func() { good.PeerTag = 1 << 47 },
		"unspecified loc": func() { good.LocalLocator = mustAddr("::") },
	} {
		good = shimmed
		mod()
		if err := validate(good); !errors.Is(err, ErrInvalidMapping) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
