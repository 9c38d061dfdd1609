// Package locators finds the host's global IPv6 addresses through
// rtnetlink and follows their changes: the local locators of Shim6
// (RFC 5533 §1.5, §10.10: a host tells its peers when its locators
// change). A Watcher keeps the current set, filtered by interface and
// prefix, and reports every change as an Event: address added or removed,
// deprecated or preferred again, DAD finished or failed, interface
// carrier lost or regained. AddAddress and DelAddress bind the HBA/CGA
// addresses the daemon generates to an interface.
//
// Everything works in the network namespace of the calling thread at the
// time the Watcher is created (tests use internal/netns NS.Do); the
// Watcher's own goroutine then keeps reading from that namespace.
package locators
