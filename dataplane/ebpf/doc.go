// Package ebpf is goshim6's data plane on a stock Linux kernel: BPF
// programs (bpf/shim6.c, compiled by bpf2go and committed) and their
// loader. It implements dataplane.DataPlane (Install, Remove) and
// dataplane.ActivitySource (ReadActivity); NewEventReader delivers the
// data plane's events (unknown context tags for R1bis, triggers for
// deferred context establishment, TCP retransmission timeouts).
//
// What happens to a packet (RFC 5533 §11, §12; details and measurements in
// docs/dataplane.md):
//
//   - Outbound, a ULID pair whose locators differ from its ULIDs has two
//     policy rules (only while it does) that route it into the shim
//     device, a veth pair whose MTU is the uplink's minus 8 and whose
//     segmentation offload is off, so the stack segments TCP's large
//     packets there (Linux cannot segment after next header 140). On the
//     far end, shim6_out rewrites the addresses to the locators, inserts
//     the payload extension header after any routing-sublayer headers
//     (§4.6) and sends the packet out of the uplink of the locator pair
//     with bpf_redirect_neigh.
//   - Inbound, shim6_in on every uplink (and optionally shim6_xdp, before
//     GRO) strips payload extension headers with a known context tag and
//     restores the ULIDs, leaves control messages (P=0) to the daemon's
//     raw socket, reports unknown tags, translates ICMPv6 errors about
//     shimmed packets back to the ULIDs (§8) and counts receive activity.
//   - shim6_cg_egress (cgroup_skb) counts transmit activity per context,
//     also for packets that never reach a device, and feeds the trigger
//     heuristic; shim6_sockops reports TCP RTOs on a context's ULID pair.
//
// Maps and links are pinned under Config.PinPath: Close leaves the data
// plane forwarding and the next Load adopts it; Destroy takes it down.
package ebpf
