#!/usr/bin/env bash
# Unit tier: the tree's C++ is formatted as .clang-format says
# (clang-format-19); BPF C under bpf/ keeps its own style. To fix:
#   clang-format-19 -i $(git ls-files '*.cc' '*.h' | grep -v '^bpf/')
#   tests/format_test.sh SOURCE_DIR
set -euo pipefail
cd "$1"
command -v clang-format-19 >/dev/null || { echo "format: clang-format-19 is not installed: run scripts/setup.sh" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v '^bpf/')
((${#files[@]} > 100)) || { echo "format: only ${#files[@]} files found: is $1 a git checkout?" >&2; exit 1; }
clang-format-19 --dry-run -Werror "${files[@]}"
echo "format: ${#files[@]} files as .clang-format says"
