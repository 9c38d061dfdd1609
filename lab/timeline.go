package lab

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Event is one line of a Timeline.
type Event struct {
	// At is the time since the timeline's start.
	At time.Duration `json:"at_ns"`
	// Kind is a short machine-readable tag: "context", "fail", "heal",
	// "explore", "switch", "stream", ...
	Kind string `json:"kind"`
	// Text is what a person reads.
	Text string `json:"text"`
	// Fields carry values for --json consumers.
	Fields map[string]any `json:"fields,omitempty"`
}

// Timeline records what happened during a demo or benchmark run, from
// several goroutines, and optionally prints each event as it happens.
type Timeline struct {
	start time.Time

	mu     sync.Mutex
	events []Event
	live   io.Writer
}

// NewTimeline starts a timeline at start. When live is not nil every event
// is also written to it as one line when added.
func NewTimeline(start time.Time, live io.Writer) *Timeline {
	return &Timeline{start: start, live: live}
}

// Start returns the timeline's origin.
func (t *Timeline) Start() time.Time { return t.start }

// Add records an event that happened at when (use time.Now() for now).
func (t *Timeline) Add(when time.Time, kind, text string, fields map[string]any) Event {
	e := Event{At: when.Sub(t.start), Kind: kind, Text: text, Fields: fields}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
	if t.live != nil {
		fmt.Fprintln(t.live, e.String())
	}
	return e
}

// Addf records an event that happens now.
func (t *Timeline) Addf(kind, format string, args ...any) Event {
	return t.Add(time.Now(), kind, fmt.Sprintf(format, args...), nil)
}

// Events returns the events ordered by time (stable for equal times).
func (t *Timeline) Events() []Event {
	t.mu.Lock()
	out := append([]Event(nil), t.events...)
	t.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// First returns the first event of the given kind.
func (t *Timeline) First(kind string) (Event, bool) {
	for _, e := range t.Events() {
		if e.Kind == kind {
			return e, true
		}
	}
	return Event{}, false
}

// String formats an event as "  +1.234s  kind     text".
func (e Event) String() string {
	return fmt.Sprintf("%+9.3fs  %-8s %s", e.At.Seconds(), e.Kind, e.Text)
}

// WriteText writes every event, one per line.
func (t *Timeline) WriteText(w io.Writer) error {
	for _, e := range t.Events() {
		if _, err := fmt.Fprintln(w, e.String()); err != nil {
			return err
		}
	}
	return nil
}
