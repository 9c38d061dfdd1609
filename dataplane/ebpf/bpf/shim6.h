/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Map layouts shared by the goshim6 data-plane programs (shim6.c) and, through
 * bpf2go's generated types, the Go loader (dataplane/ebpf). Changing a layout
 * changes the pinned maps: a loader of a new layout refuses to adopt maps of
 * an old one (see MapLayoutVersion in maps.go).
 */
#pragma once

#include "shim6_types.h"

/* A ULID pair, local first. The key of out_map and of the trigger LRU. */
struct ulid_pair {
	__u8 local[16];
	__u8 peer[16];
};

/* Layout of struct bpf_redir_neigh for an IPv6 next hop. */
struct nexthop {
	__u32 family; /* AF_INET6 */
	__u8 addr[16];
};

/* out_map value: how to send packets of one ULID pair (FII 0 context). */
struct out_val {
	__u8 local_loc[16];
	__u8 peer_loc[16];
	/* Next hop for bpf_redirect_neigh: the gateway towards peer_loc, or
	 * peer_loc itself when it is on-link. */
	struct nexthop nh;
	/* The payload extension header to insert; byte 0 (next header) is
	 * filled per packet. RFC 5533 §5.2. */
	__u8 shim_hdr[8];
	__u64 local_tag;
	__u32 ifindex; /* uplink that reaches peer_loc from local_loc */
	__u32 flags;   /* OUT_F_* */
	/* Fast reroute (docs/dataplane.md): the backup pair a TCP RTO moves
	 * the pair's traffic to (OUT_F_BACKUP), not before bk_after_ns
	 * (CLOCK_MONOTONIC). */
	__u8 bk_local[16];
	__u8 bk_peer[16];
	__u64 bk_after_ns;
	/* Install generation: fr_map entries of another generation are void
	 * (every Install ends a move). */
	__u32 gen;
	__u32 pad;
};

/* The locators differ from the ULIDs: rewrite and insert the header. */
#define OUT_F_SHIMMED 1
/* bk_* hold a backup pair: an RTO may move the traffic there. */
#define OUT_F_BACKUP 2
/* Payload of the peer on another listed pair moves the traffic there. */
#define OUT_F_FOLLOW 4
/* Not shimmed, but ifindex/nh hold the ULID pair's route: packets that
 * reach the shim device anyway (a socket still marked after a move ended)
 * are sent on unchanged. */
#define OUT_F_PASS 8

/* in_map value, keyed by the 47-bit local context tag. peer_ulid comes first
 * so that source and destination are restored with one 32-byte store. */
struct in_val {
	__u8 peer_ulid[16];
	__u8 local_ulid[16];
	__u8 local_loc[16];
	__u8 peer_loc[16];
	__u64 peer_tag;
	__u32 fii;
	__u32 flags; /* IN_F_* */
	/* A pair (our locator, the peer's) the peer is known to send on
	 * although it is not the current one: not followed (until
	 * acc_until_ns, CLOCK_MONOTONIC, if not 0). */
	__u8 acc_local[16];
	__u8 acc_peer[16];
	__u64 acc_until_ns;
	/* The context's last receive on any CPU (bpf_ktime_get_coarse_ns, at
	 * most one store per jiffy and CPU): the per-CPU activity's first
	 * transmit after the last receive is measured against it. */
	__u64 last_rx_ns;
};

/* The context's traffic may follow the peer (OUT_F_FOLLOW). */
#define IN_F_FOLLOW 1

/* fr_map value, keyed by ULID pair: where the data plane moved the pair's
 * outbound traffic on its own (fast reroute), valid while gen is the
 * out_map entry's. */
struct fr_val {
	__u8 local_loc[16];
	__u8 peer_loc[16];
	struct nexthop nh;
	__u32 ifindex;
	__u32 gen;
	__u32 flags; /* FR_* */
	__u8 dmac[6]; /* the next hop's and the uplink's MAC (FR_MAC) */
	__u8 smac[6];
	__u64 since_ns;
	__u64 local_tag;
};

#define FR_REROUTED 1  /* a TCP RTO moved it to the backup pair */
#define FR_FOLLOWING 2 /* it follows the peer */
#define FR_MAC 4       /* dmac/smac known: send without neighbour lookup */

/* TCP-LD hold (ld_hold_map), per ULID pair: until when segments are held,
 * and until when a connection may start being held (CLOCK_MONOTONIC ns). */
struct ld_hold_val {
	__u64 until_ns;
	__u64 start_until_ns;
};

/* TCP-LD hold (ld_conn_map), per TCP connection of a held ULID pair: the
 * connection's total retransmissions when its first acknowledgement was
 * held back, and when. */
struct ld_conn_key {
	__u8 local[16];
	__u8 peer[16];
	__be16 lport;
	__be16 pport;
	__u32 pad;
};

struct ld_conn_val {
	__u32 total_retrans;
	__u32 pad;
	__u64 first_ns;
};

/* pair_map: the pairs a context may use (REAP's candidates: a usable local
 * locator, a verified peer locator) and their routes. */
struct pair_key {
	__u64 local_tag;
	__u8 local[16];
	__u8 peer[16];
};

struct pair_val {
	struct nexthop nh;
	__u32 ifindex;
	/* The next hop's link-layer address as last resolved, and the
	 * uplink's (PAIR_F_MAC): a move sends with them directly, so that a
	 * neighbour entry that failed while the provider was down does not
	 * lose the first packets. */
	__u8 dmac[6];
	__u8 smac[6];
	__u32 flags;
};

#define PAIR_F_MAC 1

/* icmp_map key: what the "packet in error" of an ICMPv6 error about a packet
 * we sent shimmed carries (RFC 5533 §8, §12.4). */
struct icmp_key {
	__u64 peer_tag;
	__u8 local_loc[16];
	__u8 peer_loc[16];
};

/* icmp_map value: the ULIDs to restore in the packet in error. */
struct icmp_val {
	__u8 local_ulid[16];
	__u8 peer_ulid[16];
};

/* Per-context activity (RFC 5534 §4.3 send and keepalive timers), keyed by
 * the local context tag. Times are bpf_ktime_get_ns() (CLOCK_MONOTONIC). */
struct activity {
	__u64 last_tx_ns;
	__u64 last_rx_ns;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 rx_packets;
	__u64 rx_bytes;
	/* The first transmit of this CPU after the context's last receive on
	 * any CPU (in_val.last_rx_ns, checked once per jiffy): REAP's Send Timer
	 * starts there (RFC 5534 §6.2). */
	__u64 first_tx_ns;
};

/* Trigger LRU value: traffic of a ULID pair that has no context. */
struct trigger_val {
	__u64 packets;
	__u64 bytes;
	__u32 fired;
	__u32 pad;
};

/* The single entry of config_map. */
struct config {
	/* When non-zero, cgroup and sock_ops programs only look at sockets of
	 * this network namespace (they see every namespace otherwise). */
	__u64 netns_cookie;
	/* Packets of a context-less ULID pair that raise one trigger event;
	 * 0 disables the trigger heuristic. */
	__u32 trigger_packets;
	__u32 flags; /* CFG_F_* */
	/* Event rate limit: at most event_burst events of each kind per
	 * event_window_ns on each CPU. */
	__u64 event_window_ns;
	__u32 event_burst;
	/* Fast reroute: the socket mark (SO_MARK) that routes a TCP socket
	 * whose RTO moved its pair into the shim device (a policy rule on
	 * the mark); 0: sockets are not marked. */
	__u32 fr_mark;
};

/* Pass payload packets with an unknown context tag on to the stack (and so
 * to the daemon's raw socket) instead of dropping them after the event. */
#define CFG_F_UNKNOWN_TAG_PASS 1
/* Do not translate ICMPv6 errors about shimmed packets. */
#define CFG_F_NO_ICMP_TRANSLATE 2

enum event_kind {
	EV_UNKNOWN_TAG = 1, /* dataplane.EventUnknownTag */
	EV_TRIGGER = 2,     /* dataplane.EventTrigger */
	EV_ULP_TROUBLE = 3, /* dataplane.EventULPTrouble */
	EV_FAST_REROUTE = 4, /* dataplane.EventFastReroute */
	EV_PEER_MOVED = 5,  /* dataplane.EventPeerMoved */
	EV_KINDS = 6,
};

/* One ring-buffer record. */
struct event {
	__u8 kind;
	__u8 pad[7];
	__u64 tag;
	__u8 src[16];
	__u8 dst[16];
	__u64 packets;
	__u64 bytes;
	__u64 time_ns;
	/* The pair traffic moved to (EV_FAST_REROUTE, EV_PEER_MOVED). */
	__u8 pair_local[16];
	__u8 pair_peer[16];
	/* The TCP connection of an RTO (EV_ULP_TROUBLE, EV_FAST_REROUTE):
	 * ports in host order, snd_una. */
	__u16 sport;
	__u16 dport;
	__u32 snd_una;
};

struct ratelimit {
	__u64 window_start;
	__u64 count;
};

/* Per-reason counters (stats map, per CPU). Keep in step with stats.go. */
enum stat {
	STAT_OUT_SHIMMED,       /* rewritten, header inserted, redirected */
	STAT_OUT_NO_MAPPING,    /* at the shim device without a shimmed mapping: dropped */
	STAT_OUT_GSO,           /* GSO super-packet at the shim device: dropped */
	STAT_OUT_NOT_IPV6,      /* not IPv6 at the shim device: dropped */
	STAT_OUT_CONTROL,       /* Shim6 control message at the shim device: dropped */
	STAT_OUT_EXTHDR,        /* routing headers malformed or too long: dropped */
	STAT_OUT_ADJUST_FAIL,   /* bpf_skb_adjust_room failed: dropped */
	STAT_OUT_NO_ROUTE,      /* mapping has no uplink: dropped */
	STAT_IN_STRIPPED,       /* payload header stripped, ULIDs restored (tc) */
	STAT_IN_STRIPPED_XDP,   /* the same, in XDP */
	STAT_IN_CONTROL,        /* control message (P=0) passed to the stack */
	STAT_IN_UNKNOWN_TAG,    /* payload header with unknown tag */
	STAT_IN_MALFORMED,      /* truncated or bad payload header: dropped */
	STAT_IN_ADJUST_FAIL,    /* strip failed: dropped */
	STAT_IN_EXTHDR,         /* extension headers before the shim header too long: dropped */
	STAT_ICMP_TRANSLATED,   /* ICMPv6 error translated back to the ULIDs */
	STAT_ICMP_NO_CONTEXT,   /* ICMPv6 error about a shimmed packet, no context: passed */
	STAT_ICMP_FAIL,         /* translation failed half-way: dropped */
	STAT_EV_UNKNOWN_TAG,    /* events sent, by kind */
	STAT_EV_TRIGGER,
	STAT_EV_ULP_TROUBLE,
	STAT_EV_RATELIMITED,    /* events suppressed by the rate limit */
	STAT_EV_RINGBUF_FULL,   /* events lost: ring buffer full */
	STAT_ULP_RTO,           /* TCP RTOs on a context's ULID pair */
	STAT_OUT_TO_SEGMENT,    /* GSO packet sent on through the shim device to be segmented */
	STAT_EV_FAST_REROUTE,   /* events sent, by kind (continued) */
	STAT_EV_PEER_MOVED,
	STAT_FR_REROUTED,       /* a TCP RTO moved a pair to its backup */
	STAT_FR_FOLLOWED,       /* payload of the peer on another pair moved ours */
	STAT_FR_NO_PAIR,        /* move refused: the pair is not the context's (or has no route) */
	STAT_FR_OUT,            /* packet of a moved pair rewritten by the uplink egress program */
	STAT_FR_OUT_SHIM,       /* packet of a moved pair sent on the moved pair from the shim device */
	STAT_FR_GSO,            /* GSO packet of a moved pair at an uplink: left alone */
	STAT_FR_TOO_BIG,        /* packet of a moved pair too big for the header: left alone */
	STAT_FR_MARKED,         /* TCP socket marked into the shim device by an RTO move */
	STAT_FR_UNMARKED,       /* the mark removed again (the move ended) */
	STAT_FR_MARK_BUSY,      /* socket not marked: it has a mark of its own */
	STAT_OUT_PASS,          /* unshimmed pair's packet passed on from the shim device */
	STAT_LD_HELD,           /* TCP-LD hold: an acknowledgement held back (ack = snd_una) */
	STAT_MAX,
};

/* The marker the XDP program leaves in the packet metadata when it has
 * already stripped a packet, so that the tc program does not count it twice. */
#define XDP_META_STRIPPED 0x53366d31 /* "S6m1" */
