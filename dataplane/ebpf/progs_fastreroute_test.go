package ebpf

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

// installFR writes a mapping with the fast-reroute fields the way
// DataPlane.Install does (every pair routed through ifindex 1), with
// generation gen.
func installFR(t testing.TB, objs *shim6Objects, m dataplane.Mapping, gen uint32) {
	t.Helper()
	install(t, objs, m)
	for _, p := range m.Pairs {
		if err := objs.PairMap.Put(pairMapKey(m.LocalTag, p), pairMapValue(route{ifindex: 1, nexthop: gw})); err != nil {
			t.Fatal(err)
		}
	}
	ov := outValue(m, route{ifindex: 1, nexthop: gw})
	frOut(&ov, m, gen, m.Backup.IsValid(), len(m.Pairs) > 0, 0)
	if err := objs.OutMap.Put(pairKey(m.LocalULID, m.PeerULID), ov); err != nil {
		t.Fatal(err)
	}
	iv := inValue(m)
	frIn(&iv, m, len(m.Pairs) > 0)
	if err := objs.InMap.Put(m.LocalTag, iv); err != nil {
		t.Fatal(err)
	}
}

// frMove records a move of the pair of m to p, as the programs do.
func frMove(t testing.TB, objs *shim6Objects, m dataplane.Mapping, p dataplane.Pair, gen uint32, ifindex int) {
	t.Helper()
	v := shim6FrVal{LocalLoc: p.Local.As16(), PeerLoc: p.Peer.As16(), Ifindex: uint32(ifindex), Gen: gen, Flags: 1, LocalTag: m.LocalTag}
	v.Nh.Family = afInet6
	v.Nh.Addr = gw.As16()
	if err := objs.FrMap.Put(pairKey(m.LocalULID, m.PeerULID), v); err != nil {
		t.Fatal(err)
	}
}

func frOf(t testing.TB, objs *shim6Objects, m dataplane.Mapping) (shim6FrVal, bool) {
	t.Helper()
	var v shim6FrVal
	err := objs.FrMap.Lookup(pairKey(m.LocalULID, m.PeerULID), &v)
	return v, err == nil
}

var (
	p11 = dataplane.Pair{Local: ulidA, Peer: ulidB}
	p22 = dataplane.Pair{Local: locA, Peer: locB}
	p12 = dataplane.Pair{Local: ulidA, Peer: locB}
	// frPlain is the context on its ULIDs with a backup and pairs.
	frPlain = dataplane.Mapping{LocalULID: ulidA, PeerULID: ulidB, LocalLocator: ulidA, PeerLocator: ulidB, LocalTag: tagA, PeerTag: tagB,
		Backup: p22, Pairs: []dataplane.Pair{p11, p22, p12}}
)

// shim6_reroute on the uplinks' egress: packets of a moved pair (an fr_map
// entry of the mapping's generation) that still take the normal route are
// rewritten exactly like the shim device would and redirected; everything
// else is left alone.
func TestRerouteEgress(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	installFR(t, objs, frPlain, 5)
	tcp := tcpSegment("the retransmission")
	in := packet(ulidA, ulidB, 6, tcp)

	untouched := func(name string, in, ctx []byte) {
		t.Helper()
		ret, out := runProg(t, objs.Shim6Reroute, in, ctx)
		if ret != tcActOK || !bytes.Equal(out, in) {
			t.Fatalf("%s: verdict %d, changed %v", name, ret, !bytes.Equal(out, in))
		}
	}
	untouched("not moved", in, nil)
	frMove(t, objs, frPlain, p22, 4, 1)
	untouched("move of an older generation", in, nil)
	frMove(t, objs, frPlain, p22, 5, 1)

	ret, out := runProg(t, objs.Shim6Reroute, in, nil)
	if want := packet(locA, locB, 140, shimHdr(6, tagB), tcp); ret != tcActRedirect || !bytes.Equal(out, want) {
		t.Fatalf("moved pair: verdict %d\n got % x\nwant % x", ret, out, want)
	}
	udp := []byte{0, 53, 0, 53, 0, 12, 0xab, 0xcd, 1, 2, 3, 4}
	ret, out = runProg(t, objs.Shim6Reroute, packet(ulidA, ulidB, 0, extHeader(17, 1), udp), nil)
	if want := packet(locA, locB, 0, extHeader(140, 1), shimHdr(17, tagB), udp); ret != tcActRedirect || !bytes.Equal(out, want) {
		t.Fatalf("after hop-by-hop: verdict %d\n got % x\nwant % x", ret, out, want)
	}
	untouched("GSO packet", in, skbContext(4))
	untouched("control message between the ULIDs", packet(ulidA, ulidB, 140, controlHdr(59)), nil)
	untouched("already shimmed", packet(locA, locB, 140, shimHdr(6, tagB), tcp), nil)
	untouched("another pair", packet(other, ulidB, 6, tcp), nil)
	untouched("reverse direction", packet(ulidB, ulidA, 6, tcp), nil)
	untouched("ipv4", cat(ethernet(0x0800), make([]byte, 40)), nil)
	s := statsOf(t, objs)
	if s["fr_out"] != 2 || s["fr_gso_left"] != 1 {
		t.Fatalf("stats %v", s)
	}

	// Moved back onto the ULIDs, through another uplink: redirected as is;
	// through the same uplink: left alone.
	frMove(t, objs, frPlain, p11, 5, 77)
	if ret, out := runProg(t, objs.Shim6Reroute, in, nil); ret != tcActRedirect || !bytes.Equal(out, in) {
		t.Fatalf("moved to the ULIDs: verdict %d, changed %v", ret, !bytes.Equal(out, in))
	}
	frMove(t, objs, frPlain, p11, 5, 1)
	untouched("moved to the ULIDs on this uplink", in, nil)

	// A mapping without fast reroute ignores fr_map.
	plainNoFR := frPlain
	plainNoFR.Backup, plainNoFR.Pairs = dataplane.Pair{}, nil
	installFR(t, objs, plainNoFR, 5)
	frMove(t, objs, frPlain, p22, 5, 1)
	untouched("mapping without fast reroute", in, nil)
}

// A packet of a moved pair too big for 8 more octets on the moved pair's
// uplink is left alone (counted): bpf_check_mtu against a 1280-octet link
// in a namespace of its own.
func TestRerouteEgressTooBig(t *testing.T) {
	nstest.Require(t)
	ns := nstest.NS(t)
	if err := netns.Veth(ns, "fr0", ns, "fr1"); err != nil {
		t.Fatal(err)
	}
	if err := ns.SetMTU("fr0", 1280); err != nil {
		t.Fatal(err)
	}
	idx, err := ns.LinkIndex("fr0")
	if err != nil {
		t.Fatal(err)
	}
	objs := testObjects(t, shim6Config{})
	installFR(t, objs, frPlain, 1)
	frMove(t, objs, frPlain, p22, 1, idx)
	err = ns.Do(func() error {
		for _, c := range []struct {
			size int
			want uint32
		}{{1280 - 40 - 20 - 8, tcActRedirect}, {1280 - 40 - 20 - 7, tcActOK}} {
			in := packet(ulidA, ulidB, 6, tcpSegment(string(make([]byte, c.size))))
			if ret, _ := runProg(t, objs.Shim6Reroute, in, nil); ret != c.want {
				t.Errorf("IPv6 packet of %d octets: verdict %d, want %d", len(in)-14, ret, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := statsOf(t, objs); s["fr_too_big"] != 1 || s["fr_out"] != 1 {
		t.Fatalf("stats %v", s)
	}
}

// The shim device's programs send a moved pair on the moved pair (and
// count it); an unshimmed pair with a pass-through route is sent on
// unchanged (a socket still marked after its move ended).
func TestShimDeviceMoved(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	installFR(t, objs, frPlain, 3)
	tcp := tcpSegment("through the shim device")
	in := packet(ulidA, ulidB, 6, tcp)
	if ret, _ := runProg(t, objs.Shim6OutEgress, in, nil); ret != tcActShot {
		t.Fatalf("unshimmed, not moved, no pass-through: verdict %d", ret)
	}
	frMove(t, objs, frPlain, p22, 3, 1)
	for _, prog := range []*cebpf.Program{objs.Shim6Out, objs.Shim6OutEgress} {
		ret, out := runProg(t, prog, in, nil)
		if want := packet(locA, locB, 140, shimHdr(6, tagB), tcp); ret != tcActRedirect || !bytes.Equal(out, want) {
			t.Fatalf("%v: verdict %d\n got % x\nwant % x", prog, ret, out, want)
		}
	}
	// A shimmed mapping moved elsewhere uses the moved pair too.
	sh := shimmed
	sh.Backup, sh.Pairs = p11, []dataplane.Pair{p22, p11, p12}
	installFR(t, objs, sh, 4)
	frMove(t, objs, sh, p12, 4, 1)
	ret, out := runProg(t, objs.Shim6OutEgress, in, nil)
	if want := packet(ulidA, locB, 140, shimHdr(6, tagB), tcp); ret != tcActRedirect || !bytes.Equal(out, want) {
		t.Fatalf("shimmed, moved: verdict %d\n got % x\nwant % x", ret, out, want)
	}
	// Moved onto the ULIDs: sent on without header.
	frMove(t, objs, sh, p11, 4, 1)
	if ret, out := runProg(t, objs.Shim6OutEgress, in, nil); ret != tcActRedirect || !bytes.Equal(out, in) {
		t.Fatalf("moved to the ULIDs: verdict %d, changed %v", ret, !bytes.Equal(out, in))
	}
	// Pass-through.
	ov := outValue(frPlain, route{ifindex: 1, nexthop: gw})
	ov.Flags |= outFlagPass
	frOut(&ov, frPlain, 9, true, true, 0)
	if err := objs.OutMap.Put(pairKey(ulidA, ulidB), ov); err != nil {
		t.Fatal(err)
	}
	if ret, out := runProg(t, objs.Shim6OutEgress, in, nil); ret != tcActRedirect || !bytes.Equal(out, in) {
		t.Fatalf("pass-through: verdict %d, changed %v", ret, !bytes.Equal(out, in))
	}
	if s := statsOf(t, objs); s["fr_out_shim"] != 3 || s["out_pass"] != 2 || s["out_shimmed"] != 3 {
		t.Fatalf("stats %v", s)
	}
}

// shim6_in: payload of the peer on another pair whose reverse is one of
// the context's pairs makes its traffic follow (fr_map, EV_PEER_MOVED) and
// is stripped as usual; a source outside the pairs (a locator the peer has
// not verifiably got), the current pair, the pair the peer is known to use
// (PeerPair) and a move made by our own RTO do not.
func TestInFollow(t *testing.T) {
	objs := testObjects(t, shim6Config{})
	rd, err := ringbuf.NewReader(objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	installFR(t, objs, frPlain, 7)
	tcp := tcpSegment("ack")
	strip := func(src, dst netip.Addr) {
		t.Helper()
		ret, out := runProg(t, objs.Shim6In, packet(src, dst, 140, shimHdr(6, tagA), tcp), nil)
		if want := packet(ulidB, ulidA, 6, tcp); ret != tcActOK || !bytes.Equal(out, want) {
			t.Fatalf("%v->%v: verdict %d\n got % x\nwant % x", src, dst, ret, out, want)
		}
	}
	strip(other, locA) // other is not a verified locator of the peer
	strip(ulidB, ulidA)
	if _, ok := frOf(t, objs, frPlain); ok {
		t.Fatal("followed an unverified source or the current pair")
	}
	if s := statsOf(t, objs); s["fr_no_pair"] != 1 || s["fr_followed"] != 0 {
		t.Fatalf("stats %v", s)
	}

	strip(locB, locA)
	fr, ok := frOf(t, objs, frPlain)
	if !ok || fr.Gen != 7 || fr.Flags != 2 || fr.LocalLoc != locA.As16() || fr.PeerLoc != locB.As16() || fr.Ifindex != 1 {
		t.Fatalf("fr_map %+v (%v)", fr, ok)
	}
	ev, ok := readEvent(t, rd)
	if !ok || ev.Kind != dataplane.EventPeerMoved || ev.Src != ulidA || ev.Dst != ulidB || ev.Tag != tagA || ev.Pair != p22 {
		t.Fatalf("event %+v (%v)", ev, ok)
	}
	if d := time.Since(ev.Time); d < 0 || d > 10*time.Second {
		t.Fatalf("event time off by %v", d)
	}
	strip(locB, locA) // there already: no second event
	if s := statsOf(t, objs); s["fr_followed"] != 1 || s["event_peer_moved"] != 1 {
		t.Fatalf("stats %v", s)
	}

	// Our own RTO moved it: the peer's arrival elsewhere does not move it.
	frMove(t, objs, frPlain, p22, 7, 1)
	strip(locB, ulidA)
	if fr, _ := frOf(t, objs, frPlain); fr.Flags != 1 || fr.PeerLoc != locB.As16() || fr.LocalLoc != locA.As16() {
		t.Fatalf("RTO move replaced: %+v", fr)
	}

	// The pair the peer is known to use is not followed.
	m := frPlain
	m.PeerPair = p12
	installFR(t, objs, m, 8)
	strip(locB, ulidA)
	if fr, _ := frOf(t, objs, frPlain); fr.Gen == 8 {
		t.Fatalf("followed PeerPair: %+v", fr)
	}
	// A PeerPair whose time is over is followed again.
	m.PeerPairUntil = time.Now().Add(-time.Second)
	installFR(t, objs, m, 8)
	strip(locB, ulidA)
	if fr, _ := frOf(t, objs, frPlain); fr.Gen != 8 || fr.LocalLoc != ulidA.As16() || fr.PeerLoc != locB.As16() {
		t.Fatalf("PeerPair past its time not followed: %+v", fr)
	}
	// Peer back on the ULIDs while we are shimmed (no header): followed.
	sh := shimmed
	sh.Backup, sh.Pairs = p11, []dataplane.Pair{p22, p11}
	installFR(t, objs, sh, 9)
	if ret, _ := runProg(t, objs.Shim6In, packet(ulidB, ulidA, 6, tcp), nil); ret != tcActOK {
		t.Fatalf("plain packet: verdict %d", ret)
	}
	if fr, ok := frOf(t, objs, sh); !ok || fr.Gen != 9 || fr.LocalLoc != ulidA.As16() || fr.PeerLoc != ulidB.As16() {
		t.Fatalf("not following onto the ULIDs: %+v", fr)
	}
	// XDP leaves packets on another pair to shim6_in.
	in := packet(ulidB, locA, 140, shimHdr(6, tagA), tcp)
	if ret, out := runProg(t, objs.Shim6Xdp, in, nil); ret != xdpPass || !bytes.Equal(out, in) {
		t.Fatalf("XDP stripped a packet on another pair (verdict %d)", ret)
	}
}

func TestDecodeFastRerouteEvents(t *testing.T) {
	for _, c := range []struct {
		kind shim6EventKind
		want dataplane.EventKind
	}{{shim6EventKindEV_FAST_REROUTE, dataplane.EventFastReroute}, {shim6EventKindEV_PEER_MOVED, dataplane.EventPeerMoved}} {
		e := shim6Event{Kind: uint8(c.kind), Tag: tagA, Src: ulidA.As16(), Dst: ulidB.As16(), PairLocal: locA.As16(), PairPeer: locB.As16(), TimeNs: 5e9}
		var buf bytes.Buffer
		binary.Write(&buf, binary.NativeEndian, &e)
		ev, err := decodeEvent(buf.Bytes(), time.Unix(1000, 0), 6*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != c.want || ev.Src != ulidA || ev.Dst != ulidB || ev.Tag != tagA || ev.Pair != p22 || !ev.Time.Equal(time.Unix(999, 0)) {
			t.Fatalf("%+v", ev)
		}
	}
}
