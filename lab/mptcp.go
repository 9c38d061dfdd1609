package lab

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/goshim6/goshim6/internal/netns"
)

// MPTCP path-manager configuration over generic netlink (family
// "mptcp_pm", what `ip mptcp` does), for the benchmark's MPTCP baseline.
// Values from include/uapi/linux/mptcp.h.
const (
	mptcpPMName    = "mptcp_pm"
	mptcpPMVersion = 1

	mptcpCmdAddAddr   = 1
	mptcpCmdGetAddr   = 3
	mptcpCmdFlush     = 4
	mptcpCmdSetLimits = 5
	mptcpCmdGetLimits = 6

	mptcpAttrAddr        = 1
	mptcpAttrRcvAddAddrs = 2
	mptcpAttrSubflows    = 3

	mptcpAddrFamily = 1
	mptcpAddrID     = 2
	mptcpAddrAddr6  = 4
	mptcpAddrFlags  = 6
	mptcpAddrIfIdx  = 7
)

// MPTCP endpoint flags (MPTCP_PM_ADDR_FLAG_*).
const (
	MPTCPSignal  uint32 = 1 << 0
	MPTCPSubflow uint32 = 1 << 1
	MPTCPBackup  uint32 = 1 << 2
)

// MPTCPEndpoint is one address the kernel path manager may use.
type MPTCPEndpoint struct {
	ID     uint8
	Addr   netip.Addr
	Ifname string // device to bind subflows to (optional)
	Flags  uint32
}

func mptcpRequest(cmd uint8, flags int) (*nl.NetlinkRequest, error) {
	fam, err := netlink.GenlFamilyGet(mptcpPMName)
	if err != nil {
		return nil, fmt.Errorf("lab: generic netlink family %s: %w (kernel without MPTCP?)", mptcpPMName, err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), flags)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: mptcpPMVersion})
	return req, nil
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// SetMPTCPLimits sets the path manager's limits in n: the number of extra
// subflows per connection and of ADD_ADDRs accepted.
func SetMPTCPLimits(n *netns.NS, subflows, addAddrAccepted uint32) error {
	return n.Do(func() error {
		req, err := mptcpRequest(mptcpCmdSetLimits, unix.NLM_F_ACK)
		if err != nil {
			return err
		}
		req.AddData(nl.NewRtAttr(mptcpAttrSubflows, u32(subflows)))
		req.AddData(nl.NewRtAttr(mptcpAttrRcvAddAddrs, u32(addAddrAccepted)))
		if _, err := req.Execute(unix.NETLINK_GENERIC, 0); err != nil {
			return fmt.Errorf("lab: mptcp limits in %s: %w", n.Name(), err)
		}
		return nil
	})
}

// MPTCPLimits reads the limits in n.
func MPTCPLimits(n *netns.NS) (subflows, addAddrAccepted uint32, err error) {
	err = n.Do(func() error {
		req, err := mptcpRequest(mptcpCmdGetLimits, 0)
		if err != nil {
			return err
		}
		msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if len(m) < nl.SizeofGenlmsg {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
			if err != nil {
				return err
			}
			for _, a := range attrs {
				if len(a.Value) < 4 {
					continue
				}
				switch a.Attr.Type {
				case mptcpAttrSubflows:
					subflows = binary.NativeEndian.Uint32(a.Value)
				case mptcpAttrRcvAddAddrs:
					addAddrAccepted = binary.NativeEndian.Uint32(a.Value)
				}
			}
		}
		return nil
	})
	return subflows, addAddrAccepted, err
}

// AddMPTCPEndpoint adds an endpoint to n's path manager.
func AddMPTCPEndpoint(n *netns.NS, ep MPTCPEndpoint) error {
	var ifindex int
	if ep.Ifname != "" {
		i, err := n.LinkIndex(ep.Ifname)
		if err != nil {
			return err
		}
		ifindex = i
	}
	return n.Do(func() error {
		req, err := mptcpRequest(mptcpCmdAddAddr, unix.NLM_F_ACK)
		if err != nil {
			return err
		}
		addr := nl.NewRtAttr(mptcpAttrAddr|int(nl.NLA_F_NESTED), nil)
		addr.AddRtAttr(mptcpAddrFamily, binary.NativeEndian.AppendUint16(nil, unix.AF_INET6))
		if ep.ID != 0 {
			addr.AddRtAttr(mptcpAddrID, []byte{ep.ID})
		}
		a16 := ep.Addr.As16()
		addr.AddRtAttr(mptcpAddrAddr6, a16[:])
		addr.AddRtAttr(mptcpAddrFlags, u32(ep.Flags))
		if ifindex != 0 {
			addr.AddRtAttr(mptcpAddrIfIdx, u32(uint32(ifindex)))
		}
		req.AddData(addr)
		if _, err := req.Execute(unix.NETLINK_GENERIC, 0); err != nil {
			return fmt.Errorf("lab: mptcp endpoint %s in %s: %w", ep.Addr, n.Name(), err)
		}
		return nil
	})
}

// FlushMPTCPEndpoints removes every endpoint of n's path manager.
func FlushMPTCPEndpoints(n *netns.NS) error {
	return n.Do(func() error {
		req, err := mptcpRequest(mptcpCmdFlush, unix.NLM_F_ACK)
		if err != nil {
			return err
		}
		if _, err := req.Execute(unix.NETLINK_GENERIC, 0); err != nil {
			return fmt.Errorf("lab: mptcp flush in %s: %w", n.Name(), err)
		}
		return nil
	})
}

// MPTCPEndpoints lists the endpoints of n's path manager.
func MPTCPEndpoints(n *netns.NS) ([]MPTCPEndpoint, error) {
	var out []MPTCPEndpoint
	err := n.Do(func() error {
		req, err := mptcpRequest(mptcpCmdGetAddr, unix.NLM_F_DUMP)
		if err != nil {
			return err
		}
		msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if len(m) < nl.SizeofGenlmsg {
				continue
			}
			attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
			if err != nil {
				return err
			}
			for _, a := range attrs {
				if a.Attr.Type&nl.NLA_TYPE_MASK != mptcpAttrAddr {
					continue
				}
				inner, err := nl.ParseRouteAttr(a.Value)
				if err != nil {
					return err
				}
				var ep MPTCPEndpoint
				for _, x := range inner {
					switch x.Attr.Type {
					case mptcpAddrID:
						if len(x.Value) >= 1 {
							ep.ID = x.Value[0]
						}
					case mptcpAddrAddr6:
						if len(x.Value) == 16 {
							ep.Addr = netip.AddrFrom16([16]byte(x.Value))
						}
					case mptcpAddrFlags:
						if len(x.Value) >= 4 {
							ep.Flags = binary.NativeEndian.Uint32(x.Value)
						}
					}
				}
				out = append(out, ep)
			}
		}
		return nil
	})
	return out, err
}
