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

// Offload selects what the shim device does with TCP's large segments.
type Offload int

const (
	// OffloadGSO (default): TSO off, GSO on. TCP keeps building large
	// segments; the shim device segments them in software before the
	// payload header goes in (fastest, see docs/dataplane.md).
	OffloadGSO Offload = iota
	// OffloadNone: TSO and GSO off; TCP sends one wire-sized packet at a
	// time.
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
