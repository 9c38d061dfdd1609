package locators_test

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/locators"
)

var (
	g1   = netip.MustParsePrefix("2001:db8:1::10/64")
	g2   = netip.MustParsePrefix("2001:db8:2::10/64")
	ula  = netip.MustParsePrefix("fd00:1::1/64")
	loop = netip.MustParsePrefix("2001:db8:9::1/128")
)

// host is a namespace with interface e0, whose peer e1 is in a second
// namespace (so that the peer's state and addresses can be changed).
type host struct {
	ns, peer *netns.NS
}

func newHost(t *testing.T) host {
	t.Helper()
	h := host{ns: nstest.NS(t), peer: nstest.NS(t)}
	for _, n := range []*netns.NS{h.ns, h.peer} {
		for _, kv := range [][2]string{
			{"net.ipv6.conf.default.accept_ra", "0"},
			// DAD quick: start at once (one probe, 100 ms, see below).
			{"net.ipv6.conf.default.router_solicitation_delay", "0"},
		} {
			if err := n.SetSysctl(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := netns.Veth(h.ns, "e0", h.peer, "e1"); err != nil {
		t.Fatal(err)
	}
	// DAD sends one probe and waits one retransmission time.
	if err := h.ns.SetSysctl("net/ipv6/neigh/e0/retrans_time_ms", "100"); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h host) add(t *testing.T, ifname string, p netip.Prefix, o locators.AddOptions) {
	t.Helper()
	if err := h.ns.Do(func() error { return locators.AddAddress(ifname, p, o) }); err != nil {
		t.Fatal(err)
	}
}

func find(as []locators.Addr, p netip.Prefix) (locators.Addr, bool) {
	for _, a := range as {
		if a.Addr == p.Addr() {
			return a, true
		}
	}
	return locators.Addr{}, false
}

func TestListFlagsAndFilter(t *testing.T) {
	h := newHost(t)
	h.add(t, "e0", g1, locators.AddOptions{NoDAD: true})
	h.add(t, "e0", g2, locators.AddOptions{NoDAD: true, Deprecated: true})
	h.add(t, "lo", loop, locators.AddOptions{})
	// A second interface with a unique local address.
	peer2 := nstest.NS(t)
	if err := netns.Veth(h.ns, "e2", peer2, "x"); err != nil {
		t.Fatal(err)
	}
	h.add(t, "e2", ula, locators.AddOptions{NoDAD: true, ValidLifetime: time.Hour, PreferredLifetime: 30 * time.Minute})

	list := func(f locators.Filter) []locators.Addr {
		t.Helper()
		var as []locators.Addr
		if err := h.ns.Do(func() (err error) { as, err = locators.List(f); return err }); err != nil {
			t.Fatal(err)
		}
		return as
	}
	all := list(locators.Filter{})
	if len(all) != 3 {
		t.Fatalf("List = %v, want g1, g2, ula (no link-local, no loopback)", all)
	}
	a1, _ := find(all, g1)
	if a1.Interface != "e0" || a1.PrefixLen != 64 || a1.Deprecated || a1.Tentative || !a1.Permanent || !a1.LinkUp || !a1.Usable() {
		t.Fatalf("g1 = %+v", a1)
	}
	a2, _ := find(all, g2)
	if !a2.Deprecated || !a2.Usable() {
		t.Fatalf("g2 = %+v, want deprecated and usable", a2)
	}
	u, _ := find(all, ula)
	if u.Interface != "e2" || u.ValidLifetime <= 59*time.Minute || u.ValidLifetime > time.Hour || u.PreferredLifetime > 30*time.Minute || u.PreferredLifetime == 0 {
		t.Fatalf("ula = %+v", u)
	}

	for _, tc := range []struct {
		name string
		f    locators.Filter
		want []netip.Prefix
	}{
		{"interface", locators.Filter{Interfaces: []string{"e0"}}, []netip.Prefix{g1, g2}},
		{"exclude interface", locators.Filter{ExcludeInterfaces: []string{"e0"}}, []netip.Prefix{ula}},
		{"prefix", locators.Filter{Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}}, []netip.Prefix{g1, g2}},
		{"exclude prefix", locators.Filter{ExcludePrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:2::/48"), netip.MustParsePrefix("fc00::/7")}}, []netip.Prefix{g1}},
		{"lo never", locators.Filter{Interfaces: []string{"lo"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := list(tc.f)
			var addrs []netip.Addr
			for _, a := range got {
				addrs = append(addrs, a.Addr)
			}
			var want []netip.Addr
			for _, p := range tc.want {
				want = append(want, p.Addr())
			}
			slices.SortFunc(addrs, netip.Addr.Compare)
			slices.SortFunc(want, netip.Addr.Compare)
			if !slices.Equal(addrs, want) {
				t.Fatalf("got %v, want %v", addrs, want)
			}
		})
	}

	if err := h.ns.Do(func() error {
		return locators.AddAddress("e0", netip.MustParsePrefix("192.0.2.1/24"), locators.AddOptions{})
	}); err == nil {
		t.Fatal("AddAddress accepted IPv4")
	}
	if err := h.ns.Do(func() error {
		return locators.AddAddress("e0", g1, locators.AddOptions{PreferredLifetime: time.Hour, ValidLifetime: time.Minute})
	}); err == nil {
		t.Fatal("preferred > valid accepted")
	}
}

type watch struct {
	t *testing.T
	w *locators.Watcher
}

func (w watch) next(kind locators.EventKind, addr netip.Addr, iface string) locators.Event {
	w.t.Helper()
	select {
	case e, ok := <-w.w.Events():
		if !ok {
			w.t.Fatalf("events closed (%v) waiting for %s", w.w.Err(), kind)
		}
		if e.Kind != kind || e.Addr.Addr != addr || e.Interface != iface {
			w.t.Fatalf("got %s (iface %s), want %s %v on %s", e, e.Interface, kind, addr, iface)
		}
		return e
	case <-time.After(5 * time.Second):
		w.t.Fatalf("no %s event for %v", kind, addr)
	}
	return locators.Event{}
}

func TestWatcherEvents(t *testing.T) {
	h := newHost(t)
	h.add(t, "e0", g1, locators.AddOptions{NoDAD: true})
	before := runtime.NumGoroutine()
	var w *locators.Watcher
	if err := h.ns.Do(func() (err error) {
		w, err = locators.NewWatcher(locators.Options{Filter: locators.Filter{ExcludePrefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:99::/48")}}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev := watch{t, w}
	if s := w.Snapshot(); len(s) != 1 || s[0].Addr != g1.Addr() {
		t.Fatalf("initial snapshot %v", s)
	}

	// Added, usable at once (no DAD). Addresses that are not locators
	// (loopback interface, excluded prefix) make no event.
	h.add(t, "lo", loop, locators.AddOptions{})
	h.add(t, "e0", netip.MustParsePrefix("2001:db8:99::1/64"), locators.AddOptions{NoDAD: true})
	h.add(t, "e0", g2, locators.AddOptions{NoDAD: true})
	e := ev.next(locators.Added, g2.Addr(), "e0")
	if !e.Addr.Usable() || len(e.All) != 2 {
		t.Fatalf("added: %+v, all %v", e.Addr, e.All)
	}

	// Deprecated and preferred again.
	h.add(t, "e0", g2, locators.AddOptions{NoDAD: true, Deprecated: true})
	if e := ev.next(locators.Deprecated, g2.Addr(), "e0"); !e.Addr.Deprecated {
		t.Fatalf("deprecated event without the flag: %+v", e.Addr)
	}
	h.add(t, "e0", g2, locators.AddOptions{NoDAD: true})
	ev.next(locators.Preferred, g2.Addr(), "e0")

	// With DAD: tentative first, then ready.
	dad := netip.MustParsePrefix("2001:db8:1::77/64")
	h.add(t, "e0", dad, locators.AddOptions{})
	if e := ev.next(locators.Added, dad.Addr(), "e0"); !e.Addr.Tentative || e.Addr.Usable() {
		t.Fatalf("DAD address not tentative: %+v", e.Addr)
	}
	if e := ev.next(locators.Ready, dad.Addr(), "e0"); e.Addr.Tentative || !e.Addr.Usable() {
		t.Fatalf("ready: %+v", e.Addr)
	}

	// DAD failure: the peer already has the address.
	dup := netip.MustParsePrefix("2001:db8:1::88/64")
	if err := h.peer.AddAddr("e1", dup); err != nil {
		t.Fatal(err)
	}
	h.add(t, "e0", dup, locators.AddOptions{})
	ev.next(locators.Added, dup.Addr(), "e0")
	if e := ev.next(locators.DADFailed, dup.Addr(), "e0"); !e.Addr.DADFailed || e.Addr.Usable() {
		t.Fatalf("dadfailed: %+v", e.Addr)
	}
	if err := h.ns.Do(func() error { return locators.DelAddress("e0", dup) }); err != nil {
		t.Fatal(err)
	}
	ev.next(locators.Removed, dup.Addr(), "e0")

	// Carrier lost and back (the peer end goes down, addresses stay).
	if err := h.peer.LinkDown("e1"); err != nil {
		t.Fatal(err)
	}
	e = ev.next(locators.LinkDown, netip.Addr{}, "e0")
	for _, a := range e.All {
		if a.Interface == "e0" && (a.LinkUp || a.Usable()) {
			t.Fatalf("after link down: %v", a)
		}
	}
	if len(e.All) != 3 {
		t.Fatalf("addresses lost with carrier: %v", e.All)
	}
	if err := h.peer.LinkUp("e1"); err != nil {
		t.Fatal(err)
	}
	e = ev.next(locators.LinkUp, netip.Addr{}, "e0")
	if a, _ := find(e.All, g1); !a.Usable() {
		t.Fatalf("after link up: %v", a)
	}

	// Removal, and removal of everything by deleting the interface.
	if err := h.ns.Do(func() error { return locators.DelAddress("e0", g2) }); err != nil {
		t.Fatal(err)
	}
	ev.next(locators.Removed, g2.Addr(), "e0")
	if err := h.ns.Do(func() error { return locators.DelAddress("e0", g2) }); err != nil {
		t.Fatalf("deleting a missing address: %v", err)
	}
	if err := h.ns.LinkDel("e0"); err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]bool{}
	for len(got) < 2 {
		select {
		case e := <-w.Events():
			switch e.Kind {
			case locators.LinkDown: // the link goes down before it goes away
			case locators.Removed:
				got[e.Addr.Addr] = true
			default:
				t.Fatalf("after link deletion: %s", e)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no removal after link deletion")
		}
	}
	if !got[g1.Addr()] || !got[dad.Addr()] || len(w.Snapshot()) != 0 {
		t.Fatalf("removed %v, left %v", got, w.Snapshot())
	}

	// Close ends the goroutine and closes the channel.
	w.Close()
	w.Close()
	if _, ok := <-w.Events(); ok {
		t.Fatal("events still open after Close")
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after Close, %d before", g, before)
	}
}

func TestWatcherRun(t *testing.T) {
	h := newHost(t)
	var w *locators.Watcher
	if err := h.ns.Do(func() (err error) { w, err = locators.NewWatcher(locators.Options{}); return err }); err != nil {
		t.Fatal(err)
	}
	got := make(chan locators.Event, 8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e locators.Event) { got <- e }) }()
	h.add(t, "e0", g1, locators.AddOptions{NoDAD: true})
	select {
	case e := <-got:
		if e.Kind != locators.Added || e.Addr.Addr != g1.Addr() || len(e.All) != 1 {
			t.Fatalf("event %s", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run delivered nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	// After Close, Run returns at once.
	w.Close()
	if err := w.Run(context.Background(), func(locators.Event) {}); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
}
