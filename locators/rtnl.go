package locators

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rtnl is a non-blocking NETLINK_ROUTE socket read through the Go
// runtime's poller, so that Close unblocks a pending read.
type rtnl struct {
	f   *os.File
	rc  syscall.RawConn
	seq uint32
	buf []byte
}

func openRTNL(groups uint32) (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("locators: netlink socket: %w", err)
	}
	if groups != 0 {
		// A big buffer makes overflow (ENOBUFS, then a resync) rare.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locators: netlink bind: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &rtnl{f: f, rc: rc, buf: make([]byte, 1<<16)}, nil
}

func (s *rtnl) Close() error { return s.f.Close() }

// recv reads one datagram and parses its messages. It returns os.ErrClosed
// (wrapped) after Close and unix.ENOBUFS when the kernel dropped messages.
func (s *rtnl) recv() ([]syscall.NetlinkMessage, error) {
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), s.buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, rerr
	}
	// The messages point into the bytes they were parsed from: copy, as
	// the buffer is reused by the next read.
	return syscall.ParseNetlinkMessage(append([]byte(nil), s.buf[:n]...))
}

func (s *rtnl) send(b []byte) error {
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// errDumpInterrupted: the kernel's tables changed during a dump.
var errDumpInterrupted = errors.New("locators: netlink dump interrupted")

// dump sends a dump request of type typ with the given family-specific
// header and returns every answer message (retrying when interrupted).
func (s *rtnl) dump(typ uint16, hdr []byte) ([]syscall.NetlinkMessage, error) {
	for try := 0; ; try++ {
		msgs, err := s.dumpOnce(typ, hdr)
		if errors.Is(err, errDumpInterrupted) && try < 10 {
			continue
		}
		return msgs, err
	}
}

func (s *rtnl) dumpOnce(typ uint16, hdr []byte) ([]syscall.NetlinkMessage, error) {
	s.seq++
	seq := s.seq
	req := make([]byte, unix.SizeofNlMsghdr+len(hdr))
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], seq)
	copy(req[unix.SizeofNlMsghdr:], hdr)
	if err := s.send(req); err != nil {
		return nil, fmt.Errorf("locators: netlink send: %w", err)
	}
	var out []syscall.NetlinkMessage
	intr := false
	for {
		msgs, err := s.recv()
		if err != nil {
			return nil, fmt.Errorf("locators: netlink dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				if intr {
					return nil, errDumpInterrupted
				}
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return nil, fmt.Errorf("locators: netlink dump: %w", syscall.Errno(-e))
					}
				}
				return out, nil
			default:
				out = append(out, m)
			}
		}
	}
}

// addrMsg is a parsed RTM_NEWADDR / RTM_DELADDR.
type addrMsg struct {
	del     bool
	ifindex int
	a       Addr
}

// parseAddrMsg parses an IPv6 address message; ok is false for other
// families or malformed messages.
func parseAddrMsg(m syscall.NetlinkMessage) (addrMsg, bool) {
	var am addrMsg
	if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR {
		return am, false
	}
	if len(m.Data) < unix.SizeofIfAddrmsg || m.Data[0] != unix.AF_INET6 {
		return am, false
	}
	am.del = m.Header.Type == unix.RTM_DELADDR
	am.a.PrefixLen = int(m.Data[1])
	flags := uint32(m.Data[2])
	am.ifindex = int(binary.NativeEndian.Uint32(m.Data[4:8]))
	am.a.IfIndex = am.ifindex
	attrs, ok := parseAttrs(m.Data[unix.SizeofIfAddrmsg:])
	if !ok {
		return am, false
	}
	var addr, local netip.Addr
	for _, at := range attrs {
		switch at.typ {
		case unix.IFA_ADDRESS:
			addr, _ = netip.AddrFromSlice(at.val)
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(at.val)
		case unix.IFA_FLAGS:
			if len(at.val) >= 4 {
				flags = binary.NativeEndian.Uint32(at.val)
			}
		case unix.IFA_CACHEINFO:
			if len(at.val) >= 8 {
				am.a.PreferredLifetime = lifetime(binary.NativeEndian.Uint32(at.val[0:]))
				am.a.ValidLifetime = lifetime(binary.NativeEndian.Uint32(at.val[4:]))
			}
		}
	}
	// IFA_LOCAL is the local address only on point-to-point links, where
	// IFA_ADDRESS is the peer's.
	if local.IsValid() {
		addr = local
	}
	if !addr.Is6() {
		return am, false
	}
	am.a.Addr = addr
	am.a.Deprecated = flags&unix.IFA_F_DEPRECATED != 0
	am.a.Tentative = flags&unix.IFA_F_TENTATIVE != 0
	am.a.DADFailed = flags&unix.IFA_F_DADFAILED != 0
	am.a.Temporary = flags&unix.IFA_F_TEMPORARY != 0
	am.a.Permanent = flags&unix.IFA_F_PERMANENT != 0
	return am, true
}

func lifetime(s uint32) time.Duration {
	if s == 0xffffffff {
		return 0
	}
	return time.Duration(s) * time.Second
}

// linkMsg is a parsed RTM_NEWLINK / RTM_DELLINK.
type linkMsg struct {
	del     bool
	ifindex int
	name    string
	up      bool // IFF_UP and IFF_LOWER_UP
}

func parseLinkMsg(m syscall.NetlinkMessage) (linkMsg, bool) {
	var lm linkMsg
	if m.Header.Type != unix.RTM_NEWLINK && m.Header.Type != unix.RTM_DELLINK {
		return lm, false
	}
	if len(m.Data) < unix.SizeofIfInfomsg {
		return lm, false
	}
	lm.del = m.Header.Type == unix.RTM_DELLINK
	lm.ifindex = int(int32(binary.NativeEndian.Uint32(m.Data[4:8])))
	flags := binary.NativeEndian.Uint32(m.Data[8:12])
	lm.up = flags&unix.IFF_UP != 0 && flags&unix.IFF_LOWER_UP != 0
	attrs, ok := parseAttrs(m.Data[unix.SizeofIfInfomsg:])
	if !ok {
		return lm, false
	}
	for _, at := range attrs {
		if at.typ == unix.IFLA_IFNAME {
			b := at.val
			for len(b) > 0 && b[len(b)-1] == 0 {
				b = b[:len(b)-1]
			}
			lm.name = string(b)
		}
	}
	return lm, lm.ifindex > 0
}

var (
	addrDumpHdr = func() []byte { b := make([]byte, unix.SizeofIfAddrmsg); b[0] = unix.AF_INET6; return b }()
	linkDumpHdr = make([]byte, unix.SizeofIfInfomsg)
)

type attr struct {
	typ uint16
	val []byte
}

// parseAttrs splits netlink attributes (struct rtattr: 16-bit length
// including the 4-byte header, 16-bit type, value padded to 4 bytes). It
// refuses malformed input instead of trusting the lengths.
func parseAttrs(b []byte) ([]attr, bool) {
	var out []attr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:]))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			return nil, false
		}
		out = append(out, attr{typ: typ, val: b[4:l]})
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return out, true
}
