// Package engine is the Shim6 protocol engine (RFC 5533, with REAP of
// RFC 5534 through package engine/reap): every context, its state machine
// and its timers, as pure Go driven by events that carry the current time.
//
// The engine does no I/O and starts no goroutine. One goroutine owns an
// Engine and feeds it:
//
//   - HandlePacket: received Shim6 messages (IP protocol 140), and payload
//     extension headers with unknown tags;
//   - HandleTimer at NextDeadline: the single timer queue of all contexts;
//   - HandleActivity, HandleDataPlaneEvent: the data plane's counters and
//     reports (unknown tags, triggers, ULP trouble);
//   - HandleICMP: ICMPv6 errors about packets this host sent;
//   - SetLocalLocators: address changes;
//   - the management calls (Contexts, CreateContext, DeleteContext,
//     Update, Explore, Pin, Unpin, Stats).
//
// It answers through Deps: a Sender for control messages, a
// dataplane.DataPlane for the mappings, and an Events callback. Time and
// randomness come in from outside, so tests are deterministic.
//
// Security: the responder keeps no state before a valid I2 or I2bis
// (validators from a rotating secret), every peer locator is verified
// (HBA or CGA) before it can be selected, and every table and every
// reply to unsolicited input is bounded. See docs/protocol-conformance.md
// for the RFC 5533 requirements and where they are enforced.
package engine
