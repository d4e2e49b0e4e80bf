# The EPK table of bench/run: per net, each quadrature mode of kernelscope, the ExPLAIND-method peer (midpoint rule,
# float32 and float64), commit 8bd8e9d's build, and the GEMM-rate bound. Reads results.jsonl only; measures nothing.
#
#   /usr/bin/python3 bench/peers/epk_table.py RESULTS.jsonl
import json
import sys


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    gemm = next((r["gflops"] for r in rows if r["task"] == "gemm"), None)
    epk = [r for r in rows if r["task"].startswith(("epk:", "old-epk:"))]
    if not epk:
        return
    print("\n| net | test inputs × steps | method | time s | nodes | ms per node | max error / largest output | max rel error | "
          "decisions agree | checked against ours |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case in dict.fromkeys(r["case"] for r in epk):
        mine = [r for r in epk if r["case"] == case]
        exact = next((r for r in mine if r.get("peer") == "kernelscope" and r.get("mode") == "exact"), None)
        steps = next((r["steps"] for r in mine if "steps" in r), "?")  # the peers' rows do not say; any of ours does
        for r in mine:
            nodes = r.get("nodes")
            per_node = f"{1e3 * r['median'] / nodes:.3f}" if nodes else "–"
            who = "kernelscope " + r["mode"] if r.get("peer") == "kernelscope" else r["peer"] + (" " + r["mode"] if "mode" in r else "")
            if r.get("piece_seconds"):
                who += f" (finding breakpoints {r['piece_seconds']:.3g} s, {100 * r['piece_seconds'] / r['median']:.0f}%)"
            checked = "–" if r.get("peer") == "kernelscope" else ("MISMATCH" if r.get("mismatch") else f"{r.get('max_rel_difference', 0):.1e}")
            error = f"{r['error_vs_largest']:.1e}" if "error_vs_largest" in r else "–"
            relative = f"{r['max_rel_error']:.1e}" if "max_rel_error" in r else "–"
            agree = ("yes" if r["decisions_agree"] else "NO") if "decisions_agree" in r else "–"
            print(f"| {case} | {r['n']} × {r.get('steps', steps)} | {who} | {r['median']:.3g} | "
                  f"{nodes if nodes else '–'} | {per_node} | {error} | {relative} | {agree} | {checked} |")
        check = next((r for r in rows if r["case"] == case and r["task"].startswith("pieces:")), None)
        if check:
            share = 100 * check["spurious"] / max(check["breakpoints"], 1)
            print(f"| {case} | {check['n']} × {steps} | breakpoints checked at piece midpoints: "
                  f"{check['spurious']} spurious of {check['breakpoints']} ({share:.2f}%) | | | | | | | |")
        if exact and gemm:
            bound = exact["nodes"] * exact["flops_per_node"] / (gemm * 1e9)
            print(f"| {case} | | GEMM-rate bound of the exact mode's nodes ({exact['flops_per_node'] / 1e6:.1f} MFLOP per node at "
                  f"{gemm:.1f} GFLOP/s) | {bound:.3g} | {exact['nodes']} | | | | | ours / bound: {exact['median'] / bound:.2f} |")
            rates = [exact[k] for k in ("gemm_sustained_before", "gemm_sustained_after") if k in exact]
            if rates:  # the rate of the moment: a long task can meet a slower machine than the run's first burst
                rate = sum(rates) / len(rates)
                bound = exact["nodes"] * exact["flops_per_node"] / (rate * 1e9)
                print(f"| {case} | | the same bound at the sustained GEMM rate measured right before and after the exact run "
                      f"({' and '.join(f'{r:.1f}' for r in rates)} GFLOP/s) | {bound:.3g} | | | | | | ours / bound: {exact['median'] / bound:.2f} |")


if __name__ == "__main__":
    main()
