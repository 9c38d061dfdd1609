package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
)

// The stream's content: byte i of a stream is pattern[i % len(pattern)].
// The period is prime, so a lost, duplicated or reordered chunk of any
// size shows up as a mismatch at once.
const patternLen = 65521

var pattern = func() []byte {
	p := make([]byte, patternLen)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return p
}()

// fillPattern fills b with the stream content starting at offset off.
func fillPattern(b []byte, off int64) {
	i := int(off % patternLen)
	for n := 0; n < len(b); {
		k := copy(b[n:], pattern[i:])
		n += k
		i = 0
	}
}

// StreamConfig selects the traffic of a Stream.
type StreamConfig struct {
	// Interval > 0 sends MsgSize bytes every Interval (the "small
	// messages every 10 ms" of the benchmark); zero sends as fast as TCP
	// allows (bulk).
	Interval time.Duration
	// MsgSize is the size of a paced message (default 64) or of one bulk
	// write (default 64 KiB).
	MsgSize int
	// Bin is the width of the throughput histogram (default 100 ms).
	Bin time.Duration
	// Port is the TCP port on the receiver (default 5001).
	Port uint16
	// Bidirectional makes the receiver send the same traffic back over
	// the same connection, verified the same way.
	Bidirectional bool
	// MPTCP asks for Multipath TCP on both ends (the kernel falls back to
	// TCP when the peer does not answer with MPTCP; StreamResult.MPTCP
	// tells).
	MPTCP bool
}

func (c *StreamConfig) normalize() {
	if c.MsgSize == 0 {
		if c.Interval > 0 {
			c.MsgSize = 64
		} else {
			c.MsgSize = 64 << 10
		}
	}
	if c.Bin == 0 {
		c.Bin = 100 * time.Millisecond
	}
	if c.Port == 0 {
		c.Port = 5001
	}
}

// Direction is what one side received over a Stream.
type Direction struct {
	From     netip.AddrPort `json:"from"`
	To       netip.AddrPort `json:"to"`
	Sent     int64          `json:"sent"`     // bytes written by the sender
	Received int64          `json:"received"` // bytes read by the receiver
	// Verified is true when every byte read matched the content sent.
	Verified bool `json:"verified"`
	// MismatchAt is the offset of the first wrong byte, or -1.
	MismatchAt int64 `json:"mismatch_at"`
	// MaxGap is the longest time the receiver went without data (from
	// its first read on): the application-level outage.
	MaxGap time.Duration `json:"max_gap_ns"`
	// GapStart is when that longest gap began (time since the stream's
	// start).
	GapStart time.Duration `json:"gap_start_ns"`
	// Bins[i] is the number of bytes received in [i*Bin, (i+1)*Bin).
	Bins []int64 `json:"bins"`
	Err  string  `json:"error,omitempty"`
}

// StreamResult is what Stop returns.
type StreamResult struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Bin      time.Duration `json:"bin_ns"`
	Forward  Direction     `json:"forward"`
	Reverse  *Direction    `json:"reverse,omitempty"`
	// MPTCP is true when the connection used Multipath TCP.
	MPTCP bool `json:"mptcp,omitempty"`
}

// MaxGap is the longest receive gap of either direction.
func (r StreamResult) MaxGap() time.Duration {
	g := r.Forward.MaxGap
	if r.Reverse != nil && r.Reverse.MaxGap > g {
		g = r.Reverse.MaxGap
	}
	return g
}

// OK reports whether every byte sent arrived, in order and intact.
func (r StreamResult) OK() bool {
	ok := func(d *Direction) bool { return d.Verified && d.Sent == d.Received && d.Err == "" }
	return ok(&r.Forward) && (r.Reverse == nil || ok(r.Reverse))
}

// Stream is a running TCP connection between two lab hosts that carries
// content-verifiable traffic and measures receive gaps and throughput.
type Stream struct {
	cfg    StreamConfig
	start  time.Time
	cancel context.CancelFunc
	ln     net.Listener
	wg     sync.WaitGroup
	fwd    *side
	rev    *side
	conns  [2]net.Conn
	mptcp  bool
}

// side is one direction: a sender on one connection end and a receiver on
// the other.
type side struct {
	mu   sync.Mutex
	d    Direction
	last time.Time // last receive
	done chan struct{}
}

// StartStream connects src (bound to srcAddr, e.g. host a's ULID) to dst
// (listening on dstAddr) and starts sending. Sockets are created inside
// the hosts' namespaces.
func StartStream(ctx context.Context, src *netns.NS, srcAddr netip.Addr, dst *netns.NS, dstAddr netip.Addr, cfg StreamConfig) (*Stream, error) {
	cfg.normalize()
	to := netip.AddrPortFrom(dstAddr, cfg.Port)
	lc := &net.ListenConfig{}
	lc.SetMultipathTCP(cfg.MPTCP)
	ln, err := dst.ListenConfig(ctx, lc, "tcp6", to.String())
	if err != nil {
		return nil, fmt.Errorf("lab: stream listen: %w", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	d := &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(srcAddr, 0))}
	d.SetMultipathTCP(cfg.MPTCP)
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := src.Dial(dctx, d, "tcp6", to.String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("lab: stream connect %s -> %s: %w", srcAddr, to, err)
	}
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-dctx.Done():
	}
	if sc == nil {
		c.Close()
		ln.Close()
		return nil, fmt.Errorf("lab: stream accept on %s failed", to)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{cfg: cfg, start: time.Now(), cancel: cancel, ln: ln, conns: [2]net.Conn{c, sc}}
	if tc, ok := c.(*net.TCPConn); ok {
		s.mptcp, _ = tc.MultipathTCP()
	}
	from := c.LocalAddr().(*net.TCPAddr).AddrPort()
	s.fwd = s.run(ctx, c, sc, from, to)
	if cfg.Bidirectional {
		s.rev = s.run(ctx, sc, c, to, from)
	}
	return s, nil
}

func (s *Stream) run(ctx context.Context, w, r net.Conn, from, to netip.AddrPort) *side {
	sd := &side{d: Direction{From: from, To: to, Verified: true, MismatchAt: -1}, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.send(ctx, w, sd)
		if cw, ok := w.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		if err != nil && ctx.Err() == nil {
			sd.setErr("send: " + err.Error())
		}
	}()
	go func() {
		defer close(sd.done)
		s.receive(r, sd)
	}()
	return sd
}

func (sd *side) setErr(e string) {
	sd.mu.Lock()
	if sd.d.Err == "" {
		sd.d.Err = e
	}
	sd.mu.Unlock()
}

func (s *Stream) send(ctx context.Context, w net.Conn, sd *side) error {
	buf := make([]byte, s.cfg.MsgSize)
	var off int64
	var tick *time.Ticker
	if s.cfg.Interval > 0 {
		tick = time.NewTicker(s.cfg.Interval)
		defer tick.Stop()
	}
	// Unblock a write stuck in a dead path when the stream stops.
	stop := context.AfterFunc(ctx, func() { w.SetWriteDeadline(time.Now()) })
	defer stop()
	for {
		if tick != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		fillPattern(buf, off)
		n, err := w.Write(buf)
		off += int64(n)
		sd.mu.Lock()
		sd.d.Sent = off
		sd.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (s *Stream) receive(r net.Conn, sd *side) {
	buf := make([]byte, 256<<10)
	want := make([]byte, len(buf))
	var off int64
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			fillPattern(want[:n], off)
			sd.mu.Lock()
			if sd.d.Verified && !bytes.Equal(buf[:n], want[:n]) {
				sd.d.Verified = false
				for i := 0; i < n; i++ {
					if buf[i] != want[i] {
						sd.d.MismatchAt = off + int64(i)
						break
					}
				}
			}
			if !sd.last.IsZero() {
				if gap := now.Sub(sd.last); gap > sd.d.MaxGap {
					sd.d.MaxGap = gap
					sd.d.GapStart = sd.last.Sub(s.start)
				}
			}
			sd.last = now
			off += int64(n)
			sd.d.Received = off
			bin := int(now.Sub(s.start) / s.cfg.Bin)
			for len(sd.d.Bins) <= bin {
				sd.d.Bins = append(sd.d.Bins, 0)
			}
			sd.d.Bins[bin] += int64(n)
			sd.mu.Unlock()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				sd.setErr("receive: " + err.Error())
			}
			return
		}
	}
}

// Snapshot is a live view of a stream.
type Snapshot struct {
	Sent, Received int64
	LastReceive    time.Time
	Verified       bool
}

// Snapshot returns the forward direction's counters now.
func (s *Stream) Snapshot() Snapshot {
	s.fwd.mu.Lock()
	defer s.fwd.mu.Unlock()
	return Snapshot{Sent: s.fwd.d.Sent, Received: s.fwd.d.Received, LastReceive: s.fwd.last, Verified: s.fwd.d.Verified}
}

// Start is when the stream began.
func (s *Stream) Start() time.Time { return s.start }

// Stop stops sending, waits up to drain for the receivers to get
// everything that was sent, closes the connection and returns the result.
func (s *Stream) Stop(drain time.Duration) StreamResult {
	s.cancel()
	s.wg.Wait()
	// One deadline for both directions (a timer's channel fires once).
	deadline := time.Now().Add(drain)
	for _, sd := range []*side{s.fwd, s.rev} {
		if sd == nil {
			continue
		}
		t := time.NewTimer(max(time.Until(deadline), 0))
		select {
		case <-sd.done:
		case <-t.C:
		}
		t.Stop()
	}
	end := time.Now()
	s.conns[0].Close()
	s.conns[1].Close()
	s.ln.Close()
	for _, sd := range []*side{s.fwd, s.rev} {
		if sd != nil {
			<-sd.done
		}
	}
	res := StreamResult{Start: s.start, Duration: end.Sub(s.start), Bin: s.cfg.Bin, Forward: s.fwd.result(), MPTCP: s.mptcp}
	if s.rev != nil {
		r := s.rev.result()
		res.Reverse = &r
	}
	return res
}

func (sd *side) result() Direction {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	d := sd.d
	d.Bins = append([]int64(nil), sd.d.Bins...)
	if d.Received != d.Sent && d.Err == "" {
		d.Err = fmt.Sprintf("received %d of %d bytes", d.Received, d.Sent)
	}
	return d
}

// LastReceive returns when each direction last received data (zero: not
// yet); rev is zero for a one-way stream.
func (s *Stream) LastReceive() (fwd, rev time.Time) {
	s.fwd.mu.Lock()
	fwd = s.fwd.last
	s.fwd.mu.Unlock()
	if s.rev != nil {
		s.rev.mu.Lock()
		rev = s.rev.last
		s.rev.mu.Unlock()
	}
	return fwd, rev
}

// Bidirectional reports whether both ends send.
func (s *Stream) Bidirectional() bool { return s.rev != nil }
