#!/usr/bin/env bash
# Regenerates the man pages of shim6ctl and shim6lab (cobra's doc package)
# into dist/man; dist/man/shim6d.8 is written by hand (cmd/shim6d
# TestManPage checks it against the flags and defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
find dist/man -name 'shim6ctl*.8' -delete -o -name 'shim6lab*.8' -delete 2>/dev/null || true
mkdir -p dist/man
SHIM6D_SOCKET= go run ./cmd/shim6ctl man dist/man
go run ./cmd/shim6lab man dist/man
