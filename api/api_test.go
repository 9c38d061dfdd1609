package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeBackend struct {
	mu       sync.Mutex
	contexts map[uint64]Context
	pinned   map[uint64]PinParams
	events   chan Event
	calls    []string
}

func newFake() *fakeBackend {
	return &fakeBackend{
		contexts: map[uint64]Context{
			0x1234: {LocalTag: 0x1234, PeerTag: 0x99, LocalULID: netip.MustParseAddr("2001:db8:1::1"), PeerULID: netip.MustParseAddr("2001:db8:2::1"), State: "established", REAPState: "operational"},
		},
		pinned: map[uint64]PinParams{},
		events: make(chan Event, 8),
	}
}

func (f *fakeBackend) call(m string) {
	f.mu.Lock()
	f.calls = append(f.calls, m)
	f.mu.Unlock()
}

func (f *fakeBackend) find(r ContextRef) (Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.contexts {
		if c.LocalTag == r.Tag || (r.Tag == 0 && c.PeerULID == r.PeerULID) {
			return c, nil
		}
	}
	return Context{}, Errorf(CodeNotFound, "no context %s", r)
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	f.call("status")
	return Status{Version: "test", PID: 42, Security: "hba", Contexts: len(f.contexts)}, nil
}
func (f *fakeBackend) Contexts(context.Context) ([]Context, error) {
	f.call("contexts")
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Context
	for _, c := range f.contexts {
		out = append(out, c)
	}
	return out, nil
}
func (f *fakeBackend) Context(_ context.Context, r ContextRef) (Context, error) { return f.find(r) }
func (f *fakeBackend) CreateContext(_ context.Context, p CreateParams) (Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.contexts {
		if c.PeerULID == p.PeerULID {
			return Context{}, Errorf(CodeExists, "exists")
		}
	}
	c := Context{LocalTag: 0x5678, LocalULID: p.LocalULID, PeerULID: p.PeerULID, State: "i1-sent"}
	f.contexts[c.LocalTag] = c
	return c, nil
}
func (f *fakeBackend) DeleteContext(_ context.Context, r ContextRef) error {
	c, err := f.find(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.contexts, c.LocalTag)
	f.mu.Unlock()
	return nil
}
func (f *fakeBackend) Update(_ context.Context, r ContextRef) error {
	_, err := f.find(r)
	return err
}
func (f *fakeBackend) Explore(_ context.Context, r ContextRef) error {
	_, err := f.find(r)
	return err
}
func (f *fakeBackend) Pin(_ context.Context, p PinParams) error {
	c, err := f.find(p.ContextRef)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.pinned[c.LocalTag] = p
	f.mu.Unlock()
	return nil
}
func (f *fakeBackend) Unpin(_ context.Context, r ContextRef) error {
	_, err := f.find(r)
	return err
}
func (f *fakeBackend) Set(_ context.Context, p SetParams) error {
	_, err := f.find(p.ContextRef)
	return err
}
func (f *fakeBackend) Locators(context.Context) (Locators, error) {
	return Locators{Local: []Locator{{Addr: netip.MustParseAddr("2001:db8:1::1"), Interface: "eth0", Verification: "hba", State: "usable"}}, Generation: 3}, nil
}
func (f *fakeBackend) Stats(context.Context) (Stats, error) {
	return Stats{Counters: map[string]uint64{"rx_packets": 7}}, nil
}
func (f *fakeBackend) Subscribe(ctx context.Context) (<-chan Event, func(), error) {
	return f.events, func() {}, nil
}

type panicBackend struct{ *fakeBackend }

func (panicBackend) Stats(context.Context) (Stats, error) { panic("boom") }

func startServer(t *testing.T, b Backend) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "shim6d.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{Backend: b, CheckPeer: AllowRootAndSelf, MaxConns: 4}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path
}

func dial(t *testing.T, path string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientServerRoundTrip(t *testing.T) {
	f := newFake()
	path := startServer(t, f)
	c := dial(t, path)
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil || st.PID != 42 || st.Security != "hba" {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	cs, err := c.Contexts(ctx)
	if err != nil || len(cs) != 1 || cs[0].LocalTag != 0x1234 || cs[0].PeerULID != netip.MustParseAddr("2001:db8:2::1") {
		t.Fatalf("Contexts = %+v, %v", cs, err)
	}
	x, err := c.Context(ctx, ContextRef{PeerULID: netip.MustParseAddr("2001:db8:2::1")})
	if err != nil || x.LocalTag != 0x1234 {
		t.Fatalf("Context by peer = %+v, %v", x, err)
	}
	_, err = c.Context(ctx, ContextRef{Tag: 77})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tag: err = %v, want not_found", err)
	}
	nc, err := c.CreateContext(ctx, CreateParams{PeerULID: netip.MustParseAddr("2001:db8:3::1")})
	if err != nil || nc.State != "i1-sent" {
		t.Fatalf("Create = %+v, %v", nc, err)
	}
	if _, err := c.CreateContext(ctx, CreateParams{PeerULID: netip.MustParseAddr("2001:db8:3::1")}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want exists", err)
	}
	pin := PinParams{ContextRef: ContextRef{Tag: 0x1234}, LocalLocator: netip.MustParseAddr("2001:db8:a::1"), PeerLocator: netip.MustParseAddr("2001:db8:b::1")}
	if err := c.Pin(ctx, pin); err != nil {
		t.Fatal(err)
	}
	if got := f.pinned[0x1234]; got != pin {
		t.Fatalf("backend got pin %+v, want %+v", got, pin)
	}
	if err := c.Update(ctx, ContextRef{Tag: 0x1234}); err != nil {
		t.Fatal(err)
	}
	if err := c.Explore(ctx, ContextRef{Tag: 0x1234}); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpin(ctx, ContextRef{Tag: 0x1234}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteContext(ctx, ContextRef{Tag: 0x5678}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.contexts[0x5678]; ok {
		t.Fatal("context not deleted")
	}
	l, err := c.Locators(ctx)
	if err != nil || l.Generation != 3 || l.Local[0].Interface != "eth0" {
		t.Fatalf("Locators = %+v, %v", l, err)
	}
	s, err := c.Stats(ctx)
	if err != nil || s.Counters["rx_packets"] != 7 {
		t.Fatalf("Stats = %+v, %v", s, err)
	}
}

func TestSocketPermissionsAndSingleInstance(t *testing.T) {
	path := startServer(t, newFake())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("socket dir mode %v, want 0700", di.Mode().Perm())
	}
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "another shim6d") {
		t.Fatalf("second ListenUnix: %v, want 'another shim6d'", err)
	}
}

func TestStaleSocketRemovedRegularFileKept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // leaves the socket file, as a crashed daemon would
	ln2, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := ListenUnix(file); err == nil {
		t.Fatal("ListenUnix replaced a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Fatal("regular file changed")
	}
}

// rawConn sends raw lines and reads raw responses.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func rawDial(t *testing.T, path string) *rawConn {
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

func (r *rawConn) send(t *testing.T, line string) Response {
	t.Helper()
	if _, err := r.c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	return r.read(t)
}

func (r *rawConn) read(t *testing.T) Response {
	t.Helper()
	l, err := r.r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var resp Response
	if err := json.Unmarshal(l, &resp); err != nil {
		t.Fatalf("response %q: %v", l, err)
	}
	return resp
}

func TestStrictDecoding(t *testing.T) {
	path := startServer(t, newFake())
	rc := rawDial(t, path)
	cases := []struct {
		name, line string
		code       Code
	}{
		{"not json", `hello`, CodeBadRequest},
		{"unknown envelope field", `{"version":1,"id":1,"method":"status","admin":true}`, CodeBadRequest},
		{"trailing data", `{"version":1,"id":2,"method":"status"} {}`, CodeBadRequest},
		{"wrong type", `{"version":"1","id":3,"method":"status"}`, CodeBadRequest},
		{"no version", `{"id":4,"method":"status"}`, CodeUnsupportedVersion},
		{"future version", `{"version":2,"id":5,"method":"status"}`, CodeUnsupportedVersion},
		{"unknown method", `{"version":1,"id":6,"method":"reboot"}`, CodeUnknownMethod},
		{"params on status", `{"version":1,"id":7,"method":"status","params":{"x":1}}`, CodeBadRequest},
		{"unknown param", `{"version":1,"id":8,"method":"contexts.show","params":{"tag":1,"force":true}}`, CodeBadRequest},
		{"missing params", `{"version":1,"id":9,"method":"contexts.show"}`, CodeInvalidArgument},
		{"empty ref", `{"version":1,"id":10,"method":"contexts.show","params":{}}`, CodeInvalidArgument},
		{"tag too long", `{"version":1,"id":11,"method":"contexts.show","params":{"tag":140737488355328}}`, CodeInvalidArgument},
		{"negative tag", `{"version":1,"id":12,"method":"contexts.show","params":{"tag":-1}}`, CodeBadRequest},
		{"ipv4 ulid", `{"version":1,"id":13,"method":"contexts.create","params":{"peer_ulid":"192.0.2.1"}}`, CodeInvalidArgument},
		{"mapped ulid", `{"version":1,"id":14,"method":"contexts.create","params":{"peer_ulid":"::ffff:192.0.2.1"}}`, CodeInvalidArgument},
		{"multicast ulid", `{"version":1,"id":15,"method":"contexts.create","params":{"peer_ulid":"ff02::1"}}`, CodeInvalidArgument},
		{"link-local ulid", `{"version":1,"id":16,"method":"contexts.create","params":{"peer_ulid":"fe80::1%eth0"}}`, CodeInvalidArgument},
		{"garbage address", `{"version":1,"id":17,"method":"contexts.create","params":{"peer_ulid":"not-an-address"}}`, CodeBadRequest},
		{"same ulids", `{"version":1,"id":18,"method":"contexts.create","params":{"local_ulid":"2001:db8::1","peer_ulid":"2001:db8::1"}}`, CodeInvalidArgument},
		{"tag and pair", `{"version":1,"id":19,"method":"contexts.delete","params":{"tag":5,"peer_ulid":"2001:db8::1"}}`, CodeInvalidArgument},
		{"pin without locators", `{"version":1,"id":20,"method":"contexts.pin","params":{"tag":4660}}`, CodeInvalidArgument},
		{"not found", `{"version":1,"id":21,"method":"contexts.delete","params":{"tag":5}}`, CodeNotFound},
		{"null params", `{"version":1,"id":22,"method":"contexts.show","params":null}`, CodeInvalidArgument},
	}
	for _, tc := range cases {
		resp := rc.send(t, tc.line)
		if resp.Error == nil {
			t.Errorf("%s: no error, result %s", tc.name, resp.Result)
			continue
		}
		if resp.Error.Code != tc.code {
			t.Errorf("%s: code %s (%s), want %s", tc.name, resp.Error.Code, resp.Error.Message, tc.code)
		}
	}
	// The connection survived all of that.
	resp := rc.send(t, `{"version":1,"id":99,"method":"status"}`)
	if resp.Error != nil || resp.ID != 99 {
		t.Fatalf("after errors: %+v", resp)
	}
	// Errors echo the id when the envelope was readable.
	resp = rc.send(t, `{"version":1,"id":77,"method":"nope"}`)
	if resp.ID != 77 {
		t.Errorf("error response id %d, want 77", resp.ID)
	}
}

func TestOversizedRequestClosesConnection(t *testing.T) {
	path := startServer(t, newFake())
	rc := rawDial(t, path)
	big := `{"version":1,"id":1,"method":"status","params":"` + strings.Repeat("a", MaxRequestSize) + `"}`
	go rc.c.Write([]byte(big + "\n"))
	resp := rc.read(t)
	if resp.Error == nil || resp.Error.Code != CodeTooLarge {
		t.Fatalf("oversized: %+v", resp)
	}
	if _, err := rc.r.ReadBytes('\n'); err == nil {
		t.Fatal("connection still open after oversized request")
	}
	// The server still serves others.
	if _, err := dial(t, path).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBackendPanicIsInternalError(t *testing.T) {
	path := startServer(t, panicBackend{newFake()})
	c := dial(t, path)
	if _, err := c.Stats(context.Background()); !errors.Is(err, ErrInternal) {
		t.Fatalf("panicking backend: %v, want internal", err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("server dead after panic: %v", err)
	}
}

func TestConnectionLimit(t *testing.T) {
	path := startServer(t, newFake())
	var held []*Client
	for range 4 {
		c := dial(t, path)
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	rc := rawDial(t, path)
	resp := rc.read(t)
	if resp.Error == nil || resp.Error.Code != CodeResourceExhausted {
		t.Fatalf("5th connection: %+v", resp)
	}
	held[0].Close()
	// Eventually a slot frees; a fresh client then works. (The server
	// notices the close on its next read, which is immediate.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, path)
		_, err := c.Status(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	f := newFake()
	path := startServer(t, f)
	c := dial(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Event, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.Watch(ctx, func(e Event) error { got <- e; return nil })
	}()
	f.events <- Event{Kind: EventSwitched, Tag: 0x1234, Message: "path failed"}
	f.events <- Event{Kind: EventContextUp, Tag: 0x1234}
	if e := <-got; e.Kind != EventSwitched || e.Message != "path failed" {
		t.Fatalf("first event %+v", e)
	}
	if e := <-got; e.Kind != EventContextUp {
		t.Fatalf("second event %+v", e)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch returned %v", err)
	}
}

func TestParseTag(t *testing.T) {
	for _, s := range []string{"0x1234", "4660"} {
		if v, err := ParseTag(s); err != nil || v != 0x1234 {
			t.Errorf("ParseTag(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "0", "0x800000000000", "abc", "-1"} {
		if _, err := ParseTag(s); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseTag(%q) err %v", s, err)
		}
	}
}
