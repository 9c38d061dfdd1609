package sim

import (
	"net/netip"
	"time"

	"github.com/goshim6/goshim6/dataplane"
	"github.com/goshim6/goshim6/wire"
)

// Path is how packets travel from one locator to another.
type Path struct {
	// Delay is the one-way delay; Jitter adds a uniform [0, Jitter) on top
	// (which can reorder packets).
	Delay, Jitter time.Duration
	// Loss, Dup and Reorder are probabilities per packet: dropped,
	// delivered twice (the copy with its own delay), held back by
	// ReorderDelay (default: 2×Delay) so that later packets overtake it.
	Loss, Dup, Reorder float64
	ReorderDelay       time.Duration
}

// Packet is what travels between locators: a Shim6 control message (IP
// protocol 140 with P=0; Control holds the Shim6 header and body) or a data
// packet (Data, with or without the payload extension header).
type Packet struct {
	Src, Dst netip.Addr
	Control  []byte
	Data     dataplane.Packet
}

// IsControl reports whether p is a Shim6 control message.
func (p Packet) IsControl() bool { return p.Control != nil }

// Type returns the Shim6 message type of a control message (0 for data).
func (p Packet) Type() wire.MessageType {
	if len(p.Control) < 3 {
		return 0
	}
	return wire.MessageType(p.Control[2] & 0x7f)
}

// NetStats counts what the network did with packets.
type NetStats struct {
	Sent, Delivered, Lost, Cut, Duplicated, Reordered, NoRoute uint64
}

type pairKey struct{ src, dst netip.Addr }

type network struct {
	def     Path
	paths   map[pairKey]Path
	cut     map[pairKey]bool
	cutFrom map[netip.Addr]bool // every path from this locator
	cutTo   map[netip.Addr]bool // every path to this locator
	stats   NetStats
}

func (n *network) init(def Path) {
	n.def = def
	n.paths = map[pairKey]Path{}
	n.cut = map[pairKey]bool{}
	n.cutFrom = map[netip.Addr]bool{}
	n.cutTo = map[netip.Addr]bool{}
}

func (n *network) path(src, dst netip.Addr) Path {
	if p, ok := n.paths[pairKey{src, dst}]; ok {
		return p
	}
	return n.def
}

func (n *network) isCut(src, dst netip.Addr) bool {
	return n.cut[pairKey{src, dst}] || n.cutFrom[src] || n.cutTo[dst]
}

// SetDefaultPath changes the path of every locator pair that has no path of
// its own (e.g. 30% loss everywhere).
func (w *World) SetDefaultPath(p Path) {
	w.net.def = p
	w.tracef("net: default path %+v", p)
}

// SetPath sets the path from src to dst (one direction).
func (w *World) SetPath(src, dst netip.Addr, p Path) { w.net.paths[pairKey{src, dst}] = p }

// SetPathBoth sets the path between a and b in both directions.
func (w *World) SetPathBoth(a, b netip.Addr, p Path) {
	w.SetPath(a, b, p)
	w.SetPath(b, a, p)
}

// Cut partitions the path from src to dst (one direction).
func (w *World) Cut(src, dst netip.Addr) {
	w.net.cut[pairKey{src, dst}] = true
	w.tracef("net: cut %s -> %s", src, dst)
}

// CutBoth partitions a and b in both directions.
func (w *World) CutBoth(a, b netip.Addr) { w.Cut(a, b); w.Cut(b, a) }

// Heal restores the path from src to dst.
func (w *World) Heal(src, dst netip.Addr) {
	delete(w.net.cut, pairKey{src, dst})
	w.tracef("net: heal %s -> %s", src, dst)
}

// HealBoth restores both directions between a and b.
func (w *World) HealBoth(a, b netip.Addr) { w.Heal(a, b); w.Heal(b, a) }

// CutLocator makes locator a unreachable and unable to send: its
// provider's link is down.
func (w *World) CutLocator(a netip.Addr) {
	w.net.cutFrom[a], w.net.cutTo[a] = true, true
	w.tracef("net: locator %s down", a)
}

// CutLocatorOut stops only what a sends (an outbound failure).
func (w *World) CutLocatorOut(a netip.Addr) {
	w.net.cutFrom[a] = true
	w.tracef("net: locator %s cannot send", a)
}

// HealLocator restores locator a in both directions.
func (w *World) HealLocator(a netip.Addr) {
	delete(w.net.cutFrom, a)
	delete(w.net.cutTo, a)
	w.tracef("net: locator %s up", a)
}

// HealAll removes every partition.
func (w *World) HealAll() {
	clear(w.net.cut)
	clear(w.net.cutFrom)
	clear(w.net.cutTo)
	w.tracef("net: all partitions healed")
}

// NetStats returns the network's counters.
func (w *World) NetStats() NetStats { return w.net.stats }

// Inject hands a packet to the network as if some node had sent it from
// p.Src (which no host needs to own): an off-path attacker, or a replay.
func (w *World) Inject(p Packet) { w.transmit(p) }

// transmit puts p on the network.
func (w *World) transmit(p Packet) {
	n := &w.net
	n.stats.Sent++
	for _, tap := range w.taps {
		tap(p)
	}
	if w.opts.Verbose {
		w.tracef("net: %s", describe(p))
	}
	if n.isCut(p.Src, p.Dst) {
		n.stats.Cut++
		return
	}
	path := n.path(p.Src, p.Dst)
	if path.Loss > 0 && w.rng.Float64() < path.Loss {
		n.stats.Lost++
		return
	}
	w.deliverAfter(p, path)
	if path.Dup > 0 && w.rng.Float64() < path.Dup {
		n.stats.Duplicated++
		w.deliverAfter(p, path)
	}
}

func (w *World) deliverAfter(p Packet, path Path) {
	d := path.Delay
	if path.Jitter > 0 {
		d += time.Duration(w.rng.Int64N(int64(path.Jitter)))
	}
	if path.Reorder > 0 && w.rng.Float64() < path.Reorder {
		w.net.stats.Reordered++
		rd := path.ReorderDelay
		if rd == 0 {
			rd = 2 * path.Delay
		}
		d += rd
	}
	w.After(d, func() { w.deliver(p) })
}

func (w *World) deliver(p Packet) {
	h := w.owner[p.Dst]
	if h == nil || !h.up || !h.hasAddr(p.Dst) {
		w.net.stats.NoRoute++
		return
	}
	// A partition that started while the packet was in flight does not
	// stop it: it was already past the failure.
	w.net.stats.Delivered++
	h.receive(p)
}

func describe(p Packet) string {
	if p.IsControl() {
		return p.Src.String() + " -> " + p.Dst.String() + " shim6 " + p.Type().String()
	}
	s := p.Src.String() + " -> " + p.Dst.String() + " data"
	if p.Data.Shim {
		s += " (shim)"
	}
	return s
}
