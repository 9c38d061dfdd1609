package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv6"
)

// MaxPacket is the largest packet a read accepts; longer ones are dropped
// and counted as truncated.
const MaxPacket = 65535

// Packet is one received protocol-140 packet.
type Packet struct {
	Src, Dst netip.Addr // IPv6 source and destination (Dst: our locator)
	IfIndex  int        // interface it arrived on
	HopLimit int
	// Data starts at the Shim6 header (control message or payload
	// extension header).
	Data []byte
}

// Stats are a Conn's counters.
type Stats struct {
	Sent, SendErrors    uint64
	Received, Truncated uint64
	ReceiveErrors       uint64
}

// Conn is a raw IPv6 socket for IP protocol 140.
type Conn struct {
	pc  *ipv6.PacketConn
	c   net.PacketConn
	buf []byte // the single reader's buffer

	sent, sendErrs, recv, trunc, recvErrs atomic.Uint64
}

// Listen opens the raw socket in the calling thread's network namespace.
// It needs CAP_NET_RAW.
func Listen() (*Conn, error) {
	c, err := net.ListenPacket(fmt.Sprintf("ip6:%d", ProtoShim6), "::")
	if err != nil {
		return nil, fmt.Errorf("netio: raw socket for protocol %d: %w", ProtoShim6, err)
	}
	pc := ipv6.NewPacketConn(c)
	if err := pc.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface|ipv6.FlagHopLimit, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("netio: IPV6_RECVPKTINFO: %w", err)
	}
	return &Conn{pc: pc, c: c}, nil
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *Conn) Close() error { return c.c.Close() }

// LocalAddr is the socket's local address ("::").
func (c *Conn) LocalAddr() net.Addr { return c.c.LocalAddr() }

// Send sends msg (starting at the Shim6 header) from src to dst. src must
// be one of this host's addresses (IPV6_PKTINFO); the kernel routes by it,
// so on a source-routed multihomed host it also picks the provider. A
// zero src lets the kernel choose the source, which a Shim6 sender should
// never want: the peer only accepts verified locators. It implements the
// engine's Sender.
func (c *Conn) Send(src, dst netip.Addr, msg []byte) error {
	return c.SendVia(src, dst, 0, msg)
}

// SendVia is Send through interface ifindex (0: let the routing decide).
func (c *Conn) SendVia(src, dst netip.Addr, ifindex int, msg []byte) error {
	return c.send(src, dst, ifindex, 0, msg)
}

// SendHopLimit is Send with an explicit hop limit (for tests and
// traceroute-like diagnostics).
func (c *Conn) SendHopLimit(src, dst netip.Addr, hopLimit int, msg []byte) error {
	return c.send(src, dst, 0, hopLimit, msg)
}

func (c *Conn) send(src, dst netip.Addr, ifindex, hopLimit int, msg []byte) error {
	if !dst.Is6() || dst.Is4In6() {
		return fmt.Errorf("netio: destination %v is not IPv6", dst)
	}
	cm := &ipv6.ControlMessage{IfIndex: ifindex, HopLimit: hopLimit}
	if src.IsValid() {
		if !src.Is6() || src.Is4In6() {
			return fmt.Errorf("netio: source %v is not IPv6", src)
		}
		cm.Src = net.IP(src.AsSlice())
	}
	to := &net.IPAddr{IP: net.IP(dst.AsSlice()), Zone: dst.Zone()}
	if _, err := c.pc.WriteTo(msg, cm, to); err != nil {
		c.sendErrs.Add(1)
		return fmt.Errorf("netio: send %s -> %s: %w", src, dst, err)
	}
	c.sent.Add(1)
	return nil
}

// readCtx arranges for ctx's cancellation to interrupt a blocked read by
// moving the read deadline; the returned func undoes that.
func readCtx(ctx context.Context, setDeadline func(time.Time) error) func() bool {
	return context.AfterFunc(ctx, func() { setDeadline(time.Unix(1, 0)) })
}

// Recv waits for the next packet. It returns ctx.Err() when ctx ends and
// net.ErrClosed after Close. Only one goroutine may call Recv at a time.
func (c *Conn) Recv(ctx context.Context) (Packet, error) {
	if c.buf == nil {
		c.buf = make([]byte, MaxPacket+1)
	}
	buf := c.buf
	stop := readCtx(ctx, c.c.SetReadDeadline)
	defer func() {
		if !stop() {
			// The AfterFunc ran: clear the deadline for the next call.
			c.c.SetReadDeadline(time.Time{})
		}
	}()
	for {
		n, cm, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return Packet{}, ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return Packet{}, err
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A late deadline from an earlier call's context.
				c.c.SetReadDeadline(time.Time{})
				continue
			}
			c.recvErrs.Add(1)
			return Packet{}, fmt.Errorf("netio: receive: %w", err)
		}
		if n > MaxPacket {
			c.trunc.Add(1)
			continue
		}
		p := Packet{Data: append([]byte(nil), buf[:n]...)}
		if ip, ok := from.(*net.IPAddr); ok {
			p.Src, _ = netip.AddrFromSlice(ip.IP)
		}
		if cm != nil {
			p.Dst, _ = netip.AddrFromSlice(cm.Dst)
			p.IfIndex = cm.IfIndex
			p.HopLimit = cm.HopLimit
		}
		c.recv.Add(1)
		return p, nil
	}
}

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Sent: c.sent.Load(), SendErrors: c.sendErrs.Load(),
		Received: c.recv.Load(), Truncated: c.trunc.Load(), ReceiveErrors: c.recvErrs.Load(),
	}
}
