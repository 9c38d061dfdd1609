// Package netns builds network-namespace labs from Go, with netlink and no
// shell scripts: named namespaces, veth pairs between them, IPv6 addresses,
// routes, policy rules, per-namespace sysctls, netem qdiscs, functions and
// processes run inside a namespace, and the standard goshim6 topology (two
// multihomed hosts, each with one uplink to each of two providers, joined by
// a core router; see [Build]).
//
// Namespaces are "named" the way iproute2 names them: a bind mount of the
// namespace file under /run/netns/NAME, so `ip netns exec NAME ...` works
// for debugging and a later process (cmd/shim6lab) can reopen them.
//
// Everything here needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root). Tests use
// the helpers in package nstest, which skip when not root outside CI and
// tear everything down in t.Cleanup.
//
// Thread safety: an [NS] may be used from several goroutines; its netlink
// calls are serialised. Functions run with [NS.Do] execute on a dedicated,
// locked OS thread; goroutines they start do NOT run in the namespace, but
// sockets created inside fn stay in the namespace for their whole life.
package netns
