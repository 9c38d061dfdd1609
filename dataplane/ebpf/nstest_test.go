package ebpf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

const testPinPrefix = "goshim6-ebpf-test-"

var (
	sweepOnce sync.Once
	pinSeq    atomic.Uint64
)

// testBPFFS mounts a private bpffs for the test's pins, in a directory
// named after the test process so that a later run can clean up after one
// that died (its pinned cgroup links would otherwise stay attached to the
// root cgroup for good).
func testBPFFS(t testing.TB) string {
	t.Helper()
	sweepOnce.Do(sweepStalePins)
	top := filepath.Join(os.TempDir(), fmt.Sprintf("%s%d-%d", testPinPrefix, os.Getpid(), pinSeq.Add(1)))
	dir := filepath.Join(top, "bpffs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Fatalf("mount bpffs: %v", err)
	}
	t.Cleanup(func() {
		unix.Unmount(dir, unix.MNT_DETACH)
		os.RemoveAll(top)
	})
	return dir
}

// sweepStalePins detaches the links and unmounts the bpffs of test
// processes that no longer run.
func sweepStalePins() {
	tops, _ := filepath.Glob(filepath.Join(os.TempDir(), testPinPrefix+"*"))
	for _, top := range tops {
		var pid, seq int
		if _, err := fmt.Sscanf(filepath.Base(top), testPinPrefix+"%d-%d", &pid, &seq); err != nil {
			continue
		}
		if pid == os.Getpid() || unix.Kill(pid, 0) == nil {
			continue
		}
		dir := filepath.Join(top, "bpffs")
		links, _ := filepath.Glob(filepath.Join(dir, "*", "links", "*"))
		for _, p := range links {
			if l, err := link.LoadPinnedLink(p, nil); err == nil {
				l.Unpin()
				l.Close()
			}
		}
		unix.Unmount(dir, unix.MNT_DETACH)
		os.RemoveAll(top)
	}
}

// host is one end of the standard topology with its data plane.
type host struct {
	t    testing.TB
	h    *netns.Host
	cfg  Config
	dp   *DataPlane
	ulid netip.Addr // the provider-1 locator
	alt  netip.Addr // the provider-2 locator
}

func newHost(t testing.TB, topo *netns.Topology, name, pins string, mod func(*Config)) *host {
	t.Helper()
	h := topo.Host(name)
	x := &host{t: t, h: h, ulid: h.Uplinks[0].Addr, alt: h.Uplinks[1].Addr}
	x.cfg = Config{
		NetNS:   h.NS.Path(),
		Uplinks: []string{h.Uplinks[0].Ifname, h.Uplinks[1].Ifname},
		PinPath: filepath.Join(pins, name),
	}
	if mod != nil {
		mod(&x.cfg)
	}
	x.load()
	t.Cleanup(func() {
		if x.dp != nil {
			if err := x.dp.Destroy(); err != nil {
				t.Errorf("destroy %s: %v", name, err)
			}
		}
	})
	return x
}

func (x *host) load() {
	x.t.Helper()
	dp, err := Load(x.cfg)
	if err != nil {
		x.t.Fatalf("load on %s: %v", x.h.Name, err)
	}
	x.dp = dp
}

func (x *host) install(m dataplane.Mapping) {
	x.t.Helper()
	if err := x.dp.Install(m); err != nil {
		x.t.Fatalf("install on %s: %v", x.h.Name, err)
	}
}

func (x *host) stats() Stats {
	x.t.Helper()
	s, err := x.dp.Stats()
	if err != nil {
		x.t.Fatal(err)
	}
	return s
}

func (x *host) activity(tag uint64) dataplane.Activity {
	x.t.Helper()
	var got dataplane.Activity
	found := false
	if err := x.dp.ReadActivity(func(a dataplane.Activity) {
		if a.LocalTag == tag {
			got, found = a, true
		}
	}); err != nil {
		x.t.Fatal(err)
	}
	if !found {
		x.t.Fatalf("no activity for tag %#x on %s", tag, x.h.Name)
	}
	return got
}

// mappings for a context between a and b with tags ta (a's) and tb (b's),
// on the ULIDs (alt false) or on the provider-2 locators.
func contextPair(a, b *host, ta, tb uint64, alt bool) (dataplane.Mapping, dataplane.Mapping) {
	ma := dataplane.Mapping{LocalULID: a.ulid, PeerULID: b.ulid, LocalLocator: a.ulid, PeerLocator: b.ulid, LocalTag: ta, PeerTag: tb}
	mb := dataplane.Mapping{LocalULID: b.ulid, PeerULID: a.ulid, LocalLocator: b.ulid, PeerLocator: a.ulid, LocalTag: tb, PeerTag: ta}
	if alt {
		ma.LocalLocator, ma.PeerLocator = a.alt, b.alt
		mb.LocalLocator, mb.PeerLocator = b.alt, a.alt
	}
	return ma, mb
}

// pattern is the stream's content: byte i of the stream is pattern(i).
func pattern(off uint64) byte {
	return byte(off ^ off>>8 ^ off>>16 ^ off>>24*7)
}

// stream is a TCP connection over the ULIDs that carries the pattern from
// a client in one namespace to a server in another, checked byte by byte.
type stream struct {
	received atomic.Uint64
	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	conn     net.Conn
	mu       sync.Mutex
	server   net.Conn
	ln       net.Listener
}

func startStream(t testing.TB, from, to *host) *stream {
	t.Helper()
	ln, err := to.h.NS.Listen("tcp6", net.JoinHostPort(to.ulid.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{cancel: cancel, done: make(chan struct{}), ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			s.err = err
			return
		}
		defer c.Close()
		s.mu.Lock()
		s.server = c
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		buf := make([]byte, 256<<10)
		var off uint64
		for {
			n, err := c.Read(buf)
			for i := range n {
				if buf[i] != pattern(off) {
					s.err = fmt.Errorf("stream corrupt at byte %d: %#x, want %#x", off, buf[i], pattern(off))
					return
				}
				off++
			}
			s.received.Store(off)
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					s.err = err
				}
				return
			}
		}
	}()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(from.ulid.AsSlice())}}
	c, err := from.h.NS.Dial(ctx, d, "tcp6", ln.Addr().String())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s.conn = c
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.Close()
		buf := make([]byte, 256<<10)
		var off uint64
		for ctx.Err() == nil {
			for i := range buf {
				buf[i] = pattern(off + uint64(i))
			}
			n, err := c.Write(buf)
			off += uint64(n)
			if err != nil {
				if ctx.Err() == nil {
					s.err = err
				}
				return
			}
		}
	}()
	go func() { wg.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop ends the stream and returns the first error either side saw.
func (s *stream) stop() error {
	s.cancel()
	if s.conn != nil {
		s.conn.SetDeadline(time.Now())
	}
	s.mu.Lock()
	if s.server != nil {
		// The client's FIN may never arrive (a broken path).
		s.server.SetDeadline(time.Now().Add(2 * time.Second))
	}
	s.mu.Unlock()
	s.ln.Close()
	<-s.done
	return s.err
}

// progress waits until at least n more bytes have arrived.
func (s *stream) progress(t testing.TB, n uint64, what string) {
	t.Helper()
	start := s.received.Load()
	deadline := time.Now().Add(20 * time.Second)
	for s.received.Load() < start+n {
		select {
		case <-s.done:
			t.Fatalf("%s: stream ended after %d bytes: %v", what, s.received.Load(), s.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: stream stalled at %d bytes (wanted %d more)", what, s.received.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func twoHosts(t *testing.T, mod func(*Config)) (*netns.Topology, *host, *host) {
	t.Helper()
	nstest.Require(t)
	topo := nstest.Topology(t, netns.Config{})
	pins := testBPFFS(t)
	a := newHost(t, topo, "a", pins, mod)
	b := newHost(t, topo, "b", pins, mod)
	return topo, a, b
}

// events collects a data plane's events in the background.
type events struct {
	mu  sync.Mutex
	evs []dataplane.Event
	rd  *EventReader
}

func collectEvents(t testing.TB, x *host) *events {
	t.Helper()
	rd, err := x.dp.NewEventReader()
	if err != nil {
		t.Fatal(err)
	}
	e := &events{rd: rd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ev, err := rd.Read()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.evs = append(e.evs, ev)
			e.mu.Unlock()
		}
	}()
	t.Cleanup(func() { rd.Close(); <-done })
	return e
}

// wait returns the first event that satisfies ok, failing after 20s.
func (e *events) wait(t testing.TB, what string, ok func(dataplane.Event) bool) dataplane.Event {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.mu.Lock()
		for _, ev := range e.evs {
			if ok(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		seen := append([]dataplane.Event(nil), e.evs...)
		e.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s event; saw %+v", what, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *events) count(ok func(dataplane.Event) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ok(ev) {
			n++
		}
	}
	return n
}

// filtersOn lists the tc filters on the ingress of ifindex (in the current
// namespace).
func filtersOn(ifindex int) ([]netlink.Filter, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	l, err := h.LinkByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	return h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
}
