// Package netio is shim6d's packet I/O outside the data plane: a raw IPv6
// socket for IP protocol 140 (Shim6, RFC 5533 §5) that sends a control
// message from a chosen source locator and receives with source,
// destination and interface; and a raw ICMPv6 socket that hands up the
// errors (Destination Unreachable, Packet Too Big, Time Exceeded,
// Parameter Problem) whose invoking packet is Shim6-related, with the
// invoking packet's bytes (RFC 5533 §8).
//
// The kernel builds the IPv6 header. Messages start at the Shim6 header,
// whose checksum (over the Shim6 header only, no pseudo-header, RFC 5533
// §5.3) the caller computes; this package never touches it.
//
// While a Conn is open the kernel delivers every protocol-140 packet to
// it, including payload extension headers (P=1) that the data plane did
// not recognise, and no longer answers them with ICMPv6 Parameter Problem
// (RFC 5533 §6.2 expects a Shim6 host to handle them).
//
// Both sockets are opened in the network namespace of the calling thread
// (use internal/netns NS.Do in tests). Reads take a context; Close
// unblocks them; the package starts no goroutines of its own.
package netio
