#!/usr/bin/env bash
# Regenerates the committed BPF objects and their Go bindings
# (dataplane/ebpf/shim6_bpfe[lb].{o,go}) with Debian 12's clang-14 through
# bpf2go. Needs: WITH_CLANG=1 scripts/install-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in clang-14 llvm-strip-14; do
  command -v "$tool" >/dev/null || { echo "gen-bpf: $tool missing; run WITH_CLANG=1 scripts/install-deps.sh" >&2; exit 1; }
done
cd dataplane/ebpf
go generate ./
