package main

// shim6ctl decode (owner: wire helper): a Shim6 packet decoder that
// follows the RFC 5533/5534 diagrams (see docs/decode-json.md).

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func init() { addCommand(newDecodeCommand) }

func newDecodeCommand() *cobra.Command {
	var jsonOut, bare bool
	var pcapFile string
	c := &cobra.Command{
		Use:   "decode (HEX | - | --pcap FILE) [--json]",
		Short: "Decode Shim6 packets (RFC 5533/5534) from hex or a pcap/pcapng file",
		Long: `Decode Shim6 control messages and payload extension headers.

Input is one IPv6 packet as a hex argument, or "-" for one hex packet per
line on standard input (blank lines and lines starting with # are
skipped), or --pcap FILE (pcap or pcapng; Ethernet, raw IP and Linux
cooked link types; packets without a Shim6 header are skipped). The Shim6
header is found after any Hop-by-Hop, Routing, Destination Options, AH or
first-fragment headers. With --shim6 the hex input is a bare Shim6 header
(the IP protocol 140 payload) without an IPv6 header.

Output is readable text, or with --json one JSON object per packet and
line: {"src","dst","shim6":{...}}, or {"error","offset"} for a packet
that cannot be decoded (schema: docs/decode-json.md). Control messages
are decoded even when their checksum is wrong (checksum_valid false).
The exit status is 1 if any packet failed to decode.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d := &decoder{w: c.OutOrStdout(), json: jsonOut, bare: bare}
			var err error
			switch {
			case pcapFile != "" && len(args) > 0:
				return errors.New("give either a hex packet, -, or --pcap FILE, not several")
			case pcapFile != "":
				if bare {
					return errors.New("--shim6 applies to hex input, not --pcap")
				}
				err = d.pcap(pcapFile)
			case len(args) == 0:
				return errors.New("nothing to decode: give a hex packet, - (stdin), or --pcap FILE")
			case args[0] == "-":
				err = d.lines(c.InOrStdin())
			default:
				err = d.hexPacket(args[0])
			}
			if err != nil {
				return err
			}
			if d.failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object per packet and line")
	c.Flags().StringVar(&pcapFile, "pcap", "", "read packets from a pcap or pcapng file")
	c.Flags().BoolVar(&bare, "shim6", false, "hex input starts at the Shim6 header, not at an IPv6 header")
	return c
}

// decoder decodes packets and writes one result per packet.
type decoder struct {
	w      io.Writer
	json   bool
	bare   bool
	n      int // packets reported
	failed int // packets that could not be decoded
}

// decodeParseHex accepts hex digits with optional whitespace, ':' or '-'
// separators and an optional 0x prefix.
func decodeParseHex(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', ':', '-', '\r', '\n':
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a hex packet: %w", err)
	}
	return b, nil
}

func (d *decoder) hexPacket(s string) error {
	b, err := decodeParseHex(s)
	if err != nil {
		return d.emitError(err.Error(), 0)
	}
	return d.packet(b, true)
}

func (d *decoder) lines(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := d.hexPacket(line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// packet decodes one packet (IPv6, or a bare Shim6 header with --shim6)
// and reports it. With report false (pcap input), packets that carry no
// Shim6 header are skipped silently.
func (d *decoder) packet(b []byte, report bool) error {
	var res decodeResult
	if d.bare {
		res = decodeShim6(b, 0)
	} else {
		res = decodePacket(b)
	}
	if res.skip && !report {
		return nil
	}
	if res.err != "" {
		return d.emitError(res.err, res.offset)
	}
	return d.emit(res)
}

func (d *decoder) emitError(msg string, offset int) error {
	d.n++
	d.failed++
	if d.json {
		return decodeWriteJSON(d.w, decodeErrorJSON{Error: msg, Offset: offset})
	}
	_, err := fmt.Fprintf(d.w, "#%d error at offset %d: %s\n", d.n, offset, msg)
	return err
}

func (d *decoder) emit(res decodeResult) error {
	d.n++
	if d.json {
		return decodeWriteJSON(d.w, res.packetJSON())
	}
	_, err := io.WriteString(d.w, res.text(d.n))
	return err
}

func decodeWriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// pcap decodes every Shim6 packet of a pcap or pcapng file.
func (d *decoder) pcap(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return readCapture(f, func(pkt []byte) error { return d.packet(pkt, false) })
}
