package main

// End-to-end tests: real shim6d processes in the network namespaces of the
// standard two-host, two-provider topology (internal/netns), talking over
// real raw sockets, managed through their real sockets.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/netio"
	"github.com/goshim6/goshim6/wire"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// shim6dBinary builds shim6d once per test process.
func shim6dBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shim6d-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shim6d")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is one running shim6d.
type proc struct {
	t      *testing.T
	name   string
	ns     *netns.NS
	dir    string
	cfg    string
	socket string
	log    string
	cmd    *exec.Cmd
	done   chan error
	client *api.Client
}

const baseConfig = `
state_dir = "%[1]s/state"
socket = "%[1]s/run/shim6d.sock"
[dataplane]
kind = "memory"
[reap]
send_timeout = "3s"
activity_poll = "200ms"
[log]
level = "debug"
`

func startShim6d(t *testing.T, ns *netns.NS, name, dir, extra string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, ns: ns, dir: dir, cfg: filepath.Join(dir, "shim6d.toml"),
		socket: filepath.Join(dir, "run", "shim6d.sock"), log: filepath.Join(dir, "shim6d.log")}
	if err := os.WriteFile(p.cfg, []byte(fmt.Sprintf(baseConfig, dir)+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("--- %s log (tail) ---\n%s", name, strings.Join(lines, "\n"))
		}
	})
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(shim6dBinary(t), "-config", p.cfg)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.ns.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := api.Dial(context.Background(), p.socket)
		if err == nil {
			if _, err = c.Status(context.Background()); err == nil {
				p.client = c
				return
			}
			c.Close()
		}
		select {
		case werr := <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited at start: %v\n%s", p.name, werr, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer on %s: %v", p.name, p.socket, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; it returns the exit error.
func (p *proc) stop() error {
	if p.cmd == nil {
		return nil
	}
	if p.client != nil {
		p.client.Close()
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		err = <-p.done
		p.t.Errorf("%s did not stop on SIGTERM", p.name)
	}
	p.cmd = nil
	return err
}

// hbaAddrs returns the daemon's HBA addresses, in provider order.
// hbaAddrs returns the daemon's HBA locators, waiting (up to 10 s) until
// the address monitor has reported them: under load the API may answer
// before the first address change was processed.
func (p *proc) hbaAddrs() []netip.Addr {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := p.client.Locators(context.Background())
		if err != nil {
			p.t.Fatal(err)
		}
		var out []netip.Addr
		for _, x := range l.Local {
			if x.Verification == "hba" {
				out = append(out, x.Addr)
			}
		}
		if len(out) >= 2 || time.Now().After(deadline) {
			if len(out) == 0 {
				p.t.Fatal("the daemon reports no HBA locator")
			}
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitContext polls until the context with that peer satisfies ok.
func (p *proc) waitContext(peer netip.Addr, what string, ok func(api.Context) bool) api.Context {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last api.Context
	var err error
	for time.Now().Before(deadline) {
		last, err = p.client.Context(context.Background(), api.ContextRef{PeerULID: peer})
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("%s: context with %s never %s (last %+v, err %v)", p.name, peer, what, last, err)
	return last
}

func established(c api.Context) bool { return c.State == "established" }

func verifiedPeerLocators(c api.Context) int {
	n := 0
	for _, l := range c.PeerLocators {
		if l.State == "verified" {
			n++
		}
	}
	return n
}

// sendRaw sends a Shim6 message from inside ns.
func sendRaw(t *testing.T, ns *netns.NS, src, dst netip.Addr, msgs ...[]byte) {
	t.Helper()
	err := ns.Do(func() error {
		c, err := netio.Listen()
		if err != nil {
			return err
		}
		defer c.Close()
		for _, m := range msgs {
			if err := c.Send(src, dst, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func topo(t *testing.T) *netns.Topology {
	return nstest.Topology(t, netns.Config{})
}

// TestE2EEstablishUpdateVerifyMalformed runs two daemons and checks, in
// order: establishment on command with verified locators, an Update seen
// by the peer after an address removal, a verification failure visible in
// status, survival of malformed packets, and coded API errors.
func TestE2EEstablishUpdateVerifyMalformed(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startShim6d(t, ha.NS, "a", t.TempDir(), "")
	b := startShim6d(t, hb.NS, "b", t.TempDir(), "")
	ctx := context.Background()
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()
	if len(aIDs) != 2 || len(bIDs) != 2 {
		t.Fatalf("HBA addresses: a %v, b %v", aIDs, bIDs)
	}

	// Establishment on command.
	if _, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: aIDs[0], PeerULID: bIDs[0]}); err != nil {
		t.Fatal(err)
	}
	ca := a.waitContext(bIDs[0], "established with b's locators verified", func(c api.Context) bool {
		return established(c) && verifiedPeerLocators(c) >= 2
	})
	cb := b.waitContext(aIDs[0], "established", func(c api.Context) bool {
		return established(c) && verifiedPeerLocators(c) >= 2
	})
	if ca.PeerTag != cb.LocalTag || cb.PeerTag != ca.LocalTag {
		t.Fatalf("tags do not match: a %#x/%#x, b %#x/%#x", ca.LocalTag, ca.PeerTag, cb.LocalTag, cb.PeerTag)
	}

	// Address removal on a: b learns it through an Update.
	if err := ha.NS.DelAddr(netns.HostIfname(2), netip.PrefixFrom(aIDs[1], 64)); err != nil {
		t.Fatal(err)
	}
	b.waitContext(aIDs[0], "updated without a's removed locator", func(c api.Context) bool {
		for _, l := range c.PeerLocators {
			if l.Addr == aIDs[1] {
				return false
			}
		}
		return len(c.PeerLocators) > 0
	})

	// A forged Update with a locator outside a's HBA set: b refuses it
	// and says so in its status.
	pds, err := readPDS(filepath.Join(a.dir, "state", "identity.json"))
	if err != nil {
		t.Fatal(err)
	}
	bogus := netip.MustParseAddr("2001:db8:1:a::bad")
	forged, err := wire.Marshal(&wire.UpdateRequest{ReceiverTag: cb.LocalTag, RequestNonce: 0x1234,
		Options: wire.Options{
			LocatorList: &wire.LocatorList{Generation: 1000, Locators: []wire.Locator{
				{Addr: aIDs[0], Method: wire.VerificationMethod(1)}, {Addr: bogus, Method: wire.VerificationMethod(1)}}},
			CGAParameterDataStructure: pds,
		}})
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, ha.NS, aIDs[0], bIDs[0], forged)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := b.client.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.VerificationFailures > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("forged locator not reported: status %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, _ := b.client.Context(ctx, api.ContextRef{PeerULID: aIDs[0]})
	for _, l := range c.PeerLocators {
		if l.Addr == bogus && l.State == "verified" {
			t.Fatalf("b verified the forged locator: %+v", c.PeerLocators)
		}
	}

	// Malformed packets: b drops them and carries on.
	junk := [][]byte{
		{}, {59}, {59, 0, 0, 0}, make([]byte, 7), make([]byte, 2000),
		{59, 0, 0x80, 0, 0, 0, 0, 1},                            // payload header with an unknown tag
		{59, 1, 1, 0, 0xff, 0xff, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}, // I1 with a bad checksum
		{59, 255, 64, 0, 0, 0, 0, 0},                            // length beyond the packet
	}
	for i := range 50 {
		junk = append(junk, []byte(fmt.Sprintf("%c%c%cgarbage-%d-......", 59, i%4, i, i)))
	}
	sendRaw(t, ha.NS, aIDs[0], bIDs[0], junk...)
	deadline = time.Now().Add(20 * time.Second)
	for {
		s, err := b.client.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Counters["engine_dropped"] >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("junk not counted as dropped: %v", s.Counters)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c, err := b.client.Context(ctx, api.ContextRef{PeerULID: aIDs[0]}); err != nil || !established(c) {
		t.Fatalf("b's context after junk: %+v %v", c, err)
	}

	// API errors: coded, and the daemon survives bad input.
	checkAPIErrors(t, b)
	if _, err := b.client.Status(ctx); err != nil {
		t.Fatalf("b after bad API input: %v", err)
	}
	if err := b.stop(); err != nil {
		t.Fatalf("b exit: %v", err)
	}
}

func readPDS(identity string) ([]byte, error) {
	b, err := os.ReadFile(identity)
	if err != nil {
		return nil, err
	}
	var f struct {
		PDS []byte `json:"pds"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if len(f.PDS) == 0 {
		return nil, errors.New("no pds in identity.json")
	}
	return f.PDS, nil
}

func checkAPIErrors(t *testing.T, p *proc) {
	t.Helper()
	c, err := net.Dial("unix", p.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	for _, tc := range []struct {
		line string
		code api.Code
	}{
		{`{"version":1,"id":1,"method":"contexts.create","params":{"peer_ulid":"192.0.2.1"}}`, api.CodeInvalidArgument},
		{`{"version":1,"id":2,"method":"contexts.delete","params":{"tag":12345}}`, api.CodeNotFound},
		{`{"version":1,"id":3,"method":"contexts.explore","params":{"peer_ulid":"2001:db8::1"}}`, api.CodeNotFound},
		{`{"version":1,"id":4,"method":"format.disk"}`, api.CodeUnknownMethod},
		{`{"version":9,"id":5,"method":"status"}`, api.CodeUnsupportedVersion},
		{`{"version":1,"id":6,"method":"status","sudo":true}`, api.CodeBadRequest},
		{"\x00\x01\x02 not json", api.CodeBadRequest},
		{`{"version":1,"id":7,"method":"contexts.pin","params":{"tag":1,"local_locator":"2001:db8::1","peer_locator":"2001:db8::2"}}`, api.CodeNotFound},
	} {
		if _, err := c.Write([]byte(tc.line + "\n")); err != nil {
			t.Fatal(err)
		}
		l, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var resp api.Response
		if err := json.Unmarshal(l, &resp); err != nil || resp.Error == nil || resp.Error.Code != tc.code {
			t.Errorf("%s: got %s, want %s", tc.line, l, tc.code)
		}
	}
	// An oversized request is refused and the connection closed.
	go c.Write([]byte(`{"version":1,"id":8,"method":"status","params":"` + strings.Repeat("x", api.MaxRequestSize) + "\"}\n"))
	l, _ := r.ReadBytes('\n')
	if !strings.Contains(string(l), string(api.CodeTooLarge)) {
		t.Errorf("oversized request: %s", l)
	}
}

// TestE2ERestartStateLost restarts one daemon without its contexts: the
// peer's next control message with the lost tag gets an R1bis, and the
// peer recovers the context with I2bis (RFC 5533 §7.17-7.19).
func TestE2ERestartStateLost(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startShim6d(t, ha.NS, "a", t.TempDir(), "")
	b := startShim6d(t, hb.NS, "b", t.TempDir(), "")
	ctx := context.Background()
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()
	if _, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: aIDs[0], PeerULID: bIDs[0]}); err != nil {
		t.Fatal(err)
	}
	ca := a.waitContext(bIDs[0], "established", established)
	cb := b.waitContext(aIDs[0], "established", established)

	// Restart b: same identity (state directory), no contexts.
	if err := b.stop(); err != nil {
		t.Fatalf("b exit: %v", err)
	}
	b.start()
	if got := b.hbaAddrs(); len(got) != 2 || got[0] != bIDs[0] {
		t.Fatalf("b's identity changed across the restart: %v -> %v", bIDs, got)
	}
	if cs, _ := b.client.Contexts(ctx); len(cs) != 0 {
		t.Fatalf("b kept contexts across a restart: %+v", cs)
	}
	// a probes b (as REAP would on its own after a Send Timeout).
	if err := a.client.Explore(ctx, api.ContextRef{Tag: ca.LocalTag}); err != nil {
		t.Fatal(err)
	}
	rb := b.waitContext(aIDs[0], "recovered", established)
	if rb.PeerTag != ca.LocalTag {
		t.Fatalf("recovered context on b has peer tag %#x, want a's %#x", rb.PeerTag, ca.LocalTag)
	}
	if rb.LocalTag != cb.LocalTag {
		t.Logf("b's recovered context uses a new local tag %#x (was %#x)", rb.LocalTag, cb.LocalTag)
	}
	a.waitContext(bIDs[0], "established after recovery", established)
	st, err := a.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["engine_rx_r1bis"] == 0 {
		t.Errorf("a saw no R1bis: %v", st.Counters)
	}
}

// TestE2ERefusals: a second instance and a broken configuration are refused
// with clear messages.
func TestE2ERefusals(t *testing.T) {
	nstest.Require(t)
	ns := nstest.NS(t)
	dir := t.TempDir()
	// No global address in this namespace: a clear message.
	os.WriteFile(filepath.Join(dir, "c.toml"), []byte(fmt.Sprintf(baseConfig, dir)), 0o600)
	cmd := exec.Command(shim6dBinary(t), "-config", filepath.Join(dir, "c.toml"))
	out, err := outputIn(ns, cmd)
	if err == nil || !strings.Contains(string(out), "no global IPv6 prefix") {
		t.Fatalf("no address: %v\n%s", err, out)
	}
	// Not root.
	os.Chmod(filepath.Dir(shim6dBinary(t)), 0o755)
	os.Chmod(dir, 0o755)
	cmd = exec.Command(shim6dBinary(t), "-config", filepath.Join(dir, "c.toml"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "must run as root") {
		t.Fatalf("not root: %v\n%s", err, out)
	}
	// Unknown key.
	os.WriteFile(filepath.Join(dir, "bad.toml"), []byte("[reap]\nsend_timout = \"1s\"\n"), 0o600)
	out, err = exec.Command(shim6dBinary(t), "-config", filepath.Join(dir, "bad.toml"), "-check").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "reap.send_timout") {
		t.Fatalf("bad config: %v\n%s", err, out)
	}
	// Second instance.
	tp := topo(t)
	a := startShim6d(t, tp.Host("a").NS, "a", t.TempDir(), "")
	cmd = exec.Command(shim6dBinary(t), "-config", a.cfg)
	out, err = outputIn(tp.Host("a").NS, cmd)
	if err == nil || !strings.Contains(string(out), "another shim6d is running") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}
	if _, err := a.client.Status(context.Background()); err != nil {
		t.Fatalf("first instance hurt by the second: %v", err)
	}
}

func outputIn(ns *netns.NS, cmd *exec.Cmd) ([]byte, error) {
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	err := ns.Run(cmd)
	return []byte(b.String()), err
}

// TestE2EICMPErrorReachesREAP: a Destination Unreachable from a router
// about ULP traffic on the ULID pair of an established context reaches the
// engine (RFC 5533 §8), which starts REAP exploration.
func TestE2EICMPErrorReachesREAP(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startShim6d(t, ha.NS, "a", t.TempDir(), "")
	b := startShim6d(t, hb.NS, "b", t.TempDir(), "")
	ctx := context.Background()
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()
	if _, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: aIDs[0], PeerULID: bIDs[0]}); err != nil {
		t.Fatal(err)
	}
	a.waitContext(bIDs[0], "established", func(c api.Context) bool { return established(c) && verifiedPeerLocators(c) >= 2 })

	wc, err := api.Dial(ctx, a.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got := make(chan api.Event, 1)
	go wc.Watch(wctx, func(ev api.Event) error {
		if ev.Kind == api.EventReap && strings.Contains(ev.Message, "ICMP") {
			got <- ev
			return errors.New("done")
		}
		return nil
	})
	time.Sleep(100 * time.Millisecond) // let the watch subscribe

	// The provider-1 router says b's ULID is unreachable (code 3), quoting
	// a UDP packet a sent on the ULID pair.
	inv := make([]byte, 48)
	inv[0] = 0x60
	binary.BigEndian.PutUint16(inv[4:], 8)
	inv[6], inv[7] = 17, 64
	copy(inv[8:24], aIDs[0].AsSlice())
	copy(inv[24:40], bIDs[0].AsSlice())
	binary.BigEndian.PutUint16(inv[40:], 40000)
	binary.BigEndian.PutUint16(inv[42:], 9)
	binary.BigEndian.PutUint16(inv[44:], 8)
	msg := append([]byte{1, 3, 0, 0, 0, 0, 0, 0}, inv...)
	p1 := tp.Providers[0]
	err = p1.NS.Do(func() error {
		c, err := net.ListenPacket("ip6:ipv6-icmp", "")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.WriteTo(msg, &net.IPAddr{IP: aIDs[0].AsSlice()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-got:
		t.Logf("engine: %s", ev.Message)
	case <-wctx.Done():
		st, _ := a.client.Stats(ctx)
		t.Fatalf("no REAP reaction to the ICMP error; netio counters: delivered %d filtered %d", st.Counters["netio_icmp_delivered"], st.Counters["netio_icmp_filtered"])
	}
}
