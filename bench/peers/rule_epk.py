# The EPK of one run (any update rule) by `kernelscope epk`, timed, with the process's peak resident memory: one JSON line
# for bench/run's update-rule table. Measures; compares with no peer (no peer computes an exact path kernel).
#
#   /usr/bin/python3 bench/peers/rule_epk.py KERNELSCOPE CASE RUN M OUT
import json
import resource
import subprocess
import sys
import time


def main():
    if len(sys.argv) != 6:
        raise SystemExit("usage: rule_epk.py KERNELSCOPE CASE RUN M OUT")
    binary, case, run, inputs, out = sys.argv[1:]
    started = time.time()
    subprocess.run([binary, "epk", "--run", run, "--test-size", inputs, "--overwrite", "--out", out], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.time() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # KB on Linux
    summary = json.load(open(out + "/summary.json"))
    config = json.load(open(run + "/config.json"))
    machines = {name: {"max_rel_error": k["max_rel_error"], "decisions_agree": k["decisions_agree"]} for name, k in summary["kernels"].items()}
    print(json.dumps({"case": case, "task": "rule-epk", "spec": summary["model"], "optimizer": summary["optimizer"],
                      "weight_decay": summary["weight_decay"], "steps": summary["steps"], "test_inputs": summary["test_inputs"],
                      "parameters": summary["parameters"], "train": summary["training_points"], "seconds": seconds,
                      "training_seconds": summary["training_seconds"], "peak_mb": peak_mb, "nodes": summary["quadrature"]["nodes"],
                      "max_segment_residual": summary["quadrature"]["max_segment_residual"], "machines": machines,
                      "schedule": "cosine" if config["training"].get("lr_cosine") else "step"}))


if __name__ == "__main__":
    main()
