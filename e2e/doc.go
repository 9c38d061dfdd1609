// Package e2e holds goshim6's end-to-end tests (issue 7): real shim6d
// processes with the eBPF data plane on the lab's multihomed hosts
// (network namespaces built by internal/netns), real TCP streams between
// the hosts' ULIDs whose content is verified byte by byte, and real
// failures injected on the providers.
//
// They need root (namespaces, BPF). Outside CI without root they skip;
// in CI (CI set) they run as part of `go test ./...`. shim6d, shim6ctl
// and shim6lab are built once per test run from this source tree. The
// scenarios run in parallel, each on a topology of its own, with REAP
// timers tuned down (Send Timeout 1 s) to keep the suite short.
//
// SHIM6_E2E_KEEP=DIR keeps every daemon's configuration, state and log
// under DIR/<test name> for a post-mortem.
package e2e
