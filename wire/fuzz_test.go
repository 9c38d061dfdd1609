package wire

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// checkRebuild is the property of every parse fuzz target: whatever
// parses (alone, or with an Error-reply error) re-builds to bytes that
// parse to the same value and the same error.
func checkRebuild(t *testing.T, m Message, err error, in []byte) {
	t.Helper()
	if m == nil {
		if err == nil {
			t.Fatal("nil message without error")
		}
		return
	}
	if err != nil {
		if _, _, ok := ErrorReply(err); !ok {
			t.Fatalf("message returned with a non-reply error %v", err)
		}
	}
	b, berr := Marshal(m)
	if berr != nil {
		if errors.Is(berr, ErrTooBig) && headerLen(in) > MaxControlLen {
			return // received messages may exceed what we send
		}
		t.Fatalf("parsed %#v does not rebuild: %v\ninput % x", m, berr, in)
	}
	m2, err2 := Parse(b)
	if !reflect.DeepEqual(m2, m) {
		t.Fatalf("rebuilt message parses differently:\n got %#v\nwant %#v\ninput % x\nbuilt % x", m2, m, in, b)
	}
	if (err == nil) != (err2 == nil) || (err != nil && !errors.Is(err2, errors.Unwrap(err))) {
		t.Fatalf("rebuilt message error %v, original %v", err2, err)
	}
}

func addGoldenSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	for _, p := range files {
		f.Add(readHex(f, p))
	}
}

func FuzzParse(f *testing.F) {
	addGoldenSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		checkRebuild(t, m, err, b)
		// Fix the checksum so the fuzzer reaches the type-specific code.
		c := append([]byte{}, b...)
		SetChecksum(c)
		m, err = Parse(c)
		checkRebuild(t, m, err, c)
		mi, erri := ParseIgnoringChecksum(b)
		if (mi == nil) != (m == nil) && !errors.Is(err, ErrChecksum) {
			t.Fatalf("ParseIgnoringChecksum disagrees: %v / %v", erri, err)
		}
		if raw, rerr := RawOptions(c); err == nil && m.Type() != TypeError {
			if rerr != nil {
				t.Fatalf("Parse ok, RawOptions: %v", rerr)
			}
			o := m.Opts()
			if len(raw) < len(o.Unknown) {
				t.Fatalf("RawOptions found %d options, Parse %d unknown", len(raw), len(o.Unknown))
			}
		}
	})
}

// FuzzParseOptions puts the fuzz input in the options area of a message
// whose type is chosen by the first octet.
func FuzzParseOptions(f *testing.F) {
	for _, name := range []string{"i2.hex", "r2.hex", "update_request.hex", "i1.hex", "update_ack.hex"} {
		b := readHex(f, filepath.Join("testdata", "golden", name))
		start, _ := optionsStart(MessageType(b[2]), b)
		f.Add(b[2], b[start:])
	}
	f.Fuzz(func(t *testing.T, typ byte, opts []byte) {
		mt := allTypes[int(typ)%len(allTypes)]
		if mt == TypeError || mt == TypeProbe {
			mt = TypeI2
		}
		b := make([]byte, newMessage(mt).fixedLen(), 64+len(opts))
		b[0], b[2] = NoNextHeader, byte(mt)
		b = append(b, opts...)
		for len(b)%8 != 0 {
			b = append(b, 0)
		}
		if len(b) > 2048 {
			return
		}
		b[1] = byte(len(b)/8 - 1)
		SetChecksum(b)
		m, err := Parse(b)
		checkRebuild(t, m, err, b)
	})
}

func FuzzParsePayloadHeader(f *testing.F) {
	f.Add(readHex(f, filepath.Join("testdata", "golden", "payload.hex")))
	f.Add([]byte{0x3b, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParsePayloadHeader(b)
		if err != nil {
			return
		}
		if h.ContextTag > MaxContextTag {
			t.Fatalf("tag %#x over 47 bits", h.ContextTag)
		}
		out, err := AppendPayloadHeader(nil, h)
		if err != nil || string(out) != string(b[:8]) {
			t.Fatalf("rebuild % x -> % x, %v", b[:8], out, err)
		}
	})
}

func FuzzFindShim6(f *testing.F) {
	for _, p := range samplePackets(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		_, _, off, err := FindShim6(pkt)
		if err != nil {
			return
		}
		if off < IPv6HeaderLen || off > len(pkt) {
			t.Fatalf("offset %d for %d octets", off, len(pkt))
		}
		if IsPayload(pkt[off:]) {
			_, _ = ParsePayloadHeader(pkt[off:])
		} else {
			m, err := Parse(pkt[off:])
			checkRebuild(t, m, err, pkt[off:])
		}
	})
}

// TestFuzzCorpus checks that the committed seed corpora under
// testdata/fuzz hold every golden packet; WIRE_WRITE_CORPUS=1 go test -run
// TestFuzzCorpus ./wire regenerates them.
func TestFuzzCorpus(t *testing.T) {
	update := os.Getenv("WIRE_WRITE_CORPUS") != ""
	write := func(target, name string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		s := "go test fuzz v1\n"
		for _, v := range vals {
			s += v + "\n"
		}
		path := filepath.Join(dir, name)
		if !update {
			if old, err := os.ReadFile(path); err != nil || string(old) != s {
				t.Errorf("%s is missing or stale (%v); regenerate with WIRE_WRITE_CORPUS=1", path, err)
			}
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	q := func(b []byte) string { return "[]byte(" + quote(b) + ")" }
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	for _, p := range files {
		b := readHex(t, p)
		name := filepath.Base(p)
		name = name[:len(name)-4]
		write("FuzzParse", name, q(b))
		if name == "payload" {
			write("FuzzParsePayloadHeader", name, q(b))
			continue
		}
		if start, err := optionsStart(MessageType(b[2]), b); err == nil && start < len(b) {
			write("FuzzParseOptions", name, "byte('\\x"+hex2(b[2])+"')", q(b[start:]))
		}
	}
	for i, p := range samplePackets(t) {
		write("FuzzFindShim6", "packet"+string(rune('a'+i)), q(p))
	}
}

func hex2(b byte) string { const h = "0123456789abcdef"; return string([]byte{h[b>>4], h[b&15]}) }

func quote(b []byte) string {
	s := `"`
	for _, c := range b {
		s += `\x` + hex2(c)
	}
	return s + `"`
}
