#!/usr/bin/env bash
# The transformer tier's load time, peak memory and per-message speed on one
# core (the issue's "model load under 2 s" and "p99 under 50 ms a message on
# one core"), for multilingual-e5-small or any other transformer directory.
#
#   cargo build --release --features semantic
#   bench/e5-speed.sh models/multilingual-e5-small [runs, default 5] [data set, default it-xsid]
#
# Load: `runs` times `frontdesk eval` on a three-intent file (so that the
# model's load dominates), printing the load seconds and the process's peak
# resident memory. Speed: one `frontdesk eval` of the data set's test split,
# few-shot (10 examples an intent), pinned to CPU 1 (`taskset -c 1`), candle
# on one thread (RAYON_NUM_THREADS=1), at the highest priority when allowed
# (`nice -n -20`, as root), every test row timed one at a time. The load
# average is printed with each figure: on a shared machine the times are
# only comparable at the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"
runs="${2:-5}"
data="${3:-it-xsid}"
bench="${BENCH_DATA:-../shared/data/intents-bench}"
[ -d "$bench" ] || bench=/work/shared/data/intents-bench
bin=./target/release/frontdesk
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'text,intent\nhola,a\nbuenos dias,a\nadios,b\nhasta luego,b\ngracias,c\nmuchas gracias,c\n' >"$tmp/tiny.csv"
load() { cut -d' ' -f1 /proc/loadavg; }

echo "load of $model ($runs runs):"
for _ in $(seq "$runs"); do
  "$bin" eval --train "$tmp/tiny.csv" --test "$tmp/tiny.csv" --model "$model" \
    --holdout-splits 0 --timed-queries 1 --json 2>/dev/null |
    python3 -c '
import json, sys
v = json.load(sys.stdin)
print("  load %.2f s, peak memory %.0f MB, load average %s" % (
    v["model_load_seconds"], v["peak_memory_bytes"] / 1e6, sys.argv[1]))
' "$(load)"
done

nice=()
[ "$(id -u)" = 0 ] && nice=(nice -n -20)
echo "one core, $data few-shot (10 an intent), every test row timed:"
before=$(load)
RAYON_NUM_THREADS=1 "${nice[@]}" taskset -c 1 "$bin" eval \
  --train "$bench/$data/train.csv" --test "$bench/$data/test.csv" \
  --few-shot 10 --model "$model" --holdout-splits 0 --timed-queries 1 --json 2>/dev/null |
  python3 -c '
import json, sys
v = json.load(sys.stdin)
print("  p50 %.1f ms, p99 %.1f ms, %.1f messages/s; in-scope %.1f %% (lexical %.1f %%); load average %s before, %s after" % (
    v["p50_micros"] / 1e3, v["p99_micros"] / 1e3, v["queries_per_second"],
    100 * v["in_scope_accuracy"], 100 * v["lexical"]["in_scope_accuracy"], sys.argv[1], sys.argv[2]))
' "$before" "$(load)"
