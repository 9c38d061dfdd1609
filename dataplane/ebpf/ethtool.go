package ebpf

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Legacy ethtool feature commands (include/uapi/linux/ethtool.h); each maps
// to a group of netdev features (TSO: all TSO variants).
const (
	ethtoolGTSO = 0x1e
	ethtoolSTSO = 0x1f
	ethtoolGGSO = 0x23
	ethtoolSGSO = 0x24
	ethtoolGGRO = 0x2b
	ethtoolSGRO = 0x2c
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

// ethtool runs one legacy ethtool get/set command on dev in the current
// network namespace and returns the value.
func ethtool(dev string, cmd, value uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ev := ethtoolValue{cmd: cmd, data: value}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], dev)
	ifr.data = unsafe.Pointer(&ev)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return 0, fmt.Errorf("ethtool %#x on %s: %w", cmd, dev, errno)
	}
	return ev.data, nil
}

func setFeature(dev string, cmd uint32, on bool) error {
	var v uint32
	if on {
		v = 1
	}
	_, err := ethtool(dev, cmd, v)
	return err
}

// Offload selects the segmentation offloads of the shim device.
type Offload int

const (
	// OffloadGSO (default): TSO off, GSO on. TCP builds large packets;
	// they cross the veth pair, whose transmit segments them in
	// software, and shim6_out on the far end shims each segment.
	// Packets that are wire-sized already (small UDP, ICMPv6, ...) are
	// shimmed on the shim device's egress by shim6_out_egress without
	// crossing the veth.
	OffloadGSO Offload = iota
	// OffloadNone: TSO and GSO off and gso_max_segs 1, so that TCP sends
	// one wire-sized packet at a time (Linux 6.x TCP builds GSO packets
	// whatever the device features say; gso_max_segs is what stops it),
	// all shimmed on the egress fast path. Measured much slower (see
	// docs/benchmarks.md); kept for comparison.
	OffloadNone
)

func (o Offload) String() string {
	switch o {
	case OffloadGSO:
		return "tso-off-gso-on"
	case OffloadNone:
		return "tso-off-gso-off"
	}
	return fmt.Sprintf("Offload(%d)", int(o))
}
