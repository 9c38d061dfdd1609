package nstest

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TCPInfo reads TCP_INFO of a TCP connection (RTO backoff, retransmissions,
// unacknowledged segments), failing t on error.
func TCPInfo(t testing.TB, c net.Conn) *unix.TCPInfo {
	t.Helper()
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatalf("%T has no socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return info
}
