package main

// Progress display and Ctrl-C handling for cga gen / hba gen (owner: cga
// helper).

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/goshim6/goshim6/cga"
)

// cgaSignalContext is cancelled by SIGINT (Ctrl-C) or SIGTERM; a second
// signal then kills the process as usual once stop has run.
func cgaSignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// cgaProgress draws one self-overwriting status line on a terminal.
type cgaProgress struct {
	w    io.Writer
	on   bool
	mu   sync.Mutex
	last cga.Progress
	drew bool
}

func newCGAProgress(w io.Writer, mode string) *cgaProgress {
	p := &cgaProgress{w: w}
	switch mode {
	case "always":
		p.on = true
	case "never":
	default:
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				p.on = true
			}
		}
	}
	return p
}

func (p *cgaProgress) report(pr cga.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = pr
	if !p.on || pr.Done {
		return
	}
	fmt.Fprintf(p.w, "\r\033[KSec %d: %s attempts, %s/s, mean %s attempts (~%s at this rate), elapsed %s",
		pr.Sec, cgaSI(float64(pr.Attempts)), cgaSI(pr.Rate), cgaSI(pr.Expected),
		pr.Remaining().Round(time.Second), pr.Elapsed.Round(100*time.Millisecond))
	p.drew = true
}

// finish clears the status line.
func (p *cgaProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drew {
		fmt.Fprint(p.w, "\r\033[K")
		p.drew = false
	}
}

// cgaSI formats a count with k/M/G suffixes.
func cgaSI(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
