package ebpf

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"

	cebpf "github.com/cilium/ebpf"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

// requireRoot skips a test that needs root (BPF, namespaces) outside CI and
// fails it in CI, where everything must run.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run as root: the data-plane tests load BPF programs")
		}
		t.Skip("needs root: loads BPF programs")
	}
}

// testObjects loads the programs and maps without pinning, for
// BPF_PROG_TEST_RUN.
func testObjects(t testing.TB, cfg shim6Config) *shim6Objects {
	t.Helper()
	requireRoot(t)
	spec, err := loadShim6()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range spec.Maps {
		m.Pinning = cebpf.PinNone
	}
	var objs shim6Objects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { objs.Close() })
	if cfg.EventBurst == 0 {
		cfg.EventBurst = 1000
		cfg.EventWindowNs = 1e9
	}
	if err := objs.ConfigMap.Put(uint32(0), &cfg); err != nil {
		t.Fatal(err)
	}
	return &objs
}

const (
	tcActOK       = 0
	tcActShot     = 2
	tcActRedirect = 7
	xdpPass       = 2
)

// skbContext is a struct __sk_buff for BPF_PROG_TEST_RUN's ctx_in, which
// only lets a few fields be set; gsoSegs is the one these tests use.
func skbContext(gsoSegs uint32) []byte {
	b := make([]byte, 192)
	binary.NativeEndian.PutUint32(b[164:], gsoSegs)
	if gsoSegs > 1 {
		binary.NativeEndian.PutUint32(b[176:], 1400) // gso_size
	}
	return b
}

// runOnDevice runs p on in with a real (non-loopback) device as the skb's
// device: a veth in a namespace of the test's own, where the run happens.
func runOnDevice(t testing.TB, p *cebpf.Program, in []byte) uint32 {
	t.Helper()
	n, peer := nstest.NS(t), nstest.NS(t)
	if err := netns.Veth(n, "d0", peer, "d1"); err != nil {
		t.Fatal(err)
	}
	idx, err := n.LinkIndex("d0")
	if err != nil {
		t.Fatal(err)
	}
	ctx := skbContext(0)
	binary.NativeEndian.PutUint32(ctx[40:], uint32(idx)) // __sk_buff.ifindex
	var ret uint32
	if err := n.Do(func() error { ret, _ = runProg(t, p, in, ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	return ret
}

func runProg(t testing.TB, p *cebpf.Program, in []byte, ctx []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(in)+256)
	opts := &cebpf.RunOptions{Data: in, DataOut: out, Repeat: 1}
	if ctx != nil {
		opts.Context = ctx
	}
	ret, err := p.Run(opts)
	if err != nil {
		t.Fatalf("run %v: %v", p, err)
	}
	return ret, opts.DataOut
}

func statsOf(t testing.TB, objs *shim6Objects) Stats {
	t.Helper()
	s, err := readStats(objs.StatsMap)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Packet building, independent of the code under test.

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0xa}
	macB = []byte{0x02, 0, 0, 0, 0, 0xb}
)

func ethernet(typ uint16) []byte {
	b := append(append([]byte{}, macB...), macA...)
	return binary.BigEndian.AppendUint16(b, typ)
}

func ipv6Header(src, dst netip.Addr, nh uint8, plen int) []byte {
	b := []byte{0x60, 0x01, 0x23, 0x45, 0, 0, nh, 64}
	binary.BigEndian.PutUint16(b[4:], uint16(plen))
	b = append(b, src.AsSlice()...)
	return append(b, dst.AsSlice()...)
}

// extHeader is an extension header of 8*units bytes with the given next
// header, filled with PadN-like bytes.
func extHeader(nh uint8, units int) []byte {
	b := make([]byte, 8*units)
	b[0] = nh
	b[1] = uint8(units - 1)
	for i := 2; i < len(b); i++ {
		b[i] = uint8(0x10 + i)
	}
	return b
}

func routingHeader(nh uint8) []byte {
	// Type 0 would be deprecated; any type serves for placement.
	b := make([]byte, 24)
	b[0], b[1], b[2], b[3] = nh, 2, 253, 0
	copy(b[8:], netip.MustParseAddr("2001:db8:ffff::1").AsSlice())
	return b
}

func tcpSegment(payload string) []byte {
	b := []byte{0x30, 0x39, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0xff, 0xff, 0xbe, 0xef, 0, 0}
	return append(b, payload...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func shimHdr(nh uint8, tag uint64) []byte {
	h := shimHeader(tag)
	h[0] = nh
	return h[:]
}

func controlHdr(nh uint8) []byte {
	// A Shim6 control message header (P=0): type 1 (I1), checksum, ...
	return []byte{nh, 1, 0x01, 0x00, 0x12, 0x34, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}
}

// packet assembles Ethernet + IPv6 + the rest, with the payload length set.
func packet(src, dst netip.Addr, nh uint8, rest ...[]byte) []byte {
	body := cat(rest...)
	return cat(ethernet(0x86dd), ipv6Header(src, dst, nh, len(body)), body)
}

// icmp6Checksum computes the ICMPv6 checksum of msg (checksum field
// included as is) with the IPv6 pseudo-header.
func icmp6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.AsSlice())
	add(dst.AsSlice())
	var l [8]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(msg)))
	l[7] = 58
	add(l[:])
	add(msg)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// icmpError builds an Ethernet+IPv6+ICMPv6 error with a valid checksum.
func icmpError(src, dst netip.Addr, typ, code uint8, param uint32, invoking []byte) []byte {
	msg := []byte{typ, code, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[4:], param)
	msg = append(msg, invoking...)
	binary.BigEndian.PutUint16(msg[2:], icmp6Checksum(src, dst, msg))
	return packet(src, dst, 58, msg)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
