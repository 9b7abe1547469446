#!/usr/bin/env python3
"""Estimated throughput of the aarch64 NEON micro-kernels on a Cortex-A72 (Raspberry Pi 4)
from llvm-mca, since no ARM board is at hand.

Usage (from the repository root): scripts/mca.py [SPEC...] [--cpu cortex-a72] [--ghz 1.5]

For each spec it generates the NEON variant with tile functions kept out of line
(`gspc-codegen generate --target aarch64-unknown-linux-gnu --isa neon --outline-tiles`),
compiles it to assembly (`--emit asm`, release), takes each tile function's innermost
loop (the unrolled kernel window of one input channel: the branch back to a label above
it that contains the most fmla; for depthwise layers, whose one-channel loop the compiler
removes, the whole tile), and runs `llvm-mca -mcpu=CPU` over it. It reports
cycles per loop iteration, FLOPs per cycle (an fmla on 4 lanes counts 8, on one lane 2)
and the share of the CPU's peak, which it measures the same way from a block of
independent fmla. Needs llvm-mca (Debian: llvm) and `rustup target add
aarch64-unknown-linux-gnu`; nothing is linked, so no cross linker is needed.
Writes target/mca/report.md.
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "mca")


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def mca(asm_lines, cpu):
    path = os.path.join(OUT, "block.s")
    with open(path, "w") as f:
        f.write("\n".join(asm_lines) + "\n")
    r = sh(["llvm-mca", "-mtriple=aarch64", f"-mcpu={cpu}", "-iterations=200", path],
           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    iters = int(re.search(r"Iterations:\s+(\d+)", r.stdout).group(1))
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    return cycles / iters


def flops(lines):
    n = 0
    for l in lines:
        if re.match(r"\s*fmla\s+v\d+\.4s", l):
            n += 8
        elif re.match(r"\s*fmla\s+v\d+\.2s", l):
            n += 4
        elif re.match(r"\s*fmadd\s+s\d+", l):
            n += 2
    return n


def demangle(sym):
    """Legacy Rust mangling `_ZN<len><ident>...17h<hash>E` -> path segments."""
    m = re.match(r"_ZN(.*)E$", sym)
    if not m:
        return [sym]
    s, parts, i = m.group(1), [], 0
    while i < len(s):
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        if j == i:
            break
        n = int(s[i:j])
        parts.append(s[j:j + n])
        i = j + n
    return [p for p in parts if not re.match(r"h[0-9a-f]{16}$", p)]


def innermost_loop(body):
    """The backward-branch loop with the most fmla (the per-input-channel window)."""
    labels = {}
    best = None
    for i, l in enumerate(body):
        lm = re.match(r"^(\.LBB\d+_\d+):", l)
        if lm:
            labels[lm.group(1)] = i
            continue
        bm = re.search(r"\b(?:b|b\.\w+|cbnz|cbz|tbnz|tbz)\b.*?(\.LBB\d+_\d+)\s*$", l)
        if bm and bm.group(1) in labels and labels[bm.group(1)] < i:
            seg = [x for x in body[labels[bm.group(1)]:i + 1]
                   if x.strip() and not x.strip().startswith((".", "//")) and not re.match(r"^\.?\w+:", x)]
            if best is None or flops(seg) > flops(best):
                best = seg
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", default=[os.path.join(ROOT, "layer-specs", f) for f in
                    ["resnet34_g1.json", "resnet34_g8.json", "resnet34_g32.json", "resnet34_gN.json",
                     "resnext50_32x4d.json", "mobilenet_v1_dw.json"]])
    ap.add_argument("--cpu", default="cortex-a72")
    ap.add_argument("--ghz", type=float, default=1.5, help="clock for the GFLOP/s column (Pi 4: 1.5 or 1.8)")
    args = ap.parse_args()
    gen = os.path.join(OUT, "src", "gen")
    os.makedirs(gen, exist_ok=True)
    for old in glob.glob(os.path.join(gen, "*.rs")):  # only this run's specs
        os.remove(old)
    sh(["cargo", "run", "-q", "--release", "-p", "gspc-codegen", "--", "generate", *args.specs, "--out", gen,
        "--target", "aarch64-unknown-linux-gnu", "--isa", "neon", "--outline-tiles"],
       cwd=ROOT, stdout=subprocess.DEVNULL)
    mods = []
    for f in sorted(glob.glob(os.path.join(gen, "*.rs"))):
        mods.append(f'include!("gen/{os.path.basename(f)}");')
    with open(os.path.join(OUT, "src", "lib.rs"), "w") as f:
        f.write("#![allow(dead_code)]\n" + "\n".join(mods) + "\n")
    with open(os.path.join(OUT, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "gspc-mca"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
                f'[lib]\npath = "src/lib.rs"\n\n[dependencies]\n'
                f'gspc-runtime = {{ path = "{os.path.join(ROOT, "gspc-runtime")}" }}\n\n[workspace]\n')
    for old in glob.glob(os.path.join(OUT, "target", "aarch64-unknown-linux-gnu", "release", "deps", "*.s")):
        os.remove(old)
    sh(["cargo", "rustc", "-q", "--release", "--target", "aarch64-unknown-linux-gnu", "--lib", "--",
        "--emit", "asm", "-C", "codegen-units=1"], cwd=OUT,
       env=dict(os.environ, CARGO_TARGET_DIR=os.path.join(OUT, "target")))
    asm = glob.glob(os.path.join(OUT, "target", "aarch64-unknown-linux-gnu", "release", "deps", "gspc_mca-*.s"))[0]
    with open(asm) as f:
        lines = f.read().split("\n")

    peak_block = [f"fmla v{i}.4s, v16.4s, v17.4s" for i in range(12)]
    peak = flops(peak_block) / mca(peak_block, args.cpu)

    rows = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(_ZN\w+):", lines[i])
        if m and "4neon" in m.group(1) and "tile_" in m.group(1):
            path = demangle(m.group(1))
            j = i + 1
            while j < len(lines) and not lines[j].startswith(".Lfunc_end"):
                j += 1
            body = lines[i + 1:j]
            loop = innermost_loop(body)
            what = "loop"
            if not loop or not flops(loop):
                # One input channel per group (depthwise, gspc-dwc): no loop of FMAs is
                # left; the whole tile, window checks and stores included, is the block.
                loop = [x for x in body if x.strip() and not x.strip().startswith((".", "//"))
                        and not re.match(r"^\.?\w+:", x) and not re.match(r"\s*(ret|b|bl)\b", x)]
                what = "whole tile"
            if loop and flops(loop):
                cyc = mca(loop, args.cpu)
                fl = flops(loop)
                model, layer, tile = path[-4], path[-3], path[-1]
                rows.append((model, layer, f"{tile} ({what})", len(loop), fl // 8, cyc, fl / cyc))
            i = j
        i += 1
    out = [f"# NEON micro-kernels on {args.cpu} (llvm-mca estimate)\n",
           f"Peak from llvm-mca's model of {args.cpu}: {peak:.1f} FLOP/cycle "
           f"({peak * args.ghz:.1f} GFLOP/s per core at {args.ghz} GHz).\n",
           "| model | layer | tile | instructions | fmla.4s | cycles / iteration | FLOP / cycle | % of peak | GFLOP/s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for model, layer, tile, n, fm, cyc, fpc in rows:
        out.append(f"| {model} | {layer} | {tile} | {n} | {fm} | {cyc:.1f} | {fpc:.1f} | "
                   f"{100 * fpc / peak:.0f}% | {fpc * args.ghz:.1f} |")
    report = "\n".join(out) + "\n"
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
