// `kernelscope kernel` end to end: the written .npy equals the library's Gram at the chosen parameters; bad runs and steps are clear errors.
// Kernel correctness itself is tested in tests/kernels.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "datasets/npy.h"
#include "kernels/ntk.h"
#include "nn/run.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

static int kernelscope(const std::string& arguments, std::string* output = nullptr) {
  const test::CommandResult result = test::run_cli(arguments);
  if (output) *output = result.output;
  return result.exit_code;
}

TEST_CASE("kernelscope kernel writes the Gram the library computes, at θ_0, θ_T and a replayed step") {
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-kernel-" + std::to_string(getpid()));
  fs::remove_all(dir);
  REQUIRE(kernelscope("train --quiet --data toy:moons --arch mlp:8-8 --epochs 2 --batch 40 --lr 0.3 --checkpoint-every 7 --out " + (dir / "run").string()) == 0);
  const Run run = load_run(dir / "run");
  std::vector<int64_t> first;
  for (int64_t n = 0; n < 30; ++n) first.push_back(n);
  const Tensor train = gather_inputs(run.task.train, first), test = gather_inputs(run.task.test, first);
  struct Case {
    std::string kind;
    std::vector<Tensor> parameters;
  };
  for (const Case& c : {Case{"ntk-init", run.theta0}, Case{"after", run.thetaT}, Case{"step:9", run.parameters_at(9)}}) {
    const fs::path out = dir / (c.kind.substr(0, 4) + ".npy");
    REQUIRE(kernelscope("kernel --run " + (dir / "run").string() + " --kind " + c.kind + " --rows test --cols train --limit 30 --out " + out.string()) == 0);
    INFO(c.kind);
    CHECK(test::bit_equal(read_npy(out), ntk_gram(*run.model, c.parameters, test, &train)));
  }
  REQUIRE(kernelscope("kernel --run " + (dir / "run").string() + " --kind conjugate-after --limit 30 --out " + (dir / "ck.npy").string()) == 0);
  CHECK(test::bit_equal(read_npy(dir / "ck.npy"), conjugate_kernel(*run.model, run.thetaT, train, nullptr)));
  // The NTK at θ_T differs from θ_0's: the comparison above can fail.
  CHECK_FALSE(test::bit_equal(read_npy(dir / "ntk-.npy"), read_npy(dir / "afte.npy")));

  // A memory budget too small for one panel re-traces every column group: the same bits as the default budget.
  const std::string jacobian = "kernel --run " + (dir / "run").string() + " --kind after --method jacobian --limit 30 ";
  REQUIRE(kernelscope(jacobian + "--out " + (dir / "roomy.npy").string()) == 0);
  REQUIRE(kernelscope(jacobian + "--memory-budget 0.000000001 --out " + (dir / "tight.npy").string()) == 0);
  CHECK(test::bit_equal(read_npy(dir / "roomy.npy"), read_npy(dir / "tight.npy")));

  std::string output;
  for (const char* budget : {"0", "-1", "nan", "1e12"}) {
    INFO(budget);
    CHECK(kernelscope(jacobian + "--memory-budget " + budget + " --out " + (dir / "x.npy").string(), &output) != 0);
    CHECK(output.find("--memory-budget") != std::string::npos);
  }
  CHECK(output.find("more than this machine's") != std::string::npos);
  CHECK(kernelscope("kernel --run " + (dir / "missing").string() + " --out " + (dir / "x.npy").string(), &output) != 0);
  CHECK(output.find("no such run directory") != std::string::npos);
  CHECK(kernelscope("kernel --run " + (dir / "run").string() + " --kind step:999 --out " + (dir / "x.npy").string(), &output) != 0);
  CHECK(output.find("this run has steps 0..") != std::string::npos);
  fs::remove(dir / "run" / "metrics.json");
  CHECK(kernelscope("kernel --run " + (dir / "run").string() + " --out " + (dir / "x.npy").string(), &output) != 0);
  CHECK(output.find("incomplete run directory, metrics.json is missing") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "x.npy"));
  fs::remove_all(dir);
}

}  // namespace ks
