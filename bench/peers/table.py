# Prints bench/run's results (one JSON object a line) as two Markdown tables: tasks against the peers, and GEMM-bound
# parts against the machine's measured GEMM rate. Reads only; measures nothing.
import json
import platform
import sys


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def merged(lines):
    """One tool's rounds of one task: median of the round times, min and max over rounds."""
    if not lines:
        return None
    times = sorted(l["median"] for l in lines)
    row = dict(lines[0])
    row.update(median=times[len(times) // 2], min=min(l["min"] for l in lines), max=max(l["max"] for l in lines),
               rounds=len(lines), peak_memory_gb=max(l["peak_memory_gb"] for l in lines),
               mismatch=any(l.get("mismatch") for l in lines),
               max_rel_difference=max(l.get("max_rel_difference", 0.0) for l in lines))
    row["lines"] = lines
    return row


def seconds(row):
    if row is None:
        return "–"
    if row.get("mismatch"):
        return f"differs ({row['max_rel_difference']:.1e}): not timed"
    return f"{row['median']:.3g} ({row['min']:.3g}–{row['max']:.3g})"


def ratio(peer, ours):
    """Median over rounds of the peer's time / ours in the same round (rounds interleave the tools)."""
    if peer is None or peer.get("mismatch") or ours is None:
        return "–"
    pairs = sorted(p["median"] / o["median"] for p, o in zip(peer["lines"], ours["lines"]))
    return f"{pairs[len(pairs) // 2]:.1f}×"


def adjacent_rate(line):
    """The sustained GEMM rate measured right before and after one long task's timing (bench_compare), or None."""
    rates = [line[k] for k in ("gemm_sustained_before", "gemm_sustained_after") if k in line]
    return sum(rates) / len(rates) if rates else None


def floor_fraction(ours, gemm):
    """The task's GEMM flops over its time, as a fraction of the run's GEMM rate and, per round, of the rate around it."""
    text = f"{ours['gemm_flops'] / ours['median'] / 1e9 / gemm:.0%} (whole task)"
    around = [(l["gemm_flops"] / l["median"] / 1e9 / adjacent_rate(l), adjacent_rate(l)) for l in ours["lines"] if adjacent_rate(l)]
    if around:
        around.sort()
        fraction, rate = around[len(around) // 2]
        text += f"; {fraction:.0%} of the sustained rate measured around it ({rate:.1f} GFLOP/s): time / floor {1 / fraction:.2f}×"
    return text


def describe(case, task, ours):
    net = {"mlp": "mlp:512-512, MNIST 3 vs 8", "vgg": "vgg:16, CIFAR automobile vs truck"}.get(case, case)
    if task == "epoch":
        return f"training epoch, {net} ({ours['images']} images, batch 32)"
    if task == "jacobian":
        return f"per-sample Jacobian, {net}, N = {ours['n']}"
    if task.startswith("gram:"):
        return f"NTK Gram, {net}, N = {ours['n']:,}"
    if task.startswith("epk:"):
        return f"EPK over one epoch ({ours['steps']} steps), {net}, {ours['n']} test inputs"
    return f"{task}, {net}"


def main():
    rows = load(sys.argv[1])
    threads = sys.argv[2] if len(sys.argv) > 2 else "?"
    steal = sys.argv[3] if len(sys.argv) > 3 else None
    gemm = next((r["gflops"] for r in rows if r["task"] == "gemm"), None)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"Machine: {cpu}, {threads} threads; measured Eigen float64 GEMM rate {gemm:.1f} GFLOP/s (one 1024² product per thread).")
    print("Times in seconds: median (min–max) over interleaved rounds; ratio: median over rounds of peer time / kernelscope time")
    print("in the same round (above 1: kernelscope is faster).")
    if steal is not None:
        print(f"CPU time stolen by the hypervisor during the run: {steal}% (times vary with it; compare within a row).")
    print("Every peer result was checked against kernelscope's first (max |difference| / max |value| ≤ 1e-10).\n")
    print("| task | kernelscope | LibTorch | ratio | PyTorch / functorch | ratio | GEMM rate fraction | peak memory GB (ks / LibTorch / PyTorch) |")
    print("|---|---|---|---|---|---|---|---|")
    order = []
    for r in rows:
        key = (r["case"], r["task"])
        if r["task"] not in ("gemm", "part", "optimizer", "rule-epk") and not r["task"].startswith(("epk:", "old-epk:", "pieces:")) and key not in order:
            order.append(key)
    for case, task in order:
        def find(peer):
            return merged([r for r in rows if r["case"] == case and r["task"] == task and r["peer"] == peer])

        ours = find("kernelscope")
        if ours is None:
            continue
        libtorch = find("libtorch")
        python = find("functorch") or find("pytorch")
        fraction = "–"
        if gemm and ours.get("gemm_flops"):
            fraction = floor_fraction(ours, gemm)
        memory = " / ".join(f"{r['peak_memory_gb']:.2f}" if r else "–" for r in (ours, libtorch, python))
        print(f"| {describe(case, task, ours)} | {seconds(ours)} | {seconds(libtorch)} | {ratio(libtorch, ours)} | {seconds(python)} | "
              f"{ratio(python, ours)} | {fraction} | {memory} |")
    parts = [r for r in rows if r["task"] == "part"]
    if parts and gemm:
        print("\nGEMM-bound parts of kernelscope, alone, at the shapes the tasks above use:\n")
        print("| part | GFLOP per call | median s | GFLOP/s | fraction of the GEMM rate |")
        print("|---|---|---|---|---|")
        for r in parts:
            rate = r["gemm_flops"] / r["median"] / 1e9
            print(f"| {r['part']} | {r['gemm_flops'] / 1e9:.3f} | {r['median']:.4f} | {rate:.1f} | {rate / gemm:.0%} |")


if __name__ == "__main__":
    main()
