// `kernelscope train` end to end through the real program: a run directory that loads back and replays, and bad input.
// It runs the built binary, so it tests option parsing and exit codes as a user meets them.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "nn/run.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

using test::CommandResult;
using test::run_cli;

TEST_CASE("kernelscope train writes a complete run directory that loads back and replays bit-exactly") {
  const fs::path out = fs::temp_directory_path() / ("kernelscope-run-" + std::to_string(getpid()));
  fs::remove_all(out);
  const CommandResult result = run_cli("train --data toy:spirals --arch mlp:16-16 --epochs 2 --batch 50 --lr 0.2 --checkpoint-every 5 --out " + out.string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  for (const char* file : {"config.json", "metrics.json", "train_indices.npy", "test_indices.npy", "theta0/1.weight.npy",
                           "thetaT/5.bias.npy", "trajectory/batch_positions.npy", "checkpoints/step_00000005/3.weight.npy"})
    CHECK(fs::exists(out / file));
  const Run run = load_run(out);
  CHECK(run.steps.size() == 16);
  CHECK(run.checkpoint_steps == std::vector<int64_t>{5, 10, 15});
  const std::vector<Tensor> replayed = run.parameters_at(static_cast<int64_t>(run.steps.size()) - 1);
  // Replay the last step by hand from a checkpoint and compare with θ_T.
  const Parameters last = replay(*run.model, replayed, run.task.train, run.steps, 15, 16, 0.0, run.config.training.loss);
  for (size_t i = 0; i < run.thetaT.size(); ++i) CHECK(test::bit_equal(last[i], run.thetaT[i]));

  const CommandResult again = run_cli("train --data toy:spirals --arch mlp:4 --epochs 1 --out " + out.string());
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("already exists") != std::string::npos);
  fs::remove_all(out);
}

TEST_CASE("bad input gives a clear error and a non-zero exit, and leaves no run directory") {
  const fs::path out = fs::temp_directory_path() / ("kernelscope-bad-" + std::to_string(getpid()));
  CommandResult r = run_cli("train --data mnist:/nonexistent/dir --out " + out.string());
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("/nonexistent/dir: no such directory") != std::string::npos);
  r = run_cli("train --data toy:moons --arch mlp:8-y --out " + out.string());
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("'y' is not a width") != std::string::npos);
  r = run_cli("train --data toy:moons --arch mlp:8 --lr 1e300 --epochs 3 --out " + out.string());
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("diverged") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  r = run_cli("train --help");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("--checkpoint-every") != std::string::npos);
  CHECK(fs::is_empty(out.parent_path()) == false);
  for (const auto& entry : fs::directory_iterator(out.parent_path()))
    CHECK(entry.path().filename().string().find("kernelscope-bad-" + std::to_string(getpid()) + ".partial") == std::string::npos);
}

}  // namespace ks

namespace ks {

TEST_CASE("train --optimizer records the rule in config.json, bad hyper-parameters are refused, and the EPK of the run is exact") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-optimizer-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string run = (dir / "run").string();
  test::CommandResult result = test::run_cli("train --quiet --data toy:moons --arch mlp:8 --epochs 2 --batch 50 --lr 0.01 --optimizer adam --beta2 0.99 "
                                              "--checkpoint-every 3 --out " + run);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  nlohmann::json config;
  std::ifstream(fs::path(run) / "config.json") >> config;
  CHECK(config["training"]["optimizer"]["kind"] == "adam");
  CHECK(config["training"]["optimizer"]["beta2"] == 0.99);
  {
    const Run loaded = load_run(run);
    CHECK(loaded.config.training.optimizer.kind == OptimizerKind::adam);
    // Checkpoints hold Adam's moments under torch.optim's names; θ_s from the checkpoint equals θ_s replayed from θ_0.
    const fs::path checkpoint = fs::path(run) / "checkpoints/step_00000003";
    CHECK(fs::exists(checkpoint / "exp_avg/1.weight.npy"));
    CHECK(fs::exists(checkpoint / "exp_avg_sq/3.bias.npy"));
    const TrainOptions& t = loaded.config.training;
    const int64_t s = static_cast<int64_t>(loaded.steps.size()) - 1;
    REQUIRE(s > 3);
    const Parameters from_start = replay(*loaded.model, loaded.theta0, loaded.task.train, loaded.steps, 0, s, t.weight_decay, t.loss, {}, t.optimizer);
    const Parameters from_checkpoint = loaded.parameters_at(s);
    for (size_t k = 0; k < from_start.size(); ++k) CHECK(test::bit_equal(from_start[k], from_checkpoint[k]));
    // A damaged state record is named, not silently replaced by an empty state.
    for (int64_t c : loaded.checkpoint_steps)
      std::ofstream(fs::path(run) / checkpoint_name(c) / "optimizer.json") << R"({"optimizer": "adam", "updates": 2, "buffers": []})";
    CHECK_THROWS_WITH_AS(loaded.parameters_at(s), doctest::Contains("/optimizer.json: updates = 2 at step"), std::runtime_error);
  }
  // The EPK of an Adam run: the same table and files as for SGD, exact.
  result = test::run_cli("epk --run " + run + " --test-size 2 --out " + (dir / "epk").string());
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  nlohmann::json summary;
  std::ifstream(dir / "epk" / "summary.json") >> summary;
  CHECK(summary["optimizer"] == "adam");
  CHECK(summary["kernels"]["exact"]["max_rel_error"].get<double>() <= 1e-12);
  CHECK(fs::exists(dir / "epk" / "attributions.npy"));
  CHECK(result.output.find("(not per step)") != std::string::npos);
  result = test::run_cli("train --quiet --data toy:moons --arch mlp:8 --optimizer momentum --momentum 1.5 --out " + (dir / "bad").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("momentum = 1.5") != std::string::npos);
  result = test::run_cli("train --quiet --data toy:moons --arch mlp:8 --optimizer lbfgs --out " + (dir / "bad").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("'lbfgs'") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("train --arch mlp --num-parameters --loss-target records the sized spec, the target and the request") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-sized-" + std::to_string(getpid()));
  fs::remove_all(dir);
  test::CommandResult result = test::run_cli("train --quiet --data toy:moons --arch mlp --num-parameters 1000 --loss-target 0.2 --max-epochs 12 --out " +
                                              (dir / "run").string());
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  nlohmann::json config;
  std::ifstream(dir / "run" / "config.json") >> config;
  CHECK(config["model"]["spec"] == long_sized_spec("mlp", {2}, 1000));
  CHECK(config["model"]["sized_for_parameters"] == 1000);
  CHECK(config["training"]["loss_target"] == 0.2);
  CHECK(config["training"]["max_epochs"] == 12);
  const Run loaded = load_run(dir / "run");  // 10 epochs, then the loss; at most 12 in all
  CHECK((loaded.config.training.loss_target == 0.2 && loaded.config.training.max_epochs == 12));
  nlohmann::json metrics;
  std::ifstream(dir / "run" / "metrics.json") >> metrics;
  CHECK((metrics["epochs"].size() == 10 || metrics["epochs"].size() == 12));
  CHECK(result.output.find("trained " + long_sized_spec("mlp", {2}, 1000)) != std::string::npos);
  result = test::run_cli("train --quiet --data toy:moons --arch conv --num-parameters 1000 --out " + (dir / "bad").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("not 'conv'") != std::string::npos);
  CHECK(!fs::exists(dir / "bad"));
  fs::remove_all(dir);
}

}  // namespace ks

namespace ks {

TEST_CASE("train --keras-augment records Long's augmentation and replays it; with --augment, or a damaged record, it is refused") {
  namespace fs = std::filesystem;
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-keras-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string data = "--data mnist:" + (root / "mnist").string() + " --classes 3,8 --arch conv:2,M --epochs 1 --batch 8 --train-size 16 --test-size 4 ";
  test::CommandResult result = test::run_cli("train --quiet " + data + "--keras-augment --out " + (dir / "run").string());
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  nlohmann::json config;
  std::ifstream(dir / "run" / "config.json") >> config;
  CHECK(config["training"]["augment"] == true);
  CHECK(config["training"]["augmentation"] == "keras");
  const Run run = load_run(dir / "run");
  CHECK(run.config.training.keras_augment);
  const Parameters replayed = run.parameters_at(static_cast<int64_t>(run.steps.size()));
  for (size_t k = 0; k < replayed.size(); ++k) CHECK(test::bit_equal(replayed[k], run.thetaT[k]));
  result = test::run_cli("train --quiet " + data + "--keras-augment --augment --out " + (dir / "both").string());
  CHECK(result.exit_code != 0);
  CHECK(!fs::exists(dir / "both"));
  config["training"]["augmentation"] = "sideways";
  std::ofstream(dir / "run" / "config.json") << config.dump();
  CHECK_THROWS_WITH(load_run(dir / "run"), doctest::Contains("training.augmentation is 'sideways'"));
  fs::remove_all(dir);
}

}  // namespace ks
