package ebpf

// statNames names the per-reason counters of the stats map (enum stat in
// bpf/shim6.h), in order.
var statNames = [...]string{
	shim6StatSTAT_OUT_SHIMMED:     "out_shimmed",
	shim6StatSTAT_OUT_NO_MAPPING:  "out_drop_no_mapping",
	shim6StatSTAT_OUT_GSO:         "out_drop_gso",
	shim6StatSTAT_OUT_NOT_IPV6:    "out_drop_not_ipv6",
	shim6StatSTAT_OUT_CONTROL:     "out_drop_control",
	shim6StatSTAT_OUT_EXTHDR:      "out_drop_exthdr",
	shim6StatSTAT_OUT_ADJUST_FAIL: "out_drop_adjust",
	shim6StatSTAT_OUT_NO_ROUTE:    "out_drop_no_route",
	shim6StatSTAT_IN_STRIPPED:     "in_stripped",
	shim6StatSTAT_IN_STRIPPED_XDP: "in_stripped_xdp",
	shim6StatSTAT_IN_CONTROL:      "in_control",
	shim6StatSTAT_IN_UNKNOWN_TAG:  "in_unknown_tag",
	shim6StatSTAT_IN_MALFORMED:    "in_drop_malformed",
	shim6StatSTAT_IN_ADJUST_FAIL:  "in_drop_adjust",
	shim6StatSTAT_IN_EXTHDR:       "in_drop_exthdr",
	shim6StatSTAT_ICMP_TRANSLATED: "icmp_translated",
	shim6StatSTAT_ICMP_NO_CONTEXT: "icmp_no_context",
	shim6StatSTAT_ICMP_FAIL:       "icmp_drop_failed",
	shim6StatSTAT_EV_UNKNOWN_TAG:  "event_unknown_tag",
	shim6StatSTAT_EV_TRIGGER:      "event_trigger",
	shim6StatSTAT_EV_ULP_TROUBLE:  "event_ulp_trouble",
	shim6StatSTAT_EV_RATELIMITED:  "event_ratelimited",
	shim6StatSTAT_EV_RINGBUF_FULL: "event_ringbuf_full",
	shim6StatSTAT_ULP_RTO:         "ulp_rto",
	shim6StatSTAT_OUT_TO_SEGMENT:  "out_to_segment",
	shim6StatSTAT_EV_FAST_REROUTE: "event_fast_reroute",
	shim6StatSTAT_EV_PEER_MOVED:   "event_peer_moved",
	shim6StatSTAT_FR_REROUTED:     "fr_rerouted",
	shim6StatSTAT_FR_FOLLOWED:     "fr_followed",
	shim6StatSTAT_FR_NO_PAIR:      "fr_no_pair",
	shim6StatSTAT_FR_OUT:          "fr_out",
	shim6StatSTAT_FR_OUT_SHIM:     "fr_out_shim",
	shim6StatSTAT_FR_GSO:          "fr_gso_left",
	shim6StatSTAT_FR_TOO_BIG:      "fr_too_big",
	shim6StatSTAT_FR_MARKED:       "fr_marked",
	shim6StatSTAT_FR_UNMARKED:     "fr_unmarked",
	shim6StatSTAT_FR_MARK_BUSY:    "fr_mark_busy",
	shim6StatSTAT_OUT_PASS:        "out_pass",
	shim6StatSTAT_LD_HELD:         "ld_held",
}

// Stats are the data plane's per-reason packet and event counters, summed
// over CPUs, by name (see docs/dataplane.md for the list).
type Stats map[string]uint64

// StatNames lists the counter names in a stable order.
func StatNames() []string {
	return append([]string(nil), statNames[:]...)
}
