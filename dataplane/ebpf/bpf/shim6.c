// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * goshim6 data plane: the kernel half of Shim6 (RFC 5533) as BPF programs.
 *
 *   shim6_out        tc ingress of the shim device's peer: packets of a
 *                    shimmed ULID pair, already segmented by the shim
 *                    device, get the locators and the payload extension
 *                    header and are redirected to the uplink (§5.2, §11.1).
 *   shim6_in         tc ingress of every uplink: strips payload extension
 *                    headers of known contexts and restores the ULIDs
 *                    (§12.2), leaves control messages (P=0) to the daemon,
 *                    reports unknown tags (§7.17), translates ICMPv6 errors
 *                    about shimmed packets (§8), counts receive activity and
 *                    feeds the trigger heuristic (§11, §12.1).
 *   shim6_xdp        optional XDP fast path of the strip, before GRO.
 *   shim6_cg_egress  cgroup_skb egress: transmit activity of contexts (also
 *                    packets that never reach tc, e.g. while neighbour
 *                    resolution fails) and the trigger heuristic.
 *   shim6_sockops    TCP retransmission timeouts on a context's ULID pair
 *                    (ULP negative advice, RFC 5534 §3.5); fast reroute:
 *                    moves the pair to its backup and marks the socket
 *                    into the shim device.
 *   shim6_reroute    tc egress of every uplink (fast reroute only): packets
 *                    of a pair the data plane moved get the moved pair's
 *                    locators and the payload header and leave on its
 *                    uplink.
 *
 * See docs/dataplane.md for the design and the measurements behind it.
 */
#include "shim6_types.h"
#include "bpf_helpers.h"
#include "bpf_endian.h"
#include "shim6.h"

char __license[] SEC("license") = "Dual BSD/GPL";

#ifndef offsetof
#define offsetof(T, m) __builtin_offsetof(T, m)
#endif

#define barrier_var(var) asm volatile("" : "+r"(var))

/* The loader sets max_entries of the context maps (Config.MaxContexts). */
#define DEFAULT_CONTEXTS 65536
#define DEFAULT_TRIGGER_PAIRS 65536

/* Extension headers before the shim header are moved through a per-CPU
 * scratch buffer when the header is inserted or removed. */
#define MAX_EXT_HDRS 4
#define MAX_EXT_LEN 256
#define SCRATCH_LEN 512
#define MOVE_MAX (MAX_EXT_LEN + 48 + 8)

#define IP6_HLEN 40
#define LOOPBACK_IFINDEX 1
#define SHIM6_HLEN 8
#define SHIM6_P_BIT 0x80

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ulid_pair);
	__type(value, struct out_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} out_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct in_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} in_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct icmp_key);
	__type(value, struct icmp_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} icmp_map SEC(".maps");

/* Per CPU: no atomic operations and no cache-line bouncing on the hot
 * path; the loader sums the counters and takes the latest times. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS);
	__type(key, __u64);
	__type(value, struct activity);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} activity_map SEC(".maps");

/* Fast reroute: where the data plane moved a ULID pair's outbound traffic
 * on its own. Not preallocated: an update is an RCU swap. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ulid_pair);
	__type(value, struct fr_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fr_map SEC(".maps");

/* Fast reroute: the pairs each context may move to, with their routes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_CONTEXTS * 4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pair_key);
	__type(value, struct pair_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pair_map SEC(".maps");

/* TCP-LD hold (see ld_hold_ack): ULID pairs whose context explored while
 * TCP connections on it had retransmission timeouts, until when
 * (CLOCK_MONOTONIC ns). Written by the daemon; ld_state_map[0] is the number
 * of entries, so that the receive path looks here only when there are. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ulid_pair);
	__type(value, struct ld_hold_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ld_hold_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ld_state_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ld_conn_key);
	__type(value, struct ld_conn_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ld_conn_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEFAULT_TRIGGER_PAIRS);
	__type(key, struct ulid_pair);
	__type(value, struct trigger_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} trigger_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EV_KINDS);
	__type(key, __u32);
	__type(value, struct ratelimit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ratelimit_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

struct scratch {
	__u8 b[SCRATCH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

/* Set by the loader: whether bpf_get_netns_cookie() is available to
 * cgroup_skb programs (recent kernels). Without it the cgroup program counts
 * the sockets of every network namespace (dead code is never verified). */
volatile const __u32 cg_have_netns_cookie = 1;

/* Force bpf2go to emit Go types for the records that no map names. */
const struct event *unused_event __attribute__((unused));
const enum stat *unused_stat __attribute__((unused));
const enum event_kind *unused_event_kind __attribute__((unused));

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats_map, &idx);
	if (v)
		*v += 1;
}

static __always_inline struct config *get_config(void)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&config_map, &k);
}

/* Global unicast, as far as Shim6 cares: not ::/8 (unspecified, loopback,
 * IPv4-mapped), not link-local fe80::/10, not multicast ff00::/8. */
static __always_inline int is_shimmable(const __u8 *a)
{
	if (a[0] == 0 || a[0] == 0xff)
		return 0;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return 0;
	return 1;
}

static __always_inline int ratelimit_ok(__u32 kind, const struct config *cfg)
{
	struct ratelimit *r = bpf_map_lookup_elem(&ratelimit_map, &kind);
	if (!r)
		return 0;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (now - r->window_start >= cfg->event_window_ns) {
		r->window_start = now;
		r->count = 0;
	}
	if (r->count >= cfg->event_burst)
		return 0;
	r->count++;
	return 1;
}

/* The TCP connection an RTO event is about. */
struct rto_conn {
	__u16 sport;
	__u16 dport;
	__u32 snd_una;
};

static __always_inline void emit_full(__u8 kind, const void *src, const void *dst, __u64 tag,
				      __u64 packets, __u64 bytes, const void *pl, const void *pp,
				      const struct rto_conn *conn, const struct config *cfg)
{
	if (!ratelimit_ok(kind, cfg)) {
		count(STAT_EV_RATELIMITED);
		return;
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_EV_RINGBUF_FULL);
		return;
	}
	e->kind = kind;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	e->tag = tag;
	__builtin_memcpy(e->src, src, 16);
	__builtin_memcpy(e->dst, dst, 16);
	e->packets = packets;
	e->bytes = bytes;
	e->time_ns = bpf_ktime_get_coarse_ns();
	if (pl && pp) {
		__builtin_memcpy(e->pair_local, pl, 16);
		__builtin_memcpy(e->pair_peer, pp, 16);
	} else {
		__builtin_memset(e->pair_local, 0, 16);
		__builtin_memset(e->pair_peer, 0, 16);
	}
	if (conn) {
		e->sport = conn->sport;
		e->dport = conn->dport;
		e->snd_una = conn->snd_una;
	} else {
		e->sport = 0;
		e->dport = 0;
		e->snd_una = 0;
	}
	bpf_ringbuf_submit(e, 0);
	if (kind <= EV_ULP_TROUBLE)
		count(STAT_EV_UNKNOWN_TAG + kind - EV_UNKNOWN_TAG);
	else
		count(STAT_EV_FAST_REROUTE + kind - EV_FAST_REROUTE);
}

static __always_inline void emit_pair(__u8 kind, const void *src, const void *dst, __u64 tag,
				      __u64 packets, __u64 bytes, const void *pl, const void *pp,
				      const struct config *cfg)
{
	emit_full(kind, src, dst, tag, packets, bytes, pl, pp, 0, cfg);
}

static __always_inline void emit(__u8 kind, const void *src, const void *dst, __u64 tag,
				 __u64 packets, __u64 bytes, const struct config *cfg)
{
	emit_full(kind, src, dst, tag, packets, bytes, 0, 0, 0, cfg);
}

static __always_inline int eq16(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/* The move of a ULID pair's outbound traffic that is in force: an fr_map
 * entry of the out_map entry's generation (every Install ends a move). */
static __always_inline struct fr_val *fr_active(const struct ulid_pair *k, const struct out_val *v)
{
	if (!(v->flags & (OUT_F_BACKUP | OUT_F_FOLLOW)))
		return 0;
	struct fr_val *fr = bpf_map_lookup_elem(&fr_map, k);
	if (!fr || fr->gen != v->gen)
		return 0;
	return fr;
}

/* Sends a packet of a moved pair (Ethernet at offset 0) out of its uplink.
 * With the next hop's link-layer address known (FR_MAC) the frame is
 * addressed directly and redirected: a neighbour entry that failed while
 * the provider was down would make bpf_redirect_neigh queue the packet for
 * resolution, and a queued packet is later sent by the neighbour of the
 * route it came with (the shim device's, or the old uplink's gateway):
 * lost. Without it, bpf_redirect_neigh to the next hop. */
static __always_inline long fr_redirect(struct __sk_buff *skb, const struct fr_val *fr)
{
	if (fr->flags & FR_MAC) {
		void *data = (void *)(long)skb->data;
		void *data_end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return TC_ACT_SHOT;
		__builtin_memcpy(eth->h_dest, fr->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fr->smac, ETH_ALEN);
		return bpf_redirect(fr->ifindex, 0);
	}
	return bpf_redirect_neigh(fr->ifindex, (struct bpf_redir_neigh *)&fr->nh, sizeof(fr->nh), 0);
}

/* Records a move of k's outbound traffic to (local, peer), if the pair is
 * one of the context's (pair_map). Returns 0 on success. */
static __always_inline int fr_move(const struct ulid_pair *k, const struct out_val *v,
				   const __u8 *local, const __u8 *peer, __u32 flags)
{
	struct pair_key pk;
	pk.local_tag = v->local_tag;
	__builtin_memcpy(pk.local, local, 16);
	__builtin_memcpy(pk.peer, peer, 16);
	struct pair_val *r = bpf_map_lookup_elem(&pair_map, &pk);
	if (!r || r->ifindex == 0) {
		count(STAT_FR_NO_PAIR);
		return -1;
	}
	struct fr_val n;
	__builtin_memcpy(n.local_loc, local, 16);
	__builtin_memcpy(n.peer_loc, peer, 16);
	n.nh = r->nh;
	n.ifindex = r->ifindex;
	n.gen = v->gen;
	n.flags = flags | ((r->flags & PAIR_F_MAC) ? FR_MAC : 0);
	__builtin_memcpy(n.dmac, r->dmac, ETH_ALEN);
	__builtin_memcpy(n.smac, r->smac, ETH_ALEN);
	n.since_ns = bpf_ktime_get_ns();
	n.local_tag = v->local_tag;
	if (bpf_map_update_elem(&fr_map, k, &n, BPF_ANY))
		return -1;
	return 0;
}

/* Trigger heuristic for deferred context establishment (RFC 5533 §7.2,
 * §11, §12.2): count the packets of ULID pairs without a context in an LRU
 * map and raise one event when a pair crosses the threshold. */
static __always_inline void trigger_account(const struct ulid_pair *k, __u64 bytes,
					    const struct config *cfg)
{
	if (cfg->trigger_packets == 0 || !is_shimmable(k->local) || !is_shimmable(k->peer))
		return;
	struct trigger_val *t = bpf_map_lookup_elem(&trigger_map, k);
	if (t && t->fired)
		return; /* once per pair (until the LRU forgets it) */
	if (!t) {
		struct trigger_val n = {.packets = 1, .bytes = bytes};
		bpf_map_update_elem(&trigger_map, k, &n, BPF_NOEXIST);
		if (cfg->trigger_packets > 1)
			return;
		t = bpf_map_lookup_elem(&trigger_map, k);
		if (!t)
			return;
	} else {
		__sync_fetch_and_add(&t->packets, 1);
		__sync_fetch_and_add(&t->bytes, bytes);
	}
	if (t->fired || t->packets < cfg->trigger_packets)
		return;
	/* One event per pair: only the CPU that flips fired from 0 sends. */
	if (__sync_fetch_and_add(&t->fired, 1) != 0)
		return;
	emit(EV_TRIGGER, k->local, k->peer, 0, t->packets, t->bytes, cfg);
}

static __always_inline void activity_rx(__u64 tag, __u64 bytes)
{
	struct activity *a = bpf_map_lookup_elem(&activity_map, &tag);
	if (!a)
		return;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (a->last_rx_ns != now) {
		/* Once per jiffy and CPU: the shared last receive. */
		struct in_val *iv = bpf_map_lookup_elem(&in_map, &tag);
		if (iv)
			iv->last_rx_ns = now;
	}
	a->last_rx_ns = now;
	a->rx_packets += 1;
	a->rx_bytes += bytes;
}

static __always_inline void activity_tx(__u64 tag, __u64 packets, __u64 bytes)
{
	struct activity *a = bpf_map_lookup_elem(&activity_map, &tag);
	if (!a)
		return;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (a->last_tx_ns != now) {
		/* Once per jiffy and CPU: a receive on any CPU since this CPU's
		 * first transmit starts a new first transmit. */
		struct in_val *iv = bpf_map_lookup_elem(&in_map, &tag);
		__u64 rx = iv ? iv->last_rx_ns : a->last_rx_ns;
		if (a->first_tx_ns <= rx)
			a->first_tx_ns = now;
	}
	a->last_tx_ns = now;
	a->tx_packets += packets;
	a->tx_bytes += bytes;
}

/* Copy len bytes of the packet from offset from to offset to (the ranges may
 * overlap) through the scratch buffer. */
static __always_inline int move_bytes(struct __sk_buff *skb, __u32 from, __u32 to, __u32 len,
				      __u64 flags)
{
	__u32 k = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &k);
	if (!s)
		return -1;
	__u32 n = len - 1;
	barrier_var(n);
	if (n >= MOVE_MAX)
		return -1;
	n += 1;
	if (bpf_skb_load_bytes(skb, from, s->b, n))
		return -1;
	if (bpf_skb_store_bytes(skb, to, s->b, n, flags))
		return -1;
	return 0;
}

/* Walks the extension headers that precede the shim header on the wire
 * (Hop-by-Hop, Routing, Destination Options; RFC 5533 §4.6) starting at the
 * IPv6 header at offset l3. On return *nh is the protocol at offset *off
 * (relative to l3) and *nh_off is the offset of the Next Header byte that
 * names it. insert selects the sender's rule (§11.1): a Destination Options
 * header is skipped only when a Routing header follows it. Returns -1 when
 * the headers are malformed, truncated or too long to move. */
static __always_inline int walk_ext(struct __sk_buff *skb, __u32 l3, __u8 *nh, __u32 *off,
				    __u32 *nh_off, int insert)
{
#pragma unroll
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 h[2];
		if (*nh != IPPROTO_HOPOPTS && *nh != IPPROTO_ROUTING && *nh != IPPROTO_DSTOPTS)
			return 0;
		if (bpf_skb_load_bytes(skb, l3 + *off, h, 2))
			return -1;
		if (insert && *nh == IPPROTO_DSTOPTS && h[0] != IPPROTO_ROUTING)
			return 0;
		*nh_off = *off;
		*nh = h[0];
		*off += ((__u32)h[1] + 1) * 8;
		if (*off > IP6_HLEN + MAX_EXT_LEN)
			return -1;
	}
	if (*nh == IPPROTO_HOPOPTS || *nh == IPPROTO_ROUTING ||
	    (*nh == IPPROTO_DSTOPTS && !insert))
		return -1;
	if (insert && *nh == IPPROTO_DSTOPTS) {
		__u8 h0;
		if (bpf_skb_load_bytes(skb, l3 + *off, &h0, 1))
			return -1;
		if (h0 == IPPROTO_ROUTING)
			return -1;
	}
	return 0;
}

enum rewrite_result {
	RW_OK,
	RW_EXTHDR,  /* routing headers malformed or too long: nothing changed */
	RW_CONTROL, /* a Shim6 message already: nothing changed */
	RW_ADJUST,  /* failed half-way: drop */
};

/* RFC 5533 §11.1: replaces the addresses of the IPv6 packet at ETH_HLEN by
 * the locators loc_l, loc_p and inserts the payload extension header
 * shim_hdr after any Hop-by-Hop, Routing, and Destination Options header
 * that precedes a Routing header (§4.6); the ULP checksum stays (the
 * pseudo-header holds the ULIDs end to end). */
static __always_inline int rewrite(struct __sk_buff *skb, const __u8 *shim_hdr, const __u8 *loc_l,
				   const __u8 *loc_p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > data_end)
		return RW_EXTHDR;
	__u8 nh = ip6->nexthdr;
	__u32 off = IP6_HLEN, nh_off = offsetof(struct ipv6hdr, nexthdr);
	__u16 plen = bpf_ntohs(ip6->payload_len);
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
		if (walk_ext(skb, ETH_HLEN, &nh, &off, &nh_off, 1))
			return RW_EXTHDR;
	}
	if (nh == IPPROTO_SHIM6)
		return RW_CONTROL;
	__u32 ext = off - IP6_HLEN;

	if (bpf_skb_adjust_room(skb, SHIM6_HLEN, BPF_ADJ_ROOM_NET, 0))
		return RW_ADJUST;
	/* adjust_room opened 8 bytes right after the IPv6 header; move the
	 * routing-sublayer headers in front of the gap. */
	if (ext && move_bytes(skb, ETH_HLEN + IP6_HLEN + SHIM6_HLEN, ETH_HLEN + IP6_HLEN, ext, 0))
		return RW_ADJUST;
	if (ext) {
		__u8 hdr[SHIM6_HLEN];
		__builtin_memcpy(hdr, shim_hdr, SHIM6_HLEN);
		hdr[0] = nh;
		__u8 p = IPPROTO_SHIM6;
		if (bpf_skb_store_bytes(skb, ETH_HLEN + IP6_HLEN + ext, hdr, SHIM6_HLEN, 0) ||
		    bpf_skb_store_bytes(skb, ETH_HLEN + nh_off, &p, 1, 0))
			return RW_ADJUST;
	}

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip6 = data + ETH_HLEN;
	__u8 *sh = data + ETH_HLEN + IP6_HLEN;
	if ((void *)(sh + SHIM6_HLEN) > data_end)
		return RW_ADJUST;
	if (!ext) {
		/* The common case: the header right after the IPv6 header. */
		__builtin_memcpy(sh, shim_hdr, SHIM6_HLEN);
		sh[0] = nh;
		ip6->nexthdr = IPPROTO_SHIM6;
	}
	ip6->payload_len = bpf_htons(plen + SHIM6_HLEN);
	__builtin_memcpy(&ip6->saddr, loc_l, 16);
	__builtin_memcpy(&ip6->daddr, loc_p, 16);
	return RW_OK;
}

/*
 * Outbound: tc ingress of the shim device's peer.
 *
 * The policy rule of a shimmed ULID pair routes its packets into the shim
 * device, whose MTU is the uplink's minus 8 and which segments GSO packets
 * in software (TSO off): what arrives here is one wire packet each, to be
 * rewritten (RFC 5533 §11.1) and sent out of the uplink of the locator
 * pair: the mapping's, or the one the data plane moved the pair to (fast
 * reroute). A pair that is not shimmed (a socket the fast reroute marked
 * into the shim device, after the move ended) passes on unchanged.
 */
static __always_inline int shim_packet(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN + IP6_HLEN > data_end) {
		if (bpf_skb_pull_data(skb, ETH_HLEN + IP6_HLEN))
			goto not_ipv6;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		if (data + ETH_HLEN + IP6_HLEN > data_end)
			goto not_ipv6;
	}
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6)
		goto not_ipv6;

	struct ulid_pair key;
	__builtin_memcpy(&key, &ip6->saddr, sizeof(key));
	struct out_val *v = bpf_map_lookup_elem(&out_map, &key);
	if (!v) {
		count(STAT_OUT_NO_MAPPING);
		return TC_ACT_SHOT;
	}
	const __u8 *loc_l = v->local_loc, *loc_p = v->peer_loc;
	struct nexthop *nh = &v->nh;
	__u32 ifindex = v->ifindex;
	int shim = v->flags & OUT_F_SHIMMED;
	struct fr_val *fr = fr_active(&key, v);
	if (fr) {
		loc_l = fr->local_loc;
		loc_p = fr->peer_loc;
		nh = &fr->nh;
		ifindex = fr->ifindex;
		shim = !(eq16(loc_l, key.local) && eq16(loc_p, key.peer));
	} else if (!shim && !(v->flags & OUT_F_PASS)) {
		count(STAT_OUT_NO_MAPPING);
		return TC_ACT_SHOT;
	}
	if (ifindex == 0) {
		count(STAT_OUT_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	if (!shim) {
		count(STAT_OUT_PASS);
		return fr ? fr_redirect(skb, fr) :
			    bpf_redirect_neigh(ifindex, (struct bpf_redir_neigh *)nh, sizeof(*nh), 0);
	}
	switch (rewrite(skb, v->shim_hdr, loc_l, loc_p)) {
	case RW_OK:
		break;
	case RW_EXTHDR:
		count(STAT_OUT_EXTHDR);
		return TC_ACT_SHOT;
	case RW_CONTROL:
		/* The daemon's control messages bypass the shim rule (a goto
		 * rule on ipproto 140); one that gets here is dropped. */
		count(STAT_OUT_CONTROL);
		return TC_ACT_SHOT;
	default:
		count(STAT_OUT_ADJUST_FAIL);
		return TC_ACT_SHOT;
	}
	count(STAT_OUT_SHIMMED);
	if (fr) {
		count(STAT_FR_OUT_SHIM);
		return fr_redirect(skb, fr);
	}
	return bpf_redirect_neigh(ifindex, (struct bpf_redir_neigh *)nh, sizeof(*nh), 0);

not_ipv6:
	count(STAT_OUT_NOT_IPV6);
	return TC_ACT_SHOT;
}

SEC("tc")
int shim6_out(struct __sk_buff *skb)
{
	if (skb->gso_segs > 1) {
		/* Linux cannot segment behind next header 140. */
		count(STAT_OUT_GSO);
		return TC_ACT_SHOT;
	}
	return shim_packet(skb);
}

/*
 * Outbound fast path: tc egress of the shim device itself. Packets that
 * are already wire-sized (TCP on a route without GSO sends them so) are
 * shimmed and redirected right here, without crossing the veth pair; GSO
 * packets go on into the veth, whose transmit segments them, and meet
 * shim6_out on the far end.
 */
SEC("tc")
int shim6_out_egress(struct __sk_buff *skb)
{
	if (skb->gso_segs > 1) {
		count(STAT_OUT_TO_SEGMENT);
		return TC_ACT_OK;
	}
	return shim_packet(skb);
}

/*
 * Fast reroute, tc egress of every uplink: packets of a ULID pair whose
 * outbound traffic the data plane moved (an RTO, or following the peer)
 * but that still take the pair's normal route (it is not shimmed, so no
 * rule sends it into the shim device) get the moved pair's locators and
 * the payload header and leave on the moved pair's uplink. TCP in RTO
 * recovery sends one segment at a time; GSO packets (which would need the
 * shim device to be segmented) and packets too big for the 8 more octets
 * are left alone and counted (the sock_ops program marks the TCP socket
 * that timed out into the shim device, so its packets do not come here).
 * Everything else costs one out_map lookup.
 */
SEC("tc")
int shim6_reroute(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	struct ulid_pair key;
	__builtin_memcpy(&key, &ip6->saddr, sizeof(key));
	struct out_val *v = bpf_map_lookup_elem(&out_map, &key);
	if (!v)
		return TC_ACT_OK;
	struct fr_val *fr = fr_active(&key, v);
	if (!fr || ip6->nexthdr == IPPROTO_SHIM6)
		return TC_ACT_OK;
	if (eq16(fr->local_loc, key.local) && eq16(fr->peer_loc, key.peer)) {
		/* Moved back onto the ULIDs, through another uplink maybe. */
		if (fr->ifindex == skb->ifindex)
			return TC_ACT_OK;
		count(STAT_FR_OUT);
		return fr_redirect(skb, fr);
	}
	if (skb->gso_segs > 1) {
		count(STAT_FR_GSO);
		return TC_ACT_OK;
	}
	__u32 mtu = 0;
	if (bpf_check_mtu(skb, fr->ifindex, &mtu, SHIM6_HLEN, 0)) {
		count(STAT_FR_TOO_BIG);
		return TC_ACT_OK;
	}
	switch (rewrite(skb, v->shim_hdr, fr->local_loc, fr->peer_loc)) {
	case RW_OK:
		break;
	case RW_EXTHDR:
	case RW_CONTROL:
		return TC_ACT_OK;
	default:
		count(STAT_OUT_ADJUST_FAIL);
		return TC_ACT_SHOT;
	}
	count(STAT_FR_OUT);
	return fr_redirect(skb, fr);
}

/* RFC 5533 §8: an ICMPv6 error whose packet in error carries our payload
 * extension header (with the peer's tag) and the locators gets the ULIDs
 * back and loses the header, and a Packet Too Big reports 8 octets less, so
 * the ULP sees the error as if there were no shim. The ICMPv6 checksum is
 * updated incrementally. Returns a tc verdict. */
static __always_inline int icmp_translate(struct __sk_buff *skb, const struct config *cfg)
{
	const __u32 l3 = ETH_HLEN;
	const __u32 icmp = l3 + IP6_HLEN;
	const __u32 in3 = icmp + 8;
	__u8 ih[8];
	struct ipv6hdr inner;

	if (bpf_skb_load_bytes(skb, icmp, ih, sizeof(ih)))
		return TC_ACT_OK;
	if (ih[0] < ICMPV6_DEST_UNREACH || ih[0] > ICMPV6_PARAMPROB)
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, in3, &inner, sizeof(inner)))
		return TC_ACT_OK;
	__u8 nh = inner.nexthdr;
	__u32 off = IP6_HLEN, nh_off = offsetof(struct ipv6hdr, nexthdr);
	if (walk_ext(skb, in3, &nh, &off, &nh_off, 0) || nh != IPPROTO_SHIM6)
		return TC_ACT_OK;
	__u8 sh[SHIM6_HLEN];
	if (bpf_skb_load_bytes(skb, in3 + off, sh, sizeof(sh)))
		return TC_ACT_OK;
	if (!(sh[2] & SHIM6_P_BIT))
		return TC_ACT_OK; /* a control message in error: the daemon's */

	struct icmp_key k;
	k.peer_tag = ((__u64)(sh[2] & 0x7f) << 40) | ((__u64)sh[3] << 32) | ((__u64)sh[4] << 24) |
		     ((__u64)sh[5] << 16) | ((__u64)sh[6] << 8) | (__u64)sh[7];
	__builtin_memcpy(k.local_loc, &inner.saddr, 16);
	__builtin_memcpy(k.peer_loc, &inner.daddr, 16);
	struct icmp_val *v = bpf_map_lookup_elem(&icmp_map, &k);
	if (!v) {
		count(STAT_ICMP_NO_CONTEXT);
		return TC_ACT_OK;
	}

	__u16 outer_plen;
	if (bpf_skb_load_bytes(skb, l3 + offsetof(struct ipv6hdr, payload_len), &outer_plen, 2))
		return TC_ACT_OK;
	__u16 ck;
	if (bpf_skb_load_bytes(skb, icmp + 2, &ck, 2))
		return TC_ACT_OK;

	/* New words, each 4 bytes at an even offset of the ICMPv6 message. */
	__u8 oldw[4], neww[4];
	__builtin_memcpy(oldw, (__u8 *)&inner + 4, 4); /* payload length, next header, hop limit */
	__builtin_memcpy(neww, oldw, 4);
	__u16 iplen = bpf_ntohs(inner.payload_len);
	if (iplen < SHIM6_HLEN)
		return TC_ACT_OK;
	iplen -= SHIM6_HLEN;
	neww[0] = iplen >> 8;
	neww[1] = iplen & 0xff;
	if (off == IP6_HLEN)
		neww[2] = sh[0];

	__s64 d = bpf_csum_diff((__be32 *)&inner.saddr, 32, (__be32 *)v, 32, 0);
	d = bpf_csum_diff((__be32 *)oldw, 4, (__be32 *)neww, 4, (__u32)d);
	__u8 onh[4], nnh[4];
	if (off != IP6_HLEN) {
		if (bpf_skb_load_bytes(skb, in3 + nh_off, onh, 4))
			return TC_ACT_OK;
		__builtin_memcpy(nnh, onh, 4);
		nnh[0] = sh[0];
		d = bpf_csum_diff((__be32 *)onh, 4, (__be32 *)nnh, 4, (__u32)d);
	}
	__be32 omtu, nmtu;
	if (ih[0] == ICMPV6_PKT_TOOBIG) {
		__builtin_memcpy(&omtu, ih + 4, 4);
		nmtu = bpf_htonl(bpf_ntohl(omtu) - SHIM6_HLEN);
		d = bpf_csum_diff(&omtu, 4, &nmtu, 4, (__u32)d);
	}
	d = bpf_csum_diff((__be32 *)sh, 8, 0, 0, (__u32)d);
	/* Pseudo-header upper-layer length. */
	__be32 olen = bpf_htonl(bpf_ntohs(outer_plen));
	__be32 nlen = bpf_htonl(bpf_ntohs(outer_plen) - SHIM6_HLEN);
	d = bpf_csum_diff(&olen, 4, &nlen, 4, (__u32)d);

	__u64 s = (__u64)(__u16)~ck + (__u32)d;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	__u16 nck = ~(__u16)s;

	/* From here on a failure leaves a half-translated packet: drop it. */
	if (bpf_skb_store_bytes(skb, in3 + offsetof(struct ipv6hdr, saddr), v, 32, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (bpf_skb_store_bytes(skb, in3 + 4, neww, 4, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (off != IP6_HLEN &&
	    bpf_skb_store_bytes(skb, in3 + nh_off, nnh, 4, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (ih[0] == ICMPV6_PKT_TOOBIG &&
	    bpf_skb_store_bytes(skb, icmp + 4, &nmtu, 4, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (bpf_skb_store_bytes(skb, icmp + 2, &nck, 2, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	/* Slide the ICMPv6 header, the inner IPv6 header and its routing
	 * headers over the shim header, then cut the 8 stale bytes at the
	 * start of the ICMPv6 message. */
	if (move_bytes(skb, icmp, icmp + SHIM6_HLEN, 8 + off, BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (bpf_skb_adjust_room(skb, -SHIM6_HLEN, BPF_ADJ_ROOM_NET, 0))
		goto fail;
	__u16 nplen = bpf_htons(bpf_ntohs(outer_plen) - SHIM6_HLEN);
	if (bpf_skb_store_bytes(skb, l3 + offsetof(struct ipv6hdr, payload_len), &nplen, 2,
				BPF_F_RECOMPUTE_CSUM))
		goto fail;
	count(STAT_ICMP_TRANSLATED);
	return TC_ACT_OK;
fail:
	count(STAT_ICMP_FAIL);
	return TC_ACT_SHOT;
}

/* Fast reroute, receiving side: payload of the peer (context tag, with
 * in_val iv) arrived from src at dst, another pair than the current one.
 * If the reverse pair (dst, src) is one of the context's (pair_map: a
 * usable local locator, a verified peer locator) and the context may
 * follow, its outbound traffic moves there and the engine is told
 * (EV_PEER_MOVED). A move made by a local RTO is kept. */
static __always_inline void follow(__u64 tag, const struct in_val *iv, const __u8 *src,
				   const __u8 *dst, const struct config *cfg)
{
	struct ulid_pair k;
	__builtin_memcpy(k.local, iv->local_ulid, 16);
	__builtin_memcpy(k.peer, iv->peer_ulid, 16);
	struct out_val *o = bpf_map_lookup_elem(&out_map, &k);
	if (!o || !(o->flags & OUT_F_FOLLOW) || o->local_tag != tag)
		return;
	struct fr_val *fr = bpf_map_lookup_elem(&fr_map, &k);
	if (fr && fr->gen == o->gen &&
	    ((fr->flags & FR_REROUTED) || (eq16(fr->local_loc, dst) && eq16(fr->peer_loc, src))))
		return;
	if (fr_move(&k, o, dst, src, FR_FOLLOWING))
		return;
	count(STAT_FR_FOLLOWED);
	emit_pair(EV_PEER_MOVED, k.local, k.peer, tag, 0, 0, dst, src, cfg);
}

/* Whether payload of the peer from src to dst may make the context follow:
 * it may (IN_F_FOLLOW) and the pair is neither the current one nor the one
 * the peer is known to use (for now). */
static __always_inline int may_follow(const struct in_val *iv, const __u8 *src, const __u8 *dst)
{
	if (!(iv->flags & IN_F_FOLLOW))
		return 0;
	if (eq16(iv->peer_loc, src) && eq16(iv->local_loc, dst))
		return 0;
	if (eq16(iv->acc_peer, src) && eq16(iv->acc_local, dst) &&
	    (iv->acc_until_ns == 0 || bpf_ktime_get_ns() < iv->acc_until_ns))
		return 0;
	return 1;
}

/*
 * TCP-LD hold. After an outage both ends of a TCP connection sit in RTO
 * backoff; the daemons undo it with RFC 6069 ICMPv6 errors quoting each
 * socket's snd_una once REAP has a working pair again (daemon/tcpld.go).
 * The first segment from the peer that gets through usually acknowledges
 * data whose acknowledgement the outage swallowed: snd_una advances, which
 * ends the socket's backoff (icsk_retransmits = 0) with an RTT sample
 * taken from a timestamp echoed from before the outage, and leaves the
 * rest of the window waiting for a retransmission timer computed from that
 * sample (12 s after a 15 s outage, measured). The errors that would have
 * made it retransmit at once then no longer apply (tcp_ld_RTO_revert needs
 * snd_una and a backoff). So while the daemon holds the pair (it explored
 * with timed-out connections on it), such an acknowledgement is held back:
 * the segment is delivered with ack = snd_una, until the socket has
 * retransmitted (total_retrans moved) or for LD_HOLD_MAX_NS. Only segments
 * that arrive before start_until_ns (the daemon's first burst) start a
 * hold: after the burst the socket has retransmitted already, and holding
 * the acknowledgement of that retransmission would only cause another
 * timeout. Sequence
 * numbers, data, SACK blocks and the window are untouched; the checksum is
 * updated incrementally (CHECKSUM_COMPLETE stays valid: the segment's sum
 * does not change).
 */
#define LD_HOLD_MAX_NS (500ULL * 1000 * 1000)
#define LD_CONN_FORGET_NS (10ULL * 1000 * 1000 * 1000)

static __always_inline void ld_hold_ack(struct __sk_buff *skb, __u32 l4)
{
	__u32 zero = 0;
	__u32 *holds = bpf_map_lookup_elem(&ld_state_map, &zero);
	if (!holds || *holds == 0)
		return;
	struct ipv6hdr ip6;
	struct tcphdr16 th;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6, sizeof(ip6)) ||
	    bpf_skb_load_bytes(skb, l4, &th, sizeof(th)))
		return;
	if (!(th.flags & TCP_FLAG_ACK))
		return;
	struct ulid_pair k;
	__builtin_memcpy(k.local, &ip6.daddr, 16);
	__builtin_memcpy(k.peer, &ip6.saddr, 16);
	struct ld_hold_val *h = bpf_map_lookup_elem(&ld_hold_map, &k);
	if (!h)
		return;
	__u64 now = bpf_ktime_get_ns();
	if (now > h->until_ns)
		return;

	struct bpf_sock_tuple t = {};
	__builtin_memcpy(t.ipv6.saddr, &ip6.saddr, 16);
	__builtin_memcpy(t.ipv6.daddr, &ip6.daddr, 16);
	t.ipv6.sport = th.source;
	t.ipv6.dport = th.dest;
	struct bpf_sock *sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return;
	struct bpf_tcp_sock *tp = bpf_tcp_sock(sk);
	if (!tp)
		goto out;
	__u32 una = tp->snd_una, total = tp->total_retrans;
	if (tp->icsk_retransmits == 0 || (__s32)(bpf_ntohl(th.ack_seq) - una) <= 0)
		goto out;
	struct ld_conn_key ck = {};
	__builtin_memcpy(ck.local, k.local, 16);
	__builtin_memcpy(ck.peer, k.peer, 16);
	ck.lport = th.dest;
	ck.pport = th.source;
	struct ld_conn_val *cv = bpf_map_lookup_elem(&ld_conn_map, &ck);
	if (!cv || now - cv->first_ns > LD_CONN_FORGET_NS) {
		/* A connection is held only from before the daemon's first
		 * burst: one that the burst already made retransmit must get its
		 * acknowledgements. */
		if (now > h->start_until_ns)
			goto out;
		struct ld_conn_val nv = {.total_retrans = total, .first_ns = now};
		bpf_map_update_elem(&ld_conn_map, &ck, &nv, BPF_ANY);
	} else if (cv->total_retrans != total || now - cv->first_ns > LD_HOLD_MAX_NS) {
		goto out; /* it retransmitted since: acknowledgements pass */
	}
	__be32 from = th.ack_seq, to = bpf_htonl(una);
	if (bpf_l4_csum_replace(skb, l4 + 16, from, to, 4) == 0 &&
	    bpf_skb_store_bytes(skb, l4 + offsetof(struct tcphdr16, ack_seq), &to, 4, 0) == 0)
		count(STAT_LD_HELD);
out:
	bpf_sk_release(sk);
}

/* A received packet without a payload extension header: receive activity of
 * a context whose locators are its ULIDs (RFC 5533 §12.1), else the trigger
 * heuristic. */
static __always_inline void account_plain_rx(const struct ipv6hdr *ip6, __u8 nh, __u64 bytes,
					     const struct config *cfg)
{
	struct ulid_pair k;
	__builtin_memcpy(k.local, &ip6->daddr, 16);
	__builtin_memcpy(k.peer, &ip6->saddr, 16);
	struct out_val *o = bpf_map_lookup_elem(&out_map, &k);
	if (o) {
		activity_rx(o->local_tag, bytes);
		if (nh != IPPROTO_SHIM6 && (o->flags & (OUT_F_SHIMMED | OUT_F_FOLLOW)) ==
						   (OUT_F_SHIMMED | OUT_F_FOLLOW)) {
			/* The peer sends on the ULIDs while we are shimmed. */
			__u64 tag = o->local_tag;
			struct in_val *iv = bpf_map_lookup_elem(&in_map, &tag);
			if (iv && may_follow(iv, k.peer, k.local))
				follow(tag, iv, k.peer, k.local, cfg);
		}
		return;
	}
	if (nh != IPPROTO_SHIM6)
		trigger_account(&k, bytes, cfg);
}

/*
 * Inbound: tc ingress of every uplink.
 */
SEC("tc")
int shim6_in(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	void *meta = (void *)(long)skb->data_meta;
	struct config *cfg = get_config();
	if (!cfg)
		return TC_ACT_OK;

	if (meta + 4 <= data && *(__u32 *)meta == XDP_META_STRIPPED) {
		/* Stripped and counted by shim6_xdp. */
		struct ipv6hdr *sip6 = data + ETH_HLEN;
		if ((void *)(sip6 + 1) <= data_end && sip6->nexthdr == IPPROTO_TCP)
			ld_hold_ack(skb, ETH_HLEN + IP6_HLEN);
		return TC_ACT_OK;
	}

	if (data + ETH_HLEN + IP6_HLEN > data_end) {
		if (skb->protocol != bpf_htons(ETH_P_IPV6))
			return TC_ACT_OK;
		if (bpf_skb_pull_data(skb, ETH_HLEN + IP6_HLEN))
			return TC_ACT_OK;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		if (data + ETH_HLEN + IP6_HLEN > data_end)
			return TC_ACT_OK;
	}
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6)
		return TC_ACT_OK;

	__u8 nh = ip6->nexthdr;
	__u32 off = IP6_HLEN, nh_off = offsetof(struct ipv6hdr, nexthdr);
	__u64 bytes = skb->len - ETH_HLEN;

	if (nh == IPPROTO_ICMPV6 && !(cfg->flags & CFG_F_NO_ICMP_TRANSLATE)) {
		__u8 type;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + IP6_HLEN, &type, 1) == 0 &&
		    type >= ICMPV6_DEST_UNREACH && type <= ICMPV6_PARAMPROB) {
			struct ipv6hdr outer = *ip6;
			int verdict = icmp_translate(skb, cfg);
			account_plain_rx(&outer, nh, bytes, cfg);
			return verdict;
		}
	}
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
		if (walk_ext(skb, ETH_HLEN, &nh, &off, &nh_off, 0)) {
			if (nh == IPPROTO_SHIM6 || off > IP6_HLEN + MAX_EXT_LEN) {
				count(STAT_IN_EXTHDR);
				return TC_ACT_SHOT;
			}
			return TC_ACT_OK;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > data_end)
			return TC_ACT_OK;
	}
	if (nh != IPPROTO_SHIM6) {
		account_plain_rx(ip6, nh, bytes, cfg);
		if (nh == IPPROTO_TCP && off == IP6_HLEN)
			ld_hold_ack(skb, ETH_HLEN + IP6_HLEN);
		return TC_ACT_OK;
	}

	__u8 sh[SHIM6_HLEN];
	if (off == IP6_HLEN && data + ETH_HLEN + IP6_HLEN + SHIM6_HLEN <= data_end) {
		__builtin_memcpy(sh, data + ETH_HLEN + IP6_HLEN, SHIM6_HLEN);
	} else if (bpf_skb_load_bytes(skb, ETH_HLEN + off, sh, sizeof(sh))) {
		count(STAT_IN_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (!(sh[2] & SHIM6_P_BIT)) {
		/* RFC 5533 §5.1, §12.3: a control message, for the daemon. */
		count(STAT_IN_CONTROL);
		return TC_ACT_OK;
	}
	if (sh[1] != 0) {
		/* RFC 5533 §5.2: Hdr Ext Len of the payload header is 0. */
		count(STAT_IN_MALFORMED);
		return TC_ACT_SHOT;
	}
	__u64 tag = ((__u64)(sh[2] & 0x7f) << 40) | ((__u64)sh[3] << 32) | ((__u64)sh[4] << 24) |
		    ((__u64)sh[5] << 16) | ((__u64)sh[6] << 8) | (__u64)sh[7];
	struct in_val *v = bpf_map_lookup_elem(&in_map, &tag);
	if (!v) {
		/* RFC 5533 §12.2: no context: the daemon SHOULD send R1bis. */
		count(STAT_IN_UNKNOWN_TAG);
		emit(EV_UNKNOWN_TAG, &ip6->saddr, &ip6->daddr, tag, 0, 0, cfg);
		return (cfg->flags & CFG_F_UNKNOWN_TAG_PASS) ? TC_ACT_OK : TC_ACT_SHOT;
	}

	if (may_follow(v, ip6->saddr.in6_u.u6_addr8, ip6->daddr.in6_u.u6_addr8)) {
		struct ulid_pair seen;
		__builtin_memcpy(&seen, &ip6->saddr, sizeof(seen));
		follow(tag, v, seen.local, seen.peer, cfg);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > data_end) {
			count(STAT_IN_MALFORMED);
			return TC_ACT_SHOT;
		}
	}

	/* RFC 5533 §12.2: restore the ULIDs, give the preceding header the
	 * payload's protocol and remove the payload extension header. */
	/* Payload length, next header, hop limit and both addresses are one
	 * contiguous 36-byte run of the IPv6 header: one store. */
	struct {
		__be16 plen;
		__u8 nexthdr;
		__u8 hop_limit;
		__u8 addrs[32];
	} h;
	__u16 plen = bpf_ntohs(ip6->payload_len);
	if (plen < SHIM6_HLEN) {
		count(STAT_IN_MALFORMED);
		return TC_ACT_SHOT;
	}
	h.plen = bpf_htons(plen - SHIM6_HLEN);
	h.nexthdr = off == IP6_HLEN ? sh[0] : ip6->nexthdr;
	h.hop_limit = ip6->hop_limit;
	__builtin_memcpy(h.addrs, v->peer_ulid, 32);
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, payload_len), &h, sizeof(h),
				BPF_F_RECOMPUTE_CSUM))
		goto fail;
	if (off != IP6_HLEN) {
		if (bpf_skb_store_bytes(skb, ETH_HLEN + nh_off, sh, 1, BPF_F_RECOMPUTE_CSUM))
			goto fail;
		if (move_bytes(skb, ETH_HLEN + IP6_HLEN, ETH_HLEN + IP6_HLEN + SHIM6_HLEN,
			       off - IP6_HLEN, BPF_F_RECOMPUTE_CSUM))
			goto fail;
	}
	if (bpf_skb_adjust_room(skb, -SHIM6_HLEN, BPF_ADJ_ROOM_NET, 0))
		goto fail;
	count(STAT_IN_STRIPPED);
	activity_rx(tag, bytes - SHIM6_HLEN);
	if (off == IP6_HLEN && sh[0] == IPPROTO_TCP)
		ld_hold_ack(skb, ETH_HLEN + IP6_HLEN);
	return TC_ACT_OK;
fail:
	count(STAT_IN_ADJUST_FAIL);
	return TC_ACT_SHOT;
}

/*
 * Inbound fast path in XDP, for uplinks where it is attached: the common
 * case (payload extension header right after the IPv6 header, known tag) is
 * stripped before GRO, so that GRO merges the restored TCP segments.
 * Everything else is left to shim6_in.
 */
SEC("xdp")
int shim6_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	__u8 *sh = data + ETH_HLEN + IP6_HLEN;
	if ((void *)(sh + SHIM6_HLEN) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->nexthdr != IPPROTO_SHIM6)
		return XDP_PASS;
	if (!(sh[2] & SHIM6_P_BIT) || sh[1] != 0)
		return XDP_PASS;
	__u64 tag = ((__u64)(sh[2] & 0x7f) << 40) | ((__u64)sh[3] << 32) | ((__u64)sh[4] << 24) |
		    ((__u64)sh[5] << 16) | ((__u64)sh[6] << 8) | (__u64)sh[7];
	struct in_val *v = bpf_map_lookup_elem(&in_map, &tag);
	if (!v)
		return XDP_PASS;
	/* Another pair than the current one: shim6_in decides on following. */
	if (may_follow(v, ip6->saddr.in6_u.u6_addr8, ip6->daddr.in6_u.u6_addr8))
		return XDP_PASS;
	__u16 plen = bpf_ntohs(ip6->payload_len);
	if (plen < SHIM6_HLEN)
		return XDP_PASS;
	__u64 bytes = (data_end - data) - ETH_HLEN - SHIM6_HLEN;

	struct {
		struct ethhdr eth;
		struct ipv6hdr ip6;
	} __attribute__((packed)) hdr;
	__builtin_memcpy(&hdr, data, sizeof(hdr));
	hdr.ip6.nexthdr = sh[0];
	hdr.ip6.payload_len = bpf_htons(plen - SHIM6_HLEN);
	__builtin_memcpy(&hdr.ip6.saddr, v->peer_ulid, 32);
	__builtin_memcpy(data + SHIM6_HLEN, &hdr, sizeof(hdr));
	if (bpf_xdp_adjust_head(ctx, SHIM6_HLEN))
		return XDP_DROP;
	count(STAT_IN_STRIPPED_XDP);
	activity_rx(tag, bytes);
	/* Tell shim6_in not to count this packet again. */
	if (bpf_xdp_adjust_meta(ctx, -4) == 0) {
		data = (void *)(long)ctx->data;
		__u32 *m = (void *)(long)ctx->data_meta;
		if ((void *)(m + 1) <= data)
			*m = XDP_META_STRIPPED;
	}
	return XDP_PASS;
}

/*
 * Transmit activity: cgroup_skb egress sees every packet a local socket
 * sends, before routing to a device and before neighbour resolution, so
 * REAP learns of transmissions even when they never reach tc (RFC 5534
 * §4.3). Packets of ULID pairs without a context feed the trigger.
 */
SEC("cgroup_skb/egress")
int shim6_cg_egress(struct __sk_buff *skb)
{
	struct config *cfg = get_config();
	if (!cfg)
		return 1;
	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return 1;
	if (cg_have_netns_cookie && cfg->netns_cookie &&
	    bpf_get_netns_cookie(skb) != cfg->netns_cookie)
		return 1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data;
	if ((void *)(ip6 + 1) > data_end)
		return 1;
	if (ip6->nexthdr == IPPROTO_SHIM6)
		return 1; /* the daemon's own control messages */
	struct ulid_pair k;
	__builtin_memcpy(&k, &ip6->saddr, sizeof(k));
	struct out_val *o = bpf_map_lookup_elem(&out_map, &k);
	if (o) {
		__u64 segs = skb->gso_segs;
		activity_tx(o->local_tag, segs ? segs : 1, skb->len);
		return 1;
	}
	/* Traffic between the host's own addresses leaves through lo
	 * (ifindex 1 in every namespace): no peer to multihome with, it does
	 * not count towards the trigger (a context with ourselves was
	 * attempted after the TCP-LD errors, which go through lo). */
	if (skb->ifindex == LOOPBACK_IFINDEX)
		return 1;
	trigger_account(&k, skb->len, cfg);
	return 1;
}

/* Marks a TCP socket whose pair moved into the shim device: a policy rule
 * on cfg->fr_mark routes it there, whatever its pair's rules say. The mark
 * takes effect at once (setting it resets the socket's cached route), so
 * the retransmission that the RTO is about to send already goes through
 * the shim device, with its MTU (the uplink's minus 8: the segment is cut
 * to fit) and its segmentation of GSO packets. RTT callbacks then watch
 * for the end of the move. A socket with a mark of its own is left alone. */
static __always_inline void fr_mark_socket(struct bpf_sock_ops *skops, const struct config *cfg)
{
	int mark = 0;
	if (cfg->fr_mark == 0)
		return;
	if (bpf_getsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return;
	if (mark == (int)cfg->fr_mark)
		return;
	if (mark != 0) {
		count(STAT_FR_MARK_BUSY);
		return;
	}
	mark = cfg->fr_mark;
	if (bpf_setsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return;
	count(STAT_FR_MARKED);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_RTT_CB_FLAG);
}

static __always_inline void sockops_pair(const struct bpf_sock_ops *skops, struct ulid_pair *k)
{
	__u32 *l = (__u32 *)k->local, *p = (__u32 *)k->peer;
	l[0] = skops->local_ip6[0];
	l[1] = skops->local_ip6[1];
	l[2] = skops->local_ip6[2];
	l[3] = skops->local_ip6[3];
	p[0] = skops->remote_ip6[0];
	p[1] = skops->remote_ip6[1];
	p[2] = skops->remote_ip6[2];
	p[3] = skops->remote_ip6[3];
}

/*
 * ULP negative advice: TCP retransmission timeouts of connections over a
 * context's ULID pair, so that REAP can explore before its send timer
 * expires (RFC 5534 §3.5). BPF_SOCK_OPS_RTO_CB runs in tcp_write_timeout(),
 * before tcp_retransmit_timer() retransmits: with fast reroute the pair
 * moves to its backup pair first (fr_map), the socket is marked into the
 * shim device, and the retransmission already leaves on the backup pair.
 */
SEC("sockops")
int shim6_sockops(struct bpf_sock_ops *skops)
{
	if (skops->family != AF_INET6)
		return 1;
	struct config *cfg = get_config();
	if (!cfg)
		return 1;
	if (cfg->netns_cookie && bpf_get_netns_cookie(skops) != cfg->netns_cookie)
		return 1;
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(skops,
					  skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_RTO_CB_FLAG);
		break;
	case BPF_SOCK_OPS_RTO_CB: {
		struct ulid_pair k;
		sockops_pair(skops, &k);
		struct out_val *o = bpf_map_lookup_elem(&out_map, &k);
		if (!o)
			break;
		count(STAT_ULP_RTO);
		/* remote_port holds the big-endian port shifted left by 16 on
		 * little-endian hosts: bpf_ntohl gives the port. */
		struct rto_conn conn = {
			.sport = (__u16)skops->local_port,
			.dport = (__u16)bpf_ntohl(skops->remote_port),
			.snd_una = skops->snd_una,
		};
		if (o->flags & OUT_F_BACKUP) {
			struct fr_val *fr = fr_active(&k, o);
			if (fr) {
				/* Moved already (by another socket's RTO, or
				 * following the peer): this socket goes too. */
				fr_mark_socket(skops, cfg);
			} else if (bpf_ktime_get_ns() >= o->bk_after_ns &&
				   fr_move(&k, o, o->bk_local, o->bk_peer, FR_REROUTED) == 0) {
				count(STAT_FR_REROUTED);
				fr_mark_socket(skops, cfg);
				emit_full(EV_FAST_REROUTE, k.local, k.peer, o->local_tag, 0, 0,
					  o->bk_local, o->bk_peer, &conn, cfg);
				break;
			}
		}
		emit_full(EV_ULP_TROUBLE, k.local, k.peer, o->local_tag, 0, 0, 0, 0, &conn, cfg);
		break;
	}
	case BPF_SOCK_OPS_RTT_CB: {
		/* Only sockets fr_mark_socket marked run this: unmark once the
		 * move has ended (an Install, confirming or undoing it). */
		int mark = 0;
		if (bpf_getsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0 &&
		    cfg->fr_mark != 0 && mark == (int)cfg->fr_mark) {
			struct ulid_pair k;
			sockops_pair(skops, &k);
			struct out_val *o = bpf_map_lookup_elem(&out_map, &k);
			if (o && fr_active(&k, o))
				break;
			mark = 0;
			if (bpf_setsockopt(skops, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0)
				count(STAT_FR_UNMARKED);
		}
		bpf_sock_ops_cb_flags_set(skops,
					  skops->bpf_sock_ops_cb_flags & ~BPF_SOCK_OPS_RTT_CB_FLAG);
		break;
	}
	}
	return 1;
}
