package netio

import (
	"context"
	"errors"
	"net/netip"
	"sync"
)

// IO is the pair of sockets shim6d runs: protocol 140 and ICMPv6 errors.
type IO struct {
	Conn *Conn
	ICMP *ICMPConn
}

// Open opens both sockets in the calling thread's network namespace.
func Open(opts ICMPOptions) (*IO, error) {
	c, err := Listen()
	if err != nil {
		return nil, err
	}
	ic, err := ListenICMP(opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &IO{Conn: c, ICMP: ic}, nil
}

// Send sends a Shim6 message from src to dst (see Conn.Send).
func (io *IO) Send(src, dst netip.Addr, msg []byte) error { return io.Conn.Send(src, dst, msg) }

// Run reads both sockets until ctx ends (then it returns nil) or a socket
// fails (then it returns that error). packet and icmp are each called
// from one goroutine of their own, never concurrently with themselves;
// they should not block. Run returns only after both readers stopped.
func (io *IO) Run(ctx context.Context, packet func(Packet), icmp func(ICMPError)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			p, err := io.Conn.Recv(ctx)
			if err != nil {
				errs[0] = err
				cancel()
				return
			}
			packet(p)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			e, err := io.ICMP.Recv(ctx)
			if err != nil {
				errs[1] = err
				cancel()
				return
			}
			icmp(e)
		}
	}()
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	return nil
}

// Counters returns both sockets' counters by name.
func (io *IO) Counters() map[string]uint64 {
	s, i := io.Conn.Stats(), io.ICMP.Stats()
	return map[string]uint64{
		"netio_sent":             s.Sent,
		"netio_send_errors":      s.SendErrors,
		"netio_received":         s.Received,
		"netio_truncated":        s.Truncated,
		"netio_receive_errors":   s.ReceiveErrors,
		"netio_icmp_delivered":   i.Delivered,
		"netio_icmp_filtered":    i.Filtered,
		"netio_icmp_malformed":   i.Malformed,
		"netio_icmp_read_errors": i.Errors,
	}
}

// Close closes both sockets.
func (io *IO) Close() error {
	return errors.Join(io.Conn.Close(), io.ICMP.Close())
}
