package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goshim6/goshim6/api"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// ctlBackend is a canned daemon for the shim6ctl tests.
type ctlBackend struct {
	mu   sync.Mutex
	last string // last mutating call, for assertions
	// subs receives the event channel of each new watcher.
	subs chan chan api.Event
}

func (b *ctlBackend) record(s string) { b.mu.Lock(); b.last = s; b.mu.Unlock() }

var canned = []api.Context{{
	LocalTag: 0x2a3b4c5d6e7f, PeerTag: 0x1111, LocalULID: netip.MustParseAddr("2001:db8:1::10"), PeerULID: netip.MustParseAddr("2001:db8:2::20"),
	LocalLocator: netip.MustParseAddr("2001:db8:1:2::10"), PeerLocator: netip.MustParseAddr("2001:db8:2:2::20"),
	State: "established", REAPState: "operational", Created: t0.Add(-5 * time.Minute), LastSwitch: t0.Add(-30 * time.Second),
	LastSwitchReason: "send-timeout", Switches: 1,
	Traffic: api.Traffic{TxPackets: 12345, TxBytes: 9 << 20, RxPackets: 10, RxBytes: 1000},
	PeerLocators: []api.Locator{
		{Addr: netip.MustParseAddr("2001:db8:2::20"), Verification: "hba", State: "verified"},
		{Addr: netip.MustParseAddr("2001:db8:9::20"), Verification: "hba", State: "failed"},
	},
}, {
	LocalTag: 0x77, LocalULID: netip.MustParseAddr("2001:db8:1::10"), PeerULID: netip.MustParseAddr("2001:db8:3::30"),
	State: "i1-sent", Created: t0.Add(-2 * time.Second),
}}

func (b *ctlBackend) Status(context.Context) (api.Status, error) {
	return api.Status{Version: "v0-test", PID: 4242, Started: t0.Add(-time.Hour), Now: t0, Security: "insecure", DataPlane: "ebpf",
		Contexts: 2, ContextsByState: map[string]int{"established": 1, "i1-sent": 1}, Locators: 2,
		Warnings: []string{"insecure mode: peer locators are not verified"}}, nil
}
func (b *ctlBackend) Contexts(context.Context) ([]api.Context, error) { return canned, nil }
func (b *ctlBackend) Context(_ context.Context, r api.ContextRef) (api.Context, error) {
	for _, c := range canned {
		if c.LocalTag == r.Tag || (r.Tag == 0 && c.PeerULID == r.PeerULID) {
			return c, nil
		}
	}
	return api.Context{}, api.Errorf(api.CodeNotFound, "no context %s", r)
}
func (b *ctlBackend) CreateContext(_ context.Context, p api.CreateParams) (api.Context, error) {
	b.record("create " + p.PeerULID.String())
	return api.Context{LocalTag: 0x99, LocalULID: netip.MustParseAddr("2001:db8:1::10"), PeerULID: p.PeerULID, State: "i1-sent"}, nil
}
func (b *ctlBackend) DeleteContext(_ context.Context, r api.ContextRef) error {
	if _, err := b.Context(context.Background(), r); err != nil {
		return err
	}
	b.record("delete " + r.String())
	return nil
}
func (b *ctlBackend) Update(_ context.Context, r api.ContextRef) error {
	b.record("update " + r.String())
	return nil
}
func (b *ctlBackend) Explore(_ context.Context, r api.ContextRef) error {
	b.record("explore " + r.String())
	return nil
}
func (b *ctlBackend) Pin(_ context.Context, p api.PinParams) error {
	b.record("pin " + p.ContextRef.String() + " " + p.LocalLocator.String() + " " + p.PeerLocator.String())
	return nil
}
func (b *ctlBackend) Unpin(_ context.Context, r api.ContextRef) error {
	b.record("unpin " + r.String())
	return nil
}
func (b *ctlBackend) Set(_ context.Context, p api.SetParams) error {
	b.record(fmt.Sprintf("set %s send_timeout=%d", p.ContextRef, p.SendTimeoutSeconds))
	return nil
}
func (b *ctlBackend) Locators(context.Context) (api.Locators, error) {
	return api.Locators{Generation: 4, Local: []api.Locator{{Addr: netip.MustParseAddr("2001:db8:1::10"), Interface: "eth0", Verification: "hba", State: "usable"}}}, nil
}
func (b *ctlBackend) Stats(context.Context) (api.Stats, error) {
	return api.Stats{Counters: map[string]uint64{"rx_i1": 3, "drop_bad_checksum": 1, "zero": 0}}, nil
}
func (b *ctlBackend) Subscribe(context.Context) (<-chan api.Event, func(), error) {
	ch := make(chan api.Event, 4)
	b.subs <- ch
	return ch, func() {}, nil
}

func startCtlDaemon(t *testing.T) (*ctlBackend, string) {
	t.Helper()
	b := &ctlBackend{subs: make(chan chan api.Event, 4)}
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := api.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { (&api.Server{Backend: b}).Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, sock
}

func ctl(t *testing.T, sock string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--socket", sock))
	err := root.Execute()
	return out.String(), err
}

func mustCtl(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := ctl(t, sock, args...)
	if err != nil {
		t.Fatalf("shim6ctl %v: %v\n%s", args, err, out)
	}
	return out
}

func wantIn(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestCtlStatus(t *testing.T) {
	_, sock := startCtlDaemon(t)
	out := strings.Join(strings.Fields(mustCtl(t, sock, "status")), " ")
	wantIn(t, out, "v0-test (pid 4242)", "up 1h00m", "security insecure", "contexts 2 (1 established, 1 i1-sent)", "WARNING: insecure mode")
	var st api.Status
	if err := json.Unmarshal([]byte(mustCtl(t, sock, "status", "-o", "json")), &st); err != nil || st.PID != 4242 {
		t.Fatalf("json status: %+v %v", st, err)
	}
}

func TestCtlContextsTable(t *testing.T) {
	_, sock := startCtlDaemon(t)
	out := mustCtl(t, sock, "contexts")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header + 2 rows:\n%s", out)
	}
	wantIn(t, lines[0], "TAG", "PEER TAG", "LOCAL ULID", "PEER ULID", "LOCATORS", "STATE", "REAP", "AGE", "TX", "RX", "LAST SWITCH")
	wantIn(t, lines[1], "0x2a3b4c5d6e7f", "0x1111", "2001:db8:1:2::10 > 2001:db8:2:2::20", "established", "operational", "5m00s", "12.3k/9.0MiB", "30s ago (send-timeout)")
	wantIn(t, lines[2], "0x77", "2001:db8:3::30", "i1-sent", "2s", "never")
	// Rows are sorted by peer ULID: ::20 before ::30 (checked by order above).
	var cs []api.Context
	if err := json.Unmarshal([]byte(mustCtl(t, sock, "contexts", "-o", "json")), &cs); err != nil || len(cs) != 2 {
		t.Fatalf("json: %v %v", cs, err)
	}
}

func TestCtlContextShow(t *testing.T) {
	_, sock := startCtlDaemon(t)
	out := mustCtl(t, sock, "context", "show", "0x2a3b4c5d6e7f")
	wantIn(t, out, "ULIDs", "2001:db8:1::10 -> 2001:db8:2::20", "30s ago, 1 switches, last because send-timeout",
		"peer locators:", "2001:db8:9::20", "FAILED", "verified", "12345 packets, 9.0MiB")
	// By peer ULID, and in decimal.
	mustCtl(t, sock, "context", "show", "2001:db8:2::20")
	mustCtl(t, sock, "context", "show", "46434172628607")
	_, err := ctl(t, sock, "context", "show", "0x5")
	if err == nil || !strings.Contains(err.Error(), "no context 0x5") {
		t.Fatalf("unknown: %v", err)
	}
	_, err = ctl(t, sock, "context", "show", "bogus")
	if err == nil || !strings.Contains(err.Error(), "neither a context tag nor a peer ULID") {
		t.Fatalf("bogus: %v", err)
	}
}

func TestCtlMutations(t *testing.T) {
	b, sock := startCtlDaemon(t)
	for _, tc := range []struct {
		args []string
		out  string
		last string
	}{
		{[]string{"context", "add", "2001:db8:5::1"}, "context 0x99: 2001:db8:1::10 -> 2001:db8:5::1, i1-sent", "create 2001:db8:5::1"},
		{[]string{"context", "delete", "0x77"}, "context 0x77: deleted", "delete 0x77"},
		{[]string{"update", "0x77"}, "update sent", "update 0x77"},
		{[]string{"explore", "2001:db8:2::20"}, "exploring", "explore -> 2001:db8:2::20"},
		{[]string{"pin", "0x77", "2001:db8:1::1", "2001:db8:2::2"}, "pinned to 2001:db8:1::1 > 2001:db8:2::2", "pin 0x77 2001:db8:1::1 2001:db8:2::2"},
		{[]string{"unpin", "0x77"}, "unpinned", "unpin 0x77"},
		{[]string{"context", "set", "0x77", "--send-timeout", "5s"}, "send timeout 5s", "set 0x77 send_timeout=5"},
		{[]string{"context", "set", "0x77", "--send-timeout", "0"}, "send timeout default", "set 0x77 send_timeout=0"},
	} {
		out := mustCtl(t, sock, tc.args...)
		wantIn(t, out, tc.out)
		if b.last != tc.last {
			t.Errorf("%v: backend saw %q, want %q", tc.args, b.last, tc.last)
		}
	}
	// Client-side validation stops bad input before the daemon.
	b.last = ""
	for _, args := range [][]string{
		{"context", "add", "192.0.2.1"},
		{"context", "add", "ff02::1"},
		{"pin", "0x77", "2001:db8::1", "nope"},
		{"update", "0x800000000000"},
		{"context", "set", "0x77", "--send-timeout", "1500ms"},
		{"context", "set", "0x77"},
	} {
		if _, err := ctl(t, sock, args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if b.last != "" {
		t.Errorf("bad input reached the daemon: %s", b.last)
	}
}

func TestCtlLocatorsStats(t *testing.T) {
	_, sock := startCtlDaemon(t)
	wantIn(t, mustCtl(t, sock, "locators"), "list generation 4", "2001:db8:1::10", "eth0", "hba", "usable")
	out := mustCtl(t, sock, "stats")
	wantIn(t, out, "rx_i1", "drop_bad_checksum")
	if strings.Contains(out, "zero") {
		t.Errorf("zero counter shown without --all:\n%s", out)
	}
	wantIn(t, mustCtl(t, sock, "stats", "--all"), "zero")
	var s api.Stats
	json.Unmarshal([]byte(mustCtl(t, sock, "stats", "--filter", "drop", "-o", "json")), &s)
	if len(s.Counters) != 1 || s.Counters["drop_bad_checksum"] != 1 {
		t.Fatalf("filtered json stats %v", s.Counters)
	}
}

func TestCtlWatch(t *testing.T) {
	b, sock := startCtlDaemon(t)
	watch := func(args ...string) <-chan string {
		out := make(chan string, 1)
		go func() {
			o, err := ctl(t, sock, append([]string{"watch"}, args...)...)
			if err != nil {
				o = "error: " + err.Error()
			}
			out <- o
		}()
		return out
	}
	within := func(what string, c <-chan string) string {
		t.Helper()
		select {
		case s := <-c:
			return s
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not finish", what)
			return ""
		}
	}
	sub := func() chan api.Event {
		t.Helper()
		select {
		case ch := <-b.subs:
			return ch
		case <-time.After(30 * time.Second):
			t.Fatal("watch never subscribed")
			return nil
		}
	}
	res := watch("-n", "2")
	ch := sub()
	ch <- api.Event{Time: t0, Kind: api.EventSwitched, Tag: 0x77, PeerULID: netip.MustParseAddr("2001:db8:3::30"), Message: "new pair", Attrs: map[string]string{"reason": "send-timeout"}}
	ch <- api.Event{Time: t0, Kind: api.EventContextUp, Tag: 0x78}
	out := within("watch -n 2", res)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines:\n%s", out)
	}
	wantIn(t, lines[0], "locator-switch", "0x77", "-> 2001:db8:3::30", "new pair", "reason=send-timeout")
	wantIn(t, lines[1], "context-up", "0x78")
	res = watch("-n", "1", "-o", "json")
	sub() <- api.Event{Time: t0, Kind: api.EventDaemon, Message: "hi"}
	var ev api.Event
	if o := within("watch -o json", res); json.Unmarshal([]byte(o), &ev) != nil || ev.Message != "hi" {
		t.Fatalf("json watch: %q", o)
	}
}

func TestCtlNoDaemon(t *testing.T) {
	_, err := ctl(t, filepath.Join(t.TempDir(), "none.sock"), "status")
	if err == nil || !strings.Contains(err.Error(), "is shim6d running") {
		t.Fatalf("no daemon: %v", err)
	}
	_, err = ctl(t, "/nonexistent", "status", "-o", "yaml")
	if err == nil || !strings.Contains(err.Error(), "--output") {
		t.Fatalf("bad -o: %v", err)
	}
}

func TestCtlEveryCommandHasHelp(t *testing.T) {
	root := newRoot()
	for _, c := range root.Commands() {
		if c.Short == "" {
			t.Errorf("%s has no Short help", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Short == "" {
				t.Errorf("%s %s has no Short help", c.Name(), sub.Name())
			}
		}
	}
	// Shell completion is there.
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	wantIn(t, out.String(), "bash completion")
}
