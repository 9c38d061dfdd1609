package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/internal/netns"
	"github.com/goshim6/goshim6/netio"
)

// Shim6Only is a capture filter that keeps IPv6 frames whose header chain
// leads to a Shim6 header (control messages and payload extension
// headers).
func Shim6Only(frame []byte) bool {
	if len(frame) < 14 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		return false
	}
	inv, err := netio.ParseInvoking(frame[14:])
	return err == nil && inv.NextHeader == netio.ProtoShim6 && inv.Offset >= 0
}

// Capture records the frames of one interface, both directions, into a
// pcap file (Ethernet link type, nanosecond timestamps) that
// `shim6ctl decode --pcap` reads.
type Capture struct {
	f      *os.File
	rc     syscall.RawConn
	filter func([]byte) bool

	mu       sync.Mutex
	w        *pcapgo.Writer
	packets  int
	err      error
	done     chan struct{}
	stopping atomic.Bool
}

// StartCapture starts capturing on ifname inside n (every interface of n
// when ifname is empty), writing to w every frame that filter accepts
// (nil: every frame).
func StartCapture(n *netns.NS, ifname string, w io.Writer, filter func([]byte) bool) (*Capture, error) {
	idx := 0 // every interface
	if ifname != "" {
		var err error
		if idx, err = n.LinkIndex(ifname); err != nil {
			return nil, err
		}
	}
	var fd int
	proto := int(htons(unix.ETH_P_ALL))
	err := n.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: idx}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab: capture on %s/%s: %w", n.Name(), ifname, err)
	}
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lab: pcap header: %w", err)
	}
	f := os.NewFile(uintptr(fd), "capture")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	c := &Capture{f: f, rc: rc, filter: filter, w: pw, done: make(chan struct{})}
	go c.run()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) run() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			// After Stop closes the file, RawConn reports "use of closed
			// file" (poll.ErrFileClosing), which is not os.ErrClosed.
			if !c.stopping.Load() && !errors.Is(err, os.ErrClosed) {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
			}
			return
		}
		frame := buf[:min(n, len(buf))]
		if c.filter != nil && !c.filter(frame) {
			continue
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(frame), Length: n}
		c.mu.Lock()
		if c.err == nil {
			if err := c.w.WritePacket(ci, frame); err != nil {
				c.err = err
			} else {
				c.packets++
			}
		}
		c.mu.Unlock()
	}
}

// Packets returns how many frames were written so far.
func (c *Capture) Packets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets
}

// Stop ends the capture and returns the number of frames written.
func (c *Capture) Stop() (int, error) {
	c.stopping.Store(true)
	c.f.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets, c.err
}
