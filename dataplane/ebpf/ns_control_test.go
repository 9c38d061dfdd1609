package ebpf

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/internal/netns"
)

// TestControlBypassesShim: while a ULID pair is shimmed, the daemon's own
// Shim6 control messages between the ULIDs (REAP probes of the original
// pair) skip the shim rule (ipproto 140 goto) and leave unmodified.
func TestControlBypassesShim(t *testing.T) {
	_, a, b := twoHosts(t, nil)
	ma, mb := contextPair(a, b, tagOfA, tagOfB, true)
	a.install(ma)
	b.install(mb)

	var rfd int
	err := b.h.NS.Do(func() (err error) {
		rfd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, ipprotoShim6)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(rfd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)

	var sfd int
	err = a.h.NS.Do(func() (err error) {
		sfd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, ipprotoShim6)
		if err != nil {
			return err
		}
		return unix.Bind(sfd, &unix.SockaddrInet6{Addr: a.ulid.As16()})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)

	// A Keepalive-shaped control message (P=0).
	msg := []byte{59, 0, 0x07, 0x00, 0xab, 0xcd, 0, 0}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := unix.Sendto(sfd, msg, 0, &unix.SockaddrInet6{Addr: b.ulid.As16()}); err != nil {
			t.Fatal(err)
		}
		n, from, err := unix.Recvfrom(rfd, buf, 0)
		if err == nil {
			src := net.IP(from.(*unix.SockaddrInet6).Addr[:])
			if !src.Equal(net.IP(a.ulid.AsSlice())) {
				t.Fatalf("control message arrived from %v, want %v (rewritten?)", src, a.ulid)
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("control message changed: % x", buf[:n])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control message between the ULIDs never arrived: %v; a: %v", err, a.stats())
		}
	}
	if st := a.stats(); st["out_drop_control"] != 0 || st["out_shimmed"] != 0 {
		t.Fatalf("control message went into the shim device: %v", st)
	}
}

// TestCrossedPairRefused: a context whose locator pair is another
// context's shimmed ULID pair would loop through the shim device; Install
// refuses it with ErrNoRoute.
func TestCrossedPairRefused(t *testing.T) {
	_, a, b := twoHosts(t, nil)
	ma, _ := contextPair(a, b, tagOfA, tagOfB, true) // a1,b1 via a2,b2
	a.install(ma)
	crossed := ma
	crossed.LocalULID, crossed.PeerULID = a.alt, b.alt
	crossed.LocalLocator, crossed.PeerLocator = a.ulid, b.ulid
	crossed.LocalTag, crossed.PeerTag = tagOfA+1, tagOfB+1
	if err := a.dp.Install(crossed); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("Install = %v, want ErrNoRoute", err)
	}
	if len(a.dp.Mappings()) != 1 {
		t.Fatalf("mappings %+v", a.dp.Mappings())
	}
}

// TestReplacedContextRemove: a newer context of the same ULID pair takes
// the outbound state over; removing the older one leaves it (and its
// rules) alone.
func TestReplacedContextRemove(t *testing.T) {
	_, a, b := twoHosts(t, nil)
	old, _ := contextPair(a, b, tagOfA, tagOfB, true)
	a.install(old)
	newer := old
	newer.LocalTag, newer.PeerTag = tagOfA+7, tagOfB+7
	a.install(newer)
	if err := a.dp.Remove(old.LocalTag); err != nil {
		t.Fatal(err)
	}
	shimRule := netns.Rule{Priority: DefaultRulePriority + 1, Src: netip.PrefixFrom(newer.LocalULID, 128), Dst: netip.PrefixFrom(newer.PeerULID, 128), Table: DefaultRouteTable}
	if ok, err := a.h.NS.HasRule(shimRule); err != nil || !ok {
		t.Fatalf("shim rule of the newer context gone (%v)", err)
	}
	var v shim6OutVal
	if err := a.dp.objs.OutMap.Lookup(pairKey(newer.LocalULID, newer.PeerULID), &v); err != nil || v.LocalTag != newer.LocalTag {
		t.Fatalf("out_map entry %+v (%v), want the newer context's", v, err)
	}
	if err := a.dp.Remove(newer.LocalTag); err != nil {
		t.Fatal(err)
	}
	if ok, _ := a.h.NS.HasRule(shimRule); ok {
		t.Fatal("shim rule left after the last context went")
	}
	if got := a.dp.Mappings(); len(got) != 0 {
		t.Fatalf("mappings left: %+v", got)
	}
}
