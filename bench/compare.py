#!/usr/bin/env python3
"""frontdesk's matcher and the scikit-learn peer on the same data, in one run.

Usage (from the repository root):
    python3 bench/compare.py [--data ../shared/data/intents-bench] [--peer ../shared/bench/peer_sklearn.py]
                             [--binary target/release/frontdesk] [--sets banking77,hwu64,...]

For every data set it runs `frontdesk eval --json` and the peer one after the
other on the same train/dev/test files, then prints one Markdown table with
both sides and the ratios (ours / peer). The machines here are shared and
noisy: compare the ratios, not the absolute times. Builds the release binary
first if it is missing, and installs scikit-learn (pip) if it is missing.
"""
import argparse
import json
import os
import subprocess
import sys


def run_json(cmd):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def pct(x):
    return "—" if x is None else f"{100 * x:.1f}"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shared = os.path.join(os.path.dirname(root), "shared")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(shared, "data", "intents-bench"))
    ap.add_argument("--peer", default=os.path.join(shared, "bench", "peer_sklearn.py"))
    ap.add_argument("--binary", default=os.path.join(root, "target", "release", "frontdesk"))
    ap.add_argument("--sets", default="banking77,hwu64,es-fbtod,it-xsid")
    a = ap.parse_args()

    if not os.path.exists(a.binary):
        print("building the release binary…", file=sys.stderr, flush=True)
        subprocess.run(["cargo", "build", "--release"], cwd=root, check=True)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("installing scikit-learn for the peer…", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "scikit-learn"], check=True)

    rows = []
    for name in a.sets.split(","):
        folder = os.path.join(a.data, name)
        train, test = os.path.join(folder, "train.csv"), os.path.join(folder, "test.csv")
        dev = os.path.join(folder, "dev.csv")
        if not (os.path.exists(train) and os.path.exists(test)):
            sys.exit(f"error: {folder} has no train.csv and test.csv; give --data the intents-bench folder")
        extra = ["--dev", dev] if os.path.exists(dev) else []
        ours = run_json([a.binary, "eval", "--train", train, "--test", test, "--json",
                         "--holdout-splits", "0"] + extra)
        peer = run_json([sys.executable, a.peer, "--train", train, "--test", test] + extra)
        rows.append((name, ours, peer))

    print("| data | closed-set acc. ours / peer | in-scope acc. at operating point ours / peer "
          "| build s ours / peer (ratio) | queries/s one at a time ours / peer (ratio) "
          "| ours p50 / p99 µs | ours peak memory MiB |")
    print("|---|---|---|---|---|---|---|")
    for name, o, p in rows:
        build = o["build_seconds"] / p["train_seconds"] if p["train_seconds"] else float("nan")
        qps = o["queries_per_second"] / p["queries_per_second_single"]
        print(f"| {name} | {pct(o['closed_set_accuracy'])} / {pct(p['closed_set_accuracy'])} "
              f"| {pct(o['in_scope_accuracy'])} / {pct(p['in_scope_accuracy'])} "
              f"| {o['build_seconds']:.2f} / {p['train_seconds']:.2f} ({build:.2f}×) "
              f"| {o['queries_per_second']:.0f} / {p['queries_per_second_single']:.0f} ({qps:.0f}×) "
              f"| {o['p50_micros']:.1f} / {o['p99_micros']:.1f} "
              f"| {o['peak_memory_bytes'] / 2**20:.0f} |")


if __name__ == "__main__":
    main()
