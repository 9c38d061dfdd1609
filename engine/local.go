package engine

import (
	"fmt"

	"github.com/goshim6/goshim6/cga"
	"net/netip"
	"slices"
	"time"
)

// localSet is Ls(local) (RFC 5533 §6.1): the host's locators, the subset
// advertised in Locator List options, its generation and signature.
type localSet struct {
	all []LocalLocator
	// adv: locators with a verification method, in Locator List order.
	adv []LocalLocator
	gen uint32
	// sig: CGA Signature over gen and the CGA locators of adv
	// (RFC 5533 §5.15.5); nil when adv has none.
	sig []byte
	// prefLen: Element Len of our Locator Preferences option, 0 when all
	// locators have equal preference and the option is left out
	// (RFC 5533 §5.6).
	prefLen uint8
}

func (e *Engine) localHas(a netip.Addr) bool {
	for i := range e.local.all {
		if e.local.all[i].Addr == a {
			return true
		}
	}
	return false
}

// localUsable reports whether a may be used as Lp(local): it is one of our
// locators and not marked BROKEN.
func (e *Engine) localUsable(a netip.Addr) bool {
	for i := range e.local.all {
		if e.local.all[i].Addr == a {
			return e.local.all[i].Flags&PrefBroken == 0
		}
	}
	return false
}

// advertises reports whether contexts with local ULID u carry our Locator
// List: our PDS must belong to u (u is its CGA or in its HBA set), or the
// peer could not tie the list to u (RFC 5533 §7.2, §7.13). The ULID itself
// need not be a current locator (it may have gone away).
func (e *Engine) advertises(u netip.Addr) bool {
	return e.ownVer != nil && len(e.local.adv) > 0 && e.ownVer.Verify(u) == nil
}

// srcFor picks the source locator of a control message of c: Lp(local)
// while it is usable, else another locator the peer knows (after an
// address went away, RFC 5533 §10.1).
func (e *Engine) srcFor(c *Context) netip.Addr {
	if e.localOK(c, c.lpLocal) && (len(e.local.all) == 0 || e.localUsable(c.lpLocal)) {
		return c.lpLocal
	}
	return e.anyLocal(c)
}

// anyLocal returns a locator the peer of c knows for us (localOK), not
// BROKEN if possible: the first advertised one, or the ULID.
func (e *Engine) anyLocal(c *Context) netip.Addr {
	if e.advertises(c.localULID) {
		for _, l := range e.local.adv {
			if l.Flags&PrefBroken == 0 {
				return l.Addr
			}
		}
		return e.local.adv[0].Addr
	}
	return c.localULID
}

// setLocal validates and installs a new local locator set with a fresh
// random generation (RFC 5533 §10.1). It reports whether anything changed.
func (e *Engine) setLocal(locs []LocalLocator) error {
	if len(locs) > maxLocalLocators {
		return fmt.Errorf("%w: %d local locators, at most %d", ErrConfig, len(locs), maxLocalLocators)
	}
	var ls localSet
	for _, l := range locs {
		if !l.Addr.Is6() || l.Addr.Is4In6() || l.Addr.IsUnspecified() || l.Addr.IsMulticast() {
			return fmt.Errorf("%w: local locator %v is not a unicast IPv6 address", ErrConfig, l.Addr)
		}
		l.Addr = l.Addr.WithZone("")
		if slices.ContainsFunc(ls.all, func(o LocalLocator) bool { return o.Addr == l.Addr }) {
			return fmt.Errorf("%w: duplicate local locator %v", ErrConfig, l.Addr)
		}
		switch l.Method {
		case 0:
		case MethodHBA:
			if len(e.cfg.PDS) == 0 {
				return fmt.Errorf("%w: HBA locator %v without Config.PDS", ErrConfig, l.Addr)
			}
		case MethodCGA:
			if len(e.cfg.PDS) == 0 || e.cfg.PrivateKey == nil {
				return fmt.Errorf("%w: CGA locator %v needs Config.PDS and Config.PrivateKey", ErrConfig, l.Addr)
			}
		default:
			return fmt.Errorf("%w: locator %v: unknown verification method %d", ErrConfig, l.Addr, l.Method)
		}
		ls.all = append(ls.all, l)
		if l.Method != 0 {
			ls.adv = append(ls.adv, l)
			switch {
			case l.Priority != 0 || l.Weight != 0:
				ls.prefLen = 3
			case l.Flags != 0 && ls.prefLen == 0:
				ls.prefLen = 1
			}
		}
	}
	ls.gen = e.rand.uint32()
	var cgaLocs []netip.Addr
	for _, l := range ls.adv {
		if l.Method == MethodCGA {
			cgaLocs = append(cgaLocs, l.Addr)
		}
	}
	if len(cgaLocs) > 0 {
		sig, err := cga.SignLocators(e.cfg.PrivateKey, ls.gen, cgaLocs)
		if err != nil {
			return fmt.Errorf("%w: signing the locator list: %v", ErrConfig, err)
		}
		ls.sig = sig
	}
	if err := fitsI2(e.cfg, &ls); err != nil {
		return err
	}
	e.local = ls
	return nil
}

// fitsI2 checks that the largest message carrying our locators (an I2bis
// with every option) stays within 1280 octets with its IPv6 header
// (RFC 5533 §5.1), so that no message fails to encode later.
func fitsI2(cfg Config, ls *localSet) error {
	if len(ls.adv) == 0 || len(cfg.PDS) == 0 {
		return nil
	}
	m := &message{typ: typeI2bis, tag: 1, ptag: 1, validator: make([]byte, validatorLen),
		hasULIDs: true, ulidSender: ls.adv[0].Addr, ulidRecv: ls.adv[0].Addr,
		hasFII: true, hasKATimeout: true, kaTimeout: 1,
		hasLocList: true, hasPrefs: true, prefElemLen: 3, pds: cfg.PDS, sig: ls.sig}
	for _, l := range ls.adv {
		m.locs = append(m.locs, locEntry{addr: l.Addr, method: l.Method})
		m.prefs = append(m.prefs, prefElem{})
	}
	var c codec
	if _, err := c.encode(nil, m); err != nil {
		return fmt.Errorf("%w: %d locators with this PDS and signature do not fit a 1280-octet message: %v", ErrConfig, len(ls.adv), err)
	}
	return nil
}

func sameLocal(a, b []LocalLocator) bool { return slices.Equal(a, b) }

// SetLocalLocators replaces the local locator set (address changes). Every
// context that carries our Locator List gets an Update Request with the new
// list and preferences (RFC 5533 §10.1); contexts whose current local
// locator went away or became BROKEN explore for a new pair (RFC 5534 §3.2).
func (e *Engine) SetLocalLocators(now time.Time, locs []LocalLocator) error {
	if sameLocal(locs, e.local.all) {
		return nil
	}
	old := e.local.all
	if err := e.setLocal(locs); err != nil {
		return err
	}
	e.rebuildReapLocal()
	for _, c := range e.byTag {
		if c.dead || !c.state.hasPeer() {
			continue
		}
		if e.advertises(c.localULID) || c.localGenSent {
			e.startUpdate(c, now)
		}
		e.reapLocatorsChanged(c, now)
		lp := c.lpLocal
		if slices.ContainsFunc(old, func(l LocalLocator) bool { return l.Addr == lp }) && (!e.localUsable(lp) || !e.localOK(c, lp)) {
			e.reapTrouble(c, now, "local locator gone or broken")
		}
		e.schedule(c, now)
	}
	return nil
}

// addLocalOptions puts our Locator List, Locator Preferences, CGA PDS and
// CGA Signature options into m when c's local ULID is covered by them
// (RFC 5533 §5.6, §5.7, §5.9, §5.10), and the Keepalive Timeout option
// (RFC 5534 §5.3: MUST when Send Timeout is not the default).
func (e *Engine) addLocalOptions(c *Context, m *message) {
	if st := e.sendTimeoutOf(c); st != DefaultSendTimeout {
		m.hasKATimeout = true
		m.kaTimeout = uint16(st / time.Second)
	}
	if !e.advertises(c.localULID) {
		return
	}
	m.hasLocList = true
	m.locGen = e.local.gen
	for _, l := range e.local.adv {
		m.locs = append(m.locs, locEntry{addr: l.Addr, method: l.Method})
	}
	if e.local.prefLen != 0 {
		m.hasPrefs = true
		m.prefGen = e.local.gen
		m.prefElemLen = e.local.prefLen
		for _, l := range e.local.adv {
			m.prefs = append(m.prefs, prefElem{flags: l.Flags, priority: l.Priority, weight: l.Weight})
		}
	}
	m.pds = e.cfg.PDS
	m.sig = e.local.sig
	c.localGen = e.local.gen
	c.localGenSent = true
}
