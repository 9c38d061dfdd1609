package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Backend carries out the requests the Server decoded. Every method is
// called with validated params; errors should be *Error (anything else is
// reported as CodeInternal).
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Contexts(ctx context.Context) ([]Context, error)
	Context(ctx context.Context, ref ContextRef) (Context, error)
	CreateContext(ctx context.Context, p CreateParams) (Context, error)
	DeleteContext(ctx context.Context, ref ContextRef) error
	Update(ctx context.Context, ref ContextRef) error
	Explore(ctx context.Context, ref ContextRef) error
	Pin(ctx context.Context, p PinParams) error
	Unpin(ctx context.Context, ref ContextRef) error
	Set(ctx context.Context, p SetParams) error
	Locators(ctx context.Context) (Locators, error)
	Stats(ctx context.Context) (Stats, error)
	// Subscribe returns a channel of events that stays open until cancel
	// is called or the backend stops (then it is closed).
	Subscribe(ctx context.Context) (events <-chan Event, cancel func(), err error)
}

// Server serves the management protocol on a listener.
type Server struct {
	Backend Backend
	Logger  *slog.Logger
	// MaxConns bounds concurrent connections (default 64); more are
	// answered with CodeResourceExhausted and closed.
	MaxConns int
	// IdleTimeout closes a connection that sends no request for that long
	// (default 5 minutes). Watch streams are exempt.
	IdleTimeout time.Duration
	// RequestTimeout bounds one request's handling (default 10 s).
	RequestTimeout time.Duration
	// CheckPeer, when set, is called with the peer's credentials; an error
	// refuses the connection with CodePermissionDenied. ListenUnix sets it
	// to allow root and the daemon's own user.
	CheckPeer func(uid uint32) error

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ListenUnix prepares the socket at path: its directory is created with
// mode 0700 if missing, a stale socket left by a crashed daemon is removed,
// and the new one gets mode 0600. It fails with an error that says so when
// another daemon answers on the socket (single instance).
func ListenUnix(path string) (*net.UnixListener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("api: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("api: %s exists and is not a socket; refusing to remove it", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("api: another shim6d is answering on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api: remove stale socket: %w", err)
		}
	}
	// Create the socket with no group/other bits from the start; the
	// chmod below is the documented mode, the umask closes the window
	// between bind and chmod.
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("api: listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("api: chmod socket: %w", err)
	}
	return ln, nil
}

// AllowRootAndSelf is the default peer check: root, or the user the daemon
// runs as.
func AllowRootAndSelf(uid uint32) error {
	if uid == 0 || int(uid) == os.Geteuid() {
		return nil
	}
	return Errorf(CodePermissionDenied, "uid %d may not manage shim6d", uid)
}

// Serve accepts connections until ctx is done or the listener fails, then
// closes every connection and waits for their handlers.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.MaxConns == 0 {
		s.MaxConns = 64
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = 5 * time.Minute
	}
	if s.RequestTimeout == 0 {
		s.RequestTimeout = 10 * time.Second
	}
	s.mu.Lock()
	s.conns = make(map[net.Conn]struct{})
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			break
		}
		s.mu.Lock()
		full := len(s.conns) >= s.MaxConns
		if !full {
			s.conns[c] = struct{}{}
		}
		s.mu.Unlock()
		if full {
			writeResponse(c, Response{Version: Version, Error: Errorf(CodeResourceExhausted, "too many management connections")})
			c.Close()
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(ctx, c)
		}()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func peerUID(c net.Conn) (uint32, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return 0, false
	}
	return cred.Uid, true
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	log := s.logger()
	if s.CheckPeer != nil {
		uid, ok := peerUID(c)
		var err error
		if !ok {
			err = Errorf(CodePermissionDenied, "cannot read peer credentials")
		} else {
			err = s.CheckPeer(uid)
		}
		if err != nil {
			log.Warn("management connection refused", "err", err)
			writeResponse(c, Response{Version: Version, Error: AsError(err)})
			return
		}
	}
	r := bufio.NewReaderSize(c, MaxRequestSize)
	for {
		c.SetReadDeadline(time.Now().Add(s.IdleTimeout))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			writeResponse(c, Response{Version: Version, Error: Errorf(CodeTooLarge, "request longer than %d bytes", MaxRequestSize)})
			return
		}
		if err != nil {
			if len(bytes.TrimSpace(line)) > 0 && errors.Is(err, io.EOF) {
				// A last request without its newline: serve it.
				s.handleLine(ctx, c, line)
			}
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !s.handleLine(ctx, c, line) {
			return
		}
	}
}

// handleLine serves one request; it returns false when the connection must
// be closed (watch stream ended, write error).
func (s *Server) handleLine(ctx context.Context, c net.Conn, line []byte) bool {
	req, aerr := DecodeRequest(line)
	if aerr != nil {
		// Lines frame requests, so a bad one does not desynchronise
		// the stream: answer and go on.
		return writeResponse(c, Response{Version: Version, ID: req.ID, Error: aerr}) == nil
	}
	if req.Method == MethodEventsWatch {
		s.watch(ctx, c, req)
		return false
	}
	rctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	result, err := s.dispatch(rctx, req)
	cancel()
	resp := Response{Version: Version, ID: req.ID}
	if err != nil {
		resp.Error = AsError(err)
		if resp.Error.Code == CodeInternal {
			s.logger().Error("management request failed", "method", req.Method, "err", err)
		}
	} else {
		b, merr := json.Marshal(result)
		if merr != nil {
			resp.Error = Errorf(CodeInternal, "encode result: %v", merr)
		} else {
			resp.Result = b
		}
	}
	return writeResponse(c, resp) == nil
}

// DecodeRequest parses one request line strictly. On error the returned
// request carries whatever ID and method could be read, for the answer.
func DecodeRequest(line []byte) (Request, *Error) {
	var req Request
	if err := decodeStrict(line, &req); err != nil {
		// Recover the id for the error response if the line is at
		// least an object with a numeric id.
		var probe struct {
			ID uint64 `json:"id"`
		}
		if json.Unmarshal(line, &probe) == nil {
			req = Request{ID: probe.ID}
		} else {
			req = Request{}
		}
		return req, Errorf(CodeBadRequest, "request: %v", err)
	}
	if req.Version != Version {
		return req, Errorf(CodeUnsupportedVersion, "protocol version %d not supported (this daemon speaks %d)", req.Version, Version)
	}
	if _, ok := methods[req.Method]; !ok {
		return req, Errorf(CodeUnknownMethod, "unknown method %q", req.Method)
	}
	return req, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and anything after the value.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// params decodes p into v strictly; empty or null params leave v zero.
func params(p json.RawMessage, v any) error {
	if len(bytes.TrimSpace(p)) == 0 || bytes.Equal(bytes.TrimSpace(p), []byte("null")) {
		return nil
	}
	if err := decodeStrict(p, v); err != nil {
		return Errorf(CodeBadRequest, "params: %v", err)
	}
	return nil
}

type validator interface{ Validate() error }

// methods maps each method to a function that decodes its params and calls
// the backend.
var methods = map[string]func(ctx context.Context, b Backend, p json.RawMessage) (any, error){
	MethodStatus: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		if err := params(p, &Empty{}); err != nil {
			return nil, err
		}
		return b.Status(ctx)
	},
	MethodContextsList: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		if err := params(p, &Empty{}); err != nil {
			return nil, err
		}
		cs, err := b.Contexts(ctx)
		if cs == nil {
			cs = []Context{}
		}
		return cs, err
	},
	MethodContextsShow: withRef(func(ctx context.Context, b Backend, r ContextRef) (any, error) {
		return b.Context(ctx, r)
	}),
	MethodContextsCreate: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		var cp CreateParams
		if err := decodeValid(p, &cp); err != nil {
			return nil, err
		}
		return b.CreateContext(ctx, cp)
	},
	MethodContextsDelete: withRef(func(ctx context.Context, b Backend, r ContextRef) (any, error) {
		return Empty{}, b.DeleteContext(ctx, r)
	}),
	MethodContextsUpdate: withRef(func(ctx context.Context, b Backend, r ContextRef) (any, error) {
		return Empty{}, b.Update(ctx, r)
	}),
	MethodContextsExplore: withRef(func(ctx context.Context, b Backend, r ContextRef) (any, error) {
		return Empty{}, b.Explore(ctx, r)
	}),
	MethodContextsPin: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		var pp PinParams
		if err := decodeValid(p, &pp); err != nil {
			return nil, err
		}
		return Empty{}, b.Pin(ctx, pp)
	},
	MethodContextsUnpin: withRef(func(ctx context.Context, b Backend, r ContextRef) (any, error) {
		return Empty{}, b.Unpin(ctx, r)
	}),
	MethodContextsSet: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		var sp SetParams
		if err := decodeValid(p, &sp); err != nil {
			return nil, err
		}
		return Empty{}, b.Set(ctx, sp)
	},
	MethodLocators: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		if err := params(p, &Empty{}); err != nil {
			return nil, err
		}
		return b.Locators(ctx)
	},
	MethodStats: func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		if err := params(p, &Empty{}); err != nil {
			return nil, err
		}
		return b.Stats(ctx)
	},
	MethodEventsWatch: nil, // handled by Server.watch
}

// Methods lists the method names the server knows.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	return out
}

func decodeValid(p json.RawMessage, v validator) error {
	if len(bytes.TrimSpace(p)) == 0 {
		return Errorf(CodeInvalidArgument, "params missing")
	}
	if err := params(p, v); err != nil {
		return err
	}
	return v.Validate()
}

func withRef(f func(ctx context.Context, b Backend, r ContextRef) (any, error)) func(context.Context, Backend, json.RawMessage) (any, error) {
	return func(ctx context.Context, b Backend, p json.RawMessage) (any, error) {
		var r ContextRef
		if err := decodeValid(p, &r); err != nil {
			return nil, err
		}
		return f(ctx, b, r)
	}
}

func (s *Server) dispatch(ctx context.Context, req Request) (res any, err error) {
	defer func() {
		// A backend bug must not take the daemon down with it.
		if r := recover(); r != nil {
			s.logger().Error("panic in management request", "method", req.Method, "panic", r)
			res, err = nil, Errorf(CodeInternal, "internal error")
		}
	}()
	return methods[req.Method](ctx, s.Backend, req.Params)
}

func (s *Server) watch(ctx context.Context, c net.Conn, req Request) {
	if err := params(req.Params, &Empty{}); err != nil {
		writeResponse(c, Response{Version: Version, ID: req.ID, Error: AsError(err)})
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, unsub, err := s.Backend.Subscribe(wctx)
	if err != nil {
		writeResponse(c, Response{Version: Version, ID: req.ID, Error: AsError(err)})
		return
	}
	defer unsub()
	if writeResponse(c, Response{Version: Version, ID: req.ID, Result: json.RawMessage("{}")}) != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	// Notice the client going away: it sends nothing more on a watch.
	go func() {
		var b [1]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				cancel()
				return
			}
		}
	}()
	for {
		select {
		case <-wctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			c.SetWriteDeadline(time.Now().Add(s.IdleTimeout))
			if writeResponse(c, Response{Version: Version, ID: req.ID, Event: &ev}) != nil {
				return
			}
		}
	}
}

func writeResponse(w io.Writer, r Response) error {
	b, err := json.Marshal(r)
	if err != nil {
		b, _ = json.Marshal(Response{Version: Version, ID: r.ID, Error: Errorf(CodeInternal, "encode response: %v", err)})
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
