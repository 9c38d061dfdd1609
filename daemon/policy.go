package daemon

import "github.com/goshim6/goshim6/dataplane"

// triggerFilter applies [peers] and [trigger] to a data-plane trigger
// event: peers.never never get a context, peers.always get one at the
// first packet, the rest after trigger.packets packets (0: never
// automatically). cfg is read on the loop goroutine, where reloads swap it.
func triggerFilter(cfg func() *Config) func(ev dataplane.Event) bool {
	return func(ev dataplane.Event) bool {
		c := cfg()
		switch c.PolicyFor(ev.Dst) {
		case PeerNever:
			return false
		case PeerAlways:
			return true
		}
		return c.Trigger.Packets > 0 && ev.Packets >= uint64(c.Trigger.Packets)
	}
}
