package lab_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/goshim6/goshim6/lab"
	"github.com/goshim6/goshim6/netio"
)

func TestCaptureShim6(t *testing.T) {
	m, name := newLab(t)
	l, err := m.Up(name, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := l.Host("a"), l.Host("b")
	var all, shim bytes.Buffer
	capAll, err := lab.StartCapture(a.NS, a.Uplinks[0].Ifname, &all, nil)
	if err != nil {
		t.Fatal(err)
	}
	capShim, err := lab.StartCapture(a.NS, a.Uplinks[0].Ifname, &shim, lab.Shim6Only)
	if err != nil {
		t.Fatal(err)
	}
	var c *netio.Conn
	if err := a.NS.Do(func() (err error) { c, err = netio.Listen(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 24)
	msg[0], msg[1], msg[2] = 59, 2, 1
	for i := 0; i < 3; i++ {
		if err := c.Send(a.Uplinks[0].Addr, b.Uplinks[0].Addr, msg); err != nil {
			t.Fatal(err)
		}
	}
	// b has no Shim6 socket: it answers with ICMPv6 errors, which are
	// captured in "all" but are not Shim6 packets themselves.
	if !waitFor(3*time.Second, func() bool { return capShim.Packets() >= 3 && capAll.Packets() >= 6 }) {
		t.Fatalf("captured %d shim6 / %d frames", capShim.Packets(), capAll.Packets())
	}
	time.Sleep(50 * time.Millisecond)
	nShim, err := capShim.Stop()
	if err != nil || nShim != 3 {
		t.Fatalf("shim6 capture: %d, %v", nShim, err)
	}
	if _, err := capAll.Stop(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(&shim)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		data, _, err := r.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		if !lab.Shim6Only(data) || !bytes.Equal(data[14+40:], msg) {
			t.Fatalf("frame %d: %x", i, data)
		}
		src, _ := netip.AddrFromSlice(data[14+8 : 14+24])
		if src != a.Uplinks[0].Addr {
			t.Fatalf("source %v", src)
		}
	}
	if _, _, err := r.ReadPacketData(); err == nil {
		t.Fatal("more than 3 frames in the shim6 capture")
	}
}
