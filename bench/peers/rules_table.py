# bench/run's update-rule tables: θ_T after one epoch against torch.optim per rule and net, and the EPK of runs trained
# with each rule (time, peak memory, every machine's error). Reads results.jsonl only; measures nothing.
#
#   /usr/bin/python3 bench/peers/rules_table.py RESULTS.jsonl
import json
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    checks = [r for r in rows if r["task"] == "optimizer"]
    if checks:
        print("\n| net | rule | steps | max rel difference of θ_T from torch.optim | agrees (≤ 1e-12) |")
        print("|---|---|---|---|---|")
        for r in checks:
            print(f"| {r.get('spec', r['case'])} | {r['optimizer']} | {r['steps']} | {r['max_rel_difference']:.1e} | {'yes' if r['agrees'] else 'NO'} |")
    epk = [r for r in rows if r["task"] == "rule-epk"]
    if not epk:
        return
    names = ["exact", "ntk-init", "after", "domingos"]
    print("\n| net | rule | test inputs × steps | time s | × training | peak MB | nodes | " + " | ".join(f"{n} max rel error" for n in names) + " |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(names))
    for r in epk:
        errors = " | ".join(f"{r['machines'][n]['max_rel_error']:.1e}" if n in r["machines"] else "–" for n in names)
        ratio = r["seconds"] / r["training_seconds"] if r["training_seconds"] > 0 else 0.0
        print(f"| {r['spec']} | {r['optimizer']} | {r['test_inputs']} × {r['steps']} | {r['seconds']:.1f} | {ratio:.0f} | {r['peak_mb']:.0f} | "
              f"{r['nodes']} | {errors} |")


if __name__ == "__main__":
    main()
