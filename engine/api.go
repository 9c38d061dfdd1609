package engine

import (
	"net/netip"
	"slices"
	"time"

	"github.com/goshim6/goshim6/engine/reap"
)

// Management calls (list, show, create, delete, update, explore, pin,
// unpin, stats) for the daemon's API.

// PeerLocatorInfo is one locator of Ls(peer).
type PeerLocatorInfo struct {
	Addr     netip.Addr
	Method   uint8
	Verified bool
	Flags    uint8
	Priority uint8
	Weight   uint8
}

// ContextInfo is a snapshot of one context.
type ContextInfo struct {
	LocalTag, PeerTag       uint64
	State                   State
	LocalULID, PeerULID     netip.Addr
	FII                     uint32
	LocalLocator            netip.Addr
	PeerLocator             netip.Addr
	PeerLocators            []PeerLocatorInfo
	PeerGeneration          uint32
	LocalGeneration         uint32
	Initiator               bool
	Pinned                  bool
	UpdatePending           bool
	PeerKeepaliveTimeout    time.Duration
	SendTimeout             time.Duration
	Created, LastActive     time.Time
	HoldUntil, RetransmitAt time.Time
	Reap                    string
}

func (e *Engine) info(c *Context) ContextInfo {
	ci := ContextInfo{
		LocalTag: c.localTag, PeerTag: c.peerTag, State: c.state,
		LocalULID: c.localULID, PeerULID: c.peerULID, FII: c.fii,
		LocalLocator: c.lpLocal, PeerLocator: c.lpPeer,
		PeerGeneration: c.peerGen, LocalGeneration: c.localGen,
		Initiator: c.initiator, UpdatePending: c.upd != nil,
		PeerKeepaliveTimeout: time.Duration(c.kaTimeout) * time.Second,
		SendTimeout:          e.sendTimeoutOf(c),
		Created:              fromNS(c.created), LastActive: fromNS(c.lastActive),
	}
	if c.state.negative() && c.expireAt != never {
		ci.HoldUntil = fromNS(c.expireAt)
	}
	if c.rtxAt != never {
		ci.RetransmitAt = fromNS(c.rtxAt)
	}
	for _, l := range c.peerLocs {
		ci.PeerLocators = append(ci.PeerLocators, PeerLocatorInfo{
			Addr: l.addr, Method: l.method, Verified: l.verified,
			Flags: l.pref.flags, Priority: l.pref.priority, Weight: l.pref.weight,
		})
	}
	if c.reap != nil {
		ci.Reap = c.reap.State().String()
		ci.Pinned = c.reap.Pinned()
	}
	return ci
}

// Contexts lists every context (all states, negative caches included),
// sorted by ULID pair and FII.
func (e *Engine) Contexts() []ContextInfo {
	out := make([]ContextInfo, 0, len(e.byULID))
	for _, c := range e.byULID {
		out = append(out, e.info(c))
	}
	slices.SortFunc(out, func(a, b ContextInfo) int {
		if r := a.LocalULID.Compare(b.LocalULID); r != 0 {
			return r
		}
		if r := a.PeerULID.Compare(b.PeerULID); r != 0 {
			return r
		}
		return int(int64(a.FII) - int64(b.FII))
	})
	return out
}

// Context returns the context with local tag t.
func (e *Engine) Context(t uint64) (ContextInfo, bool) {
	c := e.byTag[t]
	if c == nil {
		return ContextInfo{}, false
	}
	return e.info(c), true
}

// LookupULIDs returns the context of a ULID pair and FII.
func (e *Engine) LookupULIDs(local, peer netip.Addr, fii uint32) (ContextInfo, bool) {
	c := e.byULID[ulidKey{local.WithZone(""), peer.WithZone(""), fii}]
	if c == nil {
		return ContextInfo{}, false
	}
	return e.info(c), true
}

// CreateContext starts establishing the default context (FII 0) of a ULID
// pair by sending I1 (RFC 5533 §7.7).
func (e *Engine) CreateContext(now time.Time, localULID, peerULID netip.Addr) (ContextInfo, error) {
	c, err := e.initiate(now, localULID, peerULID, 0)
	if c == nil {
		return ContextInfo{}, err
	}
	return e.info(c), err
}

// ForkContext creates another context for the ULID pair of context t,
// with the lowest unused non-zero Forked Instance Identifier
// (RFC 5533 §4.2, §5.15.7).
func (e *Engine) ForkContext(now time.Time, t uint64) (ContextInfo, error) {
	c := e.byTag[t]
	if c == nil {
		return ContextInfo{}, ErrNotFound
	}
	fii := uint32(1)
	for e.byULID[ulidKey{c.localULID, c.peerULID, fii}] != nil {
		fii++
	}
	f, err := e.initiate(now, c.localULID, c.peerULID, fii)
	if f == nil {
		return ContextInfo{}, err
	}
	return e.info(f), err
}

// DeleteContext removes context t at once (RFC 5533 §9: unilateral).
func (e *Engine) DeleteContext(now time.Time, t uint64) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	e.deleteContext(now, c, "deleted by management")
	return nil
}

// Update sends an Update Request with the current locators and
// preferences to the peer of context t (RFC 5533 §10.1).
func (e *Engine) Update(now time.Time, t uint64) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	if c.state != StateEstablished {
		return ErrState
	}
	e.startUpdate(c, now)
	return nil
}

// Explore makes REAP look for a working pair now (RFC 5534 §4.2).
func (e *Engine) Explore(now time.Time, t uint64) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	if c.state != StateEstablished {
		return ErrState
	}
	e.reapTrouble(c, now, "management")
	e.schedule(c, now)
	return nil
}

// Pin fixes the current locator pair of context t; REAP no longer moves
// it until Unpin. The peer locator must be verified.
func (e *Engine) Pin(now time.Time, t uint64, local, peer netip.Addr) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	if c.state != StateEstablished {
		return ErrState
	}
	local, peer = local.WithZone(""), peer.WithZone("")
	if !c.peerHas(peer) || !e.localOK(c, local) {
		return ErrLocator
	}
	if c.reap == nil {
		return ErrState
	}
	e.reapApply(c, now, c.reap.Pin(now, reap.Pair{Local: local, Peer: peer}, e.acts[:0]))
	e.schedule(c, now)
	return nil
}

// SetSendTimeout sets the REAP Send Timeout of context t (RFC 5534 §7;
// 0 restores Config.SendTimeout) and tells the peer in an Update Request
// with the Keepalive Timeout option (RFC 5534 §5.3: MUST when not the
// default). Whole seconds, 1 s to 65535 s.
func (e *Engine) SetSendTimeout(now time.Time, t uint64, d time.Duration) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	if c.state != StateEstablished || c.reap == nil {
		return ErrState
	}
	if d != 0 && (d < time.Second || d > 0xffff*time.Second) {
		return ErrConfig
	}
	c.sendTimeout = uint16(d / time.Second)
	c.reap.SetSendTimeout(e.sendTimeoutOf(c))
	e.startUpdate(c, now)
	return nil
}

// sendTimeoutOf is the Send Timeout in use on c.
func (e *Engine) sendTimeoutOf(c *Context) time.Duration {
	if c.sendTimeout != 0 {
		return time.Duration(c.sendTimeout) * time.Second
	}
	return e.cfg.SendTimeout
}

// Unpin lets REAP choose the pair of context t again.
func (e *Engine) Unpin(now time.Time, t uint64) error {
	c := e.byTag[t]
	if c == nil {
		return ErrNotFound
	}
	if c.reap != nil {
		e.reapApply(c, now, c.reap.Unpin(now, e.acts[:0]))
		e.schedule(c, now)
	}
	return nil
}
