#!/usr/bin/env python3
"""Estimated throughput of the aarch64 NEON micro-kernels, f32 and int8, on a Cortex-A72
(Raspberry Pi 4) and a Cortex-A76 (Pi 5) from llvm-mca, since no ARM board is at hand.

Usage (from the repository root):
  scripts/mca.py [SPEC...] [--cpu cortex-a72[,cortex-a76]] [--clock CPU=GHZ[,GHZ]]...
  scripts/mca.py --int8 [SPEC...]     # the int8 twins of the specs (<model>_int8)

For each spec it generates the NEON variant with tile functions kept out of line
(`gspc-codegen generate --target aarch64-unknown-linux-gnu --isa neon --outline-tiles`,
with --int8 also `--int8-twins`: the same layers in int8 with the benchmark's synthetic
quantization, as `Spec::int8_twin`), compiles it to assembly (`--emit asm`, release), takes
each tile function's innermost loop (the branch back to a label above it that contains the
most multiply-accumulates, a branch to a block that returns not counting: the unrolled
kernel window of one input channel, or of one input-channel pair for int8; for depthwise
layers, whose one-channel loop the compiler removes, the whole tile, every path), and runs
`llvm-mca -mcpu=CPU` over it. A spec whose layers are int8 (`"dtype": "int8"`) is
measured as int8 without --int8; with --int8 only int8 tiles are reported.

Operations counted per instruction (2 per multiply-accumulate):
- f32: an fmla on 4 lanes 8, on 2 lanes 4, an fmadd 2.
- int8: the NEON kernels hold int16 pairs (two taps of one output column) in int32
  words, 4 columns to a vector; the `neon_dot` kernels (CPUs with the dot product
  extension: reported for the Cortex-A76 only) hold quads of int8 (four input channels of
  a grouped layer, four neighbouring kernel columns of a depthwise one) and use sdot. One smlal (vmlal_s16, the low 4 int16: 2 columns x 2
  taps) or smlal2 (the high 4) makes 4 int32 products, 4 multiply-accumulates: 8 ops;
  smull/smull2 the same. An sdot on 4 int32 lanes sums 4 int8 products per lane, 16
  multiply-accumulates: 32 ops.
It reports cycles per iteration, ops per cycle, the share of the CPU's peak (measured the
same way from a block of independent fmla, for int8 of independent smlal; the sdot peak
of the Cortex-A76 is shown for reference), llvm-mca's busiest unit, the share of peak of
the kernel part alone (the multiply-accumulates with their vector loads and moves: what
the tile would reach with a free epilogue), the cycles of the rest of a looping tile (run
once per call: set-up and epilogue, every path), and GFLOP/s or GOP/s at each assumed
clock.

LLVM has no Cortex-A76 schedule (up to 19 at least, `-mcpu=cortex-a76` takes the Cortex-A57
one, the A72's): the A76 is estimated with the model of the Neoverse N1, the server core
built on it, which llvm-mca 15 lacks and 19 has (Debian 12: `apt-get install llvm-19`). The
script uses the newest `llvm-mca-N` on PATH unless --mca names one. Needs `rustup target add
aarch64-unknown-linux-gnu`; nothing is linked, so no cross linker is needed. Writes
target/mca/report.md (with --int8, report-int8.md).
"""
import argparse
import glob
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "mca")
F32_SPECS = ["resnet34_g1.json", "resnet34_g8.json", "resnet34_g32.json", "resnet34_gN.json",
             "resnext50_32x4d.json", "mobilenet_v1_dw.json"]

# The llvm-mca model that stands for each CPU (see the docstring for the A76).
MODELS = {"cortex-a72": "cortex-a72", "cortex-a76": "neoverse-n1"}
# Assumed clocks, GHz: Pi 4 at 1.5 (1.8 from its 2022 firmware), Pi 5 at 2.4.
CLOCKS = {"cortex-a72": [1.5, 1.8], "cortex-a76": [2.4]}

# Operations per instruction, by element type: (pattern, ops).
OPS = {
    "f32": [(r"fmla\s+v\d+\.4s", 8), (r"fmla\s+v\d+\.2s", 4), (r"fmadd\s+s\d+", 2)],
    "int8": [(r"(?:smlal|smull)2?\s+v\d+\.4s", 8), (r"sdot\s+v\d+\.4s", 32)],
}
UNIT = {"f32": "FLOP", "int8": "op"}
# A block of independent instructions that runs at the multiply pipes' peak.
PEAK = {"f32": "fmla v{}.4s, v16.4s, v17.4s", "int8": "smlal v{}.4s, v16.4h, v17.4h"}
SDOT = "sdot v{}.4s, v16.16b, v17.16b"


def sh(cmd, **kw):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def newest_mca():
    """The llvm-mca-N on PATH with the highest N, else llvm-mca."""
    found = [p for d in os.environ.get("PATH", "").split(os.pathsep)
             for p in glob.glob(os.path.join(d, "llvm-mca-*")) if re.search(r"-\d+$", p)]
    found.sort(key=lambda p: int(p.rsplit("-", 1)[1]))
    return found[-1] if found else "llvm-mca"


def mca(tool, asm_lines, cpu, attrs=""):
    """llvm-mca over a block: (cycles per iteration, busiest unit, its cycles per iteration
    per pipe)."""
    path = os.path.join(OUT, "block.s")
    with open(path, "w") as f:
        f.write("\n".join(asm_lines) + "\n")
    cmd = [tool, "-mtriple=aarch64", f"-mcpu={MODELS.get(cpu, cpu)}", "-iterations=200", path]
    r = sh(cmd + ([f"-mattr={attrs}"] if attrs else []),
           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    iters = int(re.search(r"Iterations:\s+(\d+)", r.stdout).group(1))
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", r.stdout).group(1))
    names = dict(re.findall(r"^\[([\d.]+)\]\s+-\s+(\w+)", r.stdout, re.M))
    table = r.stdout.split("Resource pressure per iteration:")[1].split("\n")
    busy, pipes = {}, {}
    for i, v in zip(re.findall(r"\[([\d.]+)\]", table[1]), table[2].split()):
        name = names[i]  # a unit of several pipes ([1.0], [1.1]): their mean
        busy[name] = busy.get(name, 0.0) + (0.0 if v == "-" else float(v))
        pipes[name] = pipes.get(name, 0) + 1
    unit = max(busy, key=lambda u: busy[u] / pipes[u])
    return cycles / iters, unit, busy[unit] / pipes[unit]


def ops(lines, dtype):
    n = 0
    for l in lines:
        for pattern, k in OPS[dtype]:
            if re.match(r"\s*" + pattern, l):
                n += k
    return n


def dtype_of(lines):
    return next((d for d in OPS if ops(lines, d)), None)


def macs(lines):
    """The operations of the multiply-accumulates in lines, of either element type."""
    return sum(ops(lines, d) for d in OPS)


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


# Vector loads and moves that feed the multiply-accumulates.
KERNEL = r"\s*(ld1r?|ldu?r\s+q|ldp\s+q|ext|dup|addp|zip[12]|uzp[12])\b"
BRANCH = r"\b(?:b|b\.\w+|cbnz|cbz|tbnz|tbz)\b"


def instructions(lines):
    return [x for x in lines if x.strip() and not x.strip().startswith((".", "//"))
            and not re.match(r"^\.?\w+:", x)]


def straight(lines):
    """The instructions without returns, branches and calls, as one block for llvm-mca."""
    return [x for x in instructions(lines) if not re.match(r"\s*(ret|bl?)\b", x)]


def innermost_loop(body):
    """The backward-branch loop with the most multiply-accumulates (one input channel's
    window, or one channel pair's for int8), as a slice of `body`. A branch back to a
    block that returns (a bounds check's early exit) is no loop."""
    labels = {}
    best, most = None, 0
    for i, l in enumerate(body):
        lm = re.match(r"^(\.LBB\d+_\d+):", l)
        if lm:
            labels[lm.group(1)] = i
            continue
        bm = re.search(BRANCH + r".*?(\.LBB\d+_\d+)\s*$", l)
        if bm and bm.group(1) in labels and labels[bm.group(1)] < i:
            seg = instructions(body[labels[bm.group(1)]:i + 1])
            exit_block = next((x for x in seg if re.match(r"\s*(ret|" + BRANCH + ")", x)), "")
            if "ret" not in exit_block.split() and macs(seg) > most:
                best, most = slice(labels[bm.group(1)], i + 1), macs(seg)
    return best


def kernel_part(block):
    """The multiply-accumulates of a block with their vector loads and moves, the scalar
    epilogue (lane-by-lane requantization, stores, bounds checks) left out: what the tile
    would cost with a free epilogue."""
    return [x for x in block if macs([x]) or re.match(KERNEL, x)]


def tiles(lines):
    """(model, layer, tile, what, block, rest) of every NEON tile function in the assembly:
    the innermost loop and the rest of the tile (run once per call: set-up and epilogue,
    every path), or the whole tile (every path, bounds checks and epilogue included) where
    no loop of multiply-accumulates is left (one input channel per group)."""
    i = 0
    while i < len(lines):
        m = re.match(r"^(_ZN\w+):", lines[i])
        if m and ("4neon" in m.group(1) or "8neon_dot" in m.group(1)) and "tile_" in m.group(1):
            path = demangle(m.group(1))
            j = i + 1
            while j < len(lines) and not lines[j].startswith(".Lfunc_end"):
                j += 1
            body = lines[i + 1:j]
            loop = innermost_loop(body)
            if loop:
                block, what = instructions(body[loop]), "loop"
                rest = straight(body[:loop.start] + body[loop.stop:])
            else:
                block, what, rest = straight(body), "whole tile", None
            if macs(block):
                # The `neon_dot` kernels (sdot, int8) beside the `neon` ones.
                tile = path[-1] if path[-2] == "neon" else f"{path[-2]}::{path[-1]}"
                yield path[-4], path[-3], tile, what, block, rest
            i = j
        i += 1


def merged(lines):
    """Layers whose NEON code the compiler merged into another layer's (identical
    functions: `a = b` aliases), as (model.layer, model.layer)."""
    out = []
    for a, b in re.findall(r"^(_ZN\w+4neon9run_units\w+) = (_ZN\w+)$", "\n".join(lines), re.M):
        out.append((".".join(demangle(a)[-4:-2]), ".".join(demangle(b)[-4:-2])))
    return out


def generate_asm(specs, int8_twins):
    """Generates the NEON variant of the specs: the assembly's lines and each layer's plan
    (strategy and NEON tiles, from gspc-codegen's listing) by (model, layer), in order."""
    gen = os.path.join(OUT, "src", "gen")
    os.makedirs(gen, exist_ok=True)
    for old in glob.glob(os.path.join(gen, "*.rs")):  # only this run's specs
        os.remove(old)
    listing = sh(["cargo", "run", "-q", "--release", "-p", "gspc-codegen", "--", "generate", *specs,
                  "--out", gen, "--target", "aarch64-unknown-linux-gnu", "--isa", "neon", "--outline-tiles"]
                 + (["--int8-twins"] if int8_twins else []), cwd=ROOT, stdout=subprocess.PIPE, text=True).stdout
    plans = {(m, l): f"{strategy} {tile}" for m, l, strategy, tile in
             re.findall(r"^(\w+)::(\w+)\s+(\S+) \(\w+\)\s+[\d.]+ MFLOP\s+neon (.*?)\s+\d+ lines$", listing, re.M)}
    mods = [f'include!("gen/{os.path.basename(f)}");' for f in sorted(glob.glob(os.path.join(gen, "*.rs")))]
    with open(os.path.join(OUT, "src", "lib.rs"), "w") as f:
        f.write("#![allow(dead_code)]\n" + "\n".join(mods) + "\n")
    with open(os.path.join(OUT, "Cargo.toml"), "w") as f:
        f.write(f'[package]\nname = "gspc-mca"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
                f'[lib]\npath = "src/lib.rs"\n\n[dependencies]\n'
                f'gspc-runtime = {{ path = "{os.path.join(ROOT, "gspc-runtime")}" }}\n\n[workspace]\n')
    deps = os.path.join(OUT, "target", "aarch64-unknown-linux-gnu", "release", "deps")
    for old in glob.glob(os.path.join(deps, "*.s")):
        os.remove(old)
    sh(["cargo", "rustc", "-q", "--release", "--target", "aarch64-unknown-linux-gnu", "--lib", "--",
        "--emit", "asm", "-C", "codegen-units=1"], cwd=OUT,
       env=dict(os.environ, CARGO_TARGET_DIR=os.path.join(OUT, "target")))
    with open(glob.glob(os.path.join(deps, "gspc_mca-*.s"))[0]) as f:
        return f.read().split("\n"), plans


def section(tool, cpu, dtype, found, clocks):
    """The report's table of one element type on one CPU; `found` holds (model, layer, plan,
    tile, what, block, rest) rows."""
    unit = UNIT[dtype]
    peak_block = [PEAK[dtype].format(i) for i in range(12)]
    cycles, unit_name, _ = mca(tool, peak_block, cpu)
    if MODELS.get(cpu) == "neoverse-n1" and not unit_name.startswith("N1"):
        sys.exit(f"{tool} has no Neoverse N1 model (it takes the Cortex-A57's): "
                 "give --mca an llvm-mca of LLVM 19")
    peak = ops(peak_block, dtype) / cycles
    ghz = ", ".join(f"{peak * c:.1f} G{unit}/s at {c} GHz" for c in clocks)
    out = [f"## {dtype} on {cpu} (llvm-mca model `{MODELS.get(cpu, cpu)}`)\n",
           f"Peak: {peak:.1f} {unit}/cycle from independent `{PEAK[dtype].split()[0]}` ({ghz})."]
    sdot_peak = None
    if dtype == "int8" and cpu == "cortex-a76":
        sdot = [SDOT.format(i) for i in range(12)]
        sdot_peak = ops(sdot, dtype) / mca(tool, sdot, cpu, "+dotprod")[0]
        out.append(f"Independent `sdot` (16 multiply-accumulates each): {sdot_peak:.1f} op/cycle, "
                   f"{sdot_peak / peak:.0f}x the smlal peak: the `neon_dot` tiles' % of peak is of it.")
    head = ["model", "layer", "plan", "tile", "instructions (mul, load)", f"{unit} / iteration",
            "cycles / iteration", f"{unit} / cycle", "% of peak", "busiest unit (cycles / iteration)",
            "kernel part: cycles (% of peak)", "rest of the tile (cycles)"] \
        + [f"G{unit}/s at {c} GHz" for c in clocks]
    out += ["", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for model, layer, plan, tile, what, block, rest in found:
        # The `neon_dot` tiles need the dot product extension: the A76 has it, the A72 not.
        attrs = "+dotprod" if tile.startswith("neon_dot::") else ""
        if attrs and cpu == "cortex-a72":
            continue
        n = ops(block, dtype)
        pk = sdot_peak if attrs and sdot_peak else peak
        cyc, busiest, busy = mca(tool, block, cpu, attrs)
        per = n / cyc
        mul = sum(1 for x in block if macs([x]))
        load = sum(1 for x in block if re.match(r"\s*ld", x))
        k = mca(tool, kernel_part(block), cpu, attrs)[0]
        row = [model, layer, plan, f"{tile} ({what})", f"{len(block)} ({mul}, {load})", n, f"{cyc:.1f}",
               f"{per:.1f}", f"{100 * per / pk:.0f}%", f"{busiest} ({busy:.1f})",
               f"{k:.1f} ({100 * n / k / pk:.0f}%)", f"{mca(tool, rest, cpu, attrs)[0]:.0f}" if rest else "-"] \
            + [f"{per * c:.1f}" for c in clocks]
        out.append("| " + " | ".join(map(str, row)) + " |")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("specs", nargs="*", default=[os.path.join(ROOT, "layer-specs", f) for f in F32_SPECS])
    ap.add_argument("--int8", action="store_true", help="the specs' int8 twins, int8 tiles only")
    ap.add_argument("--cpu", type=lambda s: s.split(","), help="comma-separated (default: cortex-a72; "
                    "with --int8 cortex-a72,cortex-a76)")
    ap.add_argument("--clock", action="append", default=[], metavar="CPU=GHZ[,GHZ]",
                    help="assumed clocks of a CPU (default: cortex-a72=1.5,1.8 cortex-a76=2.4)")
    ap.add_argument("--mca", default=newest_mca(), help="the llvm-mca to run (default: the newest on PATH)")
    args = ap.parse_args()
    cpus = args.cpu or (["cortex-a72", "cortex-a76"] if args.int8 else ["cortex-a72"])
    clocks = dict(CLOCKS)
    for c in args.clock:
        name, ghz = c.split("=")
        clocks[name] = [float(g) for g in ghz.split(",")]

    lines, plans = generate_asm(args.specs, args.int8)
    order = list(plans)
    by_dtype = {}
    for model, layer, tile, what, block, rest in tiles(lines):
        d = dtype_of(block)
        if d == "int8" or not args.int8:
            row = (model, layer, plans.get((model, layer), "?"), tile, what, block, rest)
            by_dtype.setdefault(d, []).append(row)
    for rows in by_dtype.values():
        rows.sort(key=lambda r: (order.index(r[:2]) if r[:2] in order else len(order), r[3]))
    version = sh([args.mca, "--version"], stdout=subprocess.PIPE, text=True).stdout
    version = re.search(r"LLVM version ([\d.]+)", version).group(1)
    out = [f"# NEON micro-kernels (llvm-mca {version} estimate)\n",
           "Specs: " + ", ".join(os.path.relpath(s, ROOT) for s in args.specs)
           + (" (their int8 twins)" if args.int8 else "") + ".\n"]
    same = [f"`{a}` = `{b}`" for a, b in merged(lines) if not args.int8 or a.split(".")[0].endswith("_int8")]
    if same:
        out.append("Layers whose NEON code is another layer's (identical functions, merged by the "
                   "compiler, so measured once): " + ", ".join(same) + ".\n")
    for dtype, found in by_dtype.items():
        for cpu in cpus:
            out += section(args.mca, cpu, dtype, found, clocks.get(cpu, [1.0])) + [""]
    report = "\n".join(out)
    with open(os.path.join(OUT, "report-int8.md" if args.int8 else "report.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
