package engine

import "time"

// tokenBucket is a lazily refilled rate limiter: no timer, no memory per
// source. It bounds what a flood of I1s, unknown tags or malformed messages
// can make the engine send (RFC 5533 §16; DESIGN.md "bound every table").
type tokenBucket struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   int64
}

func newTokenBucket(rate, burst int) tokenBucket {
	return tokenBucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) allow(now time.Time) bool {
	n := ns(now)
	if b.last != 0 && n > b.last {
		b.tokens += b.rate * float64(n-b.last) / float64(time.Second)
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	if b.last == 0 || n > b.last {
		b.last = n
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
