package api

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzRequest feeds arbitrary lines through the strict decoder and the
// method table: nothing may panic, and every accepted request must name a
// known method with version 1.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"id":1,"method":"status"}`,
		`{"version":1,"id":2,"method":"contexts.show","params":{"tag":4660}}`,
		`{"version":1,"id":3,"method":"contexts.create","params":{"peer_ulid":"2001:db8::1"}}`,
		`{"version":1,"id":4,"method":"contexts.pin","params":{"tag":4660,"local_locator":"2001:db8::1","peer_locator":"2001:db8::2"}}`,
		`{"version":1,"id":5,"method":"contexts.delete","params":{"peer_ulid":"2001:db8::2","local_ulid":"2001:db8::1"}}`,
		`{"version":1,"id":6,"method":"events.watch","params":{}}`,
		`{"version":1,"method":"contexts.show","params":{"tag":1e3}}`,
	} {
		f.Add([]byte(s))
	}
	s := &Server{Backend: newFake()}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err != nil {
			if err.Code == "" {
				t.Fatal("error without code")
			}
			return
		}
		if req.Version != Version {
			t.Fatalf("accepted version %d", req.Version)
		}
		if req.Method == MethodEventsWatch {
			return
		}
		res, derr := s.dispatch(context.Background(), req)
		if derr != nil {
			if AsError(derr).Code == CodeInternal {
				t.Fatalf("internal error for %q: %v", line, derr)
			}
			return
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
	})
}
