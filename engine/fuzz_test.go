package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

// fuzzScene is a pair of engines with an established context and an
// outstanding update, the state in which most code paths are reachable.
func fuzzScene(t testing.TB) (*fakeNet, *host, *host, *Context) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	a.e.Update(n.now, ca.localTag)
	n.run(time.Second)
	a.e.HandleDataPlaneEvent(n.now, dataplane.Event{Kind: dataplane.EventULPTrouble, Src: a.addrs[0], Dst: b.addrs[0]})
	n.run(2 * time.Second)
	return n, a, b, cb
}

// FuzzHandlePacket feeds arbitrary protocol-140 payloads to an engine with
// a live context: it must never panic, and whatever it receives it must
// not grow beyond its bounds.
func FuzzHandlePacket(f *testing.F) {
	n, _, _, _ := fuzzScene(f)
	for _, p := range n.sent {
		f.Add(p.b, uint8(0))
	}
	f.Fuzz(func(t *testing.T, b []byte, from uint8) {
		n, a, bh, cb := fuzzScene(t)
		src := a.addrs[int(from)%len(a.addrs)]
		if from >= 128 {
			src = netipMust("2001:db8:ee::1")
		}
		bh.e.HandlePacket(n.now, src, bh.addrs[0], b)
		bh.e.HandlePacket(n.now, src, bh.addrs[1], b)
		n.run(time.Minute)
		if len(bh.e.byULID) > 3 || bh.e.timers.len() > 3 {
			t.Fatalf("%d contexts after one packet", len(bh.e.byULID))
		}
		_ = cb
		// The engine still works: deadlines are sane.
		if d, ok := bh.e.NextDeadline(); ok && d.Before(n.now.Add(-time.Hour)) {
			t.Fatal("deadline in the past")
		}
	})
}

// TestFuzzCorpus checks that the committed corpus of FuzzHandlePacket
// holds valid messages of every type an exchange produces; with
// GOSHIM6_WRITE_CORPUS set it regenerates it from a live exchange first.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzHandlePacket")
	if os.Getenv("GOSHIM6_WRITE_CORPUS") != "" {
		writeCorpus(t, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	types := map[uint8]bool{}
	for _, de := range ents {
		raw, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var q string
		if _, err := fmt.Sscanf(strings.SplitN(string(raw), "\n", 3)[1], "[]byte(%q)", &q); err != nil {
			t.Fatalf("%s: %v", de.Name(), err)
		}
		var m message
		var c codec
		if err := c.decode([]byte(q), &m); err != nil {
			t.Fatalf("%s: %v", de.Name(), err)
		}
		types[m.typ] = true
	}
	for _, ty := range []uint8{typeI1, typeR1, typeI2, typeR2, typeUpdateReq, typeUpdateAck, typeProbe} {
		if !types[ty] {
			t.Errorf("corpus lacks type %d", ty)
		}
	}
}

func writeCorpus(t *testing.T, dir string) {
	n, _, _, _ := fuzzScene(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seen := map[uint8]int{}
	for _, p := range n.sent {
		ty := typeOf(p)
		if seen[ty] >= 2 {
			continue
		}
		seen[ty]++
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", p.b, seen[ty]-1)
		name := filepath.Join(dir, fmt.Sprintf("type%d-%d", ty, seen[ty]))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
