#!/usr/bin/env python3
"""gspc against the peers, in the same run: ratio tables per layer and per model, and the
paper's figure (speedup over the best peer against the number of groups) as SVG.

Usage (from the repository root):
  scripts/compare.py [--specs layer-specs/*.json] [--threads 1,2] [--repeat 30]
                     [--rounds 3] [--peak FILE] [--out target/compare]
                     [--peers-python PATH] [--skip-peers] [--int8 [--int8-peak FILE]]

It measures this CPU's peak (../shared/peers/peak/run.sh; --peak FILE reuses one), then
runs --rounds interleaved rounds: in each, for every thread count, `cargo bench --bench
layers` over every compiled-in model and the peer benchmark (../shared/peers/peers.py:
ONNX Runtime, PyTorch NCHW and channels_last, LiteRT/XNNPACK) on every spec. Each side's
time per layer is its best round (of the per-round medians); the report gives gspc's
worst round too (the spread). Ratios are best peer time / gspc time (> 1: gspc is
faster). The summary gives per model and thread count the model's ratio next to its worst
layer's. Writes report.md, results.json and groups.svg to --out.
The peers' virtualenv comes from ../shared/peers/setup.sh (PEERS_VENV); --peers-python
points at its python.

--int8 compares int8 instead: the peer benchmark is scripts/peers_int8.py (ONNX Runtime on
the QDQ model, LiteRT/XNNPACK on the int8 .tflite; f32 specs turned into int8 layers of the
same shapes) and gspc's side is the benchmark's `<suite>_int8` model of each suite (the
same layers with "dtype": "int8"); a layer the benchmark lacks shows as n/a. Ratios and
GOP/s (2 operations per multiply-accumulate) as for f32. It also measures this CPU's int8
peak (`cargo run --release -p gspc-runtime --example int8_peak`; --int8-peak FILE reuses
one), passes it to the benchmark, and gives per suite the % of the peak of the widest
instruction gspc's int8 kernels use (`vpdpbusd` where the CPU has AVX-512 VNNI: grouped
and depthwise layers use it on quads; else AVX2's `vpmaddwd` + `vpaddd`) and of
`vpdpbusd`'s, the int8 peers' instruction.
Default --out: target/compare-int8.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The peer benchmark: ../shared/peers beside the repository, or GSPC_PEERS_DIR.
PEERS = os.environ.get("GSPC_PEERS_DIR") or os.path.join(os.path.dirname(ROOT), "shared", "peers")
PEER_NAMES = ["ort", "torch", "torch_cl", "tflite"]
INT8_PEER_NAMES = ["ort", "litert"]  # scripts/peers_int8.py's default peers


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def default_peers_python():
    for cand in [os.environ.get("PEERS_VENV", ""), os.path.join(PEERS, ".venv"),
                 os.path.expanduser("~/.cache/gspc-peers/venv")]:
        py = os.path.join(cand, "bin", "python")
        if cand and os.path.exists(py):
            return py
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", nargs="*", default=sorted(glob.glob(os.path.join(ROOT, "layer-specs", "*.json"))))
    ap.add_argument("--int8", action="store_true",
                    help="int8: gspc's <suite>_int8 models against scripts/peers_int8.py")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", help="default target/compare (--int8: target/compare-int8)")
    ap.add_argument("--peers-python", default=default_peers_python())
    ap.add_argument("--skip-peers", action="store_true", help="reuse the peers' JSON in --out")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; best round per side")
    ap.add_argument("--peak", help="this CPU's peak JSON (../shared/peers/peak/run.sh --json) instead of measuring it")
    ap.add_argument("--int8-peak", help="with --int8: this CPU's int8 peak JSON (gspc-runtime's int8_peak example, "
                    "--json) instead of measuring it")
    args = ap.parse_args()
    # Absolute: the peak and peer programs run from their own directories.
    args.out = os.path.abspath(args.out or os.path.join(ROOT, "target", "compare-int8" if args.int8 else "compare"))
    os.makedirs(args.out, exist_ok=True)
    threads = [int(t) for t in args.threads.split(",")]
    specs = {}
    for path in args.specs:
        with open(path) as f:
            spec = json.load(f)
        specs[spec["model"]] = (path, spec)

    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    if args.int8_peak and not args.int8:
        sys.exit("--int8-peak is for --int8")
    peak_json = os.path.join(args.out, "peak.json")
    peak = load_peak(args.peak, peak_json, [os.path.join(PEERS, "peak", "run.sh"), "--json", peak_json],
                     dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target", "peak")),
                     "../shared/peers/peak/run.sh --json FILE")
    bench_peak, int8_peak = ["--peak", peak_json], {}
    if args.int8:
        int8_json = os.path.join(args.out, "int8-peak.json")
        int8_peak = load_peak(args.int8_peak, int8_json,
                              ["cargo", "run", "--release", "--quiet", "-p", "gspc-runtime", "--example",
                               "int8_peak", "--", "--json", int8_json], None,
                              "cargo run --release -p gspc-runtime --example int8_peak -- --json FILE")
        bench_peak += ["--int8-peak", int8_json]

    env = dict(os.environ, GSPC_SPECS=":".join(os.path.relpath(p, ROOT) for p, _ in specs.values()))
    # Build the benchmark once and run that binary: edits made while this runs cannot
    # change what is measured.
    built = sh(["cargo", "bench", "--bench", "layers", "--no-run", "--message-format=json"],
               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    bench_exe = None
    for line in built.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "layers" \
                and msg.get("executable"):
            bench_exe = msg["executable"]
    if not bench_exe:
        sys.exit("could not find the built benchmark executable")
    # Per round, thread count and model: gspc's and the peers' per-layer medians.
    ours_rounds = {t: [] for t in threads}
    theirs_rounds = {(m, t): [] for m in specs for t in threads}
    for rnd in range(args.rounds):
        for t in threads:
            gspc_json = os.path.join(args.out, f"gspc_t{t}_r{rnd}.json")
            sh([bench_exe, "--threads", str(t), "--repeat", str(args.repeat)] + bench_peak
               + ["--json", gspc_json], cwd=ROOT, stdout=subprocess.DEVNULL)
            with open(gspc_json) as f:
                ours_rounds[t].append({(r["model"], r["name"]): r for r in json.load(f)})
            for model, (path, spec) in specs.items():
                peers_json = os.path.join(args.out, f"peers_{model}_t{t}_r{rnd}.json")
                if not args.skip_peers:
                    if not args.peers_python:
                        sys.exit("no peers virtualenv: run ../shared/peers/setup.sh or pass --peers-python")
                    peers = ([os.path.join(ROOT, "scripts", "peers_int8.py")] if args.int8
                             else [os.path.join(PEERS, "peers.py"), "--peak", peak_json])
                    sh([args.peers_python] + peers + [path, "--threads", str(t), "--repeat",
                       str(args.repeat), "--json", peers_json], stdout=subprocess.DEVNULL)
                with open(peers_json) as f:
                    theirs_rounds[(model, t)].append(json.load(f))
    results = tabulate(specs, threads, ours_rounds, theirs_rounds, args.int8)
    report = render(results, specs, threads, peak, int8_peak)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({f"{m}@{t}": v for (m, t), v in results.items()}, f, indent=1)
    svg = figure(results, threads)
    with open(os.path.join(args.out, "groups.svg"), "w") as f:
        f.write(svg)
    print(report)


def load_peak(given, dest, measure, env, how):
    """A peak JSON as a dict: `given` copied to `dest`, else `measure` run (it writes `dest`)."""
    if given:
        # Read before writing: `given` may be `dest` itself (opening it to write empties it).
        with open(given) as src:
            text = src.read()
        with open(dest, "w") as dst:
            dst.write(text)
    else:
        sh(measure, cwd=ROOT, env=env)
    try:
        with open(dest) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{given or dest}: not a peak JSON ({e}); measure it again with {how} "
                 "on an otherwise idle machine")


def int8_peaks(peak, t):
    """The int8 peaks (GOP/s) for `t` threads: of gspc's widest instruction (vpdpbusd 512
    where the CPU has it, else AVX2's vpmaddwd + vpaddd) and of vpdpbusd (512, else
    AVX-VNNI's), each None where the peak file lacks it."""
    def first(*keys):
        return next((peak[k] for k in keys if k in peak), None)
    return (first(f"int8_vpdpbusd_avx512_{t}t_gops", f"int8_vpmaddwd_avx2_{t}t_gops"),
            first(f"int8_vpdpbusd_avx512_{t}t_gops", f"int8_vpdpbusd_avxvnni_{t}t_gops"))


def pct(gf, pk):
    return f"{100 * gf / pk:.0f}%" if pk else "-"


def gspc_model(suite, int8):
    """gspc's benchmark model for a suite: the suite's own, or with --int8 its int8 variant
    (`<suite>_int8`; a suite whose name already ends in _int8 is its own)."""
    return suite if not int8 or suite.endswith("_int8") else suite + "_int8"


def tabulate(specs, threads, ours_rounds, theirs_rounds, int8):
    """Per (model, threads): each layer's best gspc and peer times over the rounds.
    ours_rounds[t]: per round {(gspc model, layer): bench row}; theirs_rounds[(model, t)]:
    per round the peer JSON."""
    results = {}
    for t in threads:
        for model, (path, spec) in specs.items():
            rounds = theirs_rounds[(model, t)]
            rows = []
            for i, layer in enumerate(spec["layers"]):
                key = (gspc_model(model, int8), layer["name"])
                mine = [o[key]["median_us"] for o in ours_rounds[t] if key in o]
                peer_us = {}
                for theirs in rounds:
                    for pn, entries in theirs["results"].items():
                        e = entries[i]
                        if "us" in e and e.get("ok", True):
                            peer_us[pn] = min(peer_us.get(pn, e["us"]), e["us"])
                best = min(peer_us, key=peer_us.get) if peer_us else None
                rows.append({"name": layer["name"], "count": layer.get("count", 1),
                             "flops": rounds[0]["layers"][i]["flops"],
                             "gspc_us": min(mine) if mine else None,
                             "gspc_worst_us": max(mine) if mine else None,
                             "peers_us": peer_us, "best_peer": best})
            results[(model, t)] = {"rows": rows, "versions": rounds[0].get("versions", {}),
                                   "rounds": len(rounds), "int8": int8,
                                   "peers": INT8_PEER_NAMES if int8 else PEER_NAMES}
    return results


def totals(rows, peer_names):
    n = sum(r["count"] for r in rows)
    flops = sum(r["flops"] * r["count"] for r in rows)
    ours = sum(r["gspc_us"] * r["count"] for r in rows) if all(r["gspc_us"] for r in rows) else None
    peer = {}
    for pn in peer_names:
        if all(pn in r["peers_us"] for r in rows):
            peer[pn] = sum(r["peers_us"][pn] * r["count"] for r in rows)
    best = min(peer, key=peer.get) if peer else None
    return n, flops, ours, peer, best


def render(results, specs, threads, peak, int8_peak):
    """The report: `peak` is the fp32 peak JSON, `int8_peak` the int8 one (--int8)."""
    out = []
    first = next(iter(results.values()), {"versions": {}, "rounds": 1, "int8": False, "peers": PEER_NAMES})
    int8, names = first["int8"], first["peers"]
    ops = "GOP/s" if int8 else "GFLOP/s"
    out.append("# gspc int8 vs int8 peers (same run)\n" if int8 else "# gspc vs peers (same run)\n")
    out.append(f"Peers: {'; '.join(f'{k}: {v}' for k, v in first['versions'].items())}\n")
    out.append("Peak of this CPU (fp32 FMA, GFLOP/s): " + ", ".join(
        f"{k}={v:.0f}" for k, v in peak.items() if k.startswith("fma_")) + "\n")
    if int8:
        out.append("Int8 peak of this CPU (GOP/s, 2 operations per multiply-accumulate): " + ", ".join(
            f"{k[len('int8_'):-len('_gops')]}={v:.0f}" for k, v in int8_peak.items() if k.startswith("int8_"))
            + f" ({int8_peak.get('cpu', '?')})\n")
        out.append("int8: gspc's `<suite>_int8` models against scripts/peers_int8.py on the same shapes; "
                   "GOP/s counts 2 operations per multiply-accumulate; % peak is of the widest instruction gspc's "
                   "int8 kernels use (vpdpbusd where the CPU has AVX-512 VNNI: grouped and depthwise layers on quads; "
                   "else AVX2's vpmaddwd + vpaddd), % vpdpbusd of the peers' "
                   "instruction (uint8 x int8).\n")
    rounds = first["rounds"]
    out.append(f"Each side's time per layer: its best of {rounds} interleaved round(s) (medians).\n")
    out.append("Speedup = best peer's model time / gspc's model time (totals weighted by `count`); "
               "worst layer = the layer with the lowest best-peer / gspc ratio.\n")
    busd = " % vpdpbusd |" if int8 else ""
    out.append(f"| model | threads | gspc us | {ops} | % peak |{busd} best peer | peer us | speedup | worst layer |")
    out.append("|---|---|---|---|---|" + ("---|" if int8 else "") + "---|---|---|---|")
    for model in specs:
        for t in threads:
            rows = results[(model, t)]["rows"]
            n, flops, ours, peer, best = totals(rows, names)
            pk, pk_busd = int8_peaks(int8_peak, t) if int8 else (peak.get(f"fma_avx512_{t}t_gflops"), None)
            if ours is None or best is None:
                out.append("| " + " | ".join([model, str(t), "n/a"] + [""] * (7 if int8 else 6)) + " |")
                continue
            gf = flops / ours / 1e3
            ratios = [(r["peers_us"][r["best_peer"]] / r["gspc_us"], r["name"]) for r in rows
                      if r["gspc_us"] and r["best_peer"]]
            worst = min(ratios) if ratios else (float("nan"), "-")
            busd = f" {pct(gf, pk_busd)} |" if int8 else ""
            out.append(f"| {model} | {t} | {ours:.0f} | {gf:.1f} | {pct(gf, pk)} |{busd} {best} | "
                       f"{peer[best]:.0f} | {peer[best] / ours:.2f}x | {worst[0]:.2f}x {worst[1]} |")
    out.append("")
    for model in specs:
        for t in threads:
            rows = results[(model, t)]["rows"]
            out.append(f"\n### {model}, {t} thread(s)\n")
            out.append(f"| layer | cnt | {'MOP' if int8 else 'MFLOP'} | gspc us (worst round) | "
                       + " | ".join(f"{p} us" for p in names) + " | speedup vs best |")
            out.append("|---|---|---|---|" + "---|" * len(names) + "---|")
            for r in rows:
                cells = [f"{r['peers_us'][p]:.1f}" if p in r["peers_us"] else "-" for p in names]
                sp = (r["peers_us"][r["best_peer"]] / r["gspc_us"]) if r["gspc_us"] and r["best_peer"] else float("nan")
                ours = f"{r['gspc_us']:.1f} ({r['gspc_worst_us']:.1f})" if r["gspc_us"] else "-"
                out.append(f"| {r['name']} | {r['count']} | {r['flops'] / 1e6:.1f} | {ours} | "
                           + " | ".join(cells) + f" | {sp:.2f}x |")
    return "\n".join(out) + "\n"


def figure(results, threads):
    """Speedup over the best peer (model totals) against groups, for ResNet-34 and WRN-40-2."""
    series = []
    for family, label in [("resnet34", "ResNet-34"), ("wrn40_2", "WRN-40-2")]:
        for t in threads:
            pts = []
            for i, g in enumerate(["1", "2", "4", "8", "16", "32", "N"]):
                key = (f"{family}_g{g}", t)
                if key in results:
                    _, _, ours, peer, best = totals(results[key]["rows"], results[key]["peers"])
                    if ours and best:
                        pts.append((i, peer[best] / ours))
            if pts:
                series.append((f"{label}, {t} thread(s)", pts))
    w, h, l, r, tp, b = 640, 400, 60, 180, 30, 50
    ymax = max([y for _, pts in series for _, y in pts] + [1.0]) * 1.15
    def x(i): return l + i * (w - l - r) / 6
    def y(v): return h - b - v * (h - tp - b) / ymax
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2 - 60}" y="18" font-size="14">gspc speedup over the best peer</text>']
    for i, g in enumerate(["1", "2", "4", "8", "16", "32", "N"]):
        parts.append(f'<text x="{x(i) - 4}" y="{h - b + 18}">{g}</text>')
    parts.append(f'<text x="{(w - r) / 2}" y="{h - 10}">groups</text>')
    step = 0.5 if ymax < 4 else 1.0
    v = 0.0
    while v <= ymax:
        parts.append(f'<line x1="{l}" x2="{w - r}" y1="{y(v)}" y2="{y(v)}" stroke="#ddd"/>')
        parts.append(f'<text x="{l - 35}" y="{y(v) + 4}">{v:.1f}x</text>')
        v += step
    parts.append(f'<line x1="{l}" x2="{w - r}" y1="{y(1)}" y2="{y(1)}" stroke="#888" stroke-dasharray="4"/>')
    for k, (name, pts) in enumerate(series):
        c = colors[k % len(colors)]
        path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for i, v in pts:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{c}"/>')
        parts.append(f'<text x="{w - r + 10}" y="{tp + 20 + 18 * k}" fill="{c}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
