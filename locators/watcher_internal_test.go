package locators

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
	"golang.org/x/sys/unix"
)

func TestResyncReportsTheDifference(t *testing.T) {
	n, peer := nstest.NS(t), nstest.NS(t)
	if err := netns.Veth(n, "e0", peer, "e1"); err != nil {
		t.Fatal(err)
	}
	g := netip.MustParsePrefix("2001:db8:5::1/64")
	if err := n.AddAddr("e0", g); err != nil {
		t.Fatal(err)
	}
	var w *Watcher
	// Without the notification subscription: a late notification about g
	// (its DAD finishing) would otherwise re-add it behind the test's back
	// before the resync (seen once in a full test run).
	if err := n.Do(func() (err error) { w, err = newWatcher(Options{}, false); return err }); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Pretend notifications were lost: the watcher missed g's arrival
	// and believes in an address that is gone.
	ghost := netip.MustParseAddr("2001:db8:6::1")
	w.mu.Lock()
	idx := 0
	for k := range w.addrs {
		idx = k.ifindex
		delete(w.addrs, k)
	}
	w.addrs[key{idx, ghost}] = Addr{Addr: ghost, PrefixLen: 64, IfIndex: idx}
	w.mu.Unlock()

	evs, err := w.resync()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[EventKind]netip.Addr{}
	for _, e := range evs {
		kinds[e.Kind] = e.Addr.Addr
	}
	if len(evs) != 3 || kinds[Added] != g.Addr() || kinds[Removed] != ghost || evs[2].Kind != Resync {
		t.Fatalf("resync events %v", evs)
	}
	if all := evs[2].All; len(all) != 1 || all[0].Addr != g.Addr() {
		t.Fatalf("after resync %v", all)
	}
}

// newAddrMsg builds an RTM_NEWADDR for tests and fuzz seeds.
func newAddrMsg(a netip.Addr, plen uint8, ifindex uint32, flags uint32) []byte {
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0], body[1] = unix.AF_INET6, plen
	binary.NativeEndian.PutUint32(body[4:], ifindex)
	attr := func(typ uint16, v []byte) {
		h := make([]byte, 4)
		binary.NativeEndian.PutUint16(h[0:], uint16(4+len(v)))
		binary.NativeEndian.PutUint16(h[2:], typ)
		body = append(append(body, h...), v...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
	}
	attr(unix.IFA_ADDRESS, a.AsSlice())
	f := make([]byte, 4)
	binary.NativeEndian.PutUint32(f, flags)
	attr(unix.IFA_FLAGS, f)
	ci := make([]byte, 16)
	binary.NativeEndian.PutUint32(ci[0:], 100)
	binary.NativeEndian.PutUint32(ci[4:], 0xffffffff)
	attr(unix.IFA_CACHEINFO, ci)
	h := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(h[0:], uint32(len(h)+len(body)))
	binary.NativeEndian.PutUint16(h[4:], unix.RTM_NEWADDR)
	return append(h, body...)
}

func TestParseAddrMsg(t *testing.T) {
	a := netip.MustParseAddr("2001:db8::42")
	msgs, err := syscall.ParseNetlinkMessage(newAddrMsg(a, 64, 7, unix.IFA_F_DEPRECATED|unix.IFA_F_TEMPORARY|unix.IFA_F_TENTATIVE))
	if err != nil || len(msgs) != 1 {
		t.Fatal(err)
	}
	am, ok := parseAddrMsg(msgs[0])
	if !ok || am.ifindex != 7 || am.a.Addr != a || am.a.PrefixLen != 64 || !am.a.Deprecated || !am.a.Temporary || !am.a.Tentative || am.a.DADFailed {
		t.Fatalf("%+v %v", am, ok)
	}
	if am.a.PreferredLifetime.Seconds() != 100 || am.a.ValidLifetime != 0 {
		t.Fatalf("lifetimes %v %v", am.a.PreferredLifetime, am.a.ValidLifetime)
	}
	// Truncated and foreign messages are refused, not misread.
	m := msgs[0]
	m.Data = m.Data[:4]
	if _, ok := parseAddrMsg(m); ok {
		t.Fatal("truncated message parsed")
	}
	m = msgs[0]
	m.Data = append([]byte{unix.AF_INET}, m.Data[1:]...)
	if _, ok := parseAddrMsg(m); ok {
		t.Fatal("IPv4 message parsed")
	}
}

func FuzzParseMessages(f *testing.F) {
	f.Add(newAddrMsg(netip.MustParseAddr("2001:db8::1"), 64, 2, 0))
	f.Add(newAddrMsg(netip.MustParseAddr("fe80::1"), 128, 1, unix.IFA_F_DADFAILED)[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			for _, typ := range []uint16{unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWLINK, unix.RTM_DELLINK} {
				m.Header.Type = typ
				if am, ok := parseAddrMsg(m); ok && !am.a.Addr.Is6() {
					t.Fatalf("non-IPv6 address accepted: %v", am.a.Addr)
				}
				parseLinkMsg(m)
			}
		}
	})
}
