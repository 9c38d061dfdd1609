package main

// End-to-end tests with the eBPF data plane: traffic between the ULIDs
// triggers the handshake, and a restart that keeps the data plane does not
// interrupt a shimmed TCP stream.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

// ebpfConfig returns the extra configuration of a daemon with the eBPF
// data plane pinned under a private bpffs in dir.
func ebpfConfig(t *testing.T, dir, dpExtra string) string {
	t.Helper()
	mnt := filepath.Join(dir, "bpffs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", mnt, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	// Registered before the daemon's own cleanup, so it runs after it.
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return fmt.Sprintf("\n[dataplane]\nkind = \"ebpf\"\npin_dir = %q\n%s\n", filepath.Join(mnt, "goshim6"), dpExtra)
}

// startEBPF starts a daemon whose configuration overrides the memory data
// plane of baseConfig.
func startEBPF(t *testing.T, ns *netns.NS, name, dpExtra, extra string) *proc {
	dir := t.TempDir()
	cfg := ebpfConfig(t, dir, dpExtra)
	// baseConfig has a [dataplane] table already: replace it.
	return startShim6dRaw(t, ns, name, dir, fmt.Sprintf(ebpfBase, dir)+cfg+extra)
}

const ebpfBase = `
state_dir = "%[1]s/state"
socket = "%[1]s/run/shim6d.sock"
[reap]
send_timeout = "3s"
activity_poll = "200ms"
[log]
level = "debug"
`

// startShim6dRaw is startShim6d with the whole configuration given.
func startShim6dRaw(t *testing.T, ns *netns.NS, name, dir, config string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, ns: ns, dir: dir, cfg: filepath.Join(dir, "shim6d.toml"),
		socket: filepath.Join(dir, "run", "shim6d.sock"), log: filepath.Join(dir, "shim6d.log")}
	if err := os.WriteFile(p.cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv("SHIM6D_E2E_LOGS") != "" {
			dumpLog(t, p)
		}
	})
	return p
}

func dumpLog(t *testing.T, p *proc) {
	b, _ := os.ReadFile(p.log)
	if len(b) > 12000 {
		b = b[len(b)-12000:]
	}
	t.Logf("--- %s log (tail) ---\n%s", p.name, b)
}

func TestE2EEBPFTriggerThreshold(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startEBPF(t, ha.NS, "a", "", "[trigger]\npackets = 10\n")
	b := startEBPF(t, hb.NS, "b", "", "[trigger]\npackets = 0\n")
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()

	// UDP from a's ULID to b's: after 10 packets the data plane raises
	// a trigger and a's daemon starts the handshake by itself.
	err := ha.NS.Do(func() error {
		c, err := net.DialUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(aIDs[0], 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(bIDs[0], 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 4 {
			c.Write([]byte{byte(i)}) // b answers port unreachable: ignore
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the data plane count them
	if cs, _ := a.client.Contexts(context.Background()); len(cs) != 0 {
		t.Fatalf("context before the threshold: %+v", cs)
	}
	err = ha.NS.Do(func() error {
		c, err := net.DialUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(aIDs[0], 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(bIDs[0], 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range 10 {
			c.Write([]byte{byte(i)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ca := a.waitContext(bIDs[0], "established by the trigger", established)
	if ca.LocalULID != aIDs[0] {
		t.Fatalf("context %+v", ca)
	}
	b.waitContext(aIDs[0], "established", established)
}

// TestE2EEBPFRestartKeepsTraffic: a context moved off its ULIDs (pinned
// to the provider-2 locators) carries a TCP stream; a's daemon stops with
// dataplane.keep_on_exit and starts again; the stream never stalls, and
// the new daemon adopts the data plane and recovers the context from b.
func TestE2EEBPFRestartKeepsTraffic(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startEBPF(t, ha.NS, "a", "keep_on_exit = true", "[trigger]\npackets = 0\n")
	b := startEBPF(t, hb.NS, "b", "", "[trigger]\npackets = 0\n")
	ctx := context.Background()
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()
	ca, err := a.client.CreateContext(ctx, api.CreateParams{LocalULID: aIDs[0], PeerULID: bIDs[0]})
	if err != nil {
		t.Fatal(err)
	}
	a.waitContext(bIDs[0], "established", func(c api.Context) bool { return established(c) && verifiedPeerLocators(c) >= 2 })
	b.waitContext(aIDs[0], "established", established)
	// Shim it: a sends over provider 2 with the payload extension header.
	if err := a.client.Pin(ctx, api.PinParams{ContextRef: api.ContextRef{Tag: ca.LocalTag}, LocalLocator: aIDs[1], PeerLocator: bIDs[1]}); err != nil {
		t.Fatal(err)
	}
	a.waitContext(bIDs[0], "pinned to provider 2", func(c api.Context) bool { return c.LocalLocator == aIDs[1] && c.PeerLocator == bIDs[1] })

	s := startStream(t, ha.NS, hb.NS, aIDs[0], bIDs[0])
	s.flowing(t, "before the restart")
	x, _ := a.client.Context(ctx, api.ContextRef{Tag: ca.LocalTag})
	if x.Traffic.TxPackets == 0 {
		// Activity is polled every 200ms; give it one more look.
		time.Sleep(500 * time.Millisecond)
		x, _ = a.client.Context(ctx, api.ContextRef{Tag: ca.LocalTag})
	}
	if x.Traffic.TxPackets == 0 {
		t.Errorf("the data plane counted no shimmed traffic: %+v", x.Traffic)
	}

	if err := a.stop(); err != nil {
		t.Fatalf("a exit: %v", err)
	}
	s.flowing(t, "while a's daemon is down")
	a.start()
	st, err := a.client.Status(ctx)
	if err != nil || !st.Adopted {
		t.Fatalf("a did not adopt the kept data plane: %+v %v", st, err)
	}
	s.flowing(t, "after the restart")
	// The context comes back (R1bis from a, I2bis from b).
	a.waitContext(bIDs[0], "recovered after the restart", established)
	s.flowing(t, "after recovery")
}

// stream is a TCP connection between the ULIDs that keeps sending and
// counts what arrives.
type stream struct {
	received atomic.Int64
	errc     chan error
	conn     net.Conn
}

func startStream(t *testing.T, client, server *netns.NS, from, to netip.Addr) *stream {
	t.Helper()
	ln, err := server.Listen("tcp6", netip.AddrPortFrom(to, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &stream{errc: make(chan error, 2)}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			s.errc <- err
			return
		}
		defer c.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			s.received.Add(int64(n))
			if err != nil {
				if err != io.EOF {
					s.errc <- err
				}
				return
			}
		}
	}()
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), Timeout: 10 * time.Second}
	c, err := client.Dial(context.Background(), d, "tcp6", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.conn = c
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1024)
		for {
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(buf); err != nil {
				s.errc <- fmt.Errorf("write: %w", err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return s
}

// flowing waits until more bytes arrive than had arrived when called.
func (s *stream) flowing(t *testing.T, what string) {
	t.Helper()
	start := s.received.Load()
	deadline := time.Now().Add(10 * time.Second)
	for s.received.Load() < start+16<<10 {
		select {
		case err := <-s.errc:
			t.Fatalf("stream broke %s: %v", what, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream stalled %s (%d bytes so far)", what, s.received.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EEBPFFailover: a TCP stream between the ULIDs over provider 1;
// provider 1 fails silently on a's side; REAP moves the context to the
// provider-2 locators and the same TCP connection goes on.
func TestE2EEBPFFailover(t *testing.T) {
	nstest.Require(t)
	tp := topo(t)
	ha, hb := tp.Host("a"), tp.Host("b")
	a := startEBPF(t, ha.NS, "a", "", "[trigger]\npackets = 10\n[metrics]\nlisten = \"[::1]:9586\"\n")
	b := startEBPF(t, hb.NS, "b", "", "[trigger]\npackets = 0\n")
	ctx := context.Background()
	aIDs, bIDs := a.hbaAddrs(), b.hbaAddrs()
	s := startStream(t, ha.NS, hb.NS, aIDs[0], bIDs[0])
	a.waitContext(bIDs[0], "established by the trigger", func(c api.Context) bool { return established(c) && verifiedPeerLocators(c) >= 2 })
	b.waitContext(aIDs[0], "established", established)
	s.flowing(t, "before the failure")

	if err := tp.Fail("a-p1", netns.Blackhole, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.flowing(t, "after provider 1 failed")
	t.Logf("stream resumed %v after the failure", time.Since(start).Round(10*time.Millisecond))
	c := a.waitContext(bIDs[0], "moved to provider 2", func(c api.Context) bool {
		return c.LocalLocator == aIDs[1] && !c.LastSwitch.IsZero()
	})
	if c.Switches == 0 || c.LastSwitchReason == "" {
		t.Errorf("switch not recorded: %+v", c)
	}
	st, err := a.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["probes_sent"] == 0 || st.Counters["engine_locator_switches"] == 0 {
		t.Errorf("stats after failover: probes_sent %d, switches %d", st.Counters["probes_sent"], st.Counters["engine_locator_switches"])
	}
	// The metrics tell the same story.
	m := scrape(t, ha.NS, "[::1]:9586")
	for _, want := range []string{
		`shim6_contexts{state="established"} 1`,
		`shim6_failovers_total{reason="` + c.LastSwitchReason + `"}`,
		"shim6_failover_duration_seconds_count 1",
		`shim6_handshakes_total{result="established",role="initiator"} 1`,
		`shim6_probes_total{direction="sent"}`,
		`shim6_dataplane_packets_total{direction="tx"}`,
		"shim6_up 1",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", grepLines(m, "shim6_"))
	}
}

// scrape fetches /metrics from inside ns.
func scrape(t *testing.T, ns *netns.NS, addr string) string {
	t.Helper()
	c, err := ns.Dial(context.Background(), &net.Dialer{Timeout: 5 * time.Second}, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
