package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

func shim6lab(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestCommands(t *testing.T) {
	nstest.Require(t)
	dir := t.TempDir()
	name := fmt.Sprintf("c%d", os.Getpid())
	g := []string{"--state-dir", dir, "--name", name}
	t.Cleanup(func() { lab.Manager{StateDir: dir}.Down(name) })
	cmd := func(args ...string) (string, string, int) {
		return shim6lab(t, append(append([]string{}, g...), args...)...)
	}

	out, errs, code := cmd("up", "--providers", "3")
	if code != 0 || !strings.Contains(out, "2001:db8:3:b::2 (p3)") || !strings.Contains(out, "s6lab-"+name+"-a") {
		t.Fatalf("up: %d %q %q", code, out, errs)
	}
	if _, errs, code := cmd("up"); code != 1 || !strings.Contains(errs, "already up") {
		t.Fatalf("second up: %d %q", code, errs)
	}
	if _, errs, code := cmd("fail", "a-p1", "--method", "teleport"); code != 1 || !strings.Contains(errs, "unknown failure method") {
		t.Fatalf("bad method: %d %q", code, errs)
	}
	if _, errs, code := cmd("fail", "x-p9"); code != 1 || !strings.Contains(errs, "no such link") {
		t.Fatalf("bad link: %d %q", code, errs)
	}
	if out, _, code := cmd("fail", "a-p1", "--dir", "in"); code != 0 || !strings.Contains(out, "direction in") {
		t.Fatalf("fail: %d %q", code, out)
	}
	if _, _, code := cmd("fail", "b-p3", "--method", "down"); code != 0 {
		t.Fatal("fail down")
	}
	out, _, code = cmd("status", "-o", "json")
	var st lab.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status json: %d %q", code, out)
	}
	states := map[string]string{}
	for _, l := range st.Links {
		states[l.Name] = l.State
	}
	if states["a-p1"] != "blackhole-in" || states["b-p3"] != "down" || states["a-p2"] != "ok" || len(states) != 9 {
		t.Fatalf("states %v", states)
	}
	if out, _, code := cmd("heal", "all"); code != 0 || strings.Count(out, ": ok") != 9 {
		t.Fatalf("heal all: %d %q", code, out)
	}
	if out, _, _ := cmd("status"); strings.Contains(out, "blackhole") || strings.Contains(out, "down") {
		t.Fatalf("status after heal:\n%s", out)
	}
	if out, _, code := cmd("down"); code != 0 || !strings.Contains(out, "removed 6 namespaces") {
		t.Fatalf("down: %d %q", code, out)
	}
	if _, errs, code := cmd("status"); code != 1 || !strings.Contains(errs, "not up") {
		t.Fatalf("status after down: %d %q", code, errs)
	}
	if out, _, code := cmd("down"); code != 0 || !strings.Contains(out, "nothing") {
		t.Fatalf("second down: %d %q", code, out)
	}
	if _, errs, code := shim6lab(t, "--name", "Bad-Name", "status"); code != 1 || !strings.Contains(errs, "invalid lab name") {
		t.Fatalf("bad name: %d %q", code, errs)
	}
}
