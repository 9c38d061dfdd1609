package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readNotify(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 512)
	n, err := c.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	p := filepath.Join(t.TempDir(), "notify")
	c := listenNotify(t, p)
	t.Setenv("NOTIFY_SOCKET", p)
	if err := Notify(NotifyReady); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, c); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
	if err := NotifyReload(); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, c); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@goshim6-notify-test-%d", os.Getpid())
	c := listenNotify(t, name)
	t.Setenv("NOTIFY_SOCKET", name)
	if err := Notify(NotifyStopping); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, c); got != "STOPPING=1" {
		t.Fatalf("got %q", got)
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify(NotifyReady); err != nil {
		t.Fatalf("no NOTIFY_SOCKET must be a no-op: %v", err)
	}
	if err := notifyTo("relative", NotifyReady); err == nil {
		t.Fatal("relative socket accepted")
	}
}
