#!/usr/bin/env bash
# Installs what a fresh machine (Go, gcc, git) lacks for building, testing
# and running the lab: only Debian packages. Idempotent.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have make || need+=(make)
have ip || need+=(iproute2)
have ethtool || need+=(ethtool)
if [ "${WITH_CLANG:-0}" = 1 ]; then
  have clang-14 || need+=(clang-14)
  have llvm-strip-14 || need+=(llvm-14)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
