package cga

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Options control CGA and HBA-set generation.
type Options struct {
	// Sec is the security parameter, 0, 1 or 2 (RFC 4982 §6). Generation
	// costs about 2^(16*Sec) SHA-1 computations.
	Sec int
	// Workers is the number of goroutines of the Hash2 search; 0 means
	// runtime.GOMAXPROCS(0). The result does not depend on it.
	Workers int
	// Rand supplies the initial modifier and the HBA pseudo-key; nil means
	// crypto/rand. With the same Rand output, generation is deterministic.
	Rand io.Reader
	// Progress, if set, is called about every ProgressInterval during the
	// Hash2 search (from one goroutine at a time), and once at its end.
	Progress func(Progress)
	// ProgressInterval defaults to 200ms.
	ProgressInterval time.Duration
	// Extensions are appended after the multi-prefix extension (if any).
	Extensions []Extension
}

// Progress reports the state of a Hash2 search.
type Progress struct {
	Sec      int
	Attempts uint64        // modifiers tried so far
	Elapsed  time.Duration // since the search started
	Rate     float64       // attempts per second
	// Expected is the mean number of attempts, 2^(16*Sec).
	Expected float64
	Done     bool // the last report
}

// Remaining estimates the mean time still needed (the search is
// memoryless: the mean is the same at any time).
func (p Progress) Remaining() time.Duration {
	if p.Rate <= 0 {
		return 0
	}
	return time.Duration(p.Expected / p.Rate * float64(time.Second))
}

// Generate makes a CGA for the /64 prefix and the DER SubjectPublicKeyInfo
// publicKey (RFC 3972 §4, collision count 0). It returns the address and the
// encoded CGA Parameters data structure. It stops with ctx's error if ctx is
// cancelled.
func Generate(ctx context.Context, prefix netip.Prefix, publicKey []byte, opts Options) (netip.Addr, []byte, error) {
	pfx, err := prefix64(prefix)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	raw, err := generateParams(ctx, pfx, publicKey, opts.Extensions, opts)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	return addrFrom(pfx, hash1With(raw, pfx), opts.Sec), raw, nil
}

// HBASet is a generated HBA set (RFC 5535 §6).
type HBASet struct {
	// Params is the CGA Parameters data structure of the set, with the last
	// prefix in the subnet prefix field (it verifies every address of the
	// set through RFC 5535 §7.2).
	Params []byte
	// Addrs holds one address per prefix, in the order of the prefixes.
	Addrs []netip.Addr
}

// GenerateHBA makes an HBA set for the /64 prefixes (RFC 5535 §6). With
// publicKey nil it is an HBA-only set: the public key field holds a random
// 384-bit pseudo-key and the P flag is clear. With a DER SubjectPublicKeyInfo
// it is a CGA-compatible set (P flag set).
func GenerateHBA(ctx context.Context, prefixes []netip.Prefix, publicKey []byte, opts Options) (*HBASet, error) {
	if len(prefixes) == 0 {
		return nil, fmt.Errorf("%w: no prefixes", ErrBadPrefix)
	}
	pfxs := make([]uint64, len(prefixes))
	seen := make(map[uint64]bool, len(prefixes))
	for i, p := range prefixes {
		v, err := prefix64(p)
		if err != nil {
			return nil, err
		}
		if seen[v] {
			return nil, fmt.Errorf("%w: %v listed twice", ErrBadPrefix, p)
		}
		seen[v] = true
		pfxs[i] = v
	}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	// RFC 5535 §6 step 1.
	mp := MultiPrefix{PublicKey: publicKey != nil, Prefixes: prefixes}
	ext, err := mp.Extension()
	if err != nil {
		return nil, err
	}
	if publicKey == nil {
		// RFC 5535 §6 step 2: the Extended Modifier.
		if publicKey, err = newPseudoKey(r); err != nil {
			return nil, err
		}
	}
	opts.Rand = r
	exts := append([]Extension{ext}, opts.Extensions...)
	last := pfxs[len(pfxs)-1]
	raw, err := generateParams(ctx, last, publicKey, exts, opts)
	if err != nil {
		return nil, err
	}
	// RFC 5535 §6 step 6.
	set := &HBASet{Params: raw, Addrs: make([]netip.Addr, len(pfxs))}
	for i, p := range pfxs {
		set.Addrs[i] = addrFrom(p, hash1With(raw, p), opts.Sec)
	}
	return set, nil
}

// PseudoKeyBits is the size of the HBA Extended Modifier (RFC 5535 §6).
const PseudoKeyBits = 384

// pseudoKeyHeader is a SubjectPublicKeyInfo with algorithm rsaEncryption
// (1.2.840.113549.1.1.1, NULL parameters) and a 49-octet BIT STRING: no
// unused bits, then the 48 random octets. This is the encoding the
// independent implementation of interop/ uses: the octets are not an
// RSAPublicKey, and nothing here requires them to be.
var pseudoKeyHeader = []byte{
	0x30, 0x42, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
	0x03, 0x31, 0x00,
}

// NewPseudoKey returns a random HBA pseudo-key (RFC 5535 §6 step 2).
func NewPseudoKey(r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	return newPseudoKey(r)
}

func newPseudoKey(r io.Reader) ([]byte, error) {
	b := make([]byte, len(pseudoKeyHeader)+PseudoKeyBits/8)
	copy(b, pseudoKeyHeader)
	if _, err := io.ReadFull(r, b[len(pseudoKeyHeader):]); err != nil {
		return nil, fmt.Errorf("cga: random pseudo-key: %w", err)
	}
	return b, nil
}

// generateParams runs RFC 3972 §4 steps 1-5 and 9 and returns the encoded
// parameters with subnet prefix pfx and collision count 0.
func generateParams(ctx context.Context, pfx uint64, publicKey []byte, exts []Extension, opts Options) ([]byte, error) {
	if opts.Sec < 0 || opts.Sec > MaxSec {
		return nil, fmt.Errorf("%w: Sec %d: RFC 4982 defines generation for Sec 0-2 only", ErrUnsupportedSec, opts.Sec)
	}
	p := Params{SubnetPrefix: prefixFrom64(pfx), PublicKey: publicKey, Extensions: exts}
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	// Step 1: a random initial modifier.
	if _, err := io.ReadFull(r, p.Modifier[:]); err != nil {
		return nil, fmt.Errorf("cga: random modifier: %w", err)
	}
	raw, err := p.Marshal()
	if err != nil {
		return nil, err
	}
	// Steps 2-3: the Hash2 search, over the parameters with the subnet
	// prefix and collision count zeroed.
	tmpl := append([]byte(nil), raw...)
	clear(tmpl[offPrefix:fixedLen])
	mod, err := searchModifier(ctx, tmpl, opts)
	if err != nil {
		return nil, err
	}
	copy(raw, mod[:])
	return raw, nil
}

// chunkLen is the number of consecutive modifiers a worker tries before it
// looks at the context and at the other workers again (about 1 ms).
const chunkLen = 4096

// searchModifier finds the smallest modifier m >= tmpl[:16] (mod 2^128)
// such that Hash2 of tmpl with m has 16*Sec leading zero bits: exactly the
// modifier of the sequential RFC 3972 §4 step 3, whatever the number of
// workers. Workers claim chunks of chunkLen modifiers in increasing order;
// after a hit in chunk k they finish the chunks below k and stop.
func searchModifier(ctx context.Context, tmpl []byte, opts Options) ([16]byte, error) {
	var start [16]byte
	copy(start[:], tmpl)
	zeroBits := 16 * opts.Sec
	if zeroBits == 0 {
		if opts.Progress != nil {
			opts.Progress(Progress{Sec: 0, Expected: 1, Done: true})
		}
		return start, nil
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		next     atomic.Uint64 // next chunk to claim
		bestK    atomic.Uint64 // chunk of the best hit so far
		attempts atomic.Uint64
		mu       sync.Mutex
		bestOff  uint64
	)
	bestK.Store(^uint64(0))
	zeroBytes := zeroBits / 8
	worker := func() {
		buf := append([]byte(nil), tmpl...)
		for ctx.Err() == nil {
			k := next.Add(1) - 1
			if k >= bestK.Load() {
				return
			}
			m := addModifier(start, k*chunkLen)
			copy(buf, m[:])
			var i uint64
			found := false
			for ; i < chunkLen; i++ {
				s := sha1.Sum(buf)
				if zeroPrefix(s[:zeroBytes]) {
					found = true
					break
				}
				incModifier(buf[:16])
			}
			if found {
				attempts.Add(i + 1)
				mu.Lock()
				if k < bestK.Load() {
					bestK.Store(k)
					bestOff = i
				}
				mu.Unlock()
				return
			}
			attempts.Add(chunkLen)
		}
	}
	began := time.Now()
	report := func(done bool) {
		if opts.Progress == nil {
			return
		}
		el := time.Since(began)
		n := attempts.Load()
		p := Progress{Sec: opts.Sec, Attempts: n, Elapsed: el, Expected: float64(uint64(1) << zeroBits), Done: done}
		if el > 0 {
			p.Rate = float64(n) / el.Seconds()
		}
		opts.Progress(p)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(worker)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	iv := opts.ProgressInterval
	if iv <= 0 {
		iv = 200 * time.Millisecond
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
wait:
	for {
		select {
		case <-finished:
			break wait
		case <-tick.C:
			report(false)
		}
	}
	report(true)
	k := bestK.Load()
	if k == ^uint64(0) {
		// Only cancellation ends the search without a hit.
		return start, fmt.Errorf("cga: Hash2 search stopped after %d attempts: %w", attempts.Load(), context.Cause(ctx))
	}
	return addModifier(start, k*chunkLen+bestOff), nil
}

func zeroPrefix(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// incModifier adds one to a 128-bit big-endian modifier, modulo 2^128.
func incModifier(m []byte) {
	for i := len(m) - 1; i >= 0; i-- {
		m[i]++
		if m[i] != 0 {
			return
		}
	}
}

// addModifier returns m + n modulo 2^128.
func addModifier(m [16]byte, n uint64) [16]byte {
	lo := binary.BigEndian.Uint64(m[8:])
	hi := binary.BigEndian.Uint64(m[:8])
	s := lo + n
	if s < lo {
		hi++
	}
	binary.BigEndian.PutUint64(m[8:], s)
	binary.BigEndian.PutUint64(m[:8], hi)
	return m
}
