package lab

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/internal/netns"
)

// PayloadWatch notices the first packet that carries a Shim6 payload
// extension header (RFC 5533 §5.1: next header 140, P bit set) on any
// interface of a namespace, in either direction: the packet-level moment
// a context's traffic moved off its ULID pair. A kernel socket filter
// keeps every other frame out of user space, and the socket is closed
// after the first hit, so watching costs nothing on a busy host.
type PayloadWatch struct {
	closed atomic.Bool
	done   chan struct{}

	mu      sync.Mutex
	armed   time.Time
	first   time.Time
	ifindex int
	out     bool
}

// payloadFilter accepts Ethernet frames with IPv6 next header 140 and the
// P bit of the Shim6 header set.
var payloadFilter = func() []unix.SockFilter {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 5},
		bpf.LoadAbsolute{Off: 14 + 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 140, SkipTrue: 3},
		bpf.LoadAbsolute{Off: 14 + 40 + 2, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpBitsNotSet, Val: 0x80, SkipTrue: 1},
		bpf.RetConstant{Val: 128},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic(err)
	}
	out := make([]unix.SockFilter, len(prog))
	for i, r := range prog {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out
}()

// WatchPayload starts watching n.
func WatchPayload(n *netns.NS) (*PayloadWatch, error) {
	var fd int
	proto := int(htons(unix.ETH_P_ALL))
	err := n.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return err
		}
		prog := unix.SockFprog{Len: uint16(len(payloadFilter)), Filter: &payloadFilter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto)}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab: payload watch in %s: %w", n.Name(), err)
	}
	// Not armed yet: frames are ignored until Arm.
	w := &PayloadWatch{done: make(chan struct{}), armed: time.Unix(1<<40, 0)}
	go w.run(fd)
	return w, nil
}

func (w *PayloadWatch) run(fd int) {
	defer close(w.done)
	defer unix.Close(fd)
	buf := make([]byte, 128)
	for !w.closed.Load() {
		_, from, err := unix.Recvfrom(fd, buf, 0)
		now := time.Now()
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			return
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		w.mu.Lock()
		if now.Before(w.armed) {
			w.mu.Unlock()
			continue
		}
		w.first = now
		if ll != nil {
			w.ifindex, w.out = ll.Ifindex, ll.Pkttype == unix.PACKET_OUTGOING
		}
		w.mu.Unlock()
		return
	}
}

// Arm forgets packets seen before t (call it at the failure).
func (w *PayloadWatch) Arm(t time.Time) {
	w.mu.Lock()
	w.armed = t
	if w.first.Before(t) {
		w.first = time.Time{}
	}
	w.mu.Unlock()
}

// First returns when the first payload packet was seen (after Arm), the
// interface index and whether it was outgoing.
func (w *PayloadWatch) First() (t time.Time, ifindex int, outgoing bool, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, w.ifindex, w.out, !w.first.IsZero()
}

// Close stops watching.
func (w *PayloadWatch) Close() {
	w.closed.Store(true)
	<-w.done
}
