package engine

import (
	crand "crypto/rand"
	"encoding/binary"
	"io"
)

// randSource buffers the injected random source: tags, nonces, secrets and
// timer jitter all come from it, so a deterministic reader makes a whole
// engine deterministic.
type randSource struct {
	r   io.Reader
	buf [256]byte
	off int
}

func newRandSource(r io.Reader) *randSource {
	if r == nil {
		r = crand.Reader
	}
	s := &randSource{r: r}
	s.off = len(s.buf)
	return s
}

func (s *randSource) fill() {
	if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
		// A failing source must not leave predictable tags behind:
		// fall back to the system generator, which does not fail.
		_, _ = io.ReadFull(crand.Reader, s.buf[:])
	}
	s.off = 0
}

func (s *randSource) read(p []byte) {
	for len(p) > 0 {
		if s.off == len(s.buf) {
			s.fill()
		}
		n := copy(p, s.buf[s.off:])
		s.off += n
		p = p[n:]
	}
}

func (s *randSource) uint64() uint64 {
	if len(s.buf)-s.off < 8 {
		s.fill()
	}
	v := binary.LittleEndian.Uint64(s.buf[s.off:])
	s.off += 8
	return v
}

func (s *randSource) uint32() uint32 {
	if len(s.buf)-s.off < 4 {
		s.fill()
	}
	v := binary.LittleEndian.Uint32(s.buf[s.off:])
	s.off += 4
	return v
}
