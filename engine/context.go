package engine

import (
	"net/netip"

	"github.com/goshim6/goshim6/engine/reap"
)

// peerLocator is one locator of Ls(peer) (RFC 5533 §6.1).
type peerLocator struct {
	addr   netip.Addr
	method uint8
	pref   prefElem
	// verified: HBA/CGA verification succeeded (RFC 5533 §7.2). An
	// unverified locator is kept for display only and never selected.
	verified bool
}

// handshake is the state of an exchange in progress (I1-SENT, I2-SENT,
// I2BIS-SENT; RFC 5533 §6.2); it is dropped once ESTABLISHED.
type handshake struct {
	initNonce uint32
	respNonce uint32
	validator []byte
	// r1bisTag: CT(R1bis), the Packet Context Tag of the R1bis being
	// answered (RFC 5533 §6.2, I2BIS-SENT).
	r1bisTag uint64
	// local, peer: the locator pair of an I2bis (the R1bis's, reversed).
	local, peer netip.Addr
	retries     int
	lastNudge   int64
	// held: the last Update Request received in I2-SENT or I2BIS-SENT
	// (raw, with its addresses), processed once ESTABLISHED
	// (RFC 5533 §10.4).
	held             []byte
	heldSrc, heldDst netip.Addr
}

// pendingUpdate is the one outstanding Update Request (RFC 5533 §10.3).
type pendingUpdate struct {
	nonce   uint32
	retries int
	at      int64 // next retransmission
}

// ulidKey identifies a context by ULID pair and FII (RFC 5533 §12.4).
type ulidKey struct {
	local, peer netip.Addr
	fii         uint32
}

// Context is one ULID-pair context (RFC 5533 §6.1). It is owned by the
// engine; callers see ContextInfo snapshots.
type Context struct {
	state     State
	dead      bool
	initiator bool
	installed bool // a mapping is in the data plane
	// peerGenSet: peerGen holds a received generation.
	peerGenSet bool

	heapIdx int32
	due     int64

	fii                 uint32
	localULID, peerULID netip.Addr
	localTag, peerTag   uint64
	// Lp(local), Lp(peer): the current locator pair.
	lpLocal, lpPeer netip.Addr
	peerLocs        []peerLocator
	peerGen         uint32
	// localGen: the generation of the local Locator List last sent to the
	// peer (0 with localGenSent false: none sent yet).
	localGen     uint32
	localGenSent bool
	// peerPDS: the peer's CGA Parameter Data Structure, interned.
	peerPDS *pdsEntry
	// kaTimeout: the peer's Keepalive Timeout option, seconds (0: none).
	kaTimeout uint16
	// sendTimeout: this context's own REAP Send Timeout in seconds
	// (0: Config.SendTimeout).
	sendTimeout uint16

	hs   *handshake
	upd  *pendingUpdate
	reap *reap.Machine

	rtxAt    int64 // establishment/recovery retransmission
	expireAt int64 // give up on establishment / end of holddown

	created    int64
	lastActive int64
	// lastHeard: the last packet from the peer on this context (payload
	// seen by the data plane, or any control message).
	lastHeard int64
	// Watermarks of the data plane's activity report: instants and
	// packet counters.
	lastSent, lastRecv int64
	txPkts, rxPkts     uint64

	// peerNext chains contexts that share CT(peer) (e.byPeerTag).
	peerNext *Context

	// fr: fast-reroute state, from the first move on (fastreroute.go).
	fr *frState
	// frOn: the installed mapping has a backup; frAfter: its
	// BackupAfter.
	frOn    bool
	frAfter int64
}

func (c *Context) key() ulidKey { return ulidKey{c.localULID, c.peerULID, c.fii} }

// fallbackPeer is the peer locator to use when Lp(peer) left Ls(peer): the
// ULID if still there, else the first usable verified locator.
func (c *Context) fallbackPeer() netip.Addr {
	if c.peerHas(c.peerULID) {
		return c.peerULID
	}
	for i := range c.peerLocs {
		if l := &c.peerLocs[i]; l.verified && l.pref.flags&PrefBroken == 0 {
			return l.addr
		}
	}
	return c.peerULID
}

// peerHas reports whether a is a verified locator of Ls(peer). Until the
// peer sent a Locator List, Ls(peer) is its ULID alone; afterwards it is the
// list (a peer may drop its ULID from it when that address goes away).
func (c *Context) peerHas(a netip.Addr) bool {
	if !c.peerGenSet {
		return a == c.peerULID
	}
	for i := range c.peerLocs {
		if c.peerLocs[i].addr == a {
			return c.peerLocs[i].verified
		}
	}
	return false
}

// peerOverlap reports whether two contexts' Ls(peer) share a locator
// (RFC 5533 §7.15).
func (c *Context) peerOverlap(o *Context) bool {
	if o.peerHas(c.peerULID) || c.peerHas(o.peerULID) {
		return true
	}
	for i := range c.peerLocs {
		if c.peerLocs[i].verified && o.peerHas(c.peerLocs[i].addr) {
			return true
		}
	}
	return false
}

// ---- the context tables -------------------------------------------------

// insert files c under its ULID key and, when set, its local tag.
func (e *Engine) insert(c *Context) {
	e.byULID[c.key()] = c
	if c.localTag != 0 {
		e.byTag[c.localTag] = c
	}
	e.nstate[c.state]++
}

// setState moves c to s and keeps the counters and events right.
func (e *Engine) setState(c *Context, s State, nowNS int64) {
	if c.state == s {
		return
	}
	e.nstate[c.state]--
	e.nstate[s]++
	c.state = s
	e.emit(Event{Time: fromNS(nowNS), Kind: EventStateChange}, c)
}

// setNonce replaces the initiator nonce under which c is found by R1/R2.
func (e *Engine) setNonce(c *Context, n uint32) {
	if c.hs == nil {
		c.hs = &handshake{}
	}
	if old := c.hs.initNonce; old != 0 && e.byNonce[old] == c {
		delete(e.byNonce, old)
	}
	c.hs.initNonce = n
	if n != 0 {
		e.byNonce[n] = c
	}
}

// dropHandshake frees the exchange state once it is no longer needed.
func (e *Engine) dropHandshake(c *Context) {
	if c.hs == nil {
		return
	}
	if n := c.hs.initNonce; n != 0 && e.byNonce[n] == c {
		delete(e.byNonce, n)
	}
	c.hs = nil
	c.rtxAt = never
}

// setPeerTag records CT(peer) and files c under it.
func (e *Engine) setPeerTag(c *Context, t uint64) {
	if c.peerTag == t {
		return
	}
	e.unlinkPeerTag(c)
	c.peerTag = t
	if t != 0 {
		c.peerNext = e.byPeerTag[t]
		e.byPeerTag[t] = c
	}
}

func (e *Engine) unlinkPeerTag(c *Context) {
	if c.peerTag == 0 {
		return
	}
	head := e.byPeerTag[c.peerTag]
	if head == c {
		if c.peerNext == nil {
			delete(e.byPeerTag, c.peerTag)
		} else {
			e.byPeerTag[c.peerTag] = c.peerNext
		}
	} else {
		for p := head; p != nil; p = p.peerNext {
			if p.peerNext == c {
				p.peerNext = c.peerNext
				break
			}
		}
	}
	c.peerNext = nil
	c.peerTag = 0
}

// lookupPeerTag finds the context with CT(peer) = t whose current locator
// pair is (local, peer) (RFC 5533 §12.4: R1bis, Error and ICMP dispatch).
// An invalid local or peer matches any locator of the context.
func (e *Engine) lookupPeerTag(t uint64, local, peer netip.Addr) *Context {
	for c := e.byPeerTag[t]; c != nil; c = c.peerNext {
		if (!local.IsValid() || c.lpLocal == local || e.localHas(local)) &&
			(!peer.IsValid() || c.lpPeer == peer || c.peerHas(peer)) {
			return c
		}
	}
	return nil
}

// freeTag releases CT(local) (negative-cache entries keep none).
func (e *Engine) freeTag(c *Context) {
	if c.localTag != 0 {
		if e.byTag[c.localTag] == c {
			delete(e.byTag, c.localTag)
		}
		c.localTag = 0
	}
}

// remove takes c out of every table and the data plane. It does not emit.
func (e *Engine) remove(c *Context) {
	if c.dead {
		return
	}
	e.nstate[c.state]--
	c.dead = true
	e.timers.remove(c)
	e.dropHandshake(c)
	e.uninstall(c)
	e.unlinkPeerTag(c)
	e.freeTag(c)
	if e.byULID[c.key()] == c {
		delete(e.byULID, c.key())
	}
	e.releasePDS(c)
	c.reap = nil
	c.upd = nil
}
