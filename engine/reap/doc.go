// Package reap is the REAchability Protocol of Shim6 (RFC 5534) for one
// context, as a pure state machine.
//
// A Machine knows the context's locators (local and peer, with their Locator
// Preferences, RFC 5533 §5.15.3), its current locator pair and the REAP state
// (Operational, Exploring, InboundOk, RFC 5534 §6). It is driven by the
// engine, which owns the wire encoding, the context tags and the single timer
// queue of all contexts:
//
//	acts = m.ActivitySince(now, a.FirstSent, a.LastSent, a.LastReceived, acts[:0]) // data-plane activity
//	acts = m.ProbeReceived(now, src, dst, &probe, acts[:0])      // a Probe for this context
//	acts = m.Timer(now, acts[:0])                                 // when NextDeadline is reached
//	for _, a := range acts { ... send keepalive / send probe / switch pair ... }
//	deadline, ok := m.NextDeadline()
//
// Every input carries an explicit now; the machine never reads a clock, never
// sleeps and starts no goroutine. Inputs return actions appended to the
// caller's slice: send a Keepalive (RFC 5534 §5.1) or a Probe (§5.2) from a
// given local locator to a given peer locator, switch the context to another
// locator pair (with the reason), and informational state changes.
//
// # Failure detection (RFC 5534 §4.1, §6.1-§6.6)
//
// The Send Timer and the Keepalive Timer are not restarted per packet: the
// data plane counts payload packets and reports, per context, when the last
// one was sent and received (dataplane.Activity). The machine turns the
// advance of these two instants into the "outgoing payload packet" and
// "incoming payload packet" events of §6.1 and §6.2, in time order (the
// caller passes an instant only when the data plane counted new packets).
// A receive from before the current exploration began does not move
// Exploring to InboundOk: it is not news. Other
// Shim6 control messages sent or received on the context count as payload
// (§6.1, §6.2) and are reported with PayloadSent / PayloadReceived.
//
// # Exploration (RFC 5534 §4.2, §4.3, §6.4-§6.9)
//
// Probes are sent sequentially over the candidate locator pairs, Initial
// Probe Timeout (0.5 s) apart for the first Number of Initial Probes (4), then
// with exponential back-off up to Max Probe Timeout (60 s), every interval
// randomised. The candidate pairs are ordered by the parts of RFC 6724 that
// apply to a pair list (destination rules 2, 3, 5, 6, 8 and 9, source rule 6,
// the policy table) combined with the Locator Preferences of both ends:
// BROKEN locators and unverified peer locators are never probed, TRANSIENT
// ones come last, then priority and weight (DNS SRV semantics, RFC 2782), the
// ULID pair before the others. After a Send Timeout the best pair sharing no
// locator with the current one is probed first, then the current pair (it
// has been silent for a whole Send Timeout); other failure explorations
// (ULP hints, ICMP errors) probe the current pair first; the reverse of the
// pair a peer probe arrived on is tried next.
//
// The new current pair is chosen from the peer's reports of the probes it
// received from us (the Precvd entries of a Probe with State InboundOk or
// Operational), matched against the nonces we sent: the best-ranked
// confirmed pair wins. Reports that match no probe of ours are ignored, so an
// off-path attacker who guesses the context tag still cannot steer the
// choice.
//
// # Going back (return to the preferred pair)
//
// When the context runs on a pair that is not the best-ranked one (after a
// failover, or because the preferences changed), the machine tries to go
// back: ReturnInterval after the switch, if the context still carries
// traffic, it starts a voluntary exploration that probes the pairs in rank
// order. This is the "same locator switching procedure as after a failure"
// that RFC 5533 §4 prescribes for a change of preference: the peer answers as
// in any exploration, payload keeps flowing on the current pair meanwhile
// (RFC 5534 §6.9), and the context moves back only once the peer reports
// our probe on the better pair. Attempts that do not move back double the
// interval, up to MaxReturnInterval.
//
// # Bounds
//
// At most MaxReports sent and MaxReports received probe reports are
// remembered (the Psent and Precvd fields are 4 bits wide, so at most 15);
// exploration state is allocated only while exploring and released a while
// after the context is Operational again.
package reap
