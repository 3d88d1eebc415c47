#!/usr/bin/env bash
# Load benchmark of Portcullis with the shared harness (see docs/benchmarks.md): builds the
# release binary, starts it on examples/bench.yaml (an OpenAI-compatible provider pointing at
# the harness's mock upstream on 127.0.0.1:18080, access log on), then measures, in one run,
# the mock directly, the bare forwarder (the floor of any gateway here) and Portcullis.
# Extra arguments go to the harness, e.g. --rates 1000 --duration 20 --repeat 2;
# PORTCULLIS_BENCH_CONFIG picks another gateway config.
#
#   BENCH_DIR=/path/to/bench scripts/bench-load.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bench_dir=${BENCH_DIR:-$repo/../shared/bench}
[[ -x "$bench_dir/run.sh" ]] || { echo "no benchmark harness at $bench_dir (set BENCH_DIR)" >&2; exit 1; }

cd "$repo"
cargo build --release -p portcullis --quiet
bin="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
log=$(mktemp -t portcullis-bench-XXXXXX.log)
"$bin" serve --config "${PORTCULLIS_BENCH_CONFIG:-examples/bench.yaml}" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q '"listening"' "$log" && break
  sleep 0.1
done
echo "portcullis pid $pid, logs in $log" >&2

"$bench_dir/run.sh" bare-forwarder \
  --name portcullis --url http://127.0.0.1:4000/v1/chat/completions --model mock-model \
  --pid "$pid" -H 'Authorization: Bearer sk-bench-key' "$@"
