#!/usr/bin/env bash
# CI: rebuild the BPF objects with the pinned Debian clang (and the man pages)
# and fail when they
# differ from what is committed (someone changed bpf/*.c or *.h without
# running scripts/gen-bpf.sh, or committed objects from another compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/gen-bpf.sh
if ! git diff --exit-code --stat -- dataplane/ebpf; then
  echo "check-generated: dataplane/ebpf generated files are stale; run scripts/gen-bpf.sh and commit" >&2
  exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- dataplane/ebpf)
if [ -n "$untracked" ]; then
  echo "check-generated: untracked generated files: $untracked" >&2
  exit 1
fi
echo "check-generated: BPF objects up to date"
scripts/gen-man.sh
if ! git diff --exit-code --stat -- dist/man || [ -n "$(git ls-files --others --exclude-standard -- dist/man)" ]; then
  echo "check-generated: dist/man is stale; run scripts/gen-man.sh and commit" >&2
  exit 1
fi
echo "check-generated: man pages up to date"
