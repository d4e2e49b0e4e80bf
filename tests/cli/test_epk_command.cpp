// `kernelscope epk` end to end: a toy run's written outputs reproduce the network, summary.json has what the issue names,
// attributions add up, and bad runs are clear errors. The EPK mathematics itself is tested in tests/kernels/test_epk.cpp.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "datasets/npy.h"
#include "nn/run.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

TEST_CASE("kernelscope epk writes a verified EPK machine, its attributions and a summary per kernel") {
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-epk-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string run = (dir / "run").string(), out = (dir / "epk").string();
  test::CommandResult result = test::run_cli("train --quiet --data toy:moons --arch mlp:8-8 --epochs 2 --batch 50 --lr 0.3 --weight-decay 0.01 --test-size 40 --out " + run);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  result = test::run_cli("epk --run " + run + " --test-size 12 --top-k 3 --out " + out);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  for (const char* row : {"exact", "ntk-init", "after", "domingos", "quadrature:"}) CHECK(result.output.find(row) != std::string::npos);

  nlohmann::json summary;
  std::ifstream(fs::path(out) / "summary.json") >> summary;
  const int64_t M = 12, N = summary["training_points"].get<int64_t>();
  CHECK(summary["test_inputs"] == M);
  CHECK(summary["replay_matches_run"] == true);
  for (const char* kernel : {"exact", "ntk-init", "after", "domingos"}) {
    INFO(kernel);
    REQUIRE(summary["kernels"].contains(kernel));
    for (const char* field : {"max_abs_error", "max_rel_error", "decisions_agree"}) CHECK(summary["kernels"][kernel].contains(field));
  }
  CHECK(summary["kernels"]["exact"]["decisions_agree"] == true);
  CHECK(summary["kernels"]["exact"]["max_abs_error"].get<double>() < 1e-13);
  // The approximate kernels are measurably worse on the same run: the exact row's figure is not a formatting artefact.
  CHECK(summary["kernels"]["ntk-init"]["max_abs_error"].get<double>() > 1e3 * summary["kernels"]["exact"]["max_abs_error"].get<double>() + 1e-12);

  // The written arrays agree with each other: outputs_exact is the network, attributions add up to the change in output
  // apart from the weight-decay column, and each top-k list is sorted and drawn from the attributions.
  const fs::path o(out);
  const Tensor final = read_npy(o / "network_final.npy"), initial = read_npy(o / "network_initial.npy");
  const Tensor exact = read_npy(o / "outputs_exact.npy"), decay = read_npy(o / "weight_decay_exact.npy");
  const Tensor attributions = read_npy(o / "attributions.npy"), kernel = read_npy(o / "epk_kernel.npy");
  const Tensor top = read_npy(o / "top_positive_values.npy");
  REQUIRE(final.shape() == Shape{M, 1});
  REQUIRE(attributions.shape() == Shape{M, N, 1});
  CHECK(kernel.shape() == Shape{M, N});
  CHECK(test::relative_error(exact, final) < 1e-12);
  double decay_size = 0.0;
  for (int64_t m = 0; m < M; ++m) {
    double total = initial[m] + decay[m];
    for (int64_t n = 0; n < N; ++n) total += attributions[m * N + n];
    CHECK(std::abs(total - final[m]) < 1e-12);
    decay_size = std::max(decay_size, std::abs(decay[m]));
    for (int64_t j = 0; j + 1 < 3; ++j) CHECK(top[m * 3 + j] >= top[m * 3 + j + 1]);
  }
  CHECK(decay_size > 1e-6);  // weight decay was on: its column is not empty

  // Bad input: a missing run and an existing output directory are refused with the path named; nothing is half-written.
  result = test::run_cli("epk --run " + (dir / "missing").string() + " --out " + (dir / "x").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("no such run directory") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "x"));
  result = test::run_cli("epk --run " + run + " --out " + out);
  CHECK(result.exit_code != 0);
  CHECK(result.output.find(out) != std::string::npos);
  result = test::run_cli("epk --run " + run + " --kernel bogus --out " + (dir / "y").string());
  CHECK(result.exit_code != 0);
  fs::remove_all(dir);
}

}  // namespace ks
