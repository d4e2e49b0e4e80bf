// scripts/get-data's offline part: checksum verification and layout, on the shared real MNIST test files.
// The download itself needs a network and is not tested here.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>

#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

static int run_script(const std::string& arguments) {
  const std::string command = "bash " + std::string(KERNELSCOPE_SOURCE_DIR) + "/scripts/get-data " + arguments + " > /dev/null 2>&1";
  return WEXITSTATUS(std::system(command.c_str()));
}

TEST_CASE("get-data --verify accepts the canonical MNIST test files and rejects a corrupted copy") {
  const auto root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets is absent");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-getdata-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "mnist");
  for (const char* name : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    fs::copy_file(root / "mnist" / name, dir / "mnist" / name);
  CHECK(run_script("--verify " + dir.string()) == 0);
  std::ofstream(dir / "mnist" / "t10k-labels-idx1-ubyte.gz", std::ios::app) << "x";
  CHECK(run_script("--verify " + dir.string()) != 0);
  CHECK(run_script("--verify " + (dir / "empty").string()) != 0);
  CHECK(run_script("") == 2);
  fs::remove_all(dir);
}

}  // namespace ks
