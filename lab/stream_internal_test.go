package lab

import (
	"net"
	"testing"
	"time"
)

func TestReceiverDetectsCorruptionAndShift(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
		want   int64
	}{
		{"intact", func(b []byte) []byte { return b }, -1},
		{"flipped byte", func(b []byte) []byte { b[70000] ^= 1; return b }, 70000},
		{"lost chunk", func(b []byte) []byte { return append(b[:1000:1000], b[1100:]...) }, 1000},
		{"duplicated chunk", func(b []byte) []byte {
			return append(append(b[:2000:2000], b[1900:2000]...), b[2000:]...)
		}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := make([]byte, 200000)
			fillPattern(data, 0)
			data = tc.mangle(data)
			w, r := net.Pipe()
			s := &Stream{cfg: StreamConfig{Bin: time.Second}, start: time.Now()}
			sd := &side{d: Direction{Verified: true, MismatchAt: -1}, done: make(chan struct{})}
			go func() {
				for off := 0; off < len(data); off += 777 {
					w.Write(data[off:min(off+777, len(data))])
				}
				w.Close()
			}()
			s.receive(r, sd)
			if sd.d.MismatchAt != tc.want || sd.d.Verified != (tc.want < 0) {
				t.Fatalf("mismatch at %d verified %v, want %d", sd.d.MismatchAt, sd.d.Verified, tc.want)
			}
			if sd.d.Received != int64(len(data)) {
				t.Fatalf("received %d of %d", sd.d.Received, len(data))
			}
		})
	}
}

func TestFillPatternOffsets(t *testing.T) {
	whole := make([]byte, 3*patternLen)
	fillPattern(whole, 0)
	part := make([]byte, 1000)
	for _, off := range []int64{0, 1, patternLen - 10, patternLen, 2*patternLen + 5} {
		fillPattern(part, off)
		for i := range part {
			if int(off)+i < len(whole) && part[i] != whole[int(off)+i] {
				t.Fatalf("offset %d byte %d differs", off, i)
			}
		}
	}
}
