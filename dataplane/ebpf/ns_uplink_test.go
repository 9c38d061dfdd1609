package ebpf

import (
	"errors"
	"os"
	"testing"

	cebpf "github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// attachedAt returns the ifindex the pinned receive link of uplink name is
// attached to (0 if none).
func attachedAt(t *testing.T, x *host, name string) int {
	t.Helper()
	l, err := link.LoadPinnedLink(x.dp.linkPath("tc_in_"+name), nil)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	tcx := info.TCX()
	if tcx == nil || cebpf.AttachType(tcx.AttachType) != cebpf.AttachTCXIngress {
		t.Fatalf("pinned link %s is not a tcx ingress link: %+v", name, info)
	}
	return int(tcx.Ifindex)
}

// An uplink that goes away and comes back under the same name (a modem
// reconnecting) gets a new ifindex: RemoveUplink then AddUplink attach the
// receive program to the new interface.
func TestUplinkRemovedAndRecreated(t *testing.T) {
	_, a, _ := twoHosts(t, nil)
	add := func() int {
		t.Helper()
		err := a.h.NS.Do(func() error {
			// A veth (this kernel has no dummy driver); deleting it
			// deletes its peer too.
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wwan0"}, PeerName: "wwan0p"})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.h.NS.LinkUp("wwan0"); err != nil {
			t.Fatal(err)
		}
		idx, err := a.h.NS.LinkIndex("wwan0")
		if err != nil {
			t.Fatal(err)
		}
		if err := a.dp.AddUplink("wwan0"); err != nil {
			t.Fatal(err)
		}
		return idx
	}
	first := add()
	if at := attachedAt(t, a, "wwan0"); at != first {
		t.Fatalf("receive program attached at ifindex %d, want wwan0's %d", at, first)
	}
	if err := a.h.NS.LinkDel("wwan0"); err != nil {
		t.Fatal(err)
	}
	if err := a.dp.RemoveUplink("wwan0"); err != nil {
		t.Logf("RemoveUplink of a deleted interface: %v", err)
	}
	second := add() // ifindexes are not reused at once: a new one
	if at := attachedAt(t, a, "wwan0"); at != second || second == first {
		t.Fatalf("receive program attached at ifindex %d, want the new wwan0's %d (old %d)", at, second, first)
	}
	if got := a.dp.uplinks["wwan0"]; got != second {
		t.Fatalf("data plane has wwan0 at ifindex %d, want %d", got, second)
	}
	if err := a.dp.RemoveUplink("wwan0"); err != nil {
		t.Fatal(err)
	}
	if at := attachedAt(t, a, "wwan0"); at != 0 {
		t.Fatalf("receive link still pinned (ifindex %d) after RemoveUplink", at)
	}
}
