package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Client talks to shim6d over its management socket. Its methods may be
// called from several goroutines; requests on one connection are
// serialised.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	next uint64
}

// Dial connects to the daemon's socket (DefaultSocket if path is empty).
func Dial(ctx context.Context, path string) (*Client, error) {
	if path == "" {
		path = DefaultSocket
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to shim6d at %s: %w (is shim6d running, and are you root?)", path, err)
	}
	return NewClient(c), nil
}

// NewClient wraps an established connection.
func NewClient(c net.Conn) *Client {
	return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10)}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends one request and decodes its result into out (which may be nil).
// A daemon error is returned as *Error.
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := c.roundTrip(ctx, method, params)
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	if out != nil {
		if err := json.Unmarshal(resp.Result, out); err != nil {
			return fmt.Errorf("api: decode %s result: %w", method, err)
		}
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, method string, params any) (Response, error) {
	c.next++
	req := Request{Version: Version, ID: c.next, Method: method}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return Response{}, fmt.Errorf("api: encode params: %w", err)
		}
		req.Params = b
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if len(b)+1 > MaxRequestSize {
		return Response{}, Errorf(CodeTooLarge, "request longer than %d bytes", MaxRequestSize)
	}
	dl, _ := ctx.Deadline() // zero: no deadline
	c.conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return Response{}, c.ctxErr(ctx, err)
	}
	resp, err := c.readResponse()
	if err != nil {
		return Response{}, c.ctxErr(ctx, err)
	}
	if resp.ID != req.ID && resp.ID != 0 {
		return Response{}, fmt.Errorf("api: response id %d for request %d", resp.ID, req.ID)
	}
	return resp, nil
}

func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("api: %w", err)
}

func (c *Client) readResponse() (Response, error) {
	var line []byte
	for {
		chunk, err := c.r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxResponseSize {
			return Response{}, errors.New("response too large")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return Response{}, err
		}
		break
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("bad response: %w", err)
	}
	return resp, nil
}

// Status asks for the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.Call(ctx, MethodStatus, nil, &s)
}

// Contexts lists every context.
func (c *Client) Contexts(ctx context.Context) ([]Context, error) {
	var cs []Context
	return cs, c.Call(ctx, MethodContextsList, nil, &cs)
}

// Context shows one context with its locators.
func (c *Client) Context(ctx context.Context, ref ContextRef) (Context, error) {
	var x Context
	return x, c.Call(ctx, MethodContextsShow, ref, &x)
}

// CreateContext starts the handshake with a peer.
func (c *Client) CreateContext(ctx context.Context, p CreateParams) (Context, error) {
	var x Context
	return x, c.Call(ctx, MethodContextsCreate, p, &x)
}

// DeleteContext tears a context down.
func (c *Client) DeleteContext(ctx context.Context, ref ContextRef) error {
	return c.Call(ctx, MethodContextsDelete, ref, nil)
}

// Update sends an Update of the local locator list to the peer now.
func (c *Client) Update(ctx context.Context, ref ContextRef) error {
	return c.Call(ctx, MethodContextsUpdate, ref, nil)
}

// Explore starts REAP exploration now.
func (c *Client) Explore(ctx context.Context, ref ContextRef) error {
	return c.Call(ctx, MethodContextsExplore, ref, nil)
}

// Pin forces a locator pair.
func (c *Client) Pin(ctx context.Context, p PinParams) error {
	return c.Call(ctx, MethodContextsPin, p, nil)
}

// Unpin gives the choice of the pair back to REAP.
func (c *Client) Unpin(ctx context.Context, ref ContextRef) error {
	return c.Call(ctx, MethodContextsUnpin, ref, nil)
}

// Set changes per-context settings (the REAP Send Timeout).
func (c *Client) Set(ctx context.Context, p SetParams) error {
	return c.Call(ctx, MethodContextsSet, p, nil)
}

// Locators lists the local locators.
func (c *Client) Locators(ctx context.Context) (Locators, error) {
	var l Locators
	return l, c.Call(ctx, MethodLocators, nil, &l)
}

// Stats returns the counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, c.Call(ctx, MethodStats, nil, &s)
}

// Watch subscribes to the event stream and calls fn for each event until
// ctx is done, fn returns an error, or the daemon closes the stream. The
// connection is used up: close the client afterwards.
func (c *Client) Watch(ctx context.Context, fn func(Event) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := c.roundTrip(ctx, MethodEventsWatch, nil)
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return resp.Error
	}
	c.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	for {
		r, err := c.readResponse()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("api: event stream: %w", err)
		}
		if r.Error != nil {
			return r.Error
		}
		if r.Event == nil {
			continue
		}
		if err := fn(*r.Event); err != nil {
			return err
		}
	}
}
