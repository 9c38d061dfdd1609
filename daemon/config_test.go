package daemon

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestExampleConfigIsDefault(t *testing.T) {
	b, err := os.ReadFile("../dist/shim6d.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{}
	if err := ParseConfig(b, &cfg); err != nil {
		t.Fatalf("example does not parse: %v", err)
	}
	if got, want := normalize(cfg), normalize(Default()); !reflect.DeepEqual(got, want) {
		t.Fatalf("example differs from Default():\n got  %+v\n want %+v", got, want)
	}
}

// TestEveryKeyDocumented checks that each key of the example file appears
// in docs/configuration.md with its default.
func TestEveryKeyDocumented(t *testing.T) {
	b, err := os.ReadFile("../dist/shim6d.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	md, err := toml.Decode(string(b), &m)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range md.Keys() {
		if md.Type(k...) == "Hash" {
			continue
		}
		n++
		key := k.String()
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", key)
		}
	}
	if n < 20 {
		t.Fatalf("only %d keys found in the example", n)
	}
	// And the other way: every Config field has a key in the example.
	var walk func(reflect.Type, string)
	walk = func(tp reflect.Type, prefix string) {
		for f := range tp.Fields() {
			name := prefix + f.Tag.Get("toml")
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, name+".")
				continue
			}
			if !md.IsDefined(strings.Split(name, ".")...) {
				t.Errorf("key %s missing from dist/shim6d.toml.example", name)
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}

func normalize(c Config) Config {
	nilIfEmpty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	nilIfEmptyP := func(s []netip.Prefix) []netip.Prefix {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	c.Locators.Interfaces = nilIfEmpty(c.Locators.Interfaces)
	c.Locators.ExcludeInterfaces = nilIfEmpty(c.Locators.ExcludeInterfaces)
	c.Locators.Prefixes = nilIfEmptyP(c.Locators.Prefixes)
	c.Locators.ExcludePrefixes = nilIfEmptyP(c.Locators.ExcludePrefixes)
	c.Peers.Always = nilIfEmptyP(c.Peers.Always)
	c.Peers.Never = nilIfEmptyP(c.Peers.Never)
	return c
}

func TestParseConfigOverrides(t *testing.T) {
	cfg := Default()
	err := ParseConfig([]byte(`
[security]
mode = "insecure"
[reap]
send_timeout = "3s"
activity_poll = "200ms"
[peers]
always = ["2001:db8:1::/48"]
never = ["2001:db8:2::/48"]
[locators]
interfaces = ["eth0", "eth1"]
exclude_prefixes = ["2001:db8:ff::/48"]
[metrics]
listen = "[::1]:9586"
`), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Security.Mode != SecurityInsecure || cfg.REAP.SendTimeout != 3*time.Second || cfg.Metrics.Listen != "[::1]:9586" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if cfg.Trigger.Packets != 10 || cfg.Log.Level != "info" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
	for _, tc := range []struct {
		addr string
		want PeerPolicy
	}{{"2001:db8:1::5", PeerAlways}, {"2001:db8:2::5", PeerNever}, {"2001:db8:3::5", PeerDefault}} {
		if got := cfg.PolicyFor(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("PolicyFor(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	for _, tc := range []struct {
		iface, addr string
		want        bool
	}{
		{"eth0", "2001:db8:a::1", true},
		{"eth2", "2001:db8:a::1", false},
		{"eth1", "2001:db8:ff::1", false},
	} {
		if got := cfg.LocatorAllowed(tc.iface, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("LocatorAllowed(%s, %s) = %v", tc.iface, tc.addr, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, toml string
		want       []string // substrings of the error
	}{
		{"unknown key", "[reap]\nsend_timout = \"3s\"\n", []string{"unknown key", "reap.send_timout"}},
		{"unknown section", "[reapp]\nx=1\n", []string{"unknown key", "reapp"}},
		{"syntax", "state_dir = \n", []string{"configuration"}},
		{"bad mode", "[security]\nmode = \"none\"\n", []string{"security.mode", `"none"`}},
		{"bad sec", "[security]\nsec = 3\n", []string{"security.sec"}},
		{"relative state", "state_dir = \"var/lib\"\n", []string{"state_dir", "absolute"}},
		{"zero send timeout", "[reap]\nsend_timeout = \"0s\"\n", []string{"reap.send_timeout"}},
		{"bad duration", "[reap]\nsend_timeout = \"fast\"\n", []string{"send_timeout"}},
		{"ipv4 prefix", "[peers]\nnever = [\"10.0.0.0/8\"]\n", []string{"peers.never", "not an IPv6 prefix"}},
		{"host bits", "[locators]\nprefixes = [\"2001:db8::1/64\"]\n", []string{"locators.prefixes", "2001:db8::/64"}},
		{"overlap", "[peers]\nalways = [\"2001:db8::/32\"]\nnever = [\"2001:db8:1::/48\"]\n", []string{"overlaps"}},
		{"level", "[log]\nlevel = \"loud\"\n", []string{"log.level"}},
		{"format", "[log]\nformat = \"xml\"\n", []string{"log.format"}},
		{"metrics", "[metrics]\nlisten = \"9586\"\n", []string{"metrics.listen"}},
		{"iface", "[locators]\ninterfaces = [\"a-very-long-interface-name\"]\n", []string{"locators.interfaces"}},
		{"two errors", "[log]\nlevel = \"x\"\nformat = \"y\"\n", []string{"log.level", "log.format"}},
	} {
		cfg := Default()
		err := ParseConfig([]byte(tc.toml), &cfg)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: error %v does not wrap ErrConfig", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

func TestLoadConfigMissing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.toml")
	if _, err := LoadConfig(p, false); err == nil {
		t.Fatal("missing explicit config accepted")
	}
	cfg, err := LoadConfig(p, true)
	if err != nil || !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("missing default config: %+v, %v", cfg, err)
	}
}
