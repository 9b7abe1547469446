#!/usr/bin/env python3
"""Two threads against one, per layer, in interleaved rounds, for one or more builds of the
layer benchmark (e.g. before and after a change to the thread pool).

Usage (from the repository root):
  scripts/thread_scaling.py --bin old=target/cmp/layers-old --bin new=target/cmp/layers-new
      [--model wrn40_2_g2]... [--rounds 5] [--repeat 30] [--threads 2] [--min-us 100]
      [--busy SECONDS] [--out target/cmp/scaling.json]

Build a bench binary once with
  GSPC_SPECS=layer-specs/wrn40_2_g2.json:layer-specs/resnet34_g8.json \
      cargo bench --bench layers --no-run
and copy target/release/deps/layers-* aside. Every round runs each binary at 1 and at
--threads threads (the order of the binaries alternates between rounds) and reads the
machine's load (/proc/loadavg) before each run. The ratio of a layer in a round is its
1-thread median over its N-thread median from the same binary and round. Printed per layer
whose 1-thread median is above --min-us: every round's ratio, the min / median / max, and
the runs below 1.85x. --busy S keeps the other core busy (`yes > /dev/null`) now and then
during each multi-thread run (S seconds on, S seconds off), to recreate a core taken by
another process.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

TARGET = 1.85


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def ordinary():
    """Runs the calling (child) process under the default time-sharing policy."""
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def run(binary, models, threads, repeat, busy):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        path = tmp.name
    cmd = [binary, "--threads", str(threads), "--repeat", str(repeat), "--json", path]
    for m in models:
        cmd += ["--model", m]
    stop = threading.Event()

    def hog():
        # On for `busy` seconds, off for `busy` seconds, until the run ends.
        while not stop.is_set():
            # As an ordinary process: under `chrt -f 1` a child would inherit the
            # real-time policy and take its core from the timed threads outright, not
            # compete for it as other processes do.
            p = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL, preexec_fn=ordinary)
            stop.wait(busy)
            p.kill()
            p.wait()
            stop.wait(busy)

    th = threading.Thread(target=hog) if busy and threads > 1 else None
    if th:
        th.start()
    try:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    finally:
        stop.set()
        if th:
            th.join()
    with open(path) as f:
        rows = json.load(f)
    os.unlink(path)
    return {(r["model"], r["name"]): r["median_us"] for r in rows}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="LABEL=PATH")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-us", type=float, default=100.0)
    ap.add_argument("--busy", type=float, default=0.0)
    ap.add_argument("--out")
    a = ap.parse_args()
    bins = [b.split("=", 1) for b in a.bin]
    models = a.model or ["wrn40_2_g2", "resnet34_g8"]
    runs = []  # (round, label, threads, load, {layer: us})
    for r in range(a.rounds):
        order = bins if r % 2 == 0 else bins[::-1]
        for label, path in order:
            for t in (1, a.threads):
                before = load()
                us = run(path, models, t, a.repeat, a.busy)
                runs.append((r, label, t, before, us))
                print(f"round {r} {label} {t}t load {before:.2f}", file=sys.stderr, flush=True)
    layers = sorted({k for *_, us in runs for k in us})
    report = {"rounds": a.rounds, "threads": a.threads, "busy_s": a.busy, "layers": []}
    print(f"# {a.threads} threads vs 1, {a.rounds} interleaved rounds, repeat {a.repeat}"
          + (f", other core busy {a.busy} s per run" if a.busy else ""))
    loads = [l for *_, l, _ in runs]
    print(f"# load average (1 min) before the runs: {min(loads):.2f} - {max(loads):.2f}")
    for label, _ in bins:
        print(f"\n{label}: layer, 1t us (median of rounds), ratio per round, min / median / max, below {TARGET}")
        worst = []
        for key in layers:
            one = {r: us[key] for r, l, t, _, us in runs if l == label and t == 1 and key in us}
            many = {r: us[key] for r, l, t, _, us in runs if l == label and t == a.threads and key in us}
            ratios = [one[r] / many[r] for r in sorted(one) if r in many]
            if not ratios:
                continue
            t1 = sorted(one.values())[len(one) // 2]
            if t1 < a.min_us:
                continue
            s = sorted(ratios)
            below = sum(x < TARGET for x in ratios)
            worst.append(s[0])
            print(f"  {key[0] + '.' + key[1]:<36} {t1:7.1f}  "
                  + " ".join(f"{x:4.2f}" for x in ratios)
                  + f"   {s[0]:4.2f} / {s[len(s) // 2]:4.2f} / {s[-1]:4.2f}   {below}/{len(ratios)}")
            report["layers"].append({"bin": label, "model": key[0], "name": key[1],
                                     "t1_us": t1, "ratios": ratios})
        if worst:
            print(f"  worst run of any layer: {min(worst):.2f}x")
    report["runs"] = [{"round": r, "bin": l, "threads": t, "load": ld, "median_us": {f"{k[0]}.{k[1]}": v for k, v in us.items()}}
                      for r, l, t, ld, us in runs]
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
