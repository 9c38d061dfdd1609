package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

// A silent blackhole of the provider in use: a bulk stream between the
// ULIDs moves to provider 2 and every byte arrives, in order.
func TestFailoverBlackholeBulk(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{Traffic: lab.Bulk}, lab.DaemonConfig{})
	time.Sleep(time.Second)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	aIDs, bIDs := s.ids(s.run.A), s.ids(s.run.B)
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a moved to provider 2", func(c api.Context) bool {
		return c.LocalLocator == aIDs[1]
	})
	s.waitPair(s.run.B, s.run.From, 5*time.Second, "b sends to a's provider-2 locator", func(c api.Context) bool {
		return c.PeerLocator == aIDs[1]
	})
	_ = bIDs
	time.Sleep(500 * time.Millisecond)
	f := s.finish()
	if f.FirstPacket == 0 {
		t.Errorf("no packet with a Shim6 payload header seen after the failure")
	}
}

// The provider's end of a-p1 goes down (carrier loss on a's uplink): a
// paced two-way stream survives, and every Shim6 packet captured on host
// a during the run decodes with a valid checksum in `shim6ctl decode
// --pcap`.
func TestFailoverLinkDownAndPcapDecode(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "a.pcap")
	f, err := os.Create(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := start(t, 2, lab.FailoverConfig{Capture: f}, lab.DaemonConfig{})
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.LinkDown, netns.DirBoth)
	s.recovered()
	time.Sleep(500 * time.Millisecond)
	s.finish()
	f.Close()
	checkPcap(t, pcap, true)
}

// checkPcap decodes a capture with shim6ctl and checks that every packet
// decodes and every control message has a valid checksum.
func checkPcap(t *testing.T, path string, wantPayload bool) {
	t.Helper()
	out, err := exec.Command(binaries(t).Shim6ctl, "decode", "--pcap", path, "--json").Output()
	if err != nil {
		t.Fatalf("shim6ctl decode --pcap: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kinds := map[string]int{}
	for _, l := range lines {
		var p struct {
			Error string         `json:"error"`
			Shim6 map[string]any `json:"shim6"`
		}
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		if p.Error != "" || p.Shim6 == nil {
			t.Fatalf("packet did not decode: %s", l)
		}
		if v, ok := p.Shim6["checksum_valid"]; ok && v != true {
			t.Fatalf("bad checksum: %s", l)
		}
		typ, _ := p.Shim6["type"].(string)
		if typ == "" {
			if _, ok := p.Shim6["context_tag"]; ok {
				typ = "payload"
			}
		}
		kinds[typ]++
	}
	t.Logf("%d Shim6 packets decoded: %v", len(lines), kinds)
	if len(lines) < 4 {
		t.Fatalf("only %d Shim6 packets captured", len(lines))
	}
}

// Failback: after moving to provider 2, provider 1 heals and provider 2
// fails; the stream moves back to provider 1's locators.
func TestFailback(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{}, lab.DaemonConfig{})
	aIDs := s.ids(s.run.A)
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a on provider 2", func(c api.Context) bool { return c.LocalLocator == aIDs[1] })
	s.heal("a-p1")
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p2", netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a back on provider 1", func(c api.Context) bool { return c.LocalLocator == aIDs[0] })
	time.Sleep(300 * time.Millisecond)
	s.finish()
}

// A unidirectional failure: only what host a sends through provider 1 is
// lost (b's packets still arrive over it). The stream recovers.
func TestUnidirectionalFailure(t *testing.T) {
	for _, dir := range []netns.Direction{netns.DirOut, netns.DirIn} {
		t.Run(dir.String(), func(t *testing.T) {
			s := start(t, 2, lab.FailoverConfig{}, lab.DaemonConfig{})
			time.Sleep(500 * time.Millisecond)
			s.fail("a-p1", netns.Blackhole, dir)
			s.recovered()
			time.Sleep(300 * time.Millisecond)
			s.finish()
		})
	}
}

// Three providers: the one in use fails, then the one the context moved
// to fails too; the stream ends up on the third, intact.
func TestThreeProvidersTwoFail(t *testing.T) {
	s := start(t, 3, lab.FailoverConfig{}, lab.DaemonConfig{})
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	c := s.waitPair(s.run.A, s.run.To, 5*time.Second, "a off provider 1", func(c api.Context) bool {
		return providerOf(c.LocalLocator, 3) > 1
	})
	second := providerOf(c.LocalLocator, 3)
	time.Sleep(500 * time.Millisecond)
	s.fail(netns.HostLinkName("a", second), netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a on the last provider", func(c api.Context) bool {
		p := providerOf(c.LocalLocator, 3)
		return p != 1 && p != second && p != 0
	})
	time.Sleep(300 * time.Millisecond)
	s.finish()
}

// Address removal: while the context runs on a's provider-2 locator (after
// a failover, provider 1 healed), that address is removed from a. a tells
// b (Update) and the stream moves back to provider 1, intact.
func TestAddressRemoval(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{}, lab.DaemonConfig{})
	aIDs := s.ids(s.run.A)
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a on provider 2", func(c api.Context) bool { return c.LocalLocator == aIDs[1] })
	s.heal("a-p1")
	time.Sleep(300 * time.Millisecond)
	ha := s.topo.Host("a")
	if err := ha.NS.DelAddr(netns.HostIfname(2), netip.PrefixFrom(aIDs[1], 64)); err != nil {
		t.Fatal(err)
	}
	s.tl.Addf("addr", "removed %s from a", aIDs[1])
	s.waitPair(s.run.B, s.run.From, 10*time.Second, "b learnt that a's provider-2 locator is gone", func(c api.Context) bool {
		for _, l := range c.PeerLocators {
			if l.Addr == aIDs[1] {
				return false
			}
		}
		return c.PeerLocator != aIDs[1]
	})
	s.waitPair(s.run.A, s.run.To, 10*time.Second, "a off the removed locator", func(c api.Context) bool { return c.LocalLocator != aIDs[1] })
	time.Sleep(2 * time.Second)
	f := s.finish()
	if f.MaxPause > 5*time.Second {
		t.Errorf("the stream paused %v after the address removal", f.MaxPause)
	}
}

// A daemon restarted mid-stream with the data plane kept: the shimmed
// stream (on provider 2 after a failover) keeps flowing through the
// restart, and the new daemon adopts the data plane and the context's
// locator pair.
func TestRestartKeepDataPlane(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{}, lab.DaemonConfig{KeepOnExit: true})
	aIDs := s.ids(s.run.A)
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a on provider 2", func(c api.Context) bool { return c.LocalLocator == aIDs[1] })
	time.Sleep(300 * time.Millisecond)
	before := s.run.Stream.Snapshot()
	if err := s.run.A.Stop(5 * time.Second); err != nil {
		t.Fatalf("a's exit: %v", err)
	}
	s.tl.Addf("daemon", "a stopped (data plane kept)")
	time.Sleep(time.Second)
	mid := s.run.Stream.Snapshot()
	if mid.Received <= before.Received {
		t.Fatalf("no data while a's daemon was down (received %d -> %d)", before.Received, mid.Received)
	}
	if err := s.run.A.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.tl.Addf("daemon", "a restarted")
	st, err := s.run.A.Client().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Adopted {
		t.Errorf("a's restarted daemon did not adopt the data plane: %+v", st)
	}
	time.Sleep(1500 * time.Millisecond)
	f := s.finish()
	if f.MaxPause > 500*time.Millisecond && f.Stream.Forward.GapStart > f.FailAt+2*time.Second {
		t.Errorf("the stream paused %v around the restart", f.MaxPause)
	}
}

// A daemon restarted with its state lost (killed, data plane gone): the
// peer's shimmed packets now carry an unknown context tag; a answers
// R1bis, b recovers the context (I2bis) and the stream goes on intact.
func TestRestartStateLost(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{}, lab.DaemonConfig{})
	aIDs := s.ids(s.run.A)
	time.Sleep(500 * time.Millisecond)
	s.fail("a-p1", netns.Blackhole, netns.DirBoth)
	s.recovered()
	s.waitPair(s.run.A, s.run.To, 5*time.Second, "a on provider 2", func(c api.Context) bool { return c.LocalLocator == aIDs[1] })
	if err := s.run.A.Stop(5 * time.Second); err != nil { // keep_on_exit false: the data plane goes too
		t.Fatalf("a's exit: %v", err)
	}
	s.tl.Addf("daemon", "a stopped, data plane removed")
	if err := s.run.A.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.tl.Addf("daemon", "a restarted without state")
	s.waitPair(s.run.A, s.run.To, 20*time.Second, "a's context recovered", lab.Established)
	s.waitPair(s.run.B, s.run.From, 20*time.Second, "b's context recovered", lab.Established)
	time.Sleep(2 * time.Second)
	st, err := s.run.B.Client().Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["engine_rx_r1bis"] == 0 {
		t.Errorf("b received no R1bis: %v", st.Counters)
	}
	f := s.finish()
	t.Logf("b received %d R1bis; longest pause %v", st.Counters["engine_rx_r1bis"], f.MaxPause)
}

// TestDemoCommand runs `shim6lab demo` as a user would (a lab of its own
// name) and checks its JSON verdict.
func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the demo takes about 10 s")
	}
	nstest.Require(t)
	t.Parallel()
	b := binaries(t)
	name := fmt.Sprintf("e2e%d", os.Getpid())
	svg := filepath.Join(t.TempDir(), "demo.svg")
	cmd := exec.Command(filepath.Join(filepath.Dir(b.Shim6d), "shim6lab"), "demo", "--name", name, "--json",
		"--bin", filepath.Dir(b.Shim6d), "--before", "1s", "--after", "1s", "--svg", svg,
		"--state-dir", t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shim6lab demo: %v\nstderr:\n%s", err, stderr.String())
	}
	var res lab.DemoResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("demo JSON: %v\n%s", err, out)
	}
	if !res.OK || !res.Failover.Recovered || res.Failover.Sent != res.Failover.Received {
		t.Fatalf("demo not OK: %+v\n%s", res.Failover, stderr.String())
	}
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "<svg") {
		t.Fatalf("no SVG plot: %v", err)
	}
	if left, _ := netns.List(lab.Prefix(name)); len(left) > 0 {
		t.Fatalf("the demo left namespaces behind: %v", left)
	}
}
