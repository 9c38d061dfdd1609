package ebpf

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

// TestTCPLDHoldAck: a's connection sits in RTO backoff because b's
// acknowledgements are lost (b-p2 blackholed towards a); when the path
// heals, b's next segment acknowledges everything. Without a hold that
// ends a's backoff at once (RFC 6069 errors can then no longer make it
// retransmit); while the daemon holds the pair, shim6_in delivers the
// segment (its data arrives) with ack = snd_una, until a has retransmitted.
func TestTCPLDHoldAck(t *testing.T) {
	topo, a, b := twoHosts(t, nil)
	ma, mb := contextPair(a, b, tagOfA, tagOfB, true) // shimmed, provider 2
	a.install(ma)
	b.install(mb)

	for _, mode := range []string{"no hold", "hold", "hold after the burst"} {
		name, hold, late := mode, mode == "hold", mode == "hold after the burst"
		ln, err := b.h.NS.Listen("tcp6", net.JoinHostPort(b.ulid.String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(a.ulid.AsSlice())}}
		ca, err := a.h.NS.Dial(context.Background(), d, "tcp6", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		cb, ok := <-accepted
		ln.Close()
		if !ok {
			t.Fatal("accept failed")
		}
		buf := make([]byte, 100)
		exchange := func(w, r net.Conn, what string) {
			t.Helper()
			if _, err := w.Write(buf); err != nil {
				t.Fatal(err)
			}
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatalf("%s: %s: %v", name, what, err)
			}
		}
		exchange(ca, cb, "a -> b before the failure")

		// b's acknowledgements (and anything else towards a) are lost.
		if err := topo.Fail("b-p2", netns.Blackhole, netns.DirOut); err != nil {
			t.Fatal(err)
		}
		exchange(ca, cb, "a -> b with b's acknowledgements lost")
		deadline := time.Now().Add(10 * time.Second)
		for i := nstest.TCPInfo(t, ca); i.Total_rto < 2 || i.Retransmits == 0 || i.Unacked == 0; i = nstest.TCPInfo(t, ca) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: a never backed off: %+v", name, nstest.TCPInfo(t, ca))
			}
			time.Sleep(20 * time.Millisecond)
		}
		switch {
		case hold:
			if err := a.dp.HoldAcks(a.ulid, b.ulid, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		case late:
			// Held, but new holds ended (the daemon's first burst).
			if err := a.dp.HoldAcks(a.ulid, b.ulid, time.Now().Add(time.Minute), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		before := a.stats()["ld_held"]
		if err := topo.Heal("b-p2"); err != nil {
			t.Fatal(err)
		}
		// b's data acknowledges a's 100 bytes.
		exchange(cb, ca, "b -> a after the repair")
		info := nstest.TCPInfo(t, ca)
		held := a.stats()["ld_held"] - before
		if hold {
			if held == 0 || info.Unacked == 0 || info.Retransmits == 0 {
				t.Fatalf("hold: acknowledgement not held: ld_held +%d, a's %+v", held, info)
			}
			// Once a has retransmitted (its backed-off timer; the daemon's
			// RFC 6069 errors would make that immediate), acknowledgements
			// pass again.
			deadline := time.Now().Add(10 * time.Second)
			for nstest.TCPInfo(t, ca).Unacked != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("hold: a's data never acknowledged: %+v, stats %v", nstest.TCPInfo(t, ca), a.stats())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := a.dp.HoldAcks(a.ulid, b.ulid, time.Time{}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		} else if held != 0 || info.Unacked != 0 || info.Retransmits != 0 {
			t.Fatalf("%s: ld_held +%d, a's %+v (want everything acknowledged)", name, held, info)
		}
		if late {
			if err := a.dp.HoldAcks(a.ulid, b.ulid, time.Time{}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		exchange(ca, cb, "a -> b at the end")
		ca.Close()
		cb.Close()
	}
	var n uint32
	if err := a.dp.objs.LdStateMap.Lookup(uint32(0), &n); err != nil || n != 0 {
		t.Fatalf("holds left: %d, %v", n, err)
	}
	// Released pairs leave no connection behind.
	var ck shim6LdConnKey
	var cv shim6LdConnVal
	if it := a.dp.objs.LdConnMap.Iterate(); it.Next(&ck, &cv) {
		t.Fatalf("ld_conn_map entry left after the release: %+v", ck)
	}
}
