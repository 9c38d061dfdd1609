package netio_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/netio"
)

func listen(t *testing.T, n *netns.NS) *netio.Conn {
	t.Helper()
	var c *netio.Conn
	if err := n.Do(func() (err error) { c, err = netio.Listen(); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func listenICMP(t *testing.T, n *netns.NS, opts netio.ICMPOptions) *netio.ICMPConn {
	t.Helper()
	var c *netio.ICMPConn
	if err := n.Do(func() (err error) { c, err = netio.ListenICMP(opts); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// msg is a plausible Shim6 control message (netio does not look inside).
func msg(b byte, size int) []byte {
	m := make([]byte, size)
	m[0], m[1], m[2] = 59, byte(size/8-1), 0x01
	for i := 8; i < size; i++ {
		m[i] = b
	}
	return m
}

func recvWithin(t *testing.T, c *netio.Conn, d time.Duration) netio.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	p, err := c.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendFromChosenLocator(t *testing.T) {
	topo := nstest.Topology(t, netns.Config{})
	a, b := topo.Host("a"), topo.Host("b")
	ca, cb := listen(t, a.NS), listen(t, b.NS)
	ifindex := map[netip.Addr]int{}
	for _, u := range b.Uplinks {
		i, err := b.NS.LinkIndex(u.Ifname)
		if err != nil {
			t.Fatal(err)
		}
		ifindex[u.Addr] = i
	}
	k := byte(0)
	// Every source locator of a to every locator of b: the peer sees the
	// chosen source (and the providers' BCP 38 filters prove that the
	// packet left through the matching provider).
	for i, src := range a.Locators() {
		for j, dst := range b.Locators() {
			k++
			m := msg(k, 64)
			if err := ca.Send(src, dst, m); err != nil {
				t.Fatal(err)
			}
			p := recvWithin(t, cb, 3*time.Second)
			if p.Src != src || p.Dst != dst || !bytes.Equal(p.Data, m) {
				t.Fatalf("got %v -> %v %x, want %v -> %v %x", p.Src, p.Dst, p.Data[:8], src, dst, m[:8])
			}
			if p.IfIndex != ifindex[dst] {
				t.Fatalf("arrived on ifindex %d, want %d", p.IfIndex, ifindex[dst])
			}
			// One router inside a provider, three through the core.
			want := 64 - 1
			if i != j {
				want = 64 - 3
			}
			if p.HopLimit != want {
				t.Fatalf("hop limit %d, want %d", p.HopLimit, want)
			}
		}
	}
	// A payload extension header (P=1) reaches the socket too.
	pl := []byte{6, 0, 0x80, 0, 0, 0, 0, 42}
	if err := ca.Send(a.Locators()[0], b.Locators()[0], pl); err != nil {
		t.Fatal(err)
	}
	if p := recvWithin(t, cb, 3*time.Second); !bytes.Equal(p.Data, pl) {
		t.Fatalf("payload header: %x", p.Data)
	}
	if s := ca.Stats(); s.Sent != 5 || s.SendErrors != 0 {
		t.Fatalf("sender stats %+v", s)
	}
	if s := cb.Stats(); s.Received != 5 {
		t.Fatalf("receiver stats %+v", s)
	}

	// A source that is not ours, and a non-IPv6 destination, fail.
	if err := ca.Send(b.Locators()[0], b.Locators()[1], msg(1, 16)); err == nil {
		t.Fatal("send from a foreign source succeeded")
	}
	if err := ca.Send(a.Locators()[0], netip.MustParseAddr("192.0.2.1"), msg(1, 16)); err == nil {
		t.Fatal("send to IPv4 succeeded")
	}
	if s := ca.Stats(); s.SendErrors != 1 {
		t.Fatalf("send errors %d, want 1 (the IPv4 one is refused before the socket)", s.SendErrors)
	}
}

func TestRecvContextCloseNoLeak(t *testing.T) {
	n := nstest.NS(t)
	before := runtime.NumGoroutine()
	c := listen(t, n)
	if err := n.AddAddr("lo", netip.MustParsePrefix("2001:db8::1/128")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv with expiring ctx: %v", err)
	}
	// The next Recv is not affected by the previous deadline.
	self := netip.MustParseAddr("2001:db8::1")
	if err := c.Send(self, self, msg(7, 16)); err != nil {
		t.Fatal(err)
	}
	if p := recvWithin(t, c, 3*time.Second); p.Data[8] != 7 || p.Src != self {
		t.Fatalf("after a cancelled Recv: %+v", p)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Recv(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Recv after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not unblock Recv")
	}
	// No goroutine is left behind (allow the runtime a moment).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines, %d before", g, before)
	}
}

func TestICMPErrors(t *testing.T) {
	topo := nstest.Topology(t, netns.Config{})
	for _, n := range append(topo.NodeNames()[:0:0], topo.NodeNames()...) {
		ns, err := netns.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		// No ICMPv6 rate limiting, so that each case gets its error.
		if err := ns.SetSysctl("net.ipv6.icmp.ratelimit", "0"); err != nil {
			t.Fatal(err)
		}
		ns.Close()
	}
	a, b := topo.Host("a"), topo.Host("b")
	p1 := topo.Providers[0]
	a1, b1, b2 := a.Locators()[0], b.Locators()[0], b.Locators()[1]
	gw1 := a.Uplinks[0].Gateway
	ca := listen(t, a.NS)
	ic := listenICMP(t, a.NS, netio.ICMPOptions{})

	recv := func(t *testing.T) netio.ICMPError {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e, err := ic.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	check := func(t *testing.T, e netio.ICMPError, typ, code uint8, from, dst netip.Addr, m []byte) {
		t.Helper()
		if e.Type != typ || e.Code != code || e.From != from || e.To != a1 {
			t.Fatalf("got type %d code %d from %v to %v, want %d %d from %v to %v", e.Type, e.Code, e.From, e.To, typ, code, from, a1)
		}
		if e.Packet.Src != a1 || e.Packet.Dst != dst || !e.ShimRelated() {
			t.Fatalf("invoking %+v", e.Packet)
		}
		if s := e.Shim6(); len(s) < 16 || !bytes.Equal(s, m[:len(s)]) {
			t.Fatalf("quoted Shim6 bytes differ")
		}
	}

	t.Run("parameter problem: peer without Shim6", func(t *testing.T) {
		m := msg(1, 32)
		if err := ca.Send(a1, b1, m); err != nil {
			t.Fatal(err)
		}
		e := recv(t)
		check(t, e, netio.ICMPParameterProblem, 1, b1, b1, m)
		if e.Info != 6 { // the Next Header field of the IPv6 header
			t.Fatalf("pointer %d, want 6", e.Info)
		}
	})

	t.Run("destination unreachable, UDP filtered out", func(t *testing.T) {
		hole := netip.MustParseAddr("2001:db8:1:b::99")
		if err := p1.NS.ReplaceRoute(netns.Route{Dst: netip.PrefixFrom(hole, 128), Type: netns.RouteUnreachable}); err != nil {
			t.Fatal(err)
		}
		// First an error about UDP, which the default filter drops.
		if err := a.NS.Do(func() error {
			c, err := net.DialUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a1, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(hole, 9)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		m := msg(2, 24)
		if err := ca.Send(a1, hole, m); err != nil {
			t.Fatal(err)
		}
		e := recv(t)
		check(t, e, netio.ICMPDestinationUnreachable, 0, gw1, hole, m)
		if s := ic.Stats(); s.Filtered != 1 {
			t.Fatalf("stats %+v, want one filtered UDP error", s)
		}
	})

	t.Run("time exceeded", func(t *testing.T) {
		m := msg(3, 16)
		if err := ca.SendHopLimit(a1, b2, 1, m); err != nil {
			t.Fatal(err)
		}
		check(t, recv(t), netio.ICMPTimeExceeded, 0, gw1, b2, m)
	})

	t.Run("packet too big", func(t *testing.T) {
		core := topo.Link("p1-core")
		if err := core.Down.NS.SetMTU(core.Down.Ifname, 1280); err != nil {
			t.Fatal(err)
		}
		if err := core.Up.NS.SetMTU(core.Up.Ifname, 1280); err != nil {
			t.Fatal(err)
		}
		m := msg(4, 1400)
		if err := ca.Send(a1, b2, m); err != nil {
			t.Fatal(err)
		}
		e := recv(t)
		check(t, e, netio.ICMPPacketTooBig, 0, gw1, b2, m)
		if e.Info != 1280 {
			t.Fatalf("MTU %d", e.Info)
		}
	})

	t.Run("custom filter sees every error", func(t *testing.T) {
		all := listenICMP(t, a.NS, netio.ICMPOptions{Filter: func(*netio.ICMPError) bool { return true }})
		if err := a.NS.Do(func() error {
			c, err := net.DialUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a1, 0)), net.UDPAddrFromAddrPort(netip.AddrPortFrom(b1, 9)))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		e, err := all.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// b has no UDP listener on port 9: port unreachable.
		if e.Type != netio.ICMPDestinationUnreachable || e.Code != 4 || e.ShimRelated() || e.Packet.NextHeader != 17 {
			t.Fatalf("%+v", e)
		}
	})
}

func TestIORun(t *testing.T) {
	topo := nstest.Topology(t, netns.Config{})
	a, b := topo.Host("a"), topo.Host("b")
	a1, b1, b2 := a.Locators()[0], b.Locators()[0], b.Locators()[1]
	var ioA, ioB *netio.IO
	if err := a.NS.Do(func() (err error) { ioA, err = netio.Open(netio.ICMPOptions{}); return err }); err != nil {
		t.Fatal(err)
	}
	defer ioA.Close()
	if err := b.NS.Do(func() (err error) { ioB, err = netio.Open(netio.ICMPOptions{}); return err }); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	packets := make(chan netio.Packet, 4)
	icmps := make(chan netio.ICMPError, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ioA.Run(ctx, func(p netio.Packet) { packets <- p }, func(e netio.ICMPError) { icmps <- e })
	}()
	// b answers through its IO; a's Run hands the packet up.
	if err := ioB.Send(b2, a1, msg(9, 16)); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-packets:
		if p.Src != b2 || p.Dst != a1 || p.Data[8] != 9 {
			t.Fatalf("packet %+v", p)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no packet from Run")
	}
	// Once b's sockets are closed, b answers Shim6 with Parameter Problem.
	ioB.Close()
	if err := ioA.Send(a1, b1, msg(1, 16)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-icmps:
		if e.Type != netio.ICMPParameterProblem || e.From != b1 {
			t.Fatalf("icmp %+v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no ICMP error from Run")
	}
	if c := ioA.Counters(); c["netio_received"] != 1 || c["netio_icmp_delivered"] != 1 || c["netio_sent"] != 1 {
		t.Fatalf("counters %v", c)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after Run, %d before", g, before)
	}
}
