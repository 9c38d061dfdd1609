package netns_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/internal/netns/nstest"
)

// BenchmarkTCPThroughput sends one TCP stream from a to b over p1, on
// plain veths (the baseline) and through the delay relay.
func BenchmarkTCPThroughput(b *testing.B) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{{"veth", 0}, {"relay-1ms", time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			topo := nstest.Topology(b, netns.Config{Delay: tc.delay})
			ha, hb := topo.Host("a"), topo.Host("b")
			to := netip.AddrPortFrom(hb.Locators()[0], 9000).String()
			ln, err := hb.NS.Listen("tcp6", to)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- 0
					return
				}
				n, _ := io.Copy(io.Discard, c)
				done <- n
			}()
			c, err := ha.NS.Dial(context.Background(), &net.Dialer{}, "tcp6", to)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			if n := <-done; n != int64(b.N)*int64(len(buf)) {
				b.Fatalf("received %d of %d", n, int64(b.N)*int64(len(buf)))
			}
		})
	}
}
