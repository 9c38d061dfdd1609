package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

var (
	binOnce sync.Once
	bins    lab.Binaries
	binErr  error
)

func binaries(t *testing.T) lab.Binaries {
	t.Helper()
	binOnce.Do(func() {
		wd, _ := os.Getwd()
		root, ok := lab.ModuleRoot(wd)
		if !ok {
			binErr = os.ErrNotExist
			return
		}
		dir, err := os.MkdirTemp("", "goshim6-lab-bin")
		if err != nil {
			binErr = err
			return
		}
		bins, binErr = lab.BuildBinaries(context.Background(), root, dir)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

// TestFailoverShim6 runs two real shim6d with the eBPF data plane and
// tuned timers: a bulk stream between the ULIDs survives the silent loss
// of provider 1 on host a, byte for byte.
func TestFailoverShim6(t *testing.T) {
	nstest.Require(t)
	topo := nstest.Topology(t, netns.Config{})
	tl := lab.NewTimeline(time.Now(), nil)
	wd := workDir(t)
	os.MkdirAll(wd, 0o755)
	pcap, err := os.Create(filepath.Join(wd, "a.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer pcap.Close()
	f, err := lab.RunFailover(context.Background(), topo, lab.FailoverConfig{Capture: pcap,
		Name: "shim6-tuned", Traffic: lab.Bulk, Bin: binaries(t), WorkDir: wd,
		Shim6:  &lab.DaemonConfig{SendTimeout: time.Second, LogLevel: "debug"},
		Before: time.Second, After: 500 * time.Millisecond, Timeline: tl, AllEvents: true,
	})
	var b []byte
	for _, e := range tl.Events() {
		b = append(b, e.String()+"\n"...)
	}
	t.Logf("timeline:\n%s", b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", f)
	if !f.OK() {
		t.Fatalf("failover not OK: %+v", f)
	}
}

// workDir is where daemons keep their files; SHIM6LAB_KEEP=DIR keeps them
// for a post-mortem.
func workDir(t *testing.T) string {
	if d := os.Getenv("SHIM6LAB_KEEP"); d != "" {
		p := filepath.Join(d, t.Name())
		os.RemoveAll(p)
		return p
	}
	return filepath.Join(t.TempDir(), "w")
}
