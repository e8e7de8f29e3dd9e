#!/usr/bin/env bash
# The semantic tier against the lexical matcher, in the same run of
# `frontdesk eval`, on every shared benchmark, with all the training data and
# few-shot (the first 10 examples of each intent in file order).
#
#   cargo build --release --features semantic
#   bench/semantic-eval.sh MODEL_DIR [extra eval options, e.g. --semantic-scale 2]
#
# Prints one Markdown table row per data set and training size.
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1"
shift
bench="${BENCH_DATA:-../shared/data/intents-bench}"
[ -d "$bench" ] || bench=/work/shared/data/intents-bench
echo "| data | training | lexical in-scope | semantic in-scope | lexical closed-set | semantic closed-set | lexical held-out oos recall / in-scope | semantic held-out oos recall / in-scope | lexical q/s | semantic q/s | semantic build s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for data in banking77 hwu64 es-fbtod it-xsid; do
  for shots in full 10; do
    few=()
    [ "$shots" = full ] || few=(--few-shot "$shots")
    ./target/release/frontdesk eval --train "$bench/$data/train.csv" --test "$bench/$data/test.csv" \
      "${few[@]}" --model "$model" "$@" --json 2>/dev/null |
      python3 -c '
import json, sys
v = json.load(sys.stdin); l = v["lexical"]
p = lambda x: "%.1f" % (100 * x)
h = lambda r: "%s / %s" % (p(r["holdout"]["oos_recall"]), p(r["holdout"]["in_scope_accuracy"]))
print("| %s | %s | %s | **%s** | %s | %s | %s | %s | %.0f | %.0f | %.2f |" % (
    sys.argv[1], sys.argv[2], p(l["in_scope_accuracy"]), p(v["in_scope_accuracy"]),
    p(l["closed_set_accuracy"]), p(v["closed_set_accuracy"]), h(l), h(v),
    l["queries_per_second"], v["queries_per_second"], v["build_seconds"]))
' "$data" "$shots"
  done
done
