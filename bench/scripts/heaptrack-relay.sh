#!/bin/sh
# Runs hearth-relay under heaptrack, for `hearth-bench ... --relay-bin` (see
# docs/BENCHMARKS.md, "where an idle connection's memory goes"). Build the
# relay with `--features system-allocator` first so heaptrack sees every
# allocation. HEAPTRACK_OUT names the output file (default /tmp/relay.heaptrack).
# RELAY_BIN is the relay to run (default: the workspace's target/release/hearth-relay).
exec heaptrack -o "${HEAPTRACK_OUT:-/tmp/relay.heaptrack}" "${RELAY_BIN:-$(dirname "$0")/../../target/release/hearth-relay}" "$@"
