package lab_test

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goshim6/goshim6/internal/netns/nstest"
	"github.com/goshim6/goshim6/lab"
)

func TestProcessInNamespace(t *testing.T) {
	n := nstest.NS(t)
	ino, _ := n.Inode()
	var out bytes.Buffer
	p, err := lab.StartProcess(n, &out, "sh", "-c", "readlink /proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(out.String()), fmt.Sprintf("net:[%d]", ino); got != want {
		t.Fatalf("ran in %q, want %q", got, want)
	}

	// SIGTERM stops a well-behaved process...
	p, err = lab.StartProcess(n, nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Stop(5 * time.Second)
	if ws, ok := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM || time.Since(start) > 4*time.Second {
		t.Fatalf("stop: %v (%v)", err, p.Cmd.ProcessState)
	}
	// ...and SIGKILL one that ignores it, children included.
	p, err = lab.StartProcess(n, nil, "sh", "-c", `trap "" TERM; sleep 30 & wait`)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	p.Stop(200 * time.Millisecond)
	if ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Fatalf("not killed: %v", p.Cmd.ProcessState)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if pids, _ := n.PIDs(); len(pids) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	pids, _ := n.PIDs()
	t.Fatalf("left running in the namespace: %v", pids)
}
