package ebpf

// The BPF objects are built by scripts/gen-bpf.sh (Debian's clang-14, the
// version CI pins) and committed, so that `go build` needs no clang.
// scripts/check-generated.sh rebuilds them and fails on a difference.
//
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel,bpfeb -type event -type stat -type event_kind shim6 bpf/shim6.c -- -O2 -g -Wall -Werror -mcpu=v3 -I bpf/headers
