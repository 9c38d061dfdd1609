package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/goshim6/goshim6/wire"
)

const decodeGoldenDir = "../../wire/testdata/golden/"

// decodeGolden reads a golden packet of package wire (hex with comments).
func decodeGolden(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(decodeGoldenDir + name)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeIPv6Packet wraps a payload in an IPv6 header 2001:db8:1::1 > 2001:db8:2::2.
func decodeIPv6Packet(next byte, payload ...[]byte) []byte {
	b := make([]byte, 40)
	b[0], b[6], b[7] = 0x60, next, 64
	copy(b[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	copy(b[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	for _, p := range payload {
		b = append(b, p...)
	}
	n := len(b) - 40
	b[4], b[5] = byte(n>>8), byte(n)
	return b
}

func decodeRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"decode"}, args...))
	err := root.Execute()
	return out.String(), err
}

func decodeExitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestDecodeJSONExact pins the JSON schema of docs/decode-json.md.
func TestDecodeJSONExact(t *testing.T) {
	cases := map[string]string{
		"payload.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"payload","context_tag":1250999896491,"next_header":6}}`,
		"keepalive.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"Keepalive","type_code":66,"checksum_valid":true,` +
			`"receiver_context_tag":78187493530,"options":[]}}`,
		"i1.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"I1","type_code":1,"checksum_valid":true,` +
			`"initiator_context_tag":1250999896491,"initiator_nonce":3735928559,"options":[` +
			`{"type":6,"name":"ULIDPair","critical":false,"sender_ulid":"2001:db8:1::1","receiver_ulid":"2001:db8:2::2"},` +
			`{"type":7,"name":"ForkedInstanceIdentifier","critical":false,"fii":42}]}}`,
		"r1.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"R1","type_code":2,"checksum_valid":true,` +
			`"initiator_nonce":287454020,"responder_nonce":1432778632,"options":[` +
			`{"type":1,"name":"ResponderValidator","critical":false,"validator":"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0"}]}}`,
		"r2.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"R2","type_code":4,"checksum_valid":true,` +
			`"responder_context_tag":140737488355327,"initiator_nonce":287454020,"options":[` +
			`{"type":2,"name":"LocatorList","critical":false,"generation":4294967295,"locators":[{"address":"2001:db8:3::3","verification_method":2}]},` +
			`{"type":3,"name":"LocatorPreferences","critical":false,"generation":4294967295,"element_length":2,"preferences":[{"flags":2,"priority":10}]},` +
			`{"type":10,"name":"KeepaliveTimeout","critical":false,"keepalive_timeout":300}]}}`,
		"r1bis.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"R1bis","type_code":5,"checksum_valid":true,` +
			`"packet_context_tag":168496141,"responder_nonce":2575857510,"options":[{"type":1,"name":"ResponderValidator","critical":false,"validator":"cafebabe"}]}}`,
		"i2bis.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"I2bis","type_code":6,"checksum_valid":true,` +
			`"initiator_context_tag":1,"packet_context_tag":70368744177666,"initiator_nonce":16909060,"responder_nonce":84281096,"options":[` +
			`{"type":1,"name":"ResponderValidator","critical":false,"validator":"f0f1f2f3f4f5f6f7"},` +
			`{"type":6,"name":"ULIDPair","critical":false,"sender_ulid":"2001:db8:1::1","receiver_ulid":"2001:db8:2::2"},` +
			`{"type":7,"name":"ForkedInstanceIdentifier","critical":false,"fii":0}]}}`,
		"update_request.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"UpdateRequest","type_code":64,"checksum_valid":true,` +
			`"receiver_context_tag":7,"request_nonce":305419896,"options":[` +
			`{"type":2,"name":"LocatorList","critical":false,"generation":9,"locators":[{"address":"2001:db8:1::1","verification_method":1},{"address":"2001:db8:2::2","verification_method":1},{"address":"2001:db8:3::3","verification_method":2}]},` +
			`{"type":3,"name":"LocatorPreferences","critical":false,"generation":9,"element_length":3,"preferences":[{"flags":0,"priority":1,"weight":50},{"flags":0,"priority":1,"weight":50},{"flags":3,"priority":2,"weight":0}]}]}}`,
		"update_ack.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"UpdateAck","type_code":65,"checksum_valid":true,` +
			`"receiver_context_tag":7,"request_nonce":305419896,"options":[{"type":200,"name":"Unknown","critical":false,"data":"010203"}]}}`,
		"probe.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"Probe","type_code":67,"checksum_valid":true,` +
			`"receiver_context_tag":7,"state":"exploring","sent_probes":[` +
			`{"source":"2001:db8:1::1","destination":"2001:db8:2::2","nonce":1,"data":0},` +
			`{"source":"2001:db8:3::3","destination":"2001:db8:2::2","nonce":2,"data":2864434397}],"received_probes":[` +
			`{"source":"2001:db8:2::2","destination":"2001:db8:1::1","nonce":2271560481,"data":5}],"options":[]}}`,
		"error.hex": `{"src":"2001:db8:1::1","dst":"2001:db8:2::2","shim6":{"kind":"control","type":"Error","type_code":68,"checksum_valid":true,` +
			`"error_code":1,"pointer":16,"packet_in_error":"3b02010012340000000000 01deadbeef"}}`,
	}
	cases["error.hex"] = strings.ReplaceAll(cases["error.hex"], " ", "")
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			pkt := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, name))
			out, err := decodeRun(t, "", "--json", hex.EncodeToString(pkt))
			if err != nil {
				t.Fatal(err)
			}
			if out != want+"\n" {
				t.Errorf("got\n%s\nwant\n%s", out, want)
			}
		})
	}
}

// TestDecodeI2JSON checks the longest golden field by field.
func TestDecodeI2JSON(t *testing.T) {
	pkt := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "i2.hex"))
	out, err := decodeRun(t, "", "--json", hex.EncodeToString(pkt))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Shim6 struct {
			Type    string
			Options []map[string]any
		}
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, o := range v.Shim6.Options {
		names = append(names, o["name"].(string))
	}
	want := "ResponderValidator LocatorList LocatorPreferences CGAParameterDataStructure CGASignature KeepaliveTimeout"
	if v.Shim6.Type != "I2" || strings.Join(names, " ") != want {
		t.Fatalf("I2 options %v", names)
	}
	if v.Shim6.Options[3]["data"] != "c0c1c2c3c4c5c6c7c8c9" || v.Shim6.Options[4]["signature"] != "d0d1d2d3d4d5" {
		t.Errorf("CGA options %v %v", v.Shim6.Options[3], v.Shim6.Options[4])
	}
}

func TestDecodeText(t *testing.T) {
	files, _ := filepath.Glob(decodeGoldenDir + "*.hex")
	for _, f := range files {
		name := filepath.Base(f)
		pkt := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, name))
		out, err := decodeRun(t, "", hex.EncodeToString(pkt))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !strings.HasPrefix(out, "#1 2001:db8:1::1 > 2001:db8:2::2 Shim6 ") {
			t.Errorf("%s: %q", name, out)
		}
	}
	pkt := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "update_request.hex"))
	out, _ := decodeRun(t, "", hex.EncodeToString(pkt))
	for _, want := range []string{
		"Shim6 UpdateRequest (type 64), 104 octets, checksum 0x",
		"receiver context tag   0x000000000007 (7)",
		"[3] 2001:db8:3::3 CGA",
		"[3] flags 0x03 BROKEN|TRANSIENT priority 2 weight 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// TestDecodeBadChecksum: decoded anyway, checksum_valid false, exit 0.
func TestDecodeBadChecksum(t *testing.T) {
	shim := decodeGolden(t, "keepalive.hex")
	shim[5] ^= 0xff
	pkt := decodeIPv6Packet(wire.ProtocolNumber, shim)
	out, err := decodeRun(t, "", "--json", hex.EncodeToString(pkt))
	if err != nil || !strings.Contains(out, `"checksum_valid":false`) || !strings.Contains(out, `"receiver_context_tag":78187493530`) {
		t.Fatalf("%v %s", err, out)
	}
	out, _ = decodeRun(t, "", hex.EncodeToString(pkt))
	if !strings.Contains(out, "INVALID, should be 0x") {
		t.Fatalf("text: %s", out)
	}
}

// TestDecodeErrors: undecodable packets give {"error","offset"} with the
// offset in the input packet, and exit status 1.
func TestDecodeErrors(t *testing.T) {
	unknown := make([]byte, 16)
	unknown[0], unknown[1], unknown[2] = 59, 1, 7
	wire.SetChecksum(unknown)
	short := decodeGolden(t, "i1.hex")[:40]
	cases := []struct {
		name, hex string
		offset    int
		msg       string
	}{
		{"unknown type", hex.EncodeToString(decodeIPv6Packet(wire.ProtocolNumber, unknown)), 42, "unknown message type"},
		{"truncated", hex.EncodeToString(decodeIPv6Packet(wire.ProtocolNumber, short)), 41, "truncated"},
		{"after a hop-by-hop header", hex.EncodeToString(decodeIPv6Packet(0, []byte{wire.ProtocolNumber, 0, 1, 4, 0, 0, 0, 0}, unknown)), 50, "unknown message type"},
		{"not shim6", hex.EncodeToString(decodeIPv6Packet(6, make([]byte, 20))), 6, "no Shim6 header"},
		{"not hex", "zz", 0, "not a hex packet"},
	}
	for _, c := range cases {
		out, err := decodeRun(t, "", "--json", c.hex)
		if decodeExitCode(err) != 1 {
			t.Errorf("%s: exit %v", c.name, err)
		}
		var v struct {
			Error  string
			Offset int
		}
		if jerr := json.Unmarshal([]byte(out), &v); jerr != nil || v.Offset != c.offset || !strings.Contains(v.Error, c.msg) {
			t.Errorf("%s: %s (%v)", c.name, out, jerr)
		}
	}
}

// TestDecodeStdin: one packet per line, exit 1 at the end if any failed.
func TestDecodeStdin(t *testing.T) {
	ka := hex.EncodeToString(decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "keepalive.hex")))
	pl := hex.EncodeToString(decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "payload.hex"), []byte{1, 2, 3}))
	in := "# comment\n" + ka + "\n\n" + pl + "\n" + "00\n" + strings.ToUpper(ka) + "\n"
	out, err := decodeRun(t, in, "--json", "-")
	if decodeExitCode(err) != 1 {
		t.Fatalf("exit %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "Keepalive") || !strings.Contains(lines[1], `"kind":"payload"`) ||
		!strings.HasPrefix(lines[2], `{"error":`) || !strings.Contains(lines[3], "Keepalive") {
		t.Fatalf("output:\n%s", out)
	}
	out, err = decodeRun(t, ka+"\n"+pl+"\n", "-")
	if err != nil || !strings.HasPrefix(out, "#1 ") || !strings.Contains(out, "\n#2 ") {
		t.Fatalf("text stdin: %v\n%s", err, out)
	}
}

func TestDecodeBareShim6(t *testing.T) {
	out, err := decodeRun(t, "", "--json", "--shim6", hex.EncodeToString(decodeGolden(t, "payload.hex")))
	want := `{"src":"","dst":"","shim6":{"kind":"payload","context_tag":1250999896491,"next_header":6}}` + "\n"
	if err != nil || out != want {
		t.Fatalf("%v %s", err, out)
	}
}

func TestDecodeUsage(t *testing.T) {
	if _, err := decodeRun(t, ""); err == nil || decodeExitCode(err) == 0 {
		t.Error("no input accepted")
	}
	if _, err := decodeRun(t, "", "00", "--pcap", "x"); err == nil {
		t.Error("hex and --pcap accepted together")
	}
	if _, err := decodeRun(t, "", "--pcap", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing pcap accepted")
	}
}

// frames returns link-layer frames for a capture: non-IPv6 and non-Shim6
// frames that must be skipped, and three Shim6 packets (one after a
// Hop-by-Hop and a Destination Options header).
func decodeCaptureFrames(t *testing.T, link func(ipv6 []byte) []byte, other []byte) [][]byte {
	ka := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "keepalive.hex"))
	probe := decodeIPv6Packet(0, []byte{60, 0, 1, 4, 0, 0, 0, 0}, []byte{wire.ProtocolNumber, 0, 1, 4, 0, 0, 0, 0}, decodeGolden(t, "probe.hex"))
	pl := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "payload.hex"), make([]byte, 20))
	tcp := decodeIPv6Packet(6, make([]byte, 20))
	frames := [][]byte{link(tcp), link(ka), link(probe), link(pl)}
	if other != nil {
		frames = append([][]byte{other}, frames...)
	}
	return frames
}

func decodeEther(et uint16, p []byte) []byte {
	h := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}
	return append(h, p...)
}

func TestDecodePcap(t *testing.T) {
	arp := decodeEther(0x0806, make([]byte, 28))
	sll := func(p []byte) []byte {
		return append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd}, p...)
	}
	vlan := func(p []byte) []byte { return decodeEther(0x8100, append([]byte{0, 5, 0x86, 0xdd}, p...)) }
	cases := []struct {
		name   string
		lt     layers.LinkType
		link   func([]byte) []byte
		other  []byte
		pcapng bool
	}{
		{"ethernet", layers.LinkTypeEthernet, func(p []byte) []byte { return decodeEther(0x86dd, p) }, arp, false},
		{"ethernet vlan", layers.LinkTypeEthernet, vlan, arp, false},
		{"linux cooked", layers.LinkTypeLinuxSLL, sll, sll(make([]byte, 20))[:16], false},
		{"raw", layers.LinkTypeRaw, func(p []byte) []byte { return p }, append([]byte{0x45}, make([]byte, 19)...), false},
		{"pcapng ethernet", layers.LinkTypeEthernet, func(p []byte) []byte { return decodeEther(0x86dd, p) }, arp, true},
		{"pcapng raw", layers.LinkTypeRaw, func(p []byte) []byte { return p }, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			var write func([]byte) error
			var flush func() error
			if c.pcapng {
				w, err := pcapgo.NewNgWriter(f, c.lt)
				if err != nil {
					t.Fatal(err)
				}
				write = func(b []byte) error {
					return w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(b), Length: len(b)}, b)
				}
				flush = w.Flush
			} else {
				w := pcapgo.NewWriter(f)
				if err := w.WriteFileHeader(65535, c.lt); err != nil {
					t.Fatal(err)
				}
				write = func(b []byte) error {
					return w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(b), Length: len(b)}, b)
				}
				flush = func() error { return nil }
			}
			for _, fr := range decodeCaptureFrames(t, c.link, c.other) {
				if err := write(fr); err != nil {
					t.Fatal(err)
				}
			}
			if err := flush(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			out, err := decodeRun(t, "", "--json", "--pcap", path)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || !strings.Contains(lines[0], `"type":"Keepalive"`) || !strings.Contains(lines[1], `"type":"Probe"`) ||
				!strings.Contains(lines[2], `"kind":"payload"`) || !strings.HasPrefix(lines[0], `{"src":"2001:db8:1::1","dst":"2001:db8:2::2"`) {
				t.Fatalf("output:\n%s", out)
			}
		})
	}
}

// TestDecodePcapFailure: a Shim6 packet cut by the snap length fails,
// and the exit status is 1.
func TestDecodePcapFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cap.pcap")
	f, _ := os.Create(path)
	w := pcapgo.NewWriter(f)
	_ = w.WriteFileHeader(65535, layers.LinkTypeRaw)
	pkt := decodeIPv6Packet(wire.ProtocolNumber, decodeGolden(t, "i2.hex"))[:100]
	_ = w.WritePacket(gopacket.CaptureInfo{CaptureLength: len(pkt), Length: len(pkt) + 84}, pkt)
	f.Close()
	out, err := decodeRun(t, "", "--pcap", path)
	if decodeExitCode(err) != 1 || !strings.Contains(out, "#1 error at offset 41: shim6: truncated") {
		t.Fatalf("%v %q", err, out)
	}
}
