package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goshim6/goshim6/api"
	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/engine"
)

// engineCore adapts *engine.Engine to Core: it converts to api types, maps
// engine errors to api codes, and keeps what the engine does not (last
// switch per context, failover timing, handshake roles) from its events.
type engineCore struct {
	e       *engine.Engine
	emit    func(api.Event)
	traffic func(uint64) (dataplane.Activity, bool)
	// sourceFor picks the local ULID for a peer when the caller gave none.
	sourceFor func(peer netip.Addr) (netip.Addr, error)
	local     []LocalLocator
	insecure  bool

	ctx map[uint64]*ctxExtra
}

// ctxExtra is what the adapter remembers per local tag.
type ctxExtra struct {
	initiator        bool
	up               bool
	lastSwitch       time.Time
	lastSwitchReason string
	switches         uint64
	exploringSince   time.Time
}

// NewEngineCore builds the real protocol engine for the daemon.
func NewEngineCore(p CoreParams) (Core, error) {
	cfg := p.Config
	src := p.SourceFor
	if src == nil {
		src = kernelSource
	}
	ec := &engineCore{
		emit:      p.Emit,
		traffic:   p.Traffic,
		sourceFor: src,
		local:     p.Locators,
		insecure:  cfg.Security.Mode == SecurityInsecure,
		ctx:       make(map[uint64]*ctxExtra),
	}
	idle := cfg.Limits.GCIdle
	if idle == 0 {
		idle = 100 * 365 * 24 * time.Hour
	}
	ecfg := engine.Config{
		LocalLocators: toEngineLocators(p.Locators),
		Insecure:      ec.insecure,
		SendTimeout:   cfg.REAP.SendTimeout,
		IdleTimeout:   idle,
		MaxContexts:   cfg.Limits.MaxContexts,
		FastReroute:   cfg.FastReroute(),
	}
	if p.Identity != nil {
		ecfg.PDS = p.Identity.PDS
		ecfg.PrivateKey = p.Identity.Key
	}
	e, err := engine.New(ecfg, engine.Deps{Sender: p.Sender, DataPlane: p.DataPlane, Events: ec.onEvent})
	if err != nil {
		return nil, err
	}
	ec.e = e
	return ec, nil
}

// kernelSource asks the kernel which source address it would use towards
// peer (a connected UDP socket sends nothing).
func kernelSource(peer netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, 9)))
	if err != nil {
		return netip.Addr{}, api.Errorf(api.CodeFailedPrecondition, "no route to %s: %v", peer, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

func toEngineLocators(ls []LocalLocator) []engine.LocalLocator {
	out := make([]engine.LocalLocator, 0, len(ls))
	for _, l := range ls {
		el := engine.LocalLocator{Addr: l.Addr, Method: l.Method}
		if l.Deprecated {
			// Still usable, but ask peers to prefer the others
			// (RFC 5533 §5.15.3: lower priority value is preferred).
			el.Priority = 1
		}
		out = append(out, el)
	}
	return out
}

func (c *engineCore) extra(tag uint64) *ctxExtra {
	x := c.ctx[tag]
	if x == nil {
		x = &ctxExtra{}
		c.ctx[tag] = x
	}
	return x
}

// onEvent converts an engine event and keeps per-context history. Runs on
// the loop goroutine, inside an engine call: it must not call the engine.
func (c *engineCore) onEvent(ev engine.Event) {
	a := api.Event{Time: ev.Time, Kind: ev.Kind.String(), Tag: ev.LocalTag, LocalULID: ev.LocalULID, PeerULID: ev.PeerULID, Message: ev.Reason}
	attrs := map[string]string{}
	if ev.FII != 0 {
		attrs["fii"] = strconv.FormatUint(uint64(ev.FII), 10)
	}
	if ev.LocalTag != 0 {
		attrs["state"] = strings.ToLower(ev.State.String())
	}
	var x *ctxExtra
	if ev.LocalTag != 0 {
		x = c.extra(ev.LocalTag)
	}
	role := func() string {
		if x != nil && x.initiator {
			return "initiator"
		}
		return "responder"
	}
	switch ev.Kind {
	case engine.EventStateChange:
		if x != nil && (ev.State == engine.StateI1Sent || ev.State == engine.StateI2Sent) {
			x.initiator = true
		}
	case engine.EventContextUp:
		if x != nil {
			x.up = true
		}
		attrs[AttrRole] = role()
		attrs["local_locator"], attrs["peer_locator"] = ev.Local.String(), ev.Peer.String()
	case engine.EventContextDown:
		attrs[AttrRole] = role()
		if x != nil && !x.up {
			attrs[AttrResult] = "failed"
		}
		delete(c.ctx, ev.LocalTag)
	case engine.EventReapState:
		if x != nil {
			// An episode starts when REAP leaves Operational: to
			// Exploring, or straight to InboundOk when the peer's
			// probe came first (with fast reroute the peer often
			// moves before our own event is handled).
			if strings.Contains(ev.Reason, "-> exploring") || strings.HasPrefix(ev.Reason, "operational -> ") {
				if x.exploringSince.IsZero() {
					x.exploringSince = ev.Time
				}
			} else if strings.Contains(ev.Reason, "-> operational") {
				x.exploringSince = time.Time{}
			}
		}
	case engine.EventLocatorSwitch:
		attrs["local_locator"], attrs["peer_locator"] = ev.Local.String(), ev.Peer.String()
		attrs[AttrReason] = ev.Reason
		a.Message = fmt.Sprintf("now %s > %s", ev.Local, ev.Peer)
		if x != nil {
			x.lastSwitch, x.lastSwitchReason = ev.Time, ev.Reason
			x.switches++
			if !x.exploringSince.IsZero() {
				attrs[AttrDuration] = strconv.FormatFloat(ev.Time.Sub(x.exploringSince).Seconds(), 'f', 3, 64)
				x.exploringSince = time.Time{}
			}
		}
	case engine.EventVerificationFailed:
		attrs[AttrMethod] = c.methodOf(ev)
		if ev.Peer.IsValid() {
			attrs["locator"] = ev.Peer.String()
		}
	case engine.EventPeerError:
		attrs["code"] = strconv.Itoa(int(ev.Code))
		if ev.Peer.IsValid() {
			attrs["from"] = ev.Peer.String()
		}
	case engine.EventRecovery:
		if ev.Peer.IsValid() {
			attrs["peer_locator"] = ev.Peer.String()
		}
	}
	if len(attrs) > 0 {
		a.Attrs = attrs
	}
	if c.emit != nil {
		c.emit(a)
	}
}

func (c *engineCore) methodOf(ev engine.Event) string {
	switch {
	case strings.Contains(ev.Reason, "CGA"), strings.Contains(ev.Reason, "signature"):
		return "cga"
	case strings.Contains(strings.ToLower(ev.Reason), "hba"), ev.Peer.IsValid():
		return "hba"
	}
	return "unknown"
}

// Inputs.

func (c *engineCore) HandlePacket(now time.Time, src, dst netip.Addr, b []byte) {
	c.e.HandlePacket(now, src, dst, b)
}
func (c *engineCore) HandleICMP(now time.Time, src netip.Addr, typ, code uint8, inv []byte) {
	c.e.HandleICMP(now, src, typ, code, inv)
}
func (c *engineCore) HandleTimer(now time.Time)       { c.e.HandleTimer(now) }
func (c *engineCore) NextDeadline() (time.Time, bool) { return c.e.NextDeadline() }
func (c *engineCore) HandleActivity(now time.Time, a dataplane.Activity) {
	c.e.HandleActivity(now, a)
}
func (c *engineCore) PathTrouble(local, peer netip.Addr) bool { return c.e.PathTrouble(local, peer) }

func (c *engineCore) HandleDataPlaneEvent(now time.Time, ev dataplane.Event) {
	c.e.HandleDataPlaneEvent(now, ev)
}

func (c *engineCore) SetLocalLocators(now time.Time, locs []LocalLocator) {
	if slices.Equal(locs, c.local) {
		return
	}
	c.local = slices.Clone(locs)
	if err := c.e.SetLocalLocators(now, toEngineLocators(locs)); err != nil {
		c.emit(api.Event{Time: now, Kind: api.EventLocalLocators, Message: "refused by the engine: " + err.Error()})
		return
	}
	addrs := make([]string, len(locs))
	for i, l := range locs {
		addrs[i] = l.Addr.String()
	}
	c.emit(api.Event{Time: now, Kind: api.EventLocalLocators, Message: strings.Join(addrs, " ")})
}

// Management.

func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrNotFound):
		return api.Errorf(api.CodeNotFound, "no such context")
	case errors.Is(err, engine.ErrExists):
		return api.Errorf(api.CodeExists, "a context for this ULID pair exists")
	case errors.Is(err, engine.ErrState):
		return api.Errorf(api.CodeFailedPrecondition, "the context is not established")
	case errors.Is(err, engine.ErrHolddown):
		return api.Errorf(api.CodeFailedPrecondition, "the peer showed no Shim6 support recently (hold-down, RFC 5533 §7.8)")
	case errors.Is(err, engine.ErrLimit):
		return api.Errorf(api.CodeResourceExhausted, "context limit reached")
	case errors.Is(err, engine.ErrAddress):
		return api.Errorf(api.CodeInvalidArgument, "not a unicast IPv6 address")
	case errors.Is(err, engine.ErrLocator):
		return api.Errorf(api.CodeInvalidArgument, "locator not usable: not ours, or not a verified locator of the peer")
	}
	return err
}

// resolve finds the local tag a reference names.
func (c *engineCore) resolve(ref api.ContextRef) (uint64, error) {
	if ref.Tag != 0 {
		if _, ok := c.e.Context(ref.Tag); !ok {
			return 0, api.Errorf(api.CodeNotFound, "no context with tag %s", api.FormatTag(ref.Tag))
		}
		return ref.Tag, nil
	}
	var found []engine.ContextInfo
	for _, ci := range c.e.Contexts() {
		if ci.PeerULID == ref.PeerULID && ci.FII == 0 && (!ref.LocalULID.IsValid() || ci.LocalULID == ref.LocalULID) {
			found = append(found, ci)
		}
	}
	switch len(found) {
	case 0:
		return 0, api.Errorf(api.CodeNotFound, "no context with peer %s", ref)
	case 1:
		return found[0].LocalTag, nil
	}
	return 0, api.Errorf(api.CodeInvalidArgument, "%d contexts have peer ULID %s: name the local ULID too", len(found), ref.PeerULID)
}

func (c *engineCore) Contexts(now time.Time) []api.Context {
	cis := c.e.Contexts()
	out := make([]api.Context, 0, len(cis))
	for _, ci := range cis {
		out = append(out, c.convert(ci, false))
	}
	return out
}

func (c *engineCore) Context(now time.Time, ref api.ContextRef) (api.Context, error) {
	tag, err := c.resolve(ref)
	if err != nil {
		return api.Context{}, err
	}
	ci, _ := c.e.Context(tag)
	return c.convert(ci, true), nil
}

func (c *engineCore) CreateContext(now time.Time, p api.CreateParams) (api.Context, error) {
	local := p.LocalULID
	if !local.IsValid() {
		var err error
		if local, err = c.pickULID(p.PeerULID); err != nil {
			return api.Context{}, err
		}
	}
	ci, err := c.e.CreateContext(now, local, p.PeerULID)
	if err != nil {
		return api.Context{}, apiErr(err)
	}
	c.extra(ci.LocalTag).initiator = true
	c.emit(api.Event{Time: now, Kind: api.EventContextCreated, Tag: ci.LocalTag, LocalULID: ci.LocalULID, PeerULID: ci.PeerULID, Message: "by management"})
	return c.convert(ci, true), nil
}

// pickULID chooses the local ULID for a peer: the address the host would
// use if peers can verify it, else the verifiable locator in the same /64
// (the HBA address of that prefix), else the first verifiable locator.
func (c *engineCore) pickULID(peer netip.Addr) (netip.Addr, error) {
	if len(c.local) == 0 {
		return netip.Addr{}, api.Errorf(api.CodeFailedPrecondition, "no local locator that peers can verify")
	}
	src, err := c.sourceFor(peer)
	if err != nil {
		return netip.Addr{}, err
	}
	pfx, _ := src.Prefix(64)
	best := c.local[0].Addr
	for _, l := range c.local {
		if l.Addr == src {
			return src, nil
		}
		if pfx.Contains(l.Addr) && !pfx.Contains(best) {
			best = l.Addr
		}
	}
	return best, nil
}

func (c *engineCore) DeleteContext(now time.Time, ref api.ContextRef) error {
	tag, err := c.resolve(ref)
	if err != nil {
		return err
	}
	return apiErr(c.e.DeleteContext(now, tag))
}

func (c *engineCore) Update(now time.Time, ref api.ContextRef) error {
	tag, err := c.resolve(ref)
	if err != nil {
		return err
	}
	return apiErr(c.e.Update(now, tag))
}

func (c *engineCore) Explore(now time.Time, ref api.ContextRef) error {
	tag, err := c.resolve(ref)
	if err != nil {
		return err
	}
	return apiErr(c.e.Explore(now, tag))
}

func (c *engineCore) Pin(now time.Time, p api.PinParams) error {
	tag, err := c.resolve(p.ContextRef)
	if err != nil {
		return err
	}
	return apiErr(c.e.Pin(now, tag, p.LocalLocator, p.PeerLocator))
}

func (c *engineCore) Unpin(now time.Time, ref api.ContextRef) error {
	tag, err := c.resolve(ref)
	if err != nil {
		return err
	}
	return apiErr(c.e.Unpin(now, tag))
}

func (c *engineCore) SetSendTimeout(now time.Time, ref api.ContextRef, d time.Duration) error {
	tag, err := c.resolve(ref)
	if err != nil {
		return err
	}
	if err := c.e.SetSendTimeout(now, tag, d); errors.Is(err, engine.ErrConfig) {
		return api.Errorf(api.CodeInvalidArgument, "send timeout %v out of range (1s to 65535s)", d)
	} else if err != nil {
		return apiErr(err)
	}
	return nil
}

func (c *engineCore) Locators(now time.Time) api.Locators {
	l := api.Locators{Local: c.localAPI()}
	for _, ci := range c.e.Contexts() {
		l.Generation = max(l.Generation, ci.LocalGeneration)
	}
	return l
}

func (c *engineCore) localAPI() []api.Locator {
	out := make([]api.Locator, 0, len(c.local))
	for _, x := range c.local {
		st := "usable"
		if x.Deprecated {
			st = "deprecated"
		}
		out = append(out, api.Locator{Addr: x.Addr, Interface: x.Interface, Verification: methodName(x.Method), State: st})
	}
	return out
}

func methodName(m uint8) string {
	switch m {
	case MethodHBA:
		return "hba"
	case MethodCGA:
		return "cga"
	}
	return "none"
}

func (c *engineCore) convert(ci engine.ContextInfo, detail bool) api.Context {
	x := api.Context{
		LocalTag: ci.LocalTag, PeerTag: ci.PeerTag, FII: ci.FII,
		LocalULID: ci.LocalULID, PeerULID: ci.PeerULID,
		LocalLocator: ci.LocalLocator, PeerLocator: ci.PeerLocator,
		State: strings.ToLower(ci.State.String()), REAPState: ci.Reap, Pinned: ci.Pinned,
		Created:                     ci.Created,
		PeerKeepaliveTimeoutSeconds: uint32(ci.PeerKeepaliveTimeout / time.Second),
	}
	if e := c.ctx[ci.LocalTag]; e != nil {
		x.LastSwitch, x.LastSwitchReason, x.Switches = e.lastSwitch, e.lastSwitchReason, e.switches
	}
	if c.traffic != nil {
		if a, ok := c.traffic(ci.LocalTag); ok {
			x.Traffic = api.Traffic{TxPackets: a.TxPackets, TxBytes: a.TxBytes, RxPackets: a.RxPackets, RxBytes: a.RxBytes,
				LastSent: a.LastSent, LastReceived: a.LastReceived}
		}
	}
	if !detail {
		return x
	}
	x.LocalLocators = c.localAPI()
	for _, pl := range ci.PeerLocators {
		st := "unverified"
		switch {
		case pl.Verified:
			st = "verified"
		case c.insecure:
			st = "unverified (insecure mode)"
		}
		l := api.Locator{Addr: pl.Addr, Verification: methodName(pl.Method), State: st, Preference: pl.Priority, Flags: pl.Flags}
		if pl.Addr == ci.PeerLocator {
			l.Reachable = "current"
		}
		x.PeerLocators = append(x.PeerLocators, l)
	}
	return x
}

func (c *engineCore) Counters() map[string]uint64 { return statsCounters(c.e.Stats()) }

// statsCounters names every counter of engine.Stats (a test checks that
// none is left out).
func statsCounters(s engine.Stats) map[string]uint64 {
	out := map[string]uint64{
		"engine_rx_packets":              s.RxPackets,
		"engine_dropped":                 s.Dropped,
		"engine_tx_messages":             s.TxMessages,
		"engine_tx_errors":               s.TxErrors,
		"engine_r1_rate_limited":         s.R1Limited,
		"engine_r1bis_rate_limited":      s.R1bisLimited,
		"engine_errors_rate_limited":     s.ErrorsLimited,
		"engine_contexts_created":        s.ContextsCreated,
		"engine_handshakes_established":  s.HandshakesEstablished,
		"engine_handshakes_failed":       s.HandshakesFailed,
		"engine_no_support":              s.NoSupport,
		"engine_recoveries":              s.Recoveries,
		"engine_contexts_removed":        s.ContextsRemoved,
		"engine_contexts_idle":           s.ContextsIdle,
		"engine_contexts_confused":       s.ContextsConfused,
		"engine_contexts_unreachable":    s.ContextsUnreachable,
		"engine_ulp_hints_ignored":       s.ULPHintsIgnored,
		"engine_fast_reroutes_engaged":   s.FastReroutesEngaged,
		"engine_fast_reroutes_confirmed": s.FastReroutesConfirmed,
		"engine_fast_reroutes_undone":    s.FastReroutesUndone,
		"engine_peer_moves_followed":     s.PeerMovesFollowed,
		"engine_verification_failures":   s.VerificationFailures,
		"engine_updates_sent":            s.UpdatesSent,
		"engine_updates_acked":           s.UpdatesAcked,
		"engine_locator_switches":        s.LocatorSwitches,
		"engine_dataplane_errors":        s.DataPlaneErrors,
		"engine_limit_drops":             s.LimitDrops,
		// REAP probes (RFC 5534 §5.2, message type 67), for the
		// shim6_probes_total metric.
		"probes_sent":     s.TxByType[msgTypeProbe],
		"probes_received": s.RxByType[msgTypeProbe],
	}
	for t := range s.RxByType {
		if n := s.RxByType[t]; n != 0 && t != msgTypeProbe {
			out["engine_rx_"+msgTypeName(t)] = n
		}
		if n := s.TxByType[t]; n != 0 && t != msgTypeProbe {
			out["engine_tx_"+msgTypeName(t)] = n
		}
	}
	for reason, n := range s.Drops {
		out["engine_drop_"+strings.ReplaceAll(reason, "-", "_")] = n
	}
	return out
}

// Shim6 message types (RFC 5533 §5, RFC 5534 §5).
const msgTypeProbe = 67

func msgTypeName(t int) string {
	switch t {
	case 1:
		return "i1"
	case 2:
		return "r1"
	case 3:
		return "i2"
	case 4:
		return "r2"
	case 5:
		return "r1bis"
	case 6:
		return "i2bis"
	case 64:
		return "update_request"
	case 65:
		return "update_ack"
	case 66:
		return "keepalive"
	case 67:
		return "probe"
	case 68:
		return "error"
	}
	return "type" + strconv.Itoa(t)
}
