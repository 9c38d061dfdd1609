package ebpf

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/goshim6/goshim6/dataplane"
)

// TestRunReturnsOnCancel: cancelling Run while it waits for an event (none
// come) makes it return ctx.Err(); it once hung because the deadline it
// set from another goroutine waited for the blocked read's lock.
func TestRunReturnsOnCancel(t *testing.T) {
	_, a, _ := twoHosts(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.dp.Run(ctx, func(dataplane.Event) {}) }()
	time.Sleep(100 * time.Millisecond) // let Run block in Read
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	// The data plane stays usable: a new reader can be opened.
	rd, err := a.dp.NewEventReader()
	if err != nil {
		t.Fatalf("NewEventReader after Run: %v", err)
	}
	rd.Close()
}
