package daemon

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"
)

type fakeUplinks struct {
	calls []string
	fail  map[string]bool
}

func (f *fakeUplinks) AddUplink(name string) error {
	f.calls = append(f.calls, "+"+name)
	if f.fail[name] {
		return errors.New("no such interface")
	}
	return nil
}

func (f *fakeUplinks) RemoveUplink(name string) error {
	f.calls = append(f.calls, "-"+name)
	return nil
}

// An interface that loses its locators (removed, or a modem going away) is
// detached, and attached again when it comes back (same name, maybe a new
// ifindex); a failed attach is retried at the next address change.
func TestSyncUplinks(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := &fakeUplinks{fail: map[string]bool{}}
	known := map[string]bool{"eth0": true, "wwan0": true}
	step := func(cur []string, want ...string) {
		t.Helper()
		f.calls = nil
		syncUplinks(f, known, cur, log)
		slices.Sort(f.calls)
		if !slices.Equal(f.calls, want) {
			t.Fatalf("calls %v, want %v", f.calls, want)
		}
	}
	step([]string{"eth0", "wwan0"})           // nothing changed
	step([]string{"eth0"}, "-wwan0")          // the modem went away
	step([]string{"eth0", "wwan0"}, "+wwan0") // and came back
	f.fail["eth1"] = true
	step([]string{"eth0", "eth1", "wwan0"}, "+eth1") // cannot attach yet
	delete(f.fail, "eth1")
	step([]string{"eth0", "eth1", "wwan0"}, "+eth1") // retried
	if !known["eth1"] || !known["wwan0"] || len(known) != 3 {
		t.Fatalf("known %v", known)
	}
	// A data plane that cannot detach keeps what it has.
	known2 := map[string]bool{"eth0": true}
	syncUplinks(struct{ UplinkAdder }{f}, known2, nil, log)
	if !known2["eth0"] {
		t.Fatal("detached without a RemoveUplink")
	}
}
