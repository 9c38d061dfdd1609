package lab

import (
	"errors"
	"io"
	"os/exec"
	"syscall"
	"time"

	"github.com/goshim6/goshim6/internal/netns"
)

// Proc is a process running inside a lab namespace (a shim6d, a traffic
// tool, a test helper).
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProcess starts name with args inside n, with stdout and stderr
// going to out (nil: discarded). The process is in its own process group
// so that Stop reaches its children too.
func StartProcess(n *netns.NS, out io.Writer, name string, args ...string) (*Proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.Start(cmd); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits for the process to exit and returns what exec.Cmd.Wait did.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	select {
	case <-p.done:
		return errors.New("lab: process already exited")
	default:
	}
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Stop sends SIGTERM, waits up to grace, then SIGKILL, and returns the
// error of exec.Cmd.Wait (an *exec.ExitError when the process died of
// the signal).
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
	return p.err
}
