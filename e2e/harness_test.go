package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

// tuned is the Send Timeout of every e2e daemon.
const tuned = time.Second

var (
	binOnce sync.Once
	bins    lab.Binaries
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds shim6d, shim6ctl and shim6lab once per test run.
func binaries(t *testing.T) lab.Binaries {
	t.Helper()
	binOnce.Do(func() {
		wd, _ := os.Getwd()
		root, ok := lab.ModuleRoot(wd)
		if !ok {
			binErr = fmt.Errorf("no goshim6 source tree above %s", wd)
			return
		}
		if binDir, binErr = os.MkdirTemp("", "goshim6-e2e-bin"); binErr != nil {
			return
		}
		if bins, binErr = lab.BuildBinaries(context.Background(), root, binDir); binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/shim6lab")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build shim6lab: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

// workDir is where a test's daemons live; SHIM6_E2E_KEEP keeps them.
func workDir(t *testing.T) string {
	if d := os.Getenv("SHIM6_E2E_KEEP"); d != "" {
		p := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		os.RemoveAll(p)
		return p
	}
	return filepath.Join(t.TempDir(), "w")
}

// scenario is one e2e setup: a fresh topology and a failover run.
type scenario struct {
	t    *testing.T
	topo *netns.Topology
	run  *lab.FailoverRun
	tl   *lab.Timeline
}

// start builds a topology (providers providers) and starts shim6d on
// hosts a and b and a verified stream between their ULIDs; it returns
// once both contexts are established.
func start(t *testing.T, providers int, fc lab.FailoverConfig, dc lab.DaemonConfig) *scenario {
	t.Helper()
	nstest.Require(t)
	t.Parallel()
	b := binaries(t)
	topo := nstest.Topology(t, netns.Config{Providers: providers})
	if dc.SendTimeout == 0 {
		dc.SendTimeout = tuned
	}
	if dc.LogLevel == "" {
		dc.LogLevel = "debug"
	}
	s := &scenario{t: t, topo: topo, tl: lab.NewTimeline(time.Now(), nil)}
	fc.Name, fc.Bin, fc.WorkDir, fc.Shim6, fc.Timeline = t.Name(), b, workDir(t), &dc, s.tl
	if fc.Traffic == "" {
		fc.Traffic = lab.Paced
	}
	run, err := lab.StartFailover(context.Background(), topo, fc)
	t.Cleanup(func() {
		if run != nil {
			run.Close()
		}
		if t.Failed() {
			s.dump()
		}
	})
	if err != nil {
		s.run = run
		t.Fatal(err)
	}
	s.run = run
	return s
}

func (s *scenario) dump() {
	var b strings.Builder
	for _, e := range s.tl.Events() {
		b.WriteString(e.String() + "\n")
	}
	s.t.Logf("timeline:\n%s", b.String())
	if s.run == nil {
		return
	}
	for _, d := range []*lab.Daemon{s.run.A, s.run.B} {
		if d != nil {
			s.t.Logf("--- shim6d %s (tail) ---\n%s", d.Name, d.LogTail(40))
		}
	}
}

// ids returns host h's own (HBA) addresses in provider order.
func (s *scenario) ids(d *lab.Daemon) []netip.Addr {
	s.t.Helper()
	ids, err := d.HBAAddrs(context.Background(), len(s.topo.Hosts[0].Uplinks))
	if err != nil {
		s.t.Fatal(err)
	}
	return ids
}

// failover fails link (method, dir), waits for the stream to recover and
// returns the time it took.
func (s *scenario) fail(link string, m netns.Method, dir netns.Direction) {
	s.t.Helper()
	s.run.Cfg.Link, s.run.Cfg.Method, s.run.Cfg.Dir = link, m, dir
	if err := s.run.Fail(); err != nil {
		s.t.Fatal(err)
	}
}

// recovered waits for the stream to flow again after the last fail.
func (s *scenario) recovered() {
	s.t.Helper()
	if !s.run.WaitRecovered(context.Background()) {
		s.t.Fatalf("the stream did not recover within %v", s.run.Cfg.Observe)
	}
}

func (s *scenario) heal(link string) {
	s.t.Helper()
	if err := s.topo.Heal(link); err != nil {
		s.t.Fatal(err)
	}
	s.tl.Addf("heal", "link %s healed", link)
}

// waitPair waits until daemon d's context with peer uses a local locator
// for which ok holds.
func (s *scenario) waitPair(d *lab.Daemon, peer netip.Addr, timeout time.Duration, what string, ok func(api.Context) bool) api.Context {
	s.t.Helper()
	c, err := d.WaitContext(context.Background(), peer, timeout, ok)
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
	return c
}

// finish stops the stream and checks that every byte arrived intact.
func (s *scenario) finish() lab.Failover {
	s.t.Helper()
	f := s.run.Stop()
	if !f.Verified || f.Sent != f.Received || f.Sent == 0 {
		s.t.Fatalf("stream not intact: sent %d received %d verified %v (%s)", f.Sent, f.Received, f.Verified, f.Err)
	}
	s.t.Logf("%s: %d bytes verified; gap %v", s.t.Name(), f.Sent, f.Gap)
	return f
}

// inPrefix reports whether a is in provider i's /48.
func inPrefix(a netip.Addr, provider int) bool {
	return netns.ProviderPrefix(provider).Contains(a)
}

// providerOf returns the provider number whose prefix holds a (0: none).
func providerOf(a netip.Addr, providers int) int {
	for i := 1; i <= providers; i++ {
		if inPrefix(a, i) {
			return i
		}
	}
	return 0
}

// flowing waits until the stream has received data in both directions
// without a pause of 150 ms for 300 ms.
func (s *scenario) flowing(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var since time.Time
	for time.Now().Before(deadline) {
		fwd, rev := s.run.Stream.LastReceive()
		last := fwd
		if s.run.Stream.Bidirectional() && rev.Before(fwd) {
			last = rev
		}
		now := time.Now()
		if now.Sub(last) > 150*time.Millisecond {
			since = time.Time{}
		} else if since.IsZero() {
			since = now
		} else if now.Sub(since) >= 300*time.Millisecond {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("the stream is not flowing after %v", timeout)
}
