package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/goshim6/goshim6/cga"
)

const cgaInterop = "../../cga/testdata/interop/"

// cgaRun runs shim6ctl in-process and returns stdout, stderr and the error.
func cgaRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errb.String(), err
}

func TestCGAGenWithKeyAndVerify(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.bin")
	stdout, _, err := cgaRun(t, "cga", "gen", "--prefix", "2001:db8:1:2::/64", "--sec", "1", "--key", cgaInterop+"key1024.pem", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(stdout))
	if err != nil || cga.PrefixOf(addr) != netip.MustParsePrefix("2001:db8:1:2::/64") || addr.As16()[8]>>5 != 1 {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	params, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := cga.Verify(addr, params); err != nil {
		t.Fatal(err)
	}
	// The parameters hold the key's public half.
	k, _ := cga.LoadPrivateKey(cgaInterop + "key1024.pem")
	pub, _ := cga.MarshalPublicKey(&k.PublicKey)
	if p, _ := cga.Parse(params); !bytes.Equal(p.PublicKey, pub) {
		t.Error("parameters do not hold the --key public key")
	}
	stdout, _, err = cgaRun(t, "cga", "verify", "--params", out, addr.String())
	if err != nil || stdout != addr.String()+" ok (CGA, RFC 3972 §5)\n" {
		t.Errorf("verify: %q %v", stdout, err)
	}
}

func TestCGAGenNewKeyJSON(t *testing.T) {
	dir := t.TempDir()
	out, keyOut := filepath.Join(dir, "p.bin"), filepath.Join(dir, "k.pem")
	stdout, _, err := cgaRun(t, "cga", "gen", "--prefix", "2001:db8:9::", "--sec", "0", "--rsa-bits", "1024", "--key-out", keyOut, "--out", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Address netip.Addr
		Sec     int
		RSABits int `json:"rsa_bits"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.RSABits != 1024 || res.Sec != 0 {
		t.Fatalf("JSON %q: %v", stdout, err)
	}
	if st, err := os.Stat(keyOut); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	k, err := cga.LoadPrivateKey(keyOut)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := os.ReadFile(out)
	v, err := cga.NewVerifier(params)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyCGA(res.Address); err != nil {
		t.Fatal(err)
	}
	// The saved key signs for this CGA.
	locs := []netip.Addr{res.Address}
	sig, err := cga.SignLocators(k, 1, locs)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyLocatorSignature(1, locs, sig); err != nil {
		t.Error(err)
	}
	// A second run refuses to overwrite the key.
	if _, _, err := cgaRun(t, "cga", "gen", "--prefix", "2001:db8:9::", "--rsa-bits", "1024", "--key-out", keyOut, "--out", out); err == nil {
		t.Error("overwrote --key-out")
	}
}

func TestHBAGen(t *testing.T) {
	dir := t.TempDir()
	prefixes := []string{"2001:db8:a::/64", "2001:db8:b::", "2001:db8:c::/64"}
	for _, withKey := range []bool{false, true} {
		out := filepath.Join(dir, "h.bin")
		args := []string{"hba", "gen", "--sec", "1", "--out", out}
		for _, p := range prefixes {
			args = append(args, "--prefix", p)
		}
		if withKey {
			args = append(args, "--key", cgaInterop+"key2048.pem")
		}
		stdout, _, err := cgaRun(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(stdout)
		if len(lines) != 3 {
			t.Fatalf("stdout %q", stdout)
		}
		params, _ := os.ReadFile(out)
		for i, l := range lines {
			a := netip.MustParseAddr(l)
			want := []string{"2001:db8:a::/64", "2001:db8:b::/64", "2001:db8:c::/64"}[i]
			if cga.PrefixOf(a).String() != want {
				t.Errorf("line %d: %v not in %s (prefix order)", i, a, want)
			}
			if err := cga.Verify(a, params); err != nil {
				t.Error(err)
			}
		}
		stdout, _, err = cgaRun(t, append([]string{"cga", "verify", "--json", "--params", out}, lines...)...)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		var res struct {
			Kind    string
			Results []cgaVerdict
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatal(err)
		}
		wantKind := map[bool]string{false: "hba", true: "hba+cga"}[withKey]
		if res.Kind != wantKind || len(res.Results) != 3 {
			t.Errorf("verify JSON %+v", res)
		}
		for _, r := range res.Results {
			if !r.OK || r.Method != "hba" {
				t.Errorf("verdict %+v", r)
			}
		}
		os.Remove(out)
	}
}

// Every interop vector verifies through the command; a wrong address makes
// the exit status 1 and says which step failed.
func TestCGAVerifyInterop(t *testing.T) {
	files, _ := filepath.Glob(cgaInterop + "*.params")
	if len(files) < 7 {
		t.Fatalf("%d vectors", len(files))
	}
	files = append(files, "../../cga/testdata/sec2/cga-sec2-rsa1024.params")
	for _, f := range files {
		addrs, _ := os.ReadFile(strings.TrimSuffix(f, ".params") + ".addr")
		args := append([]string{"cga", "verify", "--params", f}, strings.Fields(string(addrs))...)
		stdout, _, err := cgaRun(t, args...)
		if err != nil || strings.Contains(stdout, "FAIL") {
			t.Errorf("%s: %v\n%s", f, err, stdout)
		}
	}
	f := cgaInterop + "cga-sec1-rsa1024.params"
	stdout, _, err := cgaRun(t, "cga", "verify", "--params", f, "2001:db8:a:b:28e8:cf32:5fcf:cf77", "2001:db8:a:b:28e8:cf32:5fcf:cf76", "2001:db8:a:c:28e8:cf32:5fcf:cf77")
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("exit %v", err)
	}
	want := "2001:db8:a:b:28e8:cf32:5fcf:cf77 ok (CGA, RFC 3972 §5)\n" +
		"2001:db8:a:b:28e8:cf32:5fcf:cf76 FAIL at RFC 3972 §5 step 4: interface identifier does not match Hash1\n" +
		"2001:db8:a:c:28e8:cf32:5fcf:cf77 FAIL at RFC 3972 §5 step 2: subnet prefix does not match\n"
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestCGACommandErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.bin")
	key := cgaInterop + "key1024.pem"
	for name, args := range map[string][]string{
		"sec 3":               {"cga", "gen", "--prefix", "2001:db8::/64", "--sec", "3", "--key", key, "--out", out},
		"sec 7 hba":           {"hba", "gen", "--prefix", "2001:db8::/64", "--sec", "7", "--out", out},
		"/48":                 {"cga", "gen", "--prefix", "2001:db8::/48", "--key", key, "--out", out},
		"host bits":           {"cga", "gen", "--prefix", "2001:db8::1/64", "--key", key, "--out", out},
		"IPv4":                {"hba", "gen", "--prefix", "192.0.2.0", "--out", out},
		"no key":              {"cga", "gen", "--prefix", "2001:db8::/64", "--out", out},
		"key and rsa-bits":    {"cga", "gen", "--prefix", "2001:db8::/64", "--key", key, "--rsa-bits", "1024", "--out", out},
		"key-out with key":    {"cga", "gen", "--prefix", "2001:db8::/64", "--key", key, "--key-out", filepath.Join(dir, "k"), "--out", out},
		"rsa-bits 512":        {"cga", "gen", "--prefix", "2001:db8::/64", "--rsa-bits", "512", "--out", out},
		"no out":              {"cga", "gen", "--prefix", "2001:db8::/64", "--key", key},
		"duplicate prefix":    {"hba", "gen", "--prefix", "2001:db8::/64", "--prefix", "2001:db8::", "--out", out},
		"verify no address":   {"cga", "verify", "--params", cgaInterop + "cga-sec0-rsa1024.params"},
		"verify bad params":   {"cga", "verify", "--params", cgaInterop + "key1024.pem", "2001:db8::1"},
		"verify missing file": {"cga", "verify", "--params", filepath.Join(dir, "none"), "2001:db8::1"},
	} {
		if _, _, err := cgaRun(t, args...); err == nil {
			t.Errorf("%s: succeeded", name)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed command wrote --out")
	}
}

// TestCGAHelperProcess is not a test: it is the shim6ctl process that
// TestCGAGenCtrlC starts and interrupts.
func TestCGAHelperProcess(t *testing.T) {
	if os.Getenv("SHIM6CTL_CGA_HELPER") != "1" {
		return
	}
	args := strings.Split(os.Getenv("SHIM6CTL_CGA_ARGS"), "\x1f")
	os.Args = append([]string{"shim6ctl"}, args...)
	main()
	os.Exit(0)
}

// Ctrl-C during a long generation stops it cleanly: exit status 130, one
// message, nothing written.
func TestCGAGenCtrlC(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "p.bin")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCGAHelperProcess$")
	cmd.Env = append(os.Environ(), "SHIM6CTL_CGA_HELPER=1", "SHIM6CTL_CGA_ARGS="+strings.Join([]string{
		"cga", "gen", "--prefix", "2001:db8::/64", "--sec", "2", "--key", cgaInterop + "key1024.pem",
		"--out", out, "--progress", "always", "--workers", "1"}, "\x1f"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first progress line proves the signal handler is installed and
	// the search running.
	r := bufio.NewReader(stderr)
	first, err := r.ReadString('\r')
	for err == nil && !strings.Contains(first, "attempts") {
		first, err = r.ReadString('\r')
	}
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("no progress line: %v", err)
	}
	cmd.Process.Signal(syscall.SIGINT)
	var rest bytes.Buffer
	rest.ReadFrom(r)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v", err)
	}
	if !strings.Contains(rest.String(), "interrupted; nothing written") {
		t.Errorf("stderr after SIGINT: %q", rest.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("--out exists after Ctrl-C: %v", err)
	}
}
