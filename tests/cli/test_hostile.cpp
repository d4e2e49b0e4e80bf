// Hostile and careless input, as a user would give it: damaged run directories, outputs at dangerous places, concurrent
// writers, markup in paths. Every case must end in a clear error naming the file or value and a non-zero exit, never a
// crash, and must leave what the user had untouched.
#include <doctest/doctest.h>

#include <fstream>
#include <functional>

#include "datasets/npy.h"
#include "render/picture.h"
#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

namespace {

// A small toy run: 40 training points, 4 batches.
fs::path toy_run(const fs::path& dir, const std::string& name = "run") {
  const test::CommandResult r = test::run_cli("train --data toy:moons --arch mlp:4 --epochs 1 --batch 10 --train-size 40 --test-size 8 --quiet --out " + (dir / name).string());
  REQUIRE(r.exit_code == 0);
  return dir / name;
}

fs::path copy_run(const fs::path& run, const fs::path& to) {
  fs::copy(run, to, fs::copy_options::recursive);
  return to;
}

void check_refused(const std::string& arguments, const std::string& names) {
  const test::CommandResult r = test::run_cli(arguments);
  INFO(arguments << "\n" << r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.exit_code < 128);  // an error exit, not a signal (a crash exits with 128 + the signal)
  CHECK(r.output.find(names) != std::string::npos);
}

}  // namespace

TEST_CASE("a damaged trajectory is named with the entry and its value, never read out of bounds") {
  const test::ScratchDirectory s("hostile");
  const fs::path run = toy_run(s.dir);
  const fs::path traj = "trajectory";
  auto damage = [&](const std::string& name, const std::string& file, const std::function<void(std::vector<int64_t>&)>& change) {
    const fs::path copy = copy_run(run, s.dir / name);
    std::vector<int64_t> values = read_npy_int64(copy / traj / file);
    change(values);
    write_npy(copy / traj / file, values);
    return copy.string();
  };
  check_refused("epk --run " + damage("far", "batch_positions.npy", [](auto& v) { v[3] = 100000; }) + " --out " + (s.dir / "e1").string(), "batch_positions.npy: entry 3 is 100000");
  check_refused("epk --run " + damage("edge", "batch_positions.npy", [](auto& v) { v[0] = 40; }) + " --out " + (s.dir / "e2").string(), "outside the 40 training points");
  check_refused("epk --run " + damage("negative", "batch_positions.npy", [](auto& v) { v[5] = -1; }) + " --out " + (s.dir / "e3").string(), "entry 5 is -1");
  check_refused("report --run " + damage("start", "batch_offsets.npy", [](auto& v) { v[0] = 2; }) + " --out " + (s.dir / "r1").string(), "first batch starts at 0");
  check_refused("epk --run " + damage("empty", "batch_offsets.npy", [](auto& v) { v[2] = v[1]; }) + " --out " + (s.dir / "e4").string(), "an empty or reversed step");
  for (const char* out : {"e1", "e2", "e3", "e4", "r1"}) CHECK_FALSE(fs::exists(s.dir / out));
}

TEST_CASE("damaged run files are named: metrics, config, checkpoints, a directory for a file, absurd .npy headers") {
  const test::ScratchDirectory s("hostile");
  const fs::path run = toy_run(s.dir);
  const fs::path metrics = copy_run(run, s.dir / "metrics");
  std::ofstream(metrics / "metrics.json") << R"({"epochs": []})";
  check_refused("report --run " + metrics.string() + " --out " + (s.dir / "r").string(), "metrics.json");
  const fs::path config = copy_run(run, s.dir / "config");
  std::ofstream(config / "config.json") << R"({"data": {"source": 3}})";
  check_refused("epk --run " + config.string() + " --out " + (s.dir / "e").string(), "config.json");
  const fs::path checkpoint = copy_run(run, s.dir / "checkpoint");
  fs::create_directories(checkpoint / "checkpoints" / "step_xyz");
  check_refused("epk --run " + checkpoint.string() + " --out " + (s.dir / "e").string(), "step_xyz");
  const fs::path directory = copy_run(run, s.dir / "directory");
  fs::remove(directory / "train_indices.npy");
  fs::create_directories(directory / "train_indices.npy");
  check_refused("epk --run " + directory.string() + " --out " + (s.dir / "e").string(), "train_indices.npy: not a file");
  // .npy headers: a negative extent, an extent beyond any file, and a 12-byte header announcing gigabytes.
  const fs::path header = copy_run(run, s.dir / "header");
  auto write_header = [&](const std::string& text) {
    std::ofstream out(header / "thetaT" / "1.weight.npy", std::ios::binary | std::ios::trunc);
    const std::string padded = text + std::string(118 - text.size() - 1, ' ') + "\n";
    out << "\x93NUMPY" << '\x01' << '\x00' << static_cast<char>(padded.size() & 0xff) << static_cast<char>(padded.size() >> 8) << padded;
  };
  write_header("{'descr': '<f8', 'fortran_order': False, 'shape': (-4, 2), }");
  check_refused("epk --run " + header.string() + " --out " + (s.dir / "e").string(), "'-4' is not a non-negative integer");
  write_header("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999, 99999999999), }");
  check_refused("epk --run " + header.string() + " --out " + (s.dir / "e").string(), "1.weight.npy");
  write_header("{'descr': '<f8', 'fortran_order': False, 'shape': (400000000,), }");
  check_refused("epk --run " + header.string() + " --out " + (s.dir / "e").string(), "needs 3200000000 bytes of data");
  CHECK_FALSE(fs::exists(s.dir / "e"));
}

TEST_CASE("--out never empties the current folder or replaces a foreign one; a kernel file is not replaced unasked") {
  const test::ScratchDirectory s("hostile");
  fs::create_directories(s.dir / "home");
  std::ofstream(s.dir / "home" / "precious.txt") << "mine";
  const std::string train = "train --data toy:moons --arch mlp:4 --epochs 1 --quiet ";
  const test::CommandResult here = test::run_cli(train + "--overwrite --out " + fs::current_path().string());
  CHECK(here.exit_code == 1);
  CHECK(here.output.find("current directory") != std::string::npos);
  const test::CommandResult foreign = test::run_cli(train + "--overwrite --out " + (s.dir / "home").string());
  CHECK(foreign.exit_code == 1);
  CHECK(foreign.output.find("not an earlier kernelscope run output") != std::string::npos);
  std::stringstream kept;
  kept << std::ifstream(s.dir / "home" / "precious.txt").rdbuf();
  CHECK(kept.str() == "mine");

  const fs::path run = toy_run(s.dir);
  std::ofstream(s.dir / "k.npy") << "not a kernel";
  check_refused("kernel --run " + run.string() + " --kind after --out " + (s.dir / "k.npy").string(), "already exists");
  check_refused("kernel --run " + run.string() + " --kind after --overwrite --out " + (s.dir / "k.npy").string(), "not a float64 .npy");
  check_refused("kernel --run " + run.string() + " --kind after --out /proc/kernelscope/k.npy", "/proc/kernelscope");
  std::stringstream still;
  still << std::ifstream(s.dir / "k.npy").rdbuf();
  CHECK(still.str() == "not a kernel");
  REQUIRE(test::run_cli("kernel --run " + run.string() + " --kind after --out " + (s.dir / "k2.npy").string()).exit_code == 0);
  CHECK(test::run_cli("kernel --run " + run.string() + " --kind ntk-init --overwrite --out " + (s.dir / "k2.npy").string()).exit_code == 0);
  for (const auto& entry : fs::directory_iterator(s.dir)) CHECK(entry.path().filename().string().find(".kernelscope-") == std::string::npos);
}

TEST_CASE("two concurrent trains to one --out: exactly one writes the run, the other says why") {
  const test::ScratchDirectory s("hostile");
  const std::string train = std::string(KERNELSCOPE_CLI_PATH) + " train --data toy:spirals --arch mlp:64-64 --epochs 30 --batch 10 --quiet --out " + (s.dir / "run").string();
  const std::string both = "(" + train + " > " + (s.dir / "a.log").string() + " 2>&1 & " + train + " > " + (s.dir / "b.log").string() + " 2>&1 & wait)";
  REQUIRE(std::system(both.c_str()) == 0);
  std::stringstream a, b;
  a << std::ifstream(s.dir / "a.log").rdbuf();
  b << std::ifstream(s.dir / "b.log").rdbuf();
  const bool a_wrote = a.str().find("run written") != std::string::npos, b_wrote = b.str().find("run written") != std::string::npos;
  INFO(a.str() << "\n" << b.str());
  CHECK(a_wrote != b_wrote);
  // The loser says why: the other is still writing (the runs overlap), or, when a loaded machine ran them one after the
  // other, the run now exists. The lock's own message is tested deterministically in tests/datasets/test_output.cpp.
  const std::string logs = a.str() + b.str();
  CHECK((logs.find("another kernelscope") != std::string::npos || logs.find("already exists") != std::string::npos));
  CHECK(fs::exists(s.dir / "run" / "thetaT"));
}

TEST_CASE("markup in a path is escaped in the report") {
  const test::ScratchDirectory s("hostile");
  const fs::path odd = s.dir / "<img src=x onerror=alert(1)>";
  const test::CommandResult r = test::run_cli("train --data toy:moons --arch mlp:4 --epochs 1 --train-size 40 --test-size 4 --quiet --out '" + odd.string() + "'");
  REQUIRE(r.exit_code == 0);
  REQUIRE(test::run_cli("report --run '" + odd.string() + "' --test-size 2 --out " + (s.dir / "report").string()).exit_code == 0);
  std::stringstream page;
  page << std::ifstream(s.dir / "report" / "report.html").rdbuf();
  CHECK(page.str().find("<img src=x") == std::string::npos);
  CHECK(page.str().find("&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
}

}  // namespace ks

namespace ks {

TEST_CASE("nonsense values are refused with the option and the value named, not clamped or accepted") {
  const std::string train = "train --data toy:moons --arch mlp:4 --epochs 1 --quiet --out /tmp/kernelscope-never-written ";
  check_refused(train + "--train-size -5", "--train-size");
  check_refused(train + "--test-size -1", "must be a whole number");
  check_refused(train + "--checkpoint-every -2", "--checkpoint-every");
  check_refused(train + "--seed 99999999999999999999999", "--seed");
  check_refused(train + "--lr-gamma -1", "must be a finite number above 0");
  check_refused(train + "--batch 0", "must be at least 1, got 0");
  check_refused(train + "--lr nan", "--lr");
  check_refused("train --data toy:moons --arch mlp: --epochs 1 --quiet --out /tmp/kernelscope-never-written", "names no hidden width");
  check_refused("train --data toy:moons --arch mlp:16- --epochs 1 --quiet --out /tmp/kernelscope-never-written", "empty layer");
  check_refused("train --data toy:moons --arch conv:4,,M --epochs 1 --quiet --out /tmp/kernelscope-never-written", "empty layer");
  check_refused(train + "--lr 1e30", "training diverged");
  check_refused(train + "--loss cross-entropy", "cross-entropy needs one output per class");
  CHECK_FALSE(fs::exists("/tmp/kernelscope-never-written"));
  const test::CommandResult unknown = test::run_cli("tran --data toy:moons");
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.output.find("unknown command 'tran'") != std::string::npos);
  check_refused("demo --data mnist:/nonexistent-kernelscope-data --out /tmp/kernelscope-never-written", "no such folder /nonexistent-kernelscope-data");
}

TEST_CASE("kernels: a step written as 1e3, a NaN C, a NaN kernel value are refused") {
  const test::ScratchDirectory s("hostile");
  const fs::path run = toy_run(s.dir);
  check_refused("kernel --run " + run.string() + " --kind step:1e3 --out " + (s.dir / "k.npy").string(), "--kind step:1e3");
  REQUIRE(test::run_cli("kernel --run " + run.string() + " --kind after --out " + (s.dir / "train.npy").string()).exit_code == 0);
  REQUIRE(test::run_cli("kernel --run " + run.string() + " --kind after --rows test --out " + (s.dir / "test.npy").string()).exit_code == 0);
  check_refused("svm --run " + run.string() + " --train-kernel " + (s.dir / "train.npy").string() + " --c nan", "--c");
  Tensor test = read_npy(s.dir / "test.npy");
  test[3] = std::nan("");
  write_npy(s.dir / "nan.npy", test);
  check_refused("svm --run " + run.string() + " --train-kernel " + (s.dir / "train.npy").string() + " --test-kernel " + (s.dir / "nan.npy").string(),
                "nan.npy: svm_decision: the test kernel has a non-finite value at (0, 3)");
}

TEST_CASE("a gzip file whose end is cut off is refused; data paths are recorded absolute") {
  const test::ScratchDirectory s("hostile");
  const fs::path root = test::shared_datasets();
  if (root.empty()) return;
  fs::create_directories(s.dir / "mnist");
  for (const auto& entry : fs::directory_iterator(root / "mnist")) fs::copy(entry.path(), s.dir / "mnist" / entry.path().filename());
  const fs::path labels = s.dir / "mnist" / "t10k-labels-idx1-ubyte.gz";
  fs::resize_file(labels, fs::file_size(labels) - 4);  // the length field of the gzip trailer is gone
  check_refused("train --data mnist:" + (s.dir / "mnist").string() + " --classes 3,8 --arch mlp:4 --epochs 1 --train-size 20 --test-size 4 --quiet --out " +
                    (s.dir / "run").string(),
                "t10k-labels-idx1-ubyte.gz: corrupt or truncated gzip data");
  const fs::path relative = fs::relative(root / "mnist" / "train10k-images-idx3-ubyte.gz");
  REQUIRE(test::run_cli("train --data mnist:" + (root / "mnist").string() + " --train-images " + relative.string() +
                        " --classes 3,8 --arch mlp:4 --epochs 1 --train-size 20 --test-size 4 --quiet --out " + (s.dir / "abs").string())
              .exit_code == 0);
  std::stringstream config;
  config << std::ifstream(s.dir / "abs" / "config.json").rdbuf();
  CHECK(config.str().find("\"train_images\": \"/") != std::string::npos);
}

}  // namespace ks

namespace ks {

TEST_CASE("train and test images of different sizes are refused before training, naming both") {
  const test::ScratchDirectory s("sizes");
  for (const auto& [split, size] : std::vector<std::pair<std::string, int64_t>>{{"train", 8}, {"test", 6}})
    for (const char* label : {"a", "b"}) {
      fs::create_directories(s.dir / split / label);
      for (int n = 0; n < 3; ++n) write_png(s.dir / split / label / (std::to_string(n) + ".png"), Picture(size, size, static_cast<uint8_t>(40 * n)));
    }
  check_refused("train --data folder:" + s.dir.string() + " --arch mlp:4 --epochs 1 --quiet --out " + (s.dir / "run").string(), "but test samples are");
  CHECK_FALSE(fs::exists(s.dir / "run"));
  check_refused("train --data toy:moons --train-images /tmp --arch mlp:4 --epochs 1 --quiet --out " + (s.dir / "run").string(), "they apply to mnist:");
}

}  // namespace ks
