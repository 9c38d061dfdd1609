package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goshim6/goshim6/cga"
)

var testPrefixes = []netip.Prefix{netip.MustParsePrefix("2001:db8:1:1::/64"), netip.MustParsePrefix("2001:db8:2:1::/64")}

func openSD(t *testing.T, dir string) *StateDir {
	t.Helper()
	sd, err := OpenStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sd.Close() })
	return sd
}

func TestIdentityHBAGeneratedOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	sd := openSD(t, dir)
	sec := Default().Security
	id, created, err := LoadOrCreateIdentity(context.Background(), sd, sec, testPrefixes, discardLogger())
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	if len(id.Addrs) != 2 || !testPrefixes[0].Contains(id.Addrs[0]) || !testPrefixes[1].Contains(id.Addrs[1]) {
		t.Fatalf("addresses %v", id.Addrs)
	}
	for _, a := range id.Addrs {
		if err := cga.Verify(a, id.PDS); err != nil {
			t.Errorf("%s does not verify against its own parameters: %v", a, err)
		}
		if id.MethodFor(a) != MethodHBA {
			t.Errorf("method for %s", a)
		}
	}
	if id.MethodFor(netip.MustParseAddr("2001:db8:3::1")) != MethodNone {
		t.Error("a foreign address is verifiable in hba mode")
	}
	fi, _ := os.Stat(filepath.Join(dir, IdentityFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity mode %v", fi.Mode().Perm())
	}
	// Restart: same identity, even if the host's prefixes changed.
	id2, created, err := LoadOrCreateIdentity(context.Background(), sd, sec, testPrefixes[:1], discardLogger())
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if string(id2.PDS) != string(id.PDS) || id2.Addrs[1] != id.Addrs[1] {
		t.Fatal("identity changed across restarts")
	}
	if m := id2.Missing([]netip.Prefix{testPrefixes[0], netip.MustParsePrefix("2001:db8:9::/64")}); len(m) != 1 {
		t.Fatalf("missing %v", m)
	}
	// Another mode refuses to reuse it.
	_, _, err = LoadOrCreateIdentity(context.Background(), sd, SecurityConfig{Mode: SecurityHBA, Sec: 1, RSABits: 2048}, testPrefixes, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "remove that file") {
		t.Fatalf("sec change: %v", err)
	}
}

func TestIdentityTamperedFileRefused(t *testing.T) {
	dir := t.TempDir()
	sd := openSD(t, dir)
	id, _, err := LoadOrCreateIdentity(context.Background(), sd, Default().Security, testPrefixes, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sd.ReadFile(IdentityFile)
	// Swap a prefix: the recomputed address no longer verifies? It does
	// not exist in the multi-prefix list, so Address must fail.
	bad := strings.Replace(string(b), "2001:db8:2:1::/64", "2001:db8:7:1::/64", 1)
	sd.WriteFile(IdentityFile, []byte(bad))
	if _, _, err := LoadOrCreateIdentity(context.Background(), sd, Default().Security, testPrefixes, discardLogger()); err == nil {
		t.Fatal("tampered prefix accepted")
	}
	sd.WriteFile(IdentityFile, []byte(`{"version":1,"mode":"hba","sec":0,"pds":"AAAA","prefixes":[],"addresses":[],"extra":1}`))
	if _, _, err := LoadOrCreateIdentity(context.Background(), sd, Default().Security, testPrefixes, discardLogger()); err == nil {
		t.Fatal("unknown field accepted")
	}
	_ = id
}

func TestIdentityNoPrefix(t *testing.T) {
	sd := openSD(t, t.TempDir())
	_, _, err := LoadOrCreateIdentity(context.Background(), sd, Default().Security, nil, discardLogger())
	if err == nil || !strings.Contains(err.Error(), "no global IPv6 prefix") {
		t.Fatalf("no prefixes: %v", err)
	}
}

func TestIdentityCGA(t *testing.T) {
	dir := t.TempDir()
	sd := openSD(t, dir)
	sec := SecurityConfig{Mode: SecurityCGA, RSABits: 1024}
	id, _, err := LoadOrCreateIdentity(context.Background(), sd, sec, testPrefixes, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if id.Key == nil {
		t.Fatal("no key in cga mode")
	}
	fi, err := os.Stat(filepath.Join(dir, RSAKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if id.MethodFor(netip.MustParseAddr("2001:db8:3::1")) != MethodCGA {
		t.Error("foreign locator not signable in cga mode")
	}
	p, err := cga.Parse(id.PDS)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := cga.MarshalPublicKey(&id.Key.PublicKey)
	if string(p.PublicKey) != string(pub) {
		t.Fatal("parameters do not carry the RSA public key")
	}
	id2, _, err := LoadOrCreateIdentity(context.Background(), sd, sec, testPrefixes, discardLogger())
	if err != nil || !id2.Key.Equal(id.Key) {
		t.Fatalf("reload: %v", err)
	}
	// Another key does not match the stored identity.
	other, _ := cga.GenerateKey(nil, 1024)
	kp := filepath.Join(t.TempDir(), "other.pem")
	if err := cga.SavePrivateKey(kp, other); err != nil {
		t.Fatal(err)
	}
	sec.RSAKey = kp
	if _, _, err := LoadOrCreateIdentity(context.Background(), sd, sec, testPrefixes, discardLogger()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("foreign key: %v", err)
	}
}
