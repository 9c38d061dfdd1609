package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv6"
)

// ICMPError is a received ICMPv6 error message (RFC 4443).
type ICMPError struct {
	From    netip.Addr // the node that sent the error
	To      netip.Addr // our address it was sent to
	IfIndex int
	Type    uint8
	Code    uint8
	// Info is the message's 32-bit field: the MTU of a Packet Too Big,
	// the pointer of a Parameter Problem, otherwise unused (0).
	Info uint32
	// Invoking is the quoted invoking packet, from its IPv6 header on.
	Invoking []byte
	// Packet is what ParseInvoking found in Invoking.
	Packet Invoking
}

// ShimRelated reports whether the invoking packet carried a Shim6 header
// (a control message or a payload extension header) right after its IPv6
// header chain.
func (e *ICMPError) ShimRelated() bool {
	return e.Packet.NextHeader == ProtoShim6 && e.Packet.Offset >= 0
}

// Shim6 returns the quoted bytes from the Shim6 header on, or nil.
func (e *ICMPError) Shim6() []byte {
	if !e.ShimRelated() {
		return nil
	}
	return e.Invoking[e.Packet.Offset:]
}

// ParseICMPError parses an ICMPv6 message (from its type octet) that is
// one of the four error types, with a quoted IPv6 packet.
func ParseICMPError(b []byte) (ICMPError, error) {
	var e ICMPError
	if len(b) < 8 {
		return e, fmt.Errorf("%w: %d bytes of ICMPv6 header", ErrTruncated, len(b))
	}
	e.Type, e.Code = b[0], b[1]
	switch e.Type {
	case ICMPDestinationUnreachable, ICMPPacketTooBig, ICMPTimeExceeded, ICMPParameterProblem:
	default:
		return e, fmt.Errorf("%w: type %d", ErrNotError, e.Type)
	}
	e.Info = binary.BigEndian.Uint32(b[4:8])
	e.Invoking = append([]byte(nil), b[8:]...)
	inv, err := ParseInvoking(e.Invoking)
	if err != nil {
		return e, err
	}
	e.Packet = inv
	return e, nil
}

// ICMPStats are an ICMPConn's counters.
type ICMPStats struct {
	Delivered uint64 // errors handed up
	Filtered  uint64 // well-formed errors the filter rejected
	Malformed uint64 // unparseable messages
	Errors    uint64 // socket read errors
}

// ICMPConn receives ICMPv6 error messages.
type ICMPConn struct {
	pc     *ipv6.PacketConn
	c      net.PacketConn
	filter func(*ICMPError) bool
	buf    []byte

	delivered, filtered, malformed, errs atomic.Uint64
}

// ICMPOptions configure ListenICMP.
type ICMPOptions struct {
	// Filter decides which errors Recv returns. Nil means
	// (*ICMPError).ShimRelated. The daemon widens it to errors about
	// packets between the locators of one of its contexts (RFC 5533 §8).
	Filter func(*ICMPError) bool
}

// ListenICMP opens a raw ICMPv6 socket in the calling thread's network
// namespace whose kernel filter (ICMP6_FILTER) passes only the four error
// types. The kernel checks the ICMPv6 checksum before delivery.
func ListenICMP(opts ICMPOptions) (*ICMPConn, error) {
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("netio: raw ICMPv6 socket: %w", err)
	}
	pc := ipv6.NewPacketConn(c)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	for _, t := range []ipv6.ICMPType{ipv6.ICMPTypeDestinationUnreachable, ipv6.ICMPTypePacketTooBig, ipv6.ICMPTypeTimeExceeded, ipv6.ICMPTypeParameterProblem} {
		f.Accept(t)
	}
	if err := pc.SetICMPFilter(&f); err != nil {
		c.Close()
		return nil, fmt.Errorf("netio: ICMP6_FILTER: %w", err)
	}
	if err := pc.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("netio: IPV6_RECVPKTINFO: %w", err)
	}
	filter := opts.Filter
	if filter == nil {
		filter = (*ICMPError).ShimRelated
	}
	return &ICMPConn{pc: pc, c: c, filter: filter}, nil
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *ICMPConn) Close() error { return c.c.Close() }

// Recv waits for the next error that passes the filter. It returns
// ctx.Err() when ctx ends and net.ErrClosed after Close. Only one
// goroutine may call Recv at a time.
func (c *ICMPConn) Recv(ctx context.Context) (ICMPError, error) {
	if c.buf == nil {
		c.buf = make([]byte, MaxPacket+1)
	}
	stop := readCtx(ctx, c.c.SetReadDeadline)
	defer func() {
		if !stop() {
			c.c.SetReadDeadline(time.Time{})
		}
	}()
	for {
		n, cm, from, err := c.pc.ReadFrom(c.buf)
		if err != nil {
			if ctx.Err() != nil {
				return ICMPError{}, ctx.Err()
			}
			if errors.Is(err, net.ErrClosed) {
				return ICMPError{}, err
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.c.SetReadDeadline(time.Time{})
				continue
			}
			c.errs.Add(1)
			return ICMPError{}, fmt.Errorf("netio: receive ICMPv6: %w", err)
		}
		e, perr := ParseICMPError(c.buf[:n])
		if perr != nil {
			c.malformed.Add(1)
			continue
		}
		if ip, ok := from.(*net.IPAddr); ok {
			e.From, _ = netip.AddrFromSlice(ip.IP)
		}
		if cm != nil {
			e.To, _ = netip.AddrFromSlice(cm.Dst)
			e.IfIndex = cm.IfIndex
		}
		if !c.filter(&e) {
			c.filtered.Add(1)
			continue
		}
		c.delivered.Add(1)
		return e, nil
	}
}

// Stats returns the counters.
func (c *ICMPConn) Stats() ICMPStats {
	return ICMPStats{Delivered: c.delivered.Load(), Filtered: c.filtered.Load(), Malformed: c.malformed.Load(), Errors: c.errs.Load()}
}
