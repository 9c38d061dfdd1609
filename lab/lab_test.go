package lab_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

var (
	seq   atomic.Int32
	sweep sync.Once
)

// sweepDeadTestLabs removes labs that test processes which died left
// behind (names t<PID>_<N>).
func sweepDeadTestLabs() {
	labs, _ := lab.Manager{StateDir: os.TempDir()}.Labs()
	for _, name := range labs {
		var pid, n int
		if _, err := fmt.Sscanf(name, "t%d_%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		lab.Manager{StateDir: os.TempDir()}.Down(name)
	}
}

// newLab returns a manager with a private state dir and a unique lab name
// whose namespaces are removed at cleanup.
func newLab(t *testing.T) (lab.Manager, string) {
	t.Helper()
	nstest.Require(t)
	sweep.Do(sweepDeadTestLabs)
	m := lab.Manager{StateDir: t.TempDir()}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	t.Cleanup(func() { m.Down(name) })
	return m, name
}

func linkState(t *testing.T, l *lab.Lab, link string) string {
	t.Helper()
	st, err := l.Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ls := range st.Links {
		if ls.Name == link {
			return ls.State
		}
	}
	t.Fatalf("no link %s in status", link)
	return ""
}

func TestUpOpenFailHealDown(t *testing.T) {
	m, name := newLab(t)
	l, err := m.Up(name, lab.Config{Providers: 3})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := m.Up(name, lab.Config{}); !errors.Is(err, lab.ErrExists) {
		t.Fatalf("second Up: %v, want ErrExists", err)
	}

	// Another process (here: another Manager value) opens it by name.
	l2, err := lab.Manager{StateDir: m.StateDir}.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Config.Providers != 3 || len(l2.Hosts) != 2 || len(l2.Providers) != 3 {
		t.Fatalf("opened lab: %+v", l2.Config)
	}
	st, err := l2.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2+3+1 || len(st.Links) != 2*3+3 {
		t.Fatalf("status: %d nodes, %d links", len(st.Nodes), len(st.Links))
	}
	if got := st.Nodes[0].Locators; !slices.Equal(got, []string{"2001:db8:1:a::2", "2001:db8:2:a::2", "2001:db8:3:a::2"}) {
		t.Fatalf("host a locators %v", got)
	}
	if !strings.HasPrefix(st.Nodes[0].Namespace, lab.Prefix(name)+"-") {
		t.Fatalf("namespace %s", st.Nodes[0].Namespace)
	}
	labs, err := m.Labs()
	if err != nil || !slices.Contains(labs, name) {
		t.Fatalf("Labs() = %v, %v", labs, err)
	}

	if err := l2.Fail("a-p2", netns.Blackhole, netns.DirOut); err != nil {
		t.Fatal(err)
	}
	if s := linkState(t, l2, "a-p2"); s != "blackhole-out" {
		t.Fatalf("a-p2 after fail: %s", s)
	}
	if err := l2.Fail("b-p1", netns.LinkDown, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	if s := linkState(t, l2, "b-p1"); s != "down" {
		t.Fatalf("b-p1 after fail: %s", s)
	}
	for _, n := range []string{"a-p2", "b-p1"} {
		if err := l2.Heal(n); err != nil {
			t.Fatal(err)
		}
		if s := linkState(t, l2, n); s != "ok" {
			t.Fatalf("%s after heal: %s", n, s)
		}
	}

	removed, err := m.Down(name)
	if err != nil || len(removed) != 6 {
		t.Fatalf("Down = %v, %v", removed, err)
	}
	if _, err := m.Open(name); !errors.Is(err, lab.ErrNotFound) {
		t.Fatalf("Open after Down: %v", err)
	}
	if removed, err := m.Down(name); err != nil || len(removed) != 0 {
		t.Fatalf("second Down = %v, %v", removed, err)
	}
}

func TestDownAfterCrash(t *testing.T) {
	m, name := newLab(t)
	l, err := m.Up(name, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A process left running in host a, and the state file lost.
	sleeper := exec.Command("sleep", "60")
	if err := l.Host("a").NS.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleeper.Wait(); close(exited) }()
	l.Close()
	files, _ := filepath.Glob(filepath.Join(m.StateDir, "*.json"))
	for _, f := range files {
		os.Remove(f)
	}
	if _, err := m.Up(name, lab.Config{}); !errors.Is(err, lab.ErrExists) || !strings.Contains(err.Error(), "leftover") {
		t.Fatalf("Up over leftovers: %v", err)
	}
	removed, err := m.Down(name)
	if err != nil || len(removed) != 5 {
		t.Fatalf("Down = %v, %v", removed, err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("process inside the lab survived Down")
	}
	if left, _ := netns.List(lab.Prefix(name)); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"", "x", "demo", "bench_1"} {
		if err := lab.CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"A", "a-b", "../x", "_x", strings.Repeat("x", 33)} {
		if err := lab.CheckName(bad); !errors.Is(err, lab.ErrBadName) {
			t.Errorf("CheckName(%q) = %v", bad, err)
		}
	}
	if lab.Prefix("") != "s6lab" || lab.Prefix("x") != "s6lab-x" {
		t.Fatal("prefixes")
	}
}

func TestTimeline(t *testing.T) {
	start := time.Unix(1000, 0)
	var live bytes.Buffer
	tl := lab.NewTimeline(start, &live)
	tl.Add(start.Add(2*time.Second), "fail", "a-p1 blackholed", nil)
	tl.Add(start.Add(time.Second), "context", "established", map[string]any{"tag": 1})
	tl.Add(start.Add(3*time.Second), "switch", "new pair", nil)
	ev := tl.Events()
	if len(ev) != 3 || ev[0].Kind != "context" || ev[1].Kind != "fail" || ev[2].At != 3*time.Second {
		t.Fatalf("events %+v", ev)
	}
	if e, ok := tl.First("switch"); !ok || e.Text != "new pair" {
		t.Fatalf("First = %+v, %v", e, ok)
	}
	if _, ok := tl.First("nope"); ok {
		t.Fatal("First found a missing kind")
	}
	lines := strings.Split(strings.TrimSpace(live.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "+2.000s") || !strings.Contains(lines[0], "a-p1 blackholed") {
		t.Fatalf("live output %q", live.String())
	}
	var out bytes.Buffer
	tl.WriteText(&out)
	if !strings.HasPrefix(strings.TrimSpace(out.String()), "+1.000s  context") {
		t.Fatalf("text %q", out.String())
	}
}

// waitFor polls cond every 10 ms up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cond()
}

func TestStreamAcrossABlackhole(t *testing.T) {
	m, name := newLab(t)
	l, err := m.Up(name, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.Host("a"), l.Host("b")
	s, err := lab.StartStream(context.Background(), a.NS, a.Uplinks[0].Addr, b.NS, b.Uplinks[0].Addr, lab.StreamConfig{Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return s.Snapshot().Received > 0 }) {
		t.Fatal("no data before the failure")
	}
	const outage = 400 * time.Millisecond
	if err := l.Fail("a-p1", netns.Blackhole, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now()
	time.Sleep(outage)
	if err := l.Heal("a-p1"); err != nil {
		t.Fatal(err)
	}
	healedAt := time.Now()
	// TCP retransmits on its own after the heal.
	if !waitFor(10*time.Second, func() bool { return s.Snapshot().LastReceive.After(healedAt) }) {
		t.Fatal("stream did not resume after heal")
	}
	r := s.Stop(5 * time.Second)
	if !r.OK() {
		t.Fatalf("stream not intact: %+v", r.Forward)
	}
	if r.Forward.Sent < 10*64 {
		t.Fatalf("only %d bytes sent", r.Forward.Sent)
	}
	// The receiver saw nothing during the whole outage.
	if r.Forward.MaxGap < outage {
		t.Fatalf("max gap %v shorter than the %v outage", r.Forward.MaxGap, outage)
	}
	gapStart := s.Start().Add(r.Forward.GapStart)
	// A packet already past the provider when the rule went in may still
	// arrive just after the failure.
	if gapStart.After(failedAt.Add(50*time.Millisecond)) || failedAt.Sub(gapStart) > time.Second {
		t.Fatalf("gap began at %v, failure at %v", gapStart, failedAt)
	}
	var sum int64
	for _, b := range r.Forward.Bins {
		sum += b
	}
	if sum != r.Forward.Received {
		t.Fatalf("bins sum %d != received %d", sum, r.Forward.Received)
	}
}

func TestStreamBulkBidirectional(t *testing.T) {
	m, name := newLab(t)
	l, err := m.Up(name, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.Host("a"), l.Host("b")
	// Crossed locators: a via p2 to b via p1, both directions at once.
	s, err := lab.StartStream(context.Background(), a.NS, a.Uplinks[1].Addr, b.NS, b.Uplinks[0].Addr, lab.StreamConfig{Bidirectional: true, Bin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(5*time.Second, func() bool { return s.Snapshot().Received > 4<<20 })
	r := s.Stop(5 * time.Second)
	if !r.OK() || r.Reverse == nil {
		t.Fatalf("result: fwd %+v rev %+v", r.Forward, r.Reverse)
	}
	if r.Forward.Received < 4<<20 || r.Reverse.Received == 0 {
		t.Fatalf("received %d / %d", r.Forward.Received, r.Reverse.Received)
	}
	if r.Forward.From.Addr() != a.Uplinks[1].Addr || r.Reverse.From != r.Forward.To {
		t.Fatalf("endpoints %v -> %v, reverse %v -> %v", r.Forward.From, r.Forward.To, r.Reverse.From, r.Reverse.To)
	}
}
