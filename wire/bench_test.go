package wire

import (
	"path/filepath"
	"sort"
	"testing"
)

// benchNames are the golden packets, one per message type.
func benchNames() []string {
	var names []string
	for n := range goldenMessages() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func BenchmarkParse(b *testing.B) {
	for _, name := range benchNames() {
		pkt := readHex(b, filepath.Join("testdata", "golden", name))
		b.Run(name[:len(name)-4], func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := Parse(pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	msgs := goldenMessages()
	for _, name := range benchNames() {
		m := msgs[name]
		buf := make([]byte, 0, MaxControlLen)
		b.Run(name[:len(name)-4], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Append(buf[:0], m); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkKeepaliveUnmarshal is the zero-allocation receive path.
func BenchmarkKeepaliveUnmarshal(b *testing.B) {
	pkt := readHex(b, filepath.Join("testdata", "golden", "keepalive.hex"))
	var ka Keepalive
	b.ReportAllocs()
	for b.Loop() {
		if err := ka.Unmarshal(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayloadHeader(b *testing.B) {
	pkt := readHex(b, filepath.Join("testdata", "golden", "payload.hex"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayloadHeader(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPutPayloadHeader(b *testing.B) {
	var buf [8]byte
	h := PayloadHeader{NextHeader: 6, ContextTag: 0x0123456789ab}
	b.ReportAllocs()
	for b.Loop() {
		PutPayloadHeader(buf[:], h)
	}
}

// BenchmarkBaselineCopy copies the I2 golden packet: the floor any parse
// or build of it is compared against in docs/benchmarks.md.
func BenchmarkBaselineCopy(b *testing.B) {
	pkt := readHex(b, filepath.Join("testdata", "golden", "i2.hex"))
	dst := make([]byte, len(pkt))
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		copy(dst, pkt)
	}
}

// BenchmarkBaselineChecksum computes the checksum of the I2 golden
// packet, part of every parse and build.
func BenchmarkBaselineChecksum(b *testing.B) {
	pkt := readHex(b, filepath.Join("testdata", "golden", "i2.hex"))
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if !VerifyChecksum(pkt) {
			b.Fatal("checksum")
		}
	}
}

// TestZeroAlloc: parsing a Keepalive (into a reused value) and a payload
// header must not allocate; neither must building a payload header or a
// Keepalive into a buffer with room.
func TestZeroAlloc(t *testing.T) {
	ka := readHex(t, filepath.Join("testdata", "golden", "keepalive.hex"))
	pl := readHex(t, filepath.Join("testdata", "golden", "payload.hex"))
	var k Keepalive
	var sink PayloadHeader
	buf := make([]byte, 0, 64)
	kam := &Keepalive{ReceiverTag: 5}
	for name, f := range map[string]func(){
		"Keepalive.Unmarshal": func() {
			if err := k.Unmarshal(ka); err != nil {
				t.Fatal(err)
			}
		},
		"ParsePayloadHeader": func() {
			var err error
			if sink, err = ParsePayloadHeader(pl); err != nil {
				t.Fatal(err)
			}
		},
		"PutPayloadHeader": func() { PutPayloadHeader(buf[:8], sink) },
		"Append(Keepalive)": func() {
			if _, err := Append(buf[:0], kam); err != nil {
				t.Fatal(err)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}
