// Package nstest gives tests uniquely named network namespaces and the
// standard topology, removed in t.Cleanup even when the test fails.
//
// Names are "gs6t<PID>-<N>...": unique per test process, so tests of
// several packages and helpers run at the same time. Leftovers of test
// processes that died (their PID is gone) are swept on first use.
//
// Tests that use this package need root. They skip when not root only if
// the environment variable CI is unset; in CI they fail instead.
package nstest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/goshim6/goshim6/internal/netns"
)

// NamePrefix starts every namespace name this package makes.
const NamePrefix = "gs6t"

var (
	counter atomic.Uint64
	sweep   sync.Once
)

// Require skips t when not root outside CI, and fails it in CI.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		sweep.Do(sweepStale)
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("needs root for network namespaces, and CI is set")
	}
	t.Skip("needs root: creates network namespaces (CI unset, so skipping)")
}

// Prefix returns a fresh unique name prefix, e.g. "gs6t1234-7".
func Prefix() string {
	return fmt.Sprintf("%s%d-%d", NamePrefix, os.Getpid(), counter.Add(1))
}

// NS returns a new empty namespace (loopback up), deleted at cleanup
// together with any process still running inside.
func NS(t testing.TB) *netns.NS {
	t.Helper()
	Require(t)
	n, err := netns.Create(Prefix())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pids, err := n.PIDs(); err == nil {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if err := n.Delete(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return n
}

// Topology builds the standard topology (a unique Prefix is filled in when
// cfg.Prefix is empty) and destroys it at cleanup.
func Topology(t testing.TB, cfg netns.Config) *netns.Topology {
	t.Helper()
	Require(t)
	if cfg.Prefix == "" {
		cfg.Prefix = Prefix()
	}
	topo, err := netns.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := topo.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return topo
}

// sweepStale removes namespaces left by test processes that no longer run.
func sweepStale() {
	names, err := netns.List(NamePrefix)
	if err != nil {
		return
	}
	for _, name := range names {
		rest := strings.TrimPrefix(name, NamePrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidStr); err == nil {
			continue // still running
		}
		if n, err := netns.Open(name); err == nil {
			if pids, err := n.PIDs(); err == nil {
				for _, p := range pids {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			}
			n.Close()
		}
		_ = netns.Remove(name)
	}
}
