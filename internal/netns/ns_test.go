package netns_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

const helperEnv = "GOSHIM6_NETNS_TEST_HELPER"

// TestMain doubles as a helper process started inside namespaces: it
// prints the namespace it runs in and exits.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "nsid" {
		l, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Print(l)
		os.Exit(0)
	}
	if os.Getenv(helperEnv) == "sleep" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func threadNS(t *testing.T) string {
	t.Helper()
	l, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCreateOpenDelete(t *testing.T) {
	nstest.Require(t)
	name := nstest.Prefix()
	n, err := netns.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.Remove(name) })

	if _, err := netns.Create(name); !errors.Is(err, netns.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	names, err := netns.List(name)
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("List(%q) = %v, %v", name, names, err)
	}
	// Loopback is up in a new namespace.
	lo, err := n.Link("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is down in a new namespace")
	}
	// A second handle refers to the same namespace.
	n2, err := netns.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	i1, _ := n.Inode()
	i2, _ := n2.Inode()
	if i1 == 0 || i1 != i2 {
		t.Errorf("inodes differ: %d vs %d", i1, i2)
	}
	n2.Close()

	if err := n.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := netns.Open(name); !errors.Is(err, netns.ErrNotFound) {
		t.Fatalf("Open after Delete: got %v, want ErrNotFound", err)
	}
	if err := n.Do(func() error { return nil }); !errors.Is(err, netns.ErrClosed) {
		t.Fatalf("Do after Delete: got %v, want ErrClosed", err)
	}
	if _, err := netns.Create("bad/name"); !errors.Is(err, netns.ErrBadName) {
		t.Fatalf("Create(bad/name): got %v", err)
	}
}

func TestDoRunsInsideAndRestores(t *testing.T) {
	n := nstest.NS(t)
	ino, err := n.Inode()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", ino)
	before := threadNS(t)
	for i := 0; i < 20; i++ {
		var inside string
		if err := n.Do(func() error {
			l, err := os.Readlink("/proc/thread-self/ns/net")
			inside = l
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if inside != want {
			t.Fatalf("Do ran in %s, want %s", inside, want)
		}
	}
	if got := threadNS(t); got != before {
		t.Fatalf("caller's namespace changed: %s -> %s", before, got)
	}
	sentinel := errors.New("x")
	if err := n.Do(func() error { return sentinel }); err != sentinel {
		t.Fatalf("Do error = %v", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want boom", p)
			}
		}()
		_ = n.Do(func() error { panic("boom") })
	}()
}

func TestSysctlPerNamespace(t *testing.T) {
	n := nstest.NS(t)
	rootVal, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "0", "1"} {
		if err := n.SetSysctl("net.ipv6.conf.all.forwarding", v); err != nil {
			t.Fatal(err)
		}
		got, err := n.Sysctl("net/ipv6/conf/all/forwarding")
		if err != nil || got != v {
			t.Fatalf("forwarding = %q, %v; want %q", got, err, v)
		}
	}
	after, _ := os.ReadFile("/proc/sys/net/ipv6/conf/all/forwarding")
	if !bytes.Equal(rootVal, after) {
		t.Fatalf("root namespace forwarding changed: %q -> %q", rootVal, after)
	}
}

func TestStartProcessInside(t *testing.T) {
	n := nstest.NS(t)
	ino, _ := n.Inode()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := n.Command(context.Background(), exe)
	cmd.Env = append(os.Environ(), helperEnv+"=nsid")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := n.Run(cmd); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", ino); out.String() != want {
		t.Fatalf("child ran in %q, want %q", out.String(), want)
	}

	// PIDs finds a process that runs inside.
	sleeper := newSleep()
	if err := n.Start(sleeper); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pids, err := n.PIDs()
	if err != nil || len(pids) != 1 || pids[0] != sleeper.Process.Pid {
		t.Fatalf("PIDs = %v, %v; want [%d]", pids, err, sleeper.Process.Pid)
	}
}

func TestVethAddrRouteUDP(t *testing.T) {
	a, b := nstest.NS(t), nstest.NS(t)
	for _, n := range []*netns.NS{a, b} {
		// New interfaces inherit "default": no DAD on the link-local.
		if err := n.SetSysctl("net.ipv6.conf.default.accept_dad", "0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := netns.Veth(a, "va", b, "vb"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		n    *netns.NS
		key  string
		link string
		addr string
	}{{a, "net/ipv6/conf/va/accept_dad", "va", "2001:db8:99::1/64"}, {b, "net/ipv6/conf/vb/accept_dad", "vb", "2001:db8:99::2/64"}} {
		if err := s.n.SetSysctl(s.key, "0"); err != nil {
			t.Fatal(err)
		}
		if err := s.n.AddAddr(s.link, netip.MustParsePrefix(s.addr)); err != nil {
			t.Fatal(err)
		}
	}
	// A route in b to a prefix behind a, and a loopback address in a.
	if err := a.AddAddr("lo", netip.MustParsePrefix("2001:db8:77::1/128")); err != nil {
		t.Fatal(err)
	}
	if err := b.ReplaceRoute(netns.Route{Dst: netip.MustParsePrefix("2001:db8:77::/48"), Gw: netip.MustParseAddr("2001:db8:99::1"), Dev: "vb"}); err != nil {
		t.Fatal(err)
	}
	pc, err := a.ListenPacket("udp6", "[2001:db8:77::1]:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go echo(pc)
	if err := probe(b, netip.MustParseAddr("2001:db8:99::2"), netip.MustParseAddr("2001:db8:77::1"), 9000, 3, time.Second); err != nil {
		t.Fatal(err)
	}
	// A blackhole route makes it fail.
	if err := b.ReplaceRoute(netns.Route{Dst: netip.MustParsePrefix("2001:db8:77::/48"), Type: netns.RouteBlackhole}); err != nil {
		t.Fatal(err)
	}
	if err := probe(b, netip.MustParseAddr("2001:db8:99::2"), netip.MustParseAddr("2001:db8:77::1"), 9000, 1, 200*time.Millisecond); err == nil {
		t.Fatal("probe through a blackhole route succeeded")
	}
}

func TestNetem(t *testing.T) {
	a, b := nstest.NS(t), nstest.NS(t)
	if err := netns.Veth(a, "x", b, "y"); err != nil {
		t.Fatal(err)
	}
	if err := a.SetNetem("x", netns.Netem{Delay: 25 * time.Millisecond}); err != nil {
		if errors.Is(err, netns.ErrNoNetem) {
			// This kernel has no sch_netem: the error must say so, and
			// clearing must still succeed.
			if err := a.SetNetem("x", netns.Netem{}); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal(err)
	}
	got, err := a.GetNetem("x")
	if err != nil || got.Delay != 25*time.Millisecond || got.Loss != 0 {
		t.Fatalf("GetNetem = %+v, %v", got, err)
	}
	if err := a.SetNetem("x", netns.Netem{Delay: 25 * time.Millisecond, Loss: 100}); err != nil {
		t.Fatal(err)
	}
	got, _ = a.GetNetem("x")
	if got.Loss < 99.99 || got.Delay != 25*time.Millisecond {
		t.Fatalf("after loss 100: %+v", got)
	}
	if err := a.SetNetem("x", netns.Netem{}); err != nil {
		t.Fatal(err)
	}
	if got, _ = a.GetNetem("x"); !got.Zero() {
		t.Fatalf("after clear: %+v", got)
	}
	// Clearing twice is fine.
	if err := a.SetNetem("x", netns.Netem{}); err != nil {
		t.Fatal(err)
	}
}

// newSleep is a helper process that sleeps for a minute.
func newSleep() *exec.Cmd {
	exe, _ := os.Executable()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=sleep")
	return cmd
}

// echo answers every datagram with the source address it came from.
func echo(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		src := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
		msg := src.String() + " " + string(buf[:n])
		pc.WriteTo([]byte(msg), from)
	}
}

// probe sends a datagram from src (bound) in n to dst:port and waits for
// an echo that reports src as the source the peer saw.
func probe(n *netns.NS, src, dst netip.Addr, port uint16, tries int, wait time.Duration) error {
	pc, err := n.ListenPacket("udp6", netip.AddrPortFrom(src, 0).String())
	if err != nil {
		return err
	}
	defer pc.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, port))
	buf := make([]byte, 1500)
	var last error
	for i := 0; i < tries; i++ {
		token := fmt.Sprintf("%d-%d", time.Now().UnixNano(), i)
		if _, err := pc.WriteTo([]byte(token), to); err != nil {
			last = err
			continue
		}
		pc.SetReadDeadline(time.Now().Add(wait))
		for {
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				last = err
				break
			}
			seen, tok, _ := strings.Cut(string(buf[:k]), " ")
			if tok != token {
				continue // a late answer to an earlier try
			}
			if seen != src.String() {
				return fmt.Errorf("peer saw source %s, want %s", seen, src)
			}
			return nil
		}
	}
	return fmt.Errorf("no echo %s -> %s: %w", src, dst, last)
}

// fdsInto counts this process's open descriptors on namespace inode ino.
func fdsInto(ino uint64) int {
	ents, _ := os.ReadDir("/proc/self/fd")
	want := fmt.Sprintf("net:[%d]", ino)
	c := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			c++
		}
	}
	return c
}
