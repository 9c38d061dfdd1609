package netns

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A Relay copies Ethernet frames between two interfaces of one namespace
// in both directions, delaying every frame by a fixed time: link delay for
// kernels without netem. It uses AF_PACKET sockets with PACKET_VNET_HDR,
// so that GSO super-packets and checksum offload state pass through
// intact, and PACKET_IGNORE_OUTGOING, so that it does not see what it
// sends. Frames keep their order; when a direction's queue (RelayQueue
// frames) is full, new frames are dropped and counted.
type Relay struct {
	delay time.Duration
	socks [2]*pktSock
	queue [2]chan frame
	drops [2]atomic.Uint64
	fwd   [2]atomic.Uint64

	closing atomic.Bool
	once    sync.Once
	wg      sync.WaitGroup
}

// RelayQueue is the per-direction queue length of a Relay, in frames.
const RelayQueue = 8192

type frame struct {
	due  time.Time
	data []byte
}

// pktSock is an AF_PACKET socket bound to one interface, read and written
// through the Go poller.
type pktSock struct {
	f  *os.File
	rc syscall.RawConn
}

const (
	solPacket            = 263 // SOL_PACKET
	packetVnetHdr        = 15  // PACKET_VNET_HDR
	packetIgnoreOutgoing = 23  // PACKET_IGNORE_OUTGOING
	vnetHdrLen           = 10  // struct virtio_net_hdr
)

func openPktSock(n *NS, ifname string) (*pktSock, error) {
	idx, err := n.LinkIndex(ifname)
	if err != nil {
		return nil, err
	}
	proto := int(uint16(unix.ETH_P_ALL)<<8 | uint16(unix.ETH_P_ALL)>>8)
	var fd int
	err = n.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		for _, o := range [][2]int{{solPacket, packetVnetHdr}, {solPacket, packetIgnoreOutgoing}} {
			if err := unix.SetsockoptInt(fd, o[0], o[1], 1); err != nil {
				unix.Close(fd)
				return fmt.Errorf("setsockopt %d: %w", o[1], err)
			}
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		}
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: idx}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netns: %s: packet socket on %s: %w", n.name, ifname, err)
	}
	f := os.NewFile(uintptr(fd), "relay:"+ifname)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pktSock{f: f, rc: rc}, nil
}

func (s *pktSock) read(b []byte) (int, error) {
	var n int
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, rerr = unix.Read(int(fd), b)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

func (s *pktSock) write(b []byte) error {
	var werr error
	err := s.rc.Write(func(fd uintptr) bool {
		_, werr = unix.Write(int(fd), b)
		return werr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return werr
}

// StartRelay relays frames between ifA and ifB (both in n, both without
// addresses of their own) with the given one-way delay in each direction.
func StartRelay(n *NS, ifA, ifB string, delay time.Duration) (*Relay, error) {
	a, err := openPktSock(n, ifA)
	if err != nil {
		return nil, err
	}
	b, err := openPktSock(n, ifB)
	if err != nil {
		a.f.Close()
		return nil, err
	}
	r := &Relay{delay: delay, socks: [2]*pktSock{a, b}}
	for dir := 0; dir < 2; dir++ {
		r.queue[dir] = make(chan frame, RelayQueue)
		r.wg.Add(2)
		go r.reader(dir)
		go r.writer(dir)
	}
	return r, nil
}

// reader reads frames arriving on socks[dir] and queues them for the
// other side.
func (r *Relay) reader(dir int) {
	defer r.wg.Done()
	defer close(r.queue[dir])
	buf := make([]byte, vnetHdrLen+(256<<10))
	for {
		n, err := r.socks[dir].read(buf)
		if err != nil {
			if errors.Is(err, unix.ENETDOWN) && !r.closing.Load() {
				continue // the interface went down (a "fail down"); keep going
			}
			return
		}
		if n <= vnetHdrLen {
			continue
		}
		f := frame{due: time.Now().Add(r.delay), data: append([]byte(nil), buf[:n]...)}
		select {
		case r.queue[dir] <- f:
		default:
			r.drops[dir].Add(1)
		}
	}
}

// writer sends the frames queued by reader(dir) out of the other socket
// when they are due.
func (r *Relay) writer(dir int) {
	defer r.wg.Done()
	out := r.socks[1-dir]
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for f := range r.queue[dir] {
		if d := time.Until(f.due); d > 0 {
			t.Reset(d)
			<-t.C
		}
		if err := out.write(f.data); err != nil {
			if r.closing.Load() {
				return
			}
			r.drops[dir].Add(1) // e.g. the other side is down
			continue
		}
		r.fwd[dir].Add(1)
	}
}

// Stats returns the frames forwarded and dropped, A-to-B then B-to-A.
func (r *Relay) Stats() (forwarded, dropped [2]uint64) {
	for i := 0; i < 2; i++ {
		forwarded[i], dropped[i] = r.fwd[i].Load(), r.drops[i].Load()
	}
	return
}

// Close stops the relay; queued frames are dropped.
func (r *Relay) Close() error {
	r.once.Do(func() {
		r.closing.Store(true)
		r.socks[0].f.Close()
		r.socks[1].f.Close()
	})
	r.wg.Wait()
	return nil
}
