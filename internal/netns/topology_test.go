package netns_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

const echoPort = 7

// startEcho runs a UDP echo server on every locator of every host.
func startEcho(t *testing.T, topo *netns.Topology) {
	t.Helper()
	for _, h := range topo.Hosts {
		for _, loc := range h.Locators() {
			pc, err := h.NS.ListenPacket("udp6", netip.AddrPortFrom(loc, echoPort).String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pc.Close() })
			go echo(pc)
		}
	}
}

func TestTopologyAllPairsAndRemoval(t *testing.T) {
	nstest.Require(t)
	prefix := nstest.Prefix()
	topo, err := netns.Build(netns.Config{Prefix: prefix, Hosts: 3, Providers: 2})
	if err != nil {
		t.Fatal(err)
	}
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			topo.Destroy()
		}
	})
	var inodes []uint64
	for _, name := range topo.NodeNames() {
		n, err := netns.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		ino, _ := n.Inode()
		inodes = append(inodes, ino)
		n.Close()
	}
	if len(inodes) != 3+2+1 {
		t.Fatalf("%d namespaces, want 6", len(inodes))
	}

	startEcho(t, topo)
	// Every locator of every host reaches every locator of every other
	// host, and the peer sees the source that was bound. With the
	// providers' ingress filter on, this also proves that source-based
	// routing sends each source to its own provider.
	for _, x := range topo.Hosts {
		for _, y := range topo.Hosts {
			if x == y {
				continue
			}
			for _, lx := range x.Locators() {
				for _, ly := range y.Locators() {
					if err := probe(x.NS, lx, ly, echoPort, 3, time.Second); err != nil {
						t.Errorf("%s -> %s: %v", x.Name, y.Name, err)
					}
				}
			}
		}
	}

	// TCP between crossed locators (a via p1 to b via p2), with bytes
	// checked, and an unbound socket choosing provider 1's address.
	a, b := topo.Host("a"), topo.Host("b")
	ln, err := b.NS.Listen("tcp6", netip.AddrPortFrom(b.Uplinks[1].Addr, 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		remote netip.Addr
		data   []byte
		err    error
	}
	got := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- accepted{err: err}
			return
		}
		defer c.Close()
		data, err := io.ReadAll(c)
		got <- accepted{remote: c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(), data: data, err: err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.NS.Dial(ctx, nil, "tcp6", netip.AddrPortFrom(b.Uplinks[1].Addr, 8080).String())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := <-got
	if r.err != nil || string(r.data) != string(payload) {
		t.Fatalf("tcp: %d bytes, err %v", len(r.data), r.err)
	}
	if r.remote != a.Uplinks[0].Addr {
		t.Errorf("unbound TCP source = %s, want provider 1's %s", r.remote, a.Uplinks[0].Addr)
	}

	// Teardown removes every namespace and leaves no descriptor behind.
	if err := topo.Destroy(); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if left, _ := netns.List(prefix); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	for _, ino := range inodes {
		if k := fdsInto(ino); k != 0 {
			t.Errorf("%d descriptors still open on namespace %d", k, ino)
		}
	}
}

func TestTopologyFailHeal(t *testing.T) {
	topo := nstest.Topology(t, netns.Config{})
	startEcho(t, topo)
	a, b := topo.Host("a"), topo.Host("b")
	a1, a2 := a.Uplinks[0].Addr, a.Uplinks[1].Addr
	b1, b2 := b.Uplinks[0].Addr, b.Uplinks[1].Addr
	ok := func(t *testing.T, n *netns.NS, src, dst netip.Addr) {
		t.Helper()
		if err := probe(n, src, dst, echoPort, 3, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	broken := func(t *testing.T, n *netns.NS, src, dst netip.Addr) {
		t.Helper()
		if err := probe(n, src, dst, echoPort, 1, 300*time.Millisecond); err == nil {
			t.Fatalf("%s -> %s works through a failed link", src, dst)
		}
	}
	status := func(t *testing.T, name string) netns.LinkStatus {
		t.Helper()
		all, err := topo.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range all {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no status for %s", name)
		return netns.LinkStatus{}
	}
	ok(t, a.NS, a1, b1)

	for _, m := range []netns.Method{netns.Blackhole, netns.LinkDown} {
		t.Run(m.String(), func(t *testing.T) {
			if err := topo.Fail("a-p1", m, netns.DirBoth); err != nil {
				t.Fatal(err)
			}
			if s := status(t, "a-p1"); !s.Failed() {
				t.Fatalf("status after fail: %+v", s)
			}
			broken(t, a.NS, a1, b1)
			broken(t, a.NS, a1, b2)
			broken(t, b.NS, b2, a1)
			ok(t, a.NS, a2, b2)
			ok(t, a.NS, a2, b1)
			if err := topo.Heal("a-p1"); err != nil {
				t.Fatal(err)
			}
			if s := status(t, "a-p1"); s.Failed() {
				t.Fatalf("status after heal: %+v", s)
			}
			ok(t, a.NS, a1, b1)
			ok(t, b.NS, b2, a1)
		})
	}

	t.Run("unidirectional", func(t *testing.T) {
		if err := topo.Fail("a-p1", netns.Blackhole, netns.DirOut); err != nil {
			t.Fatal(err)
		}
		if s := status(t, "a-p1"); s.Blackholed != netns.DirOut {
			t.Fatalf("blackholed = %v, want out", s.Blackholed)
		}
		// b's datagram reaches a through p1, a's answer from a1 dies.
		in, err := a.NS.ListenPacket("udp6", netip.AddrPortFrom(a1, 9).String())
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		out, err := b.NS.ListenPacket("udp6", netip.AddrPortFrom(b2, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := out.WriteTo([]byte("hi"), net.UDPAddrFromAddrPort(netip.AddrPortFrom(a1, 9))); err != nil {
			t.Fatal(err)
		}
		in.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 16)
		if n, _, err := in.ReadFrom(buf); err != nil || string(buf[:n]) != "hi" {
			t.Fatalf("inbound over a-p1 under an outbound blackhole: %q, %v", buf[:n], err)
		}
		broken(t, a.NS, a1, b2)
		if err := topo.Heal("a-p1"); err != nil {
			t.Fatal(err)
		}
		ok(t, a.NS, a1, b2)
	})

	t.Run("provider outage", func(t *testing.T) {
		if err := topo.Fail("p1-core", netns.Blackhole, netns.DirBoth); err != nil {
			t.Fatal(err)
		}
		// Both hosts still reach each other inside p1; nothing leaves it.
		broken(t, a.NS, a1, b2)
		broken(t, b.NS, b2, a1)
		ok(t, a.NS, a1, b1)
		ok(t, a.NS, a2, b2)
		if err := topo.Heal("p1-core"); err != nil {
			t.Fatal(err)
		}
		ok(t, a.NS, a1, b2)
	})

	if err := topo.Fail("nope", netns.Blackhole, netns.DirBoth); err == nil {
		t.Fatal("Fail of an unknown link succeeded")
	}
}

func TestAttachAndRemoveByPrefix(t *testing.T) {
	nstest.Require(t)
	prefix := nstest.Prefix()
	cfg := netns.Config{Prefix: prefix, Providers: 3}
	topo, err := netns.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.RemoveByPrefix(prefix + "-") })
	if err := topo.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := netns.Attach(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := again.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2*3+3 {
		t.Fatalf("%d links, want 9", len(st))
	}
	for _, s := range st {
		if s.Failed() {
			t.Errorf("%s failed after build: %+v", s.Name, s)
		}
	}
	// A process left running inside does not stop the removal.
	sleeper := newSleep()
	if err := again.Hosts[0].NS.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Wait()
	again.Close()
	removed, err := netns.RemoveByPrefix(prefix + "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2+3+1 {
		t.Fatalf("removed %v", removed)
	}
	if _, err := netns.Attach(cfg); err == nil {
		t.Fatal("Attach after removal succeeded")
	}
}

func TestBuildFailureCleansUp(t *testing.T) {
	nstest.Require(t)
	prefix := nstest.Prefix()
	// A netem delay needs netem; on kernels without it Build must fail
	// and leave nothing behind. With netem the delay must be in place.
	topo, err := netns.Build(netns.Config{Prefix: prefix, Delay: 3 * time.Millisecond, Netem: true})
	if err != nil {
		if !errors.Is(err, netns.ErrNoNetem) {
			t.Fatalf("Build with delay: %v", err)
		}
		if left, _ := netns.List(prefix); len(left) != 0 {
			t.Fatalf("failed Build left %v", left)
		}
		return
	}
	defer topo.Destroy()
	ne, err := topo.Hosts[0].NS.GetNetem(topo.Hosts[0].Uplinks[0].Ifname)
	if err != nil || ne.Delay != 3*time.Millisecond {
		t.Fatalf("delay on uplink: %+v, %v", ne, err)
	}
}

// rtt measures one UDP echo round trip from src to dst.
func rtt(t *testing.T, n *netns.NS, src, dst netip.Addr) time.Duration {
	t.Helper()
	// The first exchange also resolves neighbours; measure the second.
	if err := probe(n, src, dst, echoPort, 3, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := probe(n, src, dst, echoPort, 1, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func TestTopologyDelayRelay(t *testing.T) {
	const d = 15 * time.Millisecond
	topo := nstest.Topology(t, netns.Config{Delay: d, LinkDelay: map[string]time.Duration{"b-p2": 0}})
	startEcho(t, topo)
	a, b := topo.Host("a"), topo.Host("b")
	a1, a2, b1, b2 := a.Locators()[0], a.Locators()[1], b.Locators()[0], b.Locators()[1]
	// a-p1 and b-p1 are delayed: 2*d each way.
	if got := rtt(t, a.NS, a1, b1); got < 4*d {
		t.Fatalf("rtt a1-b1 %v, want at least %v", got, 4*d)
	}
	// b-p2 is not: a2 to b2 crosses one delayed link.
	if got := rtt(t, a.NS, a2, b2); got < 2*d || got >= 4*d+50*time.Millisecond {
		t.Fatalf("rtt a2-b2 %v, want about %v", got, 2*d)
	}

	// Bulk TCP through two relays arrives intact (GSO frames pass).
	ln, err := b.NS.Listen("tcp6", netip.AddrPortFrom(b1, 8081).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		data, _ := io.ReadAll(c)
		got <- data
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := a.NS.Dial(ctx, &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(a1, 0))}, "tcp6", netip.AddrPortFrom(b1, 8081).String())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 2<<20)
	for i := range payload {
		payload[i] = byte(i>>8) ^ byte(i)
	}
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if data := <-got; !bytes.Equal(data, payload) {
		t.Fatalf("received %d bytes, not the %d sent", len(data), len(payload))
	}

	// Link down on a relayed link: the host loses carrier; heal restores.
	if err := topo.Fail("a-p1", netns.LinkDown, netns.DirBoth); err != nil {
		t.Fatal(err)
	}
	st, _ := topo.Status()
	if st[0].Name != "a-p1" || st[0].Carrier || !st[0].Failed() {
		t.Fatalf("a-p1 after fail down: %+v", st[0])
	}
	if err := probe(a.NS, a1, b1, echoPort, 1, 300*time.Millisecond); err == nil {
		t.Fatal("a-p1 down but traffic passes")
	}
	if err := topo.Heal("a-p1"); err != nil {
		t.Fatal(err)
	}
	if err := probe(a.NS, a1, b1, echoPort, 3, time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}
