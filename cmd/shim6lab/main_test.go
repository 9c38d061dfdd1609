package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

// TestMain lets the test binary act as shim6lab itself, for the relay
// process that `up --delay` starts.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Getenv("GOSHIM6LAB_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Setenv("GOSHIM6LAB_TEST_AS_MAIN", "1")
	os.Exit(m.Run())
}

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

func TestUpWithDelayRunsARelay(t *testing.T) {
	nstest.Require(t)
	dir := t.TempDir()
	name := fmt.Sprintf("d%d", os.Getpid())
	g := []string{"--state-dir", dir, "--name", name}
	t.Cleanup(func() { lab.Manager{StateDir: dir}.Down(name) })
	cmd := func(args ...string) (string, string, int) {
		return shim6lab(t, append(append([]string{}, g...), args...)...)
	}

	if out, errs, code := cmd("up", "--delay", "10ms"); code != 0 {
		t.Fatalf("up: %d %q %q", code, out, errs)
	}
	// The relay runs in the background, inside the core namespace.
	l, err := lab.Manager{StateDir: dir}.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	st, _ := l.Status()
	core := st.Nodes[len(st.Nodes)-1]
	if core.Name != "core" || len(core.Processes) != 1 {
		t.Fatalf("core processes %v", core.Processes)
	}
	// a1 -> b1 crosses a-p1 and b-p1, 10 ms each way on each.
	a, b := l.Host("a"), l.Host("b")
	pc, err := b.NS.ListenPacket("udp6", netip.AddrPortFrom(b.Uplinks[0].Addr, 7).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	cl, err := a.NS.ListenPacket("udp6", netip.AddrPortFrom(a.Uplinks[0].Addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.Uplinks[0].Addr, 7))
	var best time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		cl.WriteTo([]byte("x"), to)
		cl.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := cl.ReadFrom(make([]byte, 8)); err != nil {
			t.Fatalf("echo through the relays: %v", err)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	if best < 40*time.Millisecond {
		t.Fatalf("round trip %v, want at least 40ms", best)
	}
	if out, _, code := cmd("down"); code != 0 || !strings.Contains(out, "removed 5") {
		t.Fatalf("down: %d %q", code, out)
	}
	if p := core.Processes[0]; p != "" {
		var pid int
		fmt.Sscan(p, &pid)
		if err := syscall.Kill(pid, 0); err == nil {
			// It may be a zombie briefly; give it a moment.
			time.Sleep(200 * time.Millisecond)
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); len(b) > 0 && !strings.Contains(string(b), ") Z") {
				t.Fatalf("relay %d still running after down", pid)
			}
		}
	}
}
