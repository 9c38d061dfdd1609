package engine

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestTimerQueueMatchesSortedReference(t *testing.T) {
	var q timerQueue
	r := rand.New(rand.NewPCG(1, 2))
	cs := make([]*Context, 200)
	ref := map[*Context]int64{}
	for i := range cs {
		cs[i] = &Context{heapIdx: -1}
	}
	for step := range 20000 {
		c := cs[r.IntN(len(cs))]
		switch r.IntN(4) {
		case 0:
			q.remove(c)
			delete(ref, c)
		default:
			d := int64(r.IntN(1000) + 1)
			q.set(c, d)
			ref[c] = d
		}
		if step%97 == 0 {
			// Pop everything due up to a random time.
			lim := int64(r.IntN(1000))
			for c := q.peek(); c != nil && c.due <= lim; c = q.peek() {
				if want := minRef(ref); c.due != want {
					t.Fatalf("peek %d, reference min %d", c.due, want)
				}
				q.remove(c)
				delete(ref, c)
			}
		}
		if q.len() != len(ref) {
			t.Fatalf("len %d, reference %d", q.len(), len(ref))
		}
	}
	// Heap indices are consistent.
	for i, c := range q.h {
		if int(c.heapIdx) != i {
			t.Fatal("index out of sync")
		}
	}
	var got []int64
	for q.len() > 0 {
		c := q.peek()
		got = append(got, c.due)
		q.remove(c)
	}
	if !slices.IsSorted(got) {
		t.Fatal("not popped in order")
	}
}

func minRef(m map[*Context]int64) int64 {
	v := int64(-1)
	for _, d := range m {
		if v < 0 || d < v {
			v = d
		}
	}
	return v
}

func TestValidatorLifetime(t *testing.T) {
	v := newValidators(newRandSource(newSeeded(9)))
	a, b := netipMust("2001:db8::a"), netipMust("2001:db8::b")
	now := t0
	n := v.nonce(now)
	var val [validatorLen]byte
	v.make(v.r1Input(n, 7, a, b, a, b, 0, false), &val)
	check := func(at time.Time, tag uint64) bool {
		return v.check(at, n, v.r1Input(n, tag, a, b, a, b, 0, false), val[:])
	}
	if !check(now, 7) || check(now, 8) {
		t.Fatal("validator does not bind the tag")
	}
	// A different FII, locators or kind change the validator.
	if v.check(now, n, v.r1Input(n, 7, a, b, a, b, 1, true), val[:]) ||
		v.check(now, n, v.r1Input(n, 7, a, b, b, a, 0, false), val[:]) ||
		v.check(now, n, v.r1bisInput(n, 7, a, b), val[:]) {
		t.Fatal("validator does not bind its inputs")
	}
	// RFC 5533 §7.13: recent nonces (at least VALIDATOR_MIN_LIFETIME) are
	// accepted...
	if !check(now.Add(ValidatorMinLifetime-time.Millisecond), 7) {
		t.Fatal("rejected within VALIDATOR_MIN_LIFETIME")
	}
	// ...across one rotation...
	if !check(now.Add(ValidatorMinLifetime+time.Second), 7) {
		t.Fatal("rejected right after one rotation")
	}
	// ...but an old I2 replayed later is refused.
	if check(now.Add(2*ValidatorMinLifetime+2*time.Second), 7) {
		t.Fatal("accepted an old validator")
	}
	if check(now.Add(time.Hour), 7) {
		t.Fatal("accepted a very old validator")
	}
	// Truncated or empty validators fail.
	if v.check(now, n, nil, nil) {
		t.Fatal("empty validator accepted")
	}
}

func TestReplayedI2Refused(t *testing.T) {
	n, a, b := twoHosts(t, Config{}, Config{})
	ca, cb := establish(t, n, a, b)
	var i2 pkt
	for _, p := range n.sent {
		if typeOf(p) == typeI2 {
			i2 = p
		}
	}
	b.e.deleteContext(n.now, cb, "test")
	_ = ca
	// Two minutes later the responder nonce is stale.
	n.run(2 * time.Minute)
	b.e.HandlePacket(n.now, i2.src, i2.dst, i2.b)
	if len(b.e.byULID) != 0 {
		t.Fatal("old I2 replay created a context")
	}
	if b.e.Stats().Drops["bad-validator"] != 1 {
		t.Fatal("not counted as a bad validator")
	}
	// A forged I2 with a random validator is refused as well.
	var m message
	b.e.codec.decode(i2.b, &m)
	m.validator = make([]byte, validatorLen)
	raw, _ := b.e.codec.encode(nil, &m)
	b.e.HandlePacket(n.now, i2.src, i2.dst, raw)
	if len(b.e.byULID) != 0 {
		t.Fatal("forged I2 accepted")
	}
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(10, 5)
	n := 0
	for range 100 {
		if b.allow(t0) {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("burst %d", n)
	}
	if !b.allow(t0.Add(100*time.Millisecond)) || b.allow(t0.Add(100*time.Millisecond)) {
		t.Fatal("refill")
	}
	n = 0
	for i := range 1000 {
		if b.allow(t0.Add(time.Second + time.Duration(i)*time.Millisecond)) {
			n++
		}
	}
	if n < 14 || n > 16 { // 5 burst + 10/s over one second
		t.Fatalf("rate %d", n)
	}
	// Time going backwards does not mint tokens.
	got := 0
	for range 10 {
		if b.allow(t0) {
			got++
		}
	}
	if got > 5 {
		t.Fatal("backwards clock minted tokens")
	}
}

func TestJitterRange(t *testing.T) {
	_, a, _ := twoHosts(t, Config{}, Config{})
	lo, hi := time.Hour, time.Duration(0)
	for range 10000 {
		d := a.e.backoff(4*time.Second, 2, 0)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 8*time.Second || hi >= 24*time.Second || lo > 9*time.Second || hi < 23*time.Second {
		t.Fatalf("jitter range [%v, %v] for nominal 16s", lo, hi)
	}
	if d := a.e.backoff(UpdateTimeout, 20, MaxUpdateTimeout); d > MaxUpdateTimeout*3/2 {
		t.Fatalf("capped backoff %v", d)
	}
}

func TestPeekShim6(t *testing.T) {
	if _, _, _, ok := peekShim6([]byte{1, 2}); ok {
		t.Fatal("short")
	}
	typ, tag, _, ok := peekShim6([]byte{6, 0, 0x80 | 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc})
	if !ok || typ != 0 || tag != 0x123456789abc {
		t.Fatalf("payload header: %d %x", typ, tag)
	}
	if _, _, _, ok := splitInvoking([]byte{0x60}); ok {
		t.Fatal("short invoking packet")
	}
	// Extension headers before the Shim6 header are skipped.
	pkt := ipv6Packet(netipMust("2001:db8::1"), netipMust("2001:db8::2"), nil)
	pkt[6] = 60 // destination options, 8 octets, then Shim6
	pkt = append(pkt, ipProtoShim6, 0, 0, 0, 0, 0, 0, 0)
	pkt = append(pkt, 59, 1, 1, 0, 0, 0, 0, 5, 0, 0, 0, 9, 0, 0, 0, 7)
	src, _, shim, ok := splitInvoking(pkt)
	if !ok || src != netipMust("2001:db8::1") || len(shim) != 16 {
		t.Fatal("extension header walk")
	}
	typ, tag, nonce, _ := peekShim6(shim)
	if typ != 1 || tag != 5<<32|9 || nonce != 7 {
		t.Fatalf("peek %d %x %d", typ, tag, nonce)
	}
	_ = netip.Addr{}
}

func TestStateAndEventNames(t *testing.T) {
	for s := StateIdle; s <= StateNoSupport; s++ {
		if s.String() == "UNKNOWN" {
			t.Fatal(s)
		}
	}
	if State(99).String() != "UNKNOWN" || EventKind(99).String() != "unknown" || dropReason(99).String() != "unknown" {
		t.Fatal("unknown names")
	}
	for k := EventStateChange; k <= EventReapState; k++ {
		if k.String() == "unknown" {
			t.Fatal(k)
		}
	}
}
