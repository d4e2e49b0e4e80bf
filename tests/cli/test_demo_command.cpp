// `kernelscope demo`, the README's first command: it runs to the end, its exact-path-kernel rows are at rounding level,
// and it writes its report.
#include <doctest/doctest.h>

#include "tests/helpers.h"

namespace ks {

TEST_CASE("kernelscope demo shows the exact path kernel reproducing both networks") {
  const std::filesystem::path root = test::shared_datasets();
  const bool fashion = std::filesystem::exists("/usr/share/datasets/fashion-mnist");
  if (!fashion && root.empty()) {
    MESSAGE("skipped: neither Debian's Fashion-MNIST nor ../shared/datasets is present");
    return;
  }
  const std::filesystem::path out = std::filesystem::temp_directory_path() / ("kernelscope-demo-" + std::to_string(getpid()));
  std::filesystem::remove_all(out);
  const std::string arguments = "demo --out " + out.string() + (fashion ? "" : " --data mnist:" + (root / "mnist").string() + " --classes 3,8");
  test::CommandResult result = test::run_cli(arguments);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("200 of 200") != std::string::npos);  // the toy set's EPK row
  CHECK(result.output.find("40 of 40") != std::string::npos);    // the images' EPK row
  CHECK(result.output.find("NTK after training") != std::string::npos);
  // The exact rows' errors are at rounding level: every "e-1x" exponent of the exact rows is at least 12.
  size_t at = 0;
  int exact_rows = 0;
  while ((at = result.output.find("exact path kernel (Bell", at)) != std::string::npos) {
    const std::string line = result.output.substr(at, result.output.find('\n', at) - at);
    double absolute = 1, relative = 1;
    CHECK(std::sscanf(line.c_str() + line.find(')') + 1, "%lf %lf", &absolute, &relative) == 2);
    CHECK(absolute < 1e-12);
    CHECK(relative < 1e-12);
    ++exact_rows;
    ++at;
  }
  CHECK(exact_rows == 2);

  // The report is written, names both parts, and shows identical decision regions; running again replaces it.
  std::stringstream html;
  html << std::ifstream(out / "report.html").rdbuf();
  CHECK(html.str().find("Part 1: two moons") != std::string::npos);
  CHECK(html.str().find("differ on 0 of") != std::string::npos);
  CHECK(html.str().find("NTK after training") != std::string::npos);
  CHECK(std::filesystem::exists(out / "runs" / "images" / "config.json"));
  CHECK(result.output.find((out / "report.html").string()) != std::string::npos);
  result = test::run_cli(arguments);
  CHECK(result.exit_code == 0);
  // It never replaces a directory that is not its own.
  const std::filesystem::path other = out / "runs";
  result = test::run_cli("demo --out " + other.string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("not an earlier demo") != std::string::npos);
  std::filesystem::remove_all(out);
}

}  // namespace ks
