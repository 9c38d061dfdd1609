package ebpf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/goshim6/goshim6/dataplane"
)

var (
	ulidA = netip.MustParseAddr("2001:db8:a1::1")
	ulidB = netip.MustParseAddr("2001:db8:b1::1")
	locA  = netip.MustParseAddr("2001:db8:a2::1")
	locB  = netip.MustParseAddr("2001:db8:b2::1")
	other = netip.MustParseAddr("2001:db8:c::9")
	gw    = netip.MustParseAddr("fe80::1")

	tagA uint64 = 0x1234_5678_9abc // ours
	tagB uint64 = 0x7fff_0000_0001 // the peer's

	shimmed = dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: locA, PeerLocator: locB, LocalTag: tagA, PeerTag: tagB}
	plain   = dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: ulidA, PeerLocator: ulidB, LocalTag: tagA, PeerTag: tagB}
)

// install writes a mapping into the maps the way DataPlane.Install does.
func install(t testing.TB, objs *shim6Objects, m dataplane.Mapping) {
	t.Helper()
	zero := make([]shim6Activity, cebpf.MustPossibleCPU())
	if err := objs.ActivityMap.Update(m.LocalTag, zero, cebpf.UpdateNoExist); err != nil && !errors.Is(err, cebpf.ErrKeyExist) {
		t.Fatal(err)
	}
	if err := objs.InMap.Put(m.LocalTag, inValue(m)); err != nil {
		t.Fatal(err)
	}
	if m.Shimmed() {
		if err := objs.IcmpMap.Put(icmpKey(m), icmpValue(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := objs.OutMap.Put(pairKey(m.LocalULID, m.PeerULID), outValue(m, route{ifindex: 1, nexthop: gw})); err != nil {
		t.Fatal(err)
	}
}

func activityOf(t testing.TB, objs *shim6Objects, tag uint64) shim6Activity {
	t.Helper()
	var per []shim6Activity
	if err := objs.ActivityMap.Lookup(tag, &per); err != nil {
		t.Fatal(err)
	}
	return sumActivity(per)
}

func TestShimHeader(t *testing.T) {
	// RFC 5533 §5.2: next header, Hdr Ext Len 0, P=1, 47-bit tag.
	got := shimHeader(0x7fff_0000_0001)
	want := [8]byte{0, 0, 0xff, 0xff, 0, 0, 0, 1}
	if got != want {
		t.Fatalf("shimHeader = % x, want % x", got, want)
	}
	if got := shimHeader(0x1234_5678_9abc); got != [8]byte{0, 0, 0x92, 0x34, 0x56, 0x78, 0x9a, 0xbc} {
		t.Fatalf("shimHeader = % x", got)
	}
}

func TestOutRewrite(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	tcp := tcpSegment("hello, shim6")
	hbh := extHeader(43, 1) // Hop-by-Hop, followed by Routing
	rt := routingHeader(60) // Routing, followed by Destination Options
	dst := extHeader(6, 2)  // Destination Options (endpoint), then TCP
	dstBeforeRt := extHeader(43, 1)

	cases := []struct {
		name string
		in   []byte
		want []byte
	}{{
		name: "tcp",
		in:   packet(ulidA, ulidB, 6, tcp),
		want: packet(locA, locB, 140, shimHdr(6, tagB), tcp),
	}, {
		name: "after hop-by-hop",
		in:   packet(ulidA, ulidB, 0, extHeader(6, 1), tcp),
		want: packet(locA, locB, 0, extHeader(140, 1), shimHdr(6, tagB), tcp),
	}, {
		// RFC 5533 §4.6, §11.1: after Hop-by-Hop and Routing, before
		// the endpoint Destination Options header.
		name: "after hop-by-hop and routing, before destination options",
		in:   packet(ulidA, ulidB, 0, hbh, rt, dst, tcp),
		want: packet(locA, locB, 0, hbh, routingHeader(140), shimHdr(60, tagB), dst, tcp),
	}, {
		name: "destination options before routing are skipped",
		in:   packet(ulidA, ulidB, 60, dstBeforeRt, routingHeader(6), tcp),
		want: packet(locA, locB, 60, dstBeforeRt, routingHeader(140), shimHdr(6, tagB), tcp),
	}, {
		name: "endpoint destination options stay behind the shim header",
		in:   packet(ulidA, ulidB, 60, dst, tcp),
		want: packet(locA, locB, 140, shimHdr(60, tagB), dst, tcp),
	}, {
		name: "udp",
		in:   packet(ulidA, ulidB, 17, []byte{0, 53, 0, 53, 0, 12, 0xab, 0xcd, 1, 2, 3, 4}),
		want: packet(locA, locB, 140, shimHdr(17, tagB), []byte{0, 53, 0, 53, 0, 12, 0xab, 0xcd, 1, 2, 3, 4}),
	}}
	// shim6_out (peer ingress) and shim6_out_egress (the shim device's
	// egress fast path) treat wire-sized packets the same.
	for _, prog := range []*cebpf.Program{objs.Shim6Out, objs.Shim6OutEgress} {
		for _, c := range cases {
			t.Run(prog.String()+"/"+c.name, func(t *testing.T) {
				ret, out := runProg(t, prog, c.in, nil)
				if ret != tcActRedirect {
					t.Fatalf("verdict %d, want TC_ACT_REDIRECT", ret)
				}
				if !bytes.Equal(out, c.want) {
					t.Fatalf("rewritten packet\n got % x\nwant % x", out, c.want)
				}
			})
		}
	}
	if s := statsOf(t, objs); s["out_shimmed"] != uint64(2*len(cases)) {
		t.Fatalf("out_shimmed = %d, want %d", s["out_shimmed"], 2*len(cases))
	}
	// A GSO packet on the egress fast path goes on into the veth to be
	// segmented, untouched.
	in := packet(ulidA, ulidB, 6, tcp)
	ret, out := runProg(t, objs.Shim6OutEgress, in, skbContext(4))
	if ret != tcActOK || !bytes.Equal(out, in) {
		t.Fatalf("GSO packet at egress: verdict %d, changed %v", ret, !bytes.Equal(out, in))
	}
	if s := statsOf(t, objs); s["out_to_segment"] != 1 {
		t.Fatalf("out_to_segment = %d", s["out_to_segment"])
	}
}

func TestOutDrops(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	unshimmedPair := dataplane.Mapping{LocalULID: other, PeerULID: ulidB, LocalLocator: other, PeerLocator: ulidB, LocalTag: 5, PeerTag: 6}
	install(t, objs, unshimmedPair)
	tcp := tcpSegment("x")
	cases := []struct {
		name, stat string
		in         []byte
		ctx        []byte
	}{
		{"no mapping", "out_drop_no_mapping", packet(ulidB, ulidA, 6, tcp), nil},
		{"mapping not shimmed", "out_drop_no_mapping", packet(other, ulidB, 6, tcp), nil},
		{"gso super-packet", "out_drop_gso", packet(ulidA, ulidB, 6, tcp), skbContext(4)},
		{"control message", "out_drop_control", packet(ulidA, ulidB, 140, controlHdr(59)), nil},
		{"ipv4", "out_drop_not_ipv6", cat(ethernet(0x0800), make([]byte, 40)), nil},
		{"too many extension headers", "out_drop_exthdr", packet(ulidA, ulidB, 0, extHeader(43, 1), routingHeader(60), extHeader(43, 1), routingHeader(60), extHeader(43, 1), routingHeader(6), tcp), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := statsOf(t, objs)[c.stat]
			ret, _ := runProg(t, objs.Shim6Out, c.in, c.ctx)
			if ret != tcActShot {
				t.Fatalf("verdict %d, want TC_ACT_SHOT", ret)
			}
			if after := statsOf(t, objs)[c.stat]; after != before+1 {
				t.Fatalf("%s: %d -> %d, want +1", c.stat, before, after)
			}
		})
	}
}

func TestInStrip(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	tcp := tcpSegment("payload after a locator switch")
	cases := []struct {
		name     string
		in, want []byte
	}{{
		name: "tcp",
		in:   packet(locB, locA, 140, shimHdr(6, tagA), tcp),
		want: packet(ulidB, ulidA, 6, tcp),
	}, {
		name: "after hop-by-hop",
		in:   packet(locB, locA, 0, extHeader(140, 1), shimHdr(6, tagA), tcp),
		want: packet(ulidB, ulidA, 0, extHeader(6, 1), tcp),
	}, {
		name: "after hop-by-hop and routing",
		in:   packet(locB, locA, 0, extHeader(43, 2), routingHeader(140), shimHdr(60, tagA), extHeader(6, 1), tcp),
		want: packet(ulidB, ulidA, 0, extHeader(43, 2), routingHeader(60), extHeader(6, 1), tcp),
	}}
	var bytesIn uint64
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ret, out := runProg(t, objs.Shim6In, c.in, nil)
			if ret != tcActOK {
				t.Fatalf("verdict %d, want TC_ACT_OK", ret)
			}
			if !bytes.Equal(out, c.want) {
				t.Fatalf("restored packet\n got % x\nwant % x", out, c.want)
			}
			bytesIn += uint64(len(c.want) - 14)
		})
	}
	a := activityOf(t, objs, tagA)
	if a.RxPackets != uint64(len(cases)) || a.RxBytes != bytesIn || a.LastRxNs == 0 {
		t.Fatalf("activity %+v, want %d packets, %d bytes", a, len(cases), bytesIn)
	}
	if a.TxPackets != 0 {
		t.Fatalf("receive counted as transmit: %+v", a)
	}
	if s := statsOf(t, objs); s["in_stripped"] != uint64(len(cases)) {
		t.Fatalf("in_stripped = %d", s["in_stripped"])
	}
}

func TestInPassThrough(t *testing.T) {
	objs := testObjects(t, shim6Config{}) // trigger off
	install(t, objs, plain)
	cases := []struct {
		name, stat string
		in         []byte
	}{
		{"control message (P=0)", "in_control", packet(locB, locA, 140, controlHdr(59))},
		{"control message after hop-by-hop", "in_control", packet(locB, locA, 0, extHeader(140, 1), controlHdr(59))},
		{"unrelated tcp", "", packet(other, ulidA, 6, tcpSegment("unrelated"))},
		{"context pair without header", "", packet(ulidB, ulidA, 6, tcpSegment("ulids"))},
		{"icmpv6 echo", "", packet(ulidB, ulidA, 58, []byte{128, 0, 0x12, 0x34, 0, 1, 0, 1})},
		{"ipv4", "", cat(ethernet(0x0800), []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2})},
		{"arp", "", cat(ethernet(0x0806), make([]byte, 28))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before uint64
			if c.stat != "" {
				before = statsOf(t, objs)[c.stat]
			}
			ret, out := runProg(t, objs.Shim6In, c.in, nil)
			if ret != tcActOK {
				t.Fatalf("verdict %d, want TC_ACT_OK", ret)
			}
			if !bytes.Equal(out, c.in) {
				t.Fatalf("packet changed\n got % x\nwant % x", out, c.in)
			}
			if c.stat != "" && statsOf(t, objs)[c.stat] != before+1 {
				t.Fatalf("%s not counted", c.stat)
			}
		})
	}
	// RFC 5533 §12.1: the context pair's packets without a header count
	// as receive activity (ICMPv6 echo and TCP above).
	if a := activityOf(t, objs, tagA); a.RxPackets != 2 {
		t.Fatalf("rx activity %+v, want 2 packets", a)
	}
}

func readEvent(t *testing.T, rd *ringbuf.Reader) (dataplane.Event, bool) {
	t.Helper()
	rd.SetDeadline(time.Now().Add(200 * time.Millisecond))
	rec, err := rd.Read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return dataplane.Event{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	ev, err := decodeEvent(rec.RawSample, time.Now(), monotonic())
	if err != nil {
		t.Fatal(err)
	}
	return ev, true
}

func TestInUnknownTag(t *testing.T) {
	for _, pass := range []bool{false, true} {
		var cfg shim6Config
		want := uint32(tcActShot)
		if pass {
			cfg.Flags = cfgFlagUnknownTagPass
			want = tcActOK
		}
		objs := testObjects(t, cfg)
		rd, err := ringbuf.NewReader(objs.Events)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		in := packet(locB, locA, 140, shimHdr(6, 0x42), tcpSegment("who are you"))
		ret, out := runProg(t, objs.Shim6In, in, nil)
		if ret != want {
			t.Fatalf("pass=%v: verdict %d, want %d", pass, ret, want)
		}
		if !bytes.Equal(out, in) {
			t.Fatal("packet with unknown tag was modified")
		}
		ev, ok := readEvent(t, rd)
		if !ok {
			t.Fatal("no unknown-tag event")
		}
		if ev.Kind != dataplane.EventUnknownTag || ev.Tag != 0x42 || ev.Src != locB || ev.Dst != locA {
			t.Fatalf("event %+v", ev)
		}
		if d := time.Since(ev.Time); d < 0 || d > 10*time.Second {
			t.Fatalf("event time %v is off by %v", ev.Time, d)
		}
		s := statsOf(t, objs)
		if s["in_unknown_tag"] != 1 || s["event_unknown_tag"] != 1 {
			t.Fatalf("stats %v", s)
		}
	}
}

func TestEventRateLimit(t *testing.T) {
	objs := testObjects(t, shim6Config{EventBurst: 3, EventWindowNs: uint64(time.Hour)})
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	in := packet(locB, locA, 140, shimHdr(6, 0x42), tcpSegment("flood"))
	for range 10 {
		runProg(t, objs.Shim6In, in, nil)
	}
	n := 0
	for {
		if _, ok := readEvent(t, rd); !ok {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d events, want the burst of 3", n)
	}
	if s := statsOf(t, objs); s["event_ratelimited"] != 7 || s["in_unknown_tag"] != 10 {
		t.Fatalf("stats %v", s)
	}
}

func TestTrigger(t *testing.T) {
	objs := testObjects(t, shim6Config{TriggerPackets: 5})
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	in := packet(other, ulidA, 6, tcpSegment("1234"))
	for i := 1; i <= 4; i++ {
		runProg(t, objs.Shim6In, in, nil)
	}
	if _, ok := readEvent(t, rd); ok {
		t.Fatal("trigger before the threshold")
	}
	// Sent packets of the pair (cgroup egress) count too, except those
	// that leave through lo (traffic between the host's own addresses;
	// BPF_PROG_TEST_RUN's default device).
	runProg(t, objs.Shim6CgEgress, packet(ulidA, other, 6, tcpSegment("out")), nil)
	if ev, ok := readEvent(t, rd); ok {
		t.Fatalf("trigger counted loopback traffic: %+v", ev)
	}
	runOnDevice(t, objs.Shim6CgEgress, packet(ulidA, other, 6, tcpSegment("out")))
	ev, ok := readEvent(t, rd)
	if !ok {
		t.Fatal("no trigger at the threshold")
	}
	if ev.Kind != dataplane.EventTrigger || ev.Src != ulidA || ev.Dst != other || ev.Packets != 5 {
		t.Fatalf("event %+v", ev)
	}
	wantBytes := uint64(4*(len(in)-14) + (len(packet(ulidA, other, 6, tcpSegment("out"))) - 14))
	if ev.Bytes != wantBytes {
		t.Fatalf("trigger bytes %d, want %d", ev.Bytes, wantBytes)
	}
	for range 100 {
		runProg(t, objs.Shim6In, in, nil)
	}
	if ev, ok := readEvent(t, rd); ok {
		t.Fatalf("second trigger %+v", ev)
	}
	// Link-local and multicast traffic never triggers.
	objs2 := testObjects(t, shim6Config{TriggerPackets: 1})
	for _, p := range [][]byte{
		packet(netip.MustParseAddr("fe80::1"), ulidA, 17, make([]byte, 8)),
		packet(ulidB, netip.MustParseAddr("ff02::1"), 17, make([]byte, 8)),
	} {
		runProg(t, objs2.Shim6In, p, nil)
	}
	if s := statsOf(t, objs2); s["event_trigger"] != 0 {
		t.Fatalf("trigger for link-local/multicast: %v", s)
	}
}

func TestCgroupEgressActivity(t *testing.T) {
	objs := testObjects(t, shim6Config{TriggerPackets: 1})
	install(t, objs, shimmed)
	pkts := [][]byte{
		packet(ulidA, ulidB, 6, tcpSegment("one")),
		packet(ulidA, ulidB, 17, make([]byte, 100)),
	}
	var total uint64
	for _, p := range pkts {
		if ret, _ := runProg(t, objs.Shim6CgEgress, p, nil); ret != 1 {
			t.Fatalf("cgroup egress verdict %d, want 1 (allow)", ret)
		}
		total += uint64(len(p) - 14)
	}
	// The daemon's control messages are not ULP traffic.
	runProg(t, objs.Shim6CgEgress, packet(ulidA, ulidB, 140, controlHdr(59)), nil)
	a := activityOf(t, objs, tagA)
	if a.TxPackets != 2 || a.TxBytes != total || a.LastTxNs == 0 || a.RxPackets != 0 {
		t.Fatalf("activity %+v, want 2 packets %d bytes", a, total)
	}
	if s := statsOf(t, objs); s["event_trigger"] != 0 {
		t.Fatalf("context pair triggered: %v", s)
	}
}

// TestICMPTranslate: RFC 5533 §8.
func TestICMPTranslate(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	router := netip.MustParseAddr("2001:db8:99::1")
	tcp := tcpSegment("segment that was too big")
	cases := []struct {
		name             string
		typ, code        uint8
		param, wantParam uint32
		sent, ulp        []byte // packet in error as sent and as the ULP sent it
	}{{
		name: "packet too big", typ: 2, param: 1400, wantParam: 1392,
		sent: ipv6Header(locA, locB, 140, 8+len(tcp))[0:40],
		ulp:  ipv6Header(ulidA, ulidB, 6, len(tcp)),
	}, {
		name: "destination unreachable, hop-by-hop in the packet in error", typ: 1, code: 3,
		sent: cat(ipv6Header(locA, locB, 0, 8+8+len(tcp)), extHeader(140, 1)),
		ulp:  cat(ipv6Header(ulidA, ulidB, 0, 8+len(tcp)), extHeader(6, 1)),
	}, {
		name: "time exceeded", typ: 3,
		sent: ipv6Header(locA, locB, 140, 8+len(tcp)),
		ulp:  ipv6Header(ulidA, ulidB, 6, len(tcp)),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nh := uint8(6)
			invoking := cat(c.sent, shimHdr(nh, tagB), tcp)
			in := icmpError(router, locA, c.typ, c.code, c.param, invoking)
			want := icmpError(router, locA, c.typ, c.code, c.wantParam, cat(c.ulp, tcp))
			before := statsOf(t, objs)["icmp_translated"]
			ret, out := runProg(t, objs.Shim6In, in, nil)
			if ret != tcActOK {
				t.Fatalf("verdict %d", ret)
			}
			if len(out) != len(want) {
				t.Fatalf("length %d, want %d\n got % x\nwant % x", len(out), len(want), out, want)
			}
			// The checksum may come out as 0x0000 or 0xffff for the
			// same sum; compare everything else and verify it.
			msg := out[54:]
			if icmp6Checksum(router, locA, msg) != 0 {
				t.Fatalf("bad ICMPv6 checksum % x", msg[2:4])
			}
			o, w := bytes.Clone(out), bytes.Clone(want)
			o[56], o[57], w[56], w[57] = 0, 0, 0, 0
			if !bytes.Equal(o, w) {
				t.Fatalf("translated error\n got % x\nwant % x", out, want)
			}
			if statsOf(t, objs)["icmp_translated"] != before+1 {
				t.Fatal("icmp_translated not counted")
			}
		})
	}
	t.Run("no context", func(t *testing.T) {
		in := icmpError(router, locA, 2, 0, 1400, cat(ipv6Header(locA, locB, 140, 8+len(tcp)), shimHdr(6, 0x999), tcp))
		ret, out := runProg(t, objs.Shim6In, in, nil)
		if ret != tcActOK || !bytes.Equal(out, in) {
			t.Fatalf("verdict %d, changed=%v", ret, !bytes.Equal(out, in))
		}
	})
	t.Run("no shim header", func(t *testing.T) {
		in := icmpError(router, ulidA, 2, 0, 1400, cat(ipv6Header(ulidA, ulidB, 6, len(tcp)), tcp))
		ret, out := runProg(t, objs.Shim6In, in, nil)
		if ret != tcActOK || !bytes.Equal(out, in) {
			t.Fatalf("verdict %d, changed=%v", ret, !bytes.Equal(out, in))
		}
	})
}

func TestXDPStrip(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	tcp := tcpSegment("xdp")
	in := packet(locB, locA, 140, shimHdr(6, tagA), tcp)
	want := packet(ulidB, ulidA, 6, tcp)
	ret, out := runProg(t, objs.Shim6Xdp, in, nil)
	// BPF_PROG_TEST_RUN returns the metadata in front of the packet: the
	// marker that tells shim6_in the packet is done.
	var meta [4]byte
	binary.NativeEndian.PutUint32(meta[:], 0x53366d31)
	if ret != xdpPass || !bytes.Equal(out, cat(meta[:], want)) {
		t.Fatalf("verdict %d\n got % x\nwant % x % x", ret, out, meta, want)
	}
	if a := activityOf(t, objs, tagA); a.RxPackets != 1 || a.RxBytes != uint64(len(want)-14) {
		t.Fatalf("activity %+v", a)
	}
	for _, p := range [][]byte{
		packet(locB, locA, 140, shimHdr(6, 0x42), tcp),                  // unknown: left to tc for the event
		packet(locB, locA, 140, controlHdr(59)),                         // control
		packet(locB, locA, 0, extHeader(140, 1), shimHdr(6, tagA), tcp), // after HBH: left to tc
	} {
		ret, out := runProg(t, objs.Shim6Xdp, p, nil)
		if ret != xdpPass || !bytes.Equal(out, p) {
			t.Fatalf("verdict %d, packet changed: % x", ret, out)
		}
	}
	if s := statsOf(t, objs); s["in_stripped_xdp"] != 1 {
		t.Fatalf("stats %v", s)
	}
}

func TestStatNames(t *testing.T) {
	if len(statNames) != int(shim6StatSTAT_MAX) {
		t.Fatalf("%d stat names for %d counters", len(statNames), shim6StatSTAT_MAX)
	}
	seen := map[string]bool{}
	for i, n := range statNames {
		if n == "" || seen[n] {
			t.Fatalf("stat %d has an empty or duplicate name %q", i, n)
		}
		seen[n] = true
	}
}

func TestDecodeEvent(t *testing.T) {
	e := shim6Event{Kind: uint8(shim6EventKindEV_TRIGGER), Src: ulidA.As16(), Dst: ulidB.As16(), Packets: 51, Bytes: 4000, TimeNs: 5e9}
	var buf bytes.Buffer
	binary.Write(&buf, binary.NativeEndian, &e)
	now := time.Unix(1000, 0)
	ev, err := decodeEvent(buf.Bytes(), now, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != dataplane.EventTrigger || ev.Src != ulidA || ev.Dst != ulidB || ev.Packets != 51 || ev.Bytes != 4000 || !ev.Time.Equal(time.Unix(999, 0)) {
		t.Fatalf("%+v", ev)
	}
	if _, err := decodeEvent(buf.Bytes()[:10], now, 0); err == nil {
		t.Fatal("short record decoded")
	}
	buf.Bytes()[0] = 99
	if _, err := decodeEvent(buf.Bytes(), now, 0); err == nil {
		t.Fatal("unknown kind decoded")
	}
}

// TestActivityFirstSent: the activity map keeps the first transmit after
// the last receive (REAP's Send Timer starts there, RFC 5534 §6.2).
func TestActivityFirstSent(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	install(t, objs, shimmed)
	tx := func() {
		t.Helper()
		if ret, _ := runProg(t, objs.Shim6CgEgress, packet(ulidA, ulidB, 6, tcpSegment("x")), nil); ret != 1 {
			t.Fatalf("cgroup egress verdict %d", ret)
		}
	}
	rx := func() {
		t.Helper()
		if ret, _ := runProg(t, objs.Shim6In, packet(locB, locA, 140, shimHdr(6, tagA), tcpSegment("y")), nil); ret != tcActOK {
			t.Fatalf("strip verdict %d", ret)
		}
	}
	// bpf_ktime_get_coarse_ns() moves once per jiffy (<= 10 ms).
	tick := func() { time.Sleep(15 * time.Millisecond) }

	tx()
	a := activityOf(t, objs, tagA)
	if a.FirstTxNs == 0 || a.FirstTxNs != a.LastTxNs {
		t.Fatalf("after one send: %+v", a)
	}
	first := a.FirstTxNs
	tick()
	tx()
	if a = activityOf(t, objs, tagA); a.FirstTxNs != first || a.LastTxNs <= first {
		t.Fatalf("a second send moved the first (%d -> %+v)", first, a)
	}
	tick()
	rx()
	tick()
	tx()
	tick()
	tx()
	a = activityOf(t, objs, tagA)
	if a.FirstTxNs <= a.LastRxNs || a.FirstTxNs >= a.LastTxNs {
		t.Fatalf("after a receive: first send %d, want between the receive %d and the last send %d", a.FirstTxNs, a.LastRxNs, a.LastTxNs)
	}
}

// TestSumActivityFirstSent: per-CPU first sends before the overall last
// receive do not count.
func TestSumActivityFirstSent(t *testing.T) {
	got := sumActivity([]shim6Activity{
		{LastTxNs: 50, FirstTxNs: 10, LastRxNs: 5}, // sent before and after the rx of CPU 1
		{LastRxNs: 20},
		{LastTxNs: 40, FirstTxNs: 30, LastRxNs: 0},
		{LastTxNs: 35, FirstTxNs: 25, LastRxNs: 0},
	})
	if got.FirstTxNs != 25 || got.LastRxNs != 20 || got.LastTxNs != 50 {
		t.Fatalf("%+v", got)
	}
	if got := sumActivity([]shim6Activity{{LastTxNs: 9, FirstTxNs: 9}, {LastRxNs: 20}}); got.FirstTxNs != 0 {
		t.Fatalf("first send before the last receive reported: %+v", got)
	}
}
