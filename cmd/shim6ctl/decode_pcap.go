package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Link types beyond the named gopacket constants. (gopacket v1.1.19
// keeps link types in 8 bits, so Linux cooked v2, 276, cannot be told
// apart and is not supported; capture with "any" gives v1, 113.)
const (
	linkTypeRawBSD     = 12 // DLT_RAW on some BSDs
	linkTypeRawOpenBSD = 14 // DLT_RAW on OpenBSD
	linkTypeLinuxSLL2  = 276
)

// readCapture calls fn with the IPv6 packet of every frame of a pcap or
// pcapng stream whose link layer carries IPv6; other frames are skipped.
func readCapture(r io.Reader, fn func(ipv6 []byte) error) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("reading capture: %w", err)
	}
	if binary.BigEndian.Uint32(magic) == 0x0a0d0d0a { // pcapng Section Header Block
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		for {
			data, ci, err := ng.ReadPacketData()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("pcapng: %w", err)
			}
			lt := ng.LinkType()
			if iface, err := ng.Interface(ci.InterfaceIndex); err == nil {
				lt = iface.LinkType
			}
			if pkt, ok := linkPayloadIPv6(lt, data); ok {
				if err := fn(pkt); err != nil {
					return err
				}
			}
		}
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return fmt.Errorf("pcap: %w", err)
	}
	for {
		data, _, err := pr.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pcap: %w", err)
		}
		if pkt, ok := linkPayloadIPv6(pr.LinkType(), data); ok {
			if err := fn(pkt); err != nil {
				return err
			}
		}
	}
}

const etherTypeIPv6 = 0x86dd

// linkPayloadIPv6 strips the link-layer header of a frame and returns
// its IPv6 packet, if it carries one.
func linkPayloadIPv6(lt layers.LinkType, f []byte) ([]byte, bool) {
	var p []byte
	switch lt {
	case layers.LinkTypeEthernet:
		if len(f) < 14 {
			return nil, false
		}
		et, off := binary.BigEndian.Uint16(f[12:14]), 14
		for (et == 0x8100 || et == 0x88a8) && len(f) >= off+4 { // VLAN tags
			et, off = binary.BigEndian.Uint16(f[off+2:off+4]), off+4
		}
		if et != etherTypeIPv6 {
			return nil, false
		}
		p = f[off:]
	case layers.LinkTypeLinuxSLL: // 16-octet cooked header, protocol last
		if len(f) < 16 || binary.BigEndian.Uint16(f[14:16]) != etherTypeIPv6 {
			return nil, false
		}
		p = f[16:]
	case layers.LinkTypeRaw, layers.LinkTypeIPv6, linkTypeRawBSD, linkTypeRawOpenBSD:
		p = f
	case layers.LinkTypeNull, layers.LinkTypeLoop: // 4-octet address family
		if len(f) < 4 {
			return nil, false
		}
		p = f[4:]
	default:
		return nil, false
	}
	if len(p) == 0 || p[0]>>4 != 6 {
		return nil, false
	}
	return p, true
}
