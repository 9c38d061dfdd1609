//go:build tools

package ebpf

// Keeps bpf2go (used by go:generate in gen.go) and its dependencies in
// go.mod/go.sum, so that `go generate` works offline from the module cache.
import _ "github.com/cilium/ebpf/cmd/bpf2go"
