package daemon

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// sd_notify(3) states sent by shim6d.
const (
	NotifyReady     = "READY=1"
	NotifyStopping  = "STOPPING=1"
	NotifyReloading = "RELOADING=1"
)

// Notify sends one sd_notify(3) message to the service manager through the
// datagram socket named by $NOTIFY_SOCKET (a path, or an abstract name
// written with a leading '@'). Without $NOTIFY_SOCKET it does nothing and
// returns nil: shim6d then simply is not run by systemd with Type=notify.
func Notify(state string) error {
	return notifyTo(os.Getenv("NOTIFY_SOCKET"), state)
}

// NotifyReload tells systemd that a reload starts (Type=notify-reload
// needs MONOTONIC_USEC with it; Type=notify accepts it too).
func NotifyReload() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	usec := ts.Sec*1e6 + ts.Nsec/1e3
	return Notify(fmt.Sprintf("%s\nMONOTONIC_USEC=%d", NotifyReloading, usec))
}

func notifyTo(socket, state string) error {
	if socket == "" {
		return nil
	}
	var sa unix.SockaddrUnix
	switch {
	case strings.HasPrefix(socket, "@"):
		// Abstract namespace: the kernel name starts with a NUL byte,
		// which x/sys writes for a leading '@'.
		sa.Name = socket
	case strings.HasPrefix(socket, "/"):
		sa.Name = socket
	default:
		return fmt.Errorf("sd_notify: unsupported NOTIFY_SOCKET %q", socket)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte(state), 0, &sa); err != nil {
		return fmt.Errorf("sd_notify %s: %w", socket, err)
	}
	return nil
}
