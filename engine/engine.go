package engine

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/cga"
	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine/reap"
)

// Sender sends one Shim6 message (the IPv6 payload of protocol 140: the
// Shim6 header and body) from a local locator to a peer locator. The I/O
// layer adds the IPv6 header.
type Sender interface {
	Send(src, dst netip.Addr, msg []byte) error
}

// Deps are the engine's edges to the world. Only Sender is required.
type Deps struct {
	Sender Sender
	// DataPlane receives the mappings of the contexts; nil: none.
	DataPlane dataplane.DataPlane
	// Rand is the source of tags, nonces, secrets and timer jitter;
	// nil: crypto/rand.
	Rand io.Reader
	// Events, when set, receives every Event synchronously.
	Events func(Event)
}

// Engine is the Shim6 protocol engine: all contexts, their state machines
// and their single timer queue. It is not safe for concurrent use: one
// goroutine owns it and calls its Handle* and management methods, passing
// the current time explicitly.
type Engine struct {
	cfg  Config
	deps Deps
	rand *randSource
	val  *validators
	// lastVer: the verifier of the last PDS seen that is not interned.
	lastVer *cga.Verifier
	// ownVer: the verifier of our own PDS (nil without one).
	ownVer *cga.Verifier

	byTag     map[uint64]*Context
	byULID    map[ulidKey]*Context
	byNonce   map[uint32]*Context
	byPeerTag map[uint64]*Context
	pds       map[string]*pdsEntry
	nstate    [numStates]int

	timers timerQueue
	codec  codec

	reapCfg   *reap.Config
	reapLocal []reap.Locator
	acts      []reap.Action

	local localSet

	r1Limit, r1bisLimit, errLimit tokenBucket

	// testNextTag, when set, is the next CT(local) (tests of context
	// confusion only).
	testNextTag uint64

	stats Stats
	drops [numDrops]uint64

	// Scratch space reused by every message in and out.
	rx, tx        message
	txbuf, errbuf []byte
	valbuf        [validatorLen]byte
}

// ErrNoSender is returned by New without Deps.Sender.
var ErrNoSender = errors.New("engine: Deps.Sender is required")

// New returns an engine with cfg (defaults filled in) and deps.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if deps.Sender == nil {
		return nil, ErrNoSender
	}
	e := &Engine{
		cfg:        cfg,
		deps:       deps,
		rand:       newRandSource(deps.Rand),
		byTag:      make(map[uint64]*Context),
		byULID:     make(map[ulidKey]*Context),
		byNonce:    make(map[uint32]*Context),
		byPeerTag:  make(map[uint64]*Context),
		pds:        make(map[string]*pdsEntry),
		r1Limit:    newTokenBucket(cfg.R1Rate, cfg.R1Burst),
		r1bisLimit: newTokenBucket(cfg.R1bisRate, cfg.R1bisBurst),
		errLimit:   newTokenBucket(cfg.ErrorRate, cfg.ErrorBurst),
		txbuf:      make([]byte, 0, MaxControlMessage),
		errbuf:     make([]byte, 0, MaxControlMessage),
	}
	e.val = newValidators(e.rand)
	if len(cfg.PDS) > 0 {
		v, err := cga.NewVerifier(cfg.PDS)
		if err != nil {
			return nil, fmt.Errorf("%w: Config.PDS: %v", ErrConfig, err)
		}
		e.ownVer = v
	}
	e.reapCfg = &reap.Config{SendTimeout: cfg.SendTimeout, Rand: reapRand{e.rand}}
	if err := e.setLocal(cfg.LocalLocators); err != nil {
		return nil, err
	}
	e.rebuildReapLocal()
	if cfg.Insecure {
		e.emit(Event{Kind: EventInsecure, Reason: "locator verification disabled (Config.Insecure)"}, nil)
	}
	return e, nil
}

// emit reports ev, filled in with c's identity when c is not nil.
func (e *Engine) emit(ev Event, c *Context) {
	if e.deps.Events == nil {
		return
	}
	if c != nil {
		ev.LocalTag = c.localTag
		ev.LocalULID, ev.PeerULID, ev.FII = c.localULID, c.peerULID, c.fii
		ev.State = c.state
	}
	e.deps.Events(ev)
}

// send encodes m and hands it to the Sender.
func (e *Engine) send(src, dst netip.Addr, m *message) {
	b, err := e.codec.encode(e.txbuf[:0], m)
	if err != nil {
		e.stats.TxErrors++
		return
	}
	e.txbuf = b[:0]
	if err := e.deps.Sender.Send(src, dst, b); err != nil {
		e.stats.TxErrors++
		return
	}
	e.stats.TxMessages++
	if int(m.typ) < len(e.stats.TxByType) {
		e.stats.TxByType[m.typ]++
	}
}

// install pushes c's mapping to the data plane (RFC 5533 §11: only in
// ESTABLISHED and I2BIS-SENT do CT(peer) and Ls(peer) exist).
func (e *Engine) install(c *Context, now time.Time) {
	if e.deps.DataPlane == nil || c.peerTag == 0 || !c.state.hasPeer() {
		return
	}
	// Installing ends a fast reroute the data plane made.
	e.frResolve(c, now)
	m := dataplane.Mapping{
		LocalULID: c.localULID, PeerULID: c.peerULID,
		LocalLocator: c.lpLocal, PeerLocator: c.lpPeer,
		LocalTag: c.localTag, PeerTag: c.peerTag, FII: c.fii,
	}
	e.frFields(c, now, &m)
	err := e.deps.DataPlane.Install(m)
	if err != nil {
		e.stats.DataPlaneErrors++
		return
	}
	c.installed = true
}

func (e *Engine) uninstall(c *Context) {
	if !c.installed || e.deps.DataPlane == nil {
		c.installed = false
		return
	}
	if err := e.deps.DataPlane.Remove(c.localTag); err != nil {
		e.stats.DataPlaneErrors++
	}
	c.installed = false
}

// drop counts a discarded input.
func (e *Engine) drop(r dropReason) {
	e.drops[r]++
	e.stats.Dropped++
}

// validAddrs implements the address checks of RFC 5533 §12.3: neither
// address may be multicast or unspecified.
func validAddrs(src, dst netip.Addr) bool {
	return src.Is6() && dst.Is6() && !src.IsUnspecified() && !dst.IsUnspecified() &&
		!src.IsMulticast() && !dst.IsMulticast()
}

// HandlePacket processes one received protocol-140 packet: a control
// message, or a payload extension header the data plane could not map.
// src and dst are the IPv6 source and destination. b is not retained.
func (e *Engine) HandlePacket(now time.Time, src, dst netip.Addr, b []byte) {
	e.stats.RxPackets++
	if !validAddrs(src, dst) {
		e.drop(dropAddress) // RFC 5533 §12.3
		return
	}
	m := &e.rx
	m.reset()
	if err := e.codec.decode(b, m); err != nil {
		e.decodeFailed(now, src, dst, b, err)
		return
	}
	if m.payload {
		e.payloadUnknown(now, src, dst, m.tag)
		return
	}
	if int(m.typ) < len(e.stats.RxByType) {
		e.stats.RxByType[m.typ]++
	}
	switch m.typ {
	case typeI1:
		e.rcvI1(now, src, dst, m)
	case typeR1:
		e.rcvR1(now, src, dst, m)
	case typeI2:
		e.rcvI2(now, src, dst, m, b)
	case typeR2:
		e.rcvR2(now, src, dst, m, b)
	case typeR1bis:
		e.rcvR1bis(now, src, dst, m)
	case typeI2bis:
		e.rcvI2bis(now, src, dst, m, b)
	case typeUpdateReq:
		e.rcvUpdateReq(now, src, dst, m, b)
	case typeUpdateAck:
		e.rcvUpdateAck(now, src, dst, m)
	case typeKeepalive, typeProbe:
		e.rcvReap(now, src, dst, m, b)
	case typeError:
		e.rcvError(now, src, dst, m)
	}
}

// pending counts the contexts this host is establishing (I1-SENT,
// I2-SENT), bounded by Config.MaxPending.
func (e *Engine) pending() int { return e.nstate[StateI1Sent] + e.nstate[StateI2Sent] }

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Contexts = len(e.byULID)
	s.Pending = e.pending()
	s.Established = e.nstate[StateEstablished]
	s.Recovering = e.nstate[StateI2bisSent]
	s.NegativeCache = e.nstate[StateEFailed] + e.nstate[StateNoSupport]
	s.TimerQueue = e.timers.len()
	s.Drops = make(map[string]uint64)
	for r, n := range e.drops {
		if n != 0 {
			s.Drops[dropReason(r).String()] = n
		}
	}
	return s
}
