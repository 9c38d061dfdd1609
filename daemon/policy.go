package daemon

import "github.com/goshim6/goshim6/dataplane"

// eventFilter applies the configuration to data-plane events: for
// triggers, [peers] and [trigger] (peers.never never get a context,
// peers.always get one at the first packet, the rest after trigger.packets
// packets, 0: never automatically); ULP trouble reaches REAP only with
// reap.ulp_feedback. cfg is read on the loop goroutine, where reloads swap
// it.
func eventFilter(cfg func() *Config) func(ev dataplane.Event) bool {
	return func(ev dataplane.Event) bool {
		c := cfg()
		switch ev.Kind {
		case dataplane.EventULPTrouble:
			return c.REAP.ULPFeedback
		case dataplane.EventTrigger:
		default:
			return true
		}
		switch c.PolicyFor(ev.Dst) {
		case PeerNever:
			return false
		case PeerAlways:
			return true
		}
		return c.Trigger.Packets > 0 && ev.Packets >= uint64(c.Trigger.Packets)
	}
}
