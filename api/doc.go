// Package api is the management protocol of shim6d: the request and
// response types, the error codes, a server that decodes requests strictly
// and hands them to a Backend, and the client library used by shim6ctl.
//
// # Transport
//
// A Unix stream socket (by default /run/shim6d/shim6d.sock), created with
// mode 0600 inside a 0700 directory, owned by root. The server also checks
// the peer's credentials (SO_PEERCRED): only root or the daemon's own user
// may talk to it.
//
// # Framing
//
// Newline-delimited JSON. The client sends one Request per line and reads
// one Response per line, in order; one connection may carry any number of
// requests. A request line is at most MaxRequestSize bytes.
//
//	{"version":1,"id":7,"method":"contexts.show","params":{"tag":1234}}
//	{"version":1,"id":7,"result":{"local_tag":1234,...}}
//	{"version":1,"id":8,"error":{"code":"not_found","message":"..."}}
//
// The method "events.watch" answers with an empty result and then turns the
// connection into a stream of {"version":1,"id":N,"event":{...}} lines that
// ends when either side closes the connection.
//
// # Strictness
//
// Unknown fields (in the envelope and in params), trailing data, a missing
// or different version, an unknown method and invalid addresses are all
// rejected with a coded Error; the connection survives every error except
// an oversized line, after which the server answers and closes it.
package api
