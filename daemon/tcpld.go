package daemon

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/dataplane"
)

// TCP-LD (RFC 6069, "Making TCP More Robust to Long Connectivity
// Disruptions"): during a disruption TCP's retransmission timer backs off
// exponentially (0.2, 0.6, 1.4, 3.0, 6.2, 12.6, 25.4 s after the first
// loss), so a connection resumes only with the first retransmission after
// the path is repaired, up to twice the outage later. RFC 6069 undoes one
// backoff step for each ICMP "destination unreachable" that quotes the
// segment being retransmitted: the disruption is then known not to be
// congestion. Linux implements it (tcp_v6_err -> tcp_ld_RTO_revert for
// ICMPv6 Destination Unreachable code 0 "no route" quoting snd_una, while
// the socket is in RTO backoff).
//
// A Shim6 host knows of the disruption first hand: while REAP explores
// (Core.PathTrouble), the context has no pair it knows to work. The loop
// answers each TCP retransmission timeout on the context's ULID pair (the
// data plane's sock_ops program reports it with the ports and snd_una)
// with such an error, delivered to the local stack only. TCP then keeps
// probing at its base RTO during the outage and resumes within one base
// RTO of REAP's switch. Nothing leaves the host; the error only ever
// reaches the socket whose segment it quotes (the kernel checks the
// addresses, ports and that the quoted sequence number is snd_una).

// tcpLDInjector sends the ICMPv6 errors through a raw ICMPv6 socket bound
// to ::1 (so that the error cannot be taken for traffic between the
// ULIDs: the data plane's trigger heuristic ignores loopback), to the
// local ULID.
type tcpLDInjector struct {
	fd int
}

// OpenTCPLD opens the raw ICMPv6 socket (needs CAP_NET_RAW).
func OpenTCPLD() (TCPLD, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
	if err != nil {
		return nil, fmt.Errorf("TCP-LD: raw ICMPv6 socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TCP-LD: bind ::1: %w", err)
	}
	return &tcpLDInjector{fd: fd}, nil
}

// tcpLDError builds the ICMPv6 Destination Unreachable, code 0 (no route
// to destination, RFC 4443 §3.1) for the TCP connection of ev: the packet
// in error is an IPv6 header from the local to the peer ULID and a TCP
// header with the connection's ports and snd_una. The checksum is left to
// the kernel (raw ICMPv6 sockets always compute it, RFC 3542 §3.1).
func tcpLDError(ev dataplane.Event) []byte {
	b := make([]byte, 8+40+20)
	b[0] = 1 // Destination Unreachable
	b[1] = 0 // no route to destination
	ip := b[8:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 20)
	ip[6] = unix.IPPROTO_TCP
	ip[7] = 64
	src, dst := ev.Src.As16(), ev.Dst.As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	tcp := ip[40:]
	binary.BigEndian.PutUint16(tcp[0:], ev.LocalPort)
	binary.BigEndian.PutUint16(tcp[2:], ev.PeerPort)
	binary.BigEndian.PutUint32(tcp[4:], ev.SndUna)
	tcp[12] = 5 << 4 // data offset
	tcp[13] = 0x10   // ACK
	return b
}

// Send delivers the error for ev to the local stack.
func (t *tcpLDInjector) Send(ev dataplane.Event) error {
	if !ev.Src.Is6() || !ev.Dst.Is6() {
		return fmt.Errorf("TCP-LD: not an IPv6 pair: %v -> %v", ev.Src, ev.Dst)
	}
	return unix.Sendto(t.fd, tcpLDError(ev), 0, &unix.SockaddrInet6{Addr: ev.Src.As16()})
}

func (t *tcpLDInjector) Close() error { return unix.Close(t.fd) }
