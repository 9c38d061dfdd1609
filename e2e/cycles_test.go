package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/lab"
)

// cycles is the number of fail/heal cycles of TestFailHealCycles.
const cycles = 50

// 50 consecutive failures and heals, alternating between the providers,
// under a verified stream: every cycle ends with both hosts on the
// surviving provider and the stream flowing again; at the end there is still exactly one context per
// host, no more entries in any pinned hash map than after the first
// establishment, no growth in the daemons' goroutines, and every byte of
// the stream arrived intact.
func TestFailHealCycles(t *testing.T) {
	s := start(t, 2, lab.FailoverConfig{Traffic: lab.Bulk}, lab.DaemonConfig{
		Extra: "[metrics]\nlisten = \"[::1]:9586\"\n", LogLevel: "info",
	})
	aIDs := s.ids(s.run.A)
	time.Sleep(300 * time.Millisecond)
	var mapsA0, mapsB0 map[string]int
	var gA0, gB0 int
	var worst time.Duration
	for i := range cycles {
		if i == 2 {
			// Steady state: both providers have been used once.
			mapsA0, mapsB0 = mapEntries(t, s.run.A), mapEntries(t, s.run.B)
			gA0, gB0 = goroutines(t, s, s.run.A), goroutines(t, s, s.run.B)
		}
		c, err := s.run.A.Client().Context(context.Background(), api.ContextRef{PeerULID: s.run.To})
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		cur := providerOf(c.LocalLocator, 2)
		if cur == 0 {
			t.Fatalf("cycle %d: a's locator %s is in no provider", i, c.LocalLocator)
		}
		other := 3 - cur
		link := netns.HostLinkName("a", cur)
		t0 := time.Now()
		if err := s.topo.Fail(link, netns.Blackhole, netns.DirBoth); err != nil {
			t.Fatal(err)
		}
		s.waitPair(s.run.A, s.run.To, 15*time.Second, fmt.Sprintf("cycle %d: a moved to provider %d", i, other), func(c api.Context) bool {
			return c.LocalLocator == aIDs[other-1]
		})
		s.waitPair(s.run.B, s.run.From, 15*time.Second, fmt.Sprintf("cycle %d: b sends to a's provider-%d locator", i, other), func(c api.Context) bool {
			return c.PeerLocator == aIDs[other-1] && c.REAPState == "operational"
		})
		// The stream flows again before the next cycle (otherwise TCP's
		// retransmission backoff would grow from cycle to cycle).
		s.flowing(15 * time.Second)
		worst = max(worst, time.Since(t0))
		if err := s.topo.Heal(link); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d cycles; slowest recovery %v", cycles, worst)
	s.flowing(20 * time.Second)
	for _, d := range []*lab.Daemon{s.run.A, s.run.B} {
		cs, err := d.Client().Contexts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 {
			t.Errorf("%s has %d contexts after %d cycles, want 1", d.Name, len(cs), cycles)
		}
	}
	checkMaps(t, "a", mapsA0, mapEntries(t, s.run.A))
	checkMaps(t, "b", mapsB0, mapEntries(t, s.run.B))
	gA1, gB1 := goroutines(t, s, s.run.A), goroutines(t, s, s.run.B)
	t.Logf("goroutines: a %d -> %d, b %d -> %d", gA0, gA1, gB0, gB1)
	if gA1 > gA0+5 || gB1 > gB0+5 {
		t.Errorf("goroutines grew: a %d -> %d, b %d -> %d", gA0, gA1, gB0, gB1)
	}
	f := s.finish()
	if !f.Verified {
		t.Fatal("content mismatch")
	}
}

// mapEntries counts the entries of every pinned hash map of a daemon.
func mapEntries(t *testing.T, d *lab.Daemon) map[string]int {
	t.Helper()
	out := map[string]int{}
	root := filepath.Join(d.Dir, "bpf", "goshim6")
	err := filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		m, err := ebpf.LoadPinnedMap(p, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil // a pinned program or link
		}
		defer m.Close()
		switch m.Type() {
		case ebpf.Hash, ebpf.LRUHash, ebpf.PerCPUHash, ebpf.LRUCPUHash:
		default:
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = countKeys(m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no pinned hash maps under %s", root)
	}
	return out
}

func countKeys(m *ebpf.Map) int {
	key := make([]byte, m.KeySize())
	next := make([]byte, m.KeySize())
	var prev any
	n := 0
	for n < 1<<20 {
		if err := m.NextKey(prev, next); err != nil {
			break
		}
		n++
		copy(key, next)
		prev = key
	}
	return n
}

func checkMaps(t *testing.T, host string, before, after map[string]int) {
	t.Helper()
	t.Logf("%s map entries: %v -> %v", host, before, after)
	for name, n := range after {
		if n > before[name] {
			t.Errorf("%s: pinned map %s grew from %d to %d entries", host, name, before[name], n)
		}
	}
}

// goroutines scrapes go_goroutines from the daemon's metrics endpoint
// (inside its host's namespace).
func goroutines(t *testing.T, s *scenario, d *lab.Daemon) int {
	t.Helper()
	ns := s.topo.Host(d.Name).NS
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(ctx, nil, network, addr)
		},
	}}
	defer client.CloseIdleConnections()
	var resp *http.Response
	var err error
	for range 50 {
		if resp, err = client.Get("http://[::1]:9586/metrics"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s metrics: %v", d.Name, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatalf("%s: no go_goroutines in its metrics", d.Name)
	return 0
}
