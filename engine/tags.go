package engine

// newLocalTag allocates CT(local): 47 random bits, unique among this
// host's contexts. RFC 5533 §7.1: the tag MUST be unique per context and at
// least 30 bits MUST be random; all 47 are, which also makes the host cycle
// randomly through the whole tag space (RFC 5533 §7.1, §9: SHOULD).
func (e *Engine) newLocalTag() uint64 {
	if t := e.testNextTag; t != 0 {
		e.testNextTag = 0
		return t
	}
	for {
		t := e.rand.uint64() & tagMask
		if t == 0 {
			continue // 0 is kept out so that "no tag" needs no flag
		}
		if _, used := e.byTag[t]; !used {
			return t
		}
	}
}

// newInitNonce picks an Initiator Nonce that no pending context of this
// host uses, so that R1 and R2 find exactly one context
// (RFC 5533 §12.4: R1/R2 are delivered by locator pair and nonce).
func (e *Engine) newInitNonce() uint32 {
	for {
		n := e.rand.uint32()
		if _, used := e.byNonce[n]; !used {
			return n
		}
	}
}
