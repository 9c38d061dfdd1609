package ebpf

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	cebpf "github.com/cilium/ebpf"
)

// HoldAcks starts, changes (until in the future) or ends (zero or past
// until) the TCP-LD hold of a ULID pair: while it lasts, shim6_in delivers
// a TCP segment of the pair that would advance the receiving socket's
// snd_una while that socket is in retransmission-timeout backoff with ack
// = snd_una instead, until the socket has retransmitted (at most 500 ms per
// connection). Only segments that arrive before startUntil start holding a
// connection (the daemon sets it to its first burst). The daemon holds a pair while its context explores with
// timed-out connections on it, and releases it after its RFC 6069 bursts:
// those bursts quote snd_una and only work while the socket is still in
// backoff, which the peer's first segment after an outage would otherwise
// end (see ld_hold_ack in bpf/shim6.c and docs/dataplane.md).
func (d *DataPlane) HoldAcks(local, peer netip.Addr, until, startUntil time.Time) error {
	if !local.Is6() || !peer.Is6() {
		return fmt.Errorf("%w: TCP-LD hold needs IPv6 ULIDs: %v, %v", ErrInvalidMapping, local, peer)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	k := pairKey(local, peer)
	var err error
	if ns := monoNs(until); ns != 0 {
		err = d.objs.LdHoldMap.Update(k, shim6LdHoldVal{UntilNs: ns, StartUntilNs: monoNs(startUntil)}, cebpf.UpdateAny)
	} else if err = d.objs.LdHoldMap.Delete(k); errors.Is(err, cebpf.ErrKeyNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("TCP-LD hold %v > %v: %w", local, peer, err)
	}
	if monoNs(until) == 0 {
		// Released: forget the pair's connections (ld_conn_map is an LRU
		// cache; emptying it keeps the pinned maps from growing).
		var ck shim6LdConnKey
		var cv shim6LdConnVal
		var stale []shim6LdConnKey
		it := d.objs.LdConnMap.Iterate()
		for it.Next(&ck, &cv) {
			if ck.Local == k.Local && ck.Peer == k.Peer {
				stale = append(stale, ck)
			}
		}
		for _, ck := range stale {
			if err := d.objs.LdConnMap.Delete(ck); err != nil && !errors.Is(err, cebpf.ErrKeyNotExist) {
				return fmt.Errorf("TCP-LD hold: forget %v > %v: %w", local, peer, err)
			}
		}
	}
	// The programs look at ld_hold_map only while ld_state_map[0] (the
	// number of holds) is not zero. Counted from the map, so that it stays
	// right across restarts.
	var n uint32
	var key shim6UlidPair
	var val shim6LdHoldVal
	it := d.objs.LdHoldMap.Iterate()
	for it.Next(&key, &val) {
		n++
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("TCP-LD hold: %w", err)
	}
	return d.objs.LdStateMap.Update(uint32(0), n, cebpf.UpdateAny)
}
