#!/usr/bin/env python3
"""Summarizes a tuning database (`gspc-codegen tune --db FILE`) per suite of layer-specs/.

For each spec and thread count: the cost model's time and the tuned time of the whole model
(each layer's median times its count), their ratio, and the layers where the cost model was
off by more than a threshold. The numbers come from one tuning run, where every candidate
of a shape was timed in the same interleaved rounds.

    python3 scripts/tuning_table.py target/tune/zen5.jsonl layer-specs/*.json [--min-gap 1.03]
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--min-gap", type=float, default=1.03,
                    help="list layers whose model/tuned ratio is at least this")
    a = ap.parse_args()
    best, model = {}, {}
    wrong = set()
    with open(a.db) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                sys.exit(f"{a.db}:{n}: not a JSON line")
            key = (r["signature"], json.dumps(r["candidate"], sort_keys=True))
            if r["status"] == "wrong":
                wrong.add(key)
                continue
            k = (r["signature"], r["threads"])
            t = r["median_ns"]
            if r["model_choice"]:
                model[k] = t
            if key not in wrong and (k not in best or t < best[k][0]):
                best[k] = (t, r["candidate"])
    threads = sorted({t for _, t in model})
    print("| suite | " + " | ".join(f"{t} thread(s): model / tuned us, model/tuned" for t in threads) + " |")
    print("|---|" + "---|" * len(threads))
    gaps = []
    for path in a.specs:
        spec = json.load(open(path))
        cells = []
        for t in threads:
            m_sum = t_sum = 0.0
            complete = True
            for l in spec["layers"]:
                sig = signature(l)
                k = (sig, t)
                if k not in model or k not in best:
                    complete = False
                    continue
                c = l.get("count", 1)
                m_sum += model[k] * c
                t_sum += best[k][0] * c
                if model[k] / best[k][0] >= a.min_gap:
                    gaps.append((spec["model"], l["name"], t, model[k], best[k]))
            cells.append(f"{m_sum/1e3:.1f} / {t_sum/1e3:.1f}, {m_sum/t_sum:.3f}x"
                         + ("" if complete else " (not every layer)"))
        print(f"| {spec['model']} | " + " | ".join(cells) + " |")
    print(f"\nlayers where the cost model was off by {a.min_gap}x or more:")
    for m, l, t, mt, (bt, c) in gaps:
        print(f"  {m}.{l} at {t} thread(s): model {mt/1e3:.1f} us, tuned {bt/1e3:.1f} us "
              f"({mt/bt:.2f}x): {label(c)}")


def label(c):
    """A candidate as `gspc-codegen tune` names it: `model`, `gspc-ow oc2`, `packed`..."""
    parts = [c["strategy"]] if c.get("strategy") else []
    if c.get("oc_block"):
        parts.append(f"oc{c['oc_block']}")
    if c.get("compact"):
        parts.append("compact")
    if c.get("direct") is False:
        parts.append("packed")
    if c.get("accumulators"):
        parts.append(f"acc{c['accumulators']}")
    return " ".join(parts) or "model"

def signature(l):
    g = l["groups"]
    k, s, p = l["kernel"], l["stride"], l["padding"]
    d = l.get("dilation", [1, 1])
    h, w = l["input"]
    return (f"g{g}c{l['in_channels']//g}k{l['out_channels']//g}_k{k[0]}x{k[1]}"
            f"s{s[0]}x{s[1]}d{d[0]}x{d[1]}p{p[0]}x{p[1]}_{h}x{w}")


if __name__ == "__main__":
    main()
