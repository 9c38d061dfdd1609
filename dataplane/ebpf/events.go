package ebpf

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/goshim6/goshim6/dataplane"
)

// EventReader reads the data plane's events (unknown context tags,
// triggers, TCP RTOs, fast-reroute moves) from its ring buffer. Events are rare and rate
// limited in the kernel (Config.EventBurst per EventWindow per CPU and
// kind); what the ring buffer cannot hold is counted in Stats.
//
// Only one EventReader should read at a time. Events wait in the pinned
// ring buffer while no reader runs (for example across a daemon restart).
type EventReader struct {
	rd *ringbuf.Reader
}

// NewEventReader opens a reader on the event ring buffer.
func (d *DataPlane) NewEventReader() (*EventReader, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	rd, err := ringbuf.NewReader(d.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	return &EventReader{rd: rd}, nil
}

// Read blocks until the next event, the deadline (os.ErrDeadlineExceeded)
// or Close (ErrClosed).
func (r *EventReader) Read() (dataplane.Event, error) {
	for {
		rec, err := r.rd.Read()
		if errors.Is(err, ringbuf.ErrClosed) {
			return dataplane.Event{}, ErrClosed
		}
		if err != nil {
			return dataplane.Event{}, err
		}
		ev, err := decodeEvent(rec.RawSample, time.Now(), monotonic())
		if err != nil {
			continue // not ours to fail on: skip a record we cannot read
		}
		return ev, nil
	}
}

// SetDeadline makes Read return os.ErrDeadlineExceeded after t; the zero
// time waits forever. Call it from the goroutine that reads, or before the
// Read it should bound: while a Read is blocked the reader's lock is held,
// so a SetDeadline from another goroutine waits for that Read to return.
// To stop a blocked Read from elsewhere, use Close.
func (r *EventReader) SetDeadline(t time.Time) { r.rd.SetDeadline(t) }

// Close unblocks Read, which then returns ErrClosed. It may be called from
// any goroutine, more than once.
func (r *EventReader) Close() error { return r.rd.Close() }

// Run delivers events to fn until ctx ends (it then returns ctx.Err()) or
// the reader fails. It closes the reader when it returns: a reader is used
// by one Run.
func (r *EventReader) Run(ctx context.Context, fn func(dataplane.Event)) error {
	// Close, not SetDeadline: a deadline set from the AfterFunc's goroutine
	// would wait for the blocked Read's lock.
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	defer r.Close()
	for {
		ev, err := r.Read()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		fn(ev)
	}
}

var errShortEvent = errors.New("short event record")

func decodeEvent(b []byte, now time.Time, mono time.Duration) (dataplane.Event, error) {
	var e shim6Event
	if len(b) < binary.Size(e) {
		return dataplane.Event{}, errShortEvent
	}
	if err := binary.Read(bytes.NewReader(b), binary.NativeEndian, &e); err != nil {
		return dataplane.Event{}, err
	}
	ev := dataplane.Event{
		Src:     netip.AddrFrom16(e.Src),
		Dst:     netip.AddrFrom16(e.Dst),
		Packets: e.Packets,
		Bytes:   e.Bytes,
		Time:    wallClock(e.TimeNs, now, mono),
	}
	switch shim6EventKind(e.Kind) {
	case shim6EventKindEV_UNKNOWN_TAG:
		ev.Kind = dataplane.EventUnknownTag
		ev.Tag = e.Tag
	case shim6EventKindEV_TRIGGER:
		ev.Kind = dataplane.EventTrigger
	case shim6EventKindEV_ULP_TROUBLE:
		ev.Kind = dataplane.EventULPTrouble
		ev.LocalPort, ev.PeerPort, ev.SndUna = e.Sport, e.Dport, e.SndUna
	case shim6EventKindEV_FAST_REROUTE, shim6EventKindEV_PEER_MOVED:
		ev.Kind = dataplane.EventFastReroute
		if shim6EventKind(e.Kind) == shim6EventKindEV_PEER_MOVED {
			ev.Kind = dataplane.EventPeerMoved
		}
		ev.Tag = e.Tag
		ev.Pair = dataplane.Pair{Local: netip.AddrFrom16(e.PairLocal), Peer: netip.AddrFrom16(e.PairPeer)}
		if ev.Kind == dataplane.EventFastReroute {
			ev.LocalPort, ev.PeerPort, ev.SndUna = e.Sport, e.Dport, e.SndUna
		}
	default:
		return dataplane.Event{}, fmt.Errorf("unknown event kind %d", e.Kind)
	}
	return ev, nil
}
