// `kernelscope report` end to end: a toy run's page has the training chart, the exactness table, heatmaps and identical
// decision regions; an MNIST study's page has attributions, transformations and the study; bad input is refused; the page
// renders in headless Chromium when it is installed.
#include <doctest/doctest.h>

#include <stb_image.h>

#include "tests/helpers.h"

namespace ks {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

int64_t occurrences(const std::string& text, const std::string& what) {
  int64_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

}  // namespace

TEST_CASE("kernelscope report on a toy run: exact table, charts, heatmaps and identical decision regions, self-contained") {
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-report-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string run = (dir / "run").string(), out = (dir / "report").string();
  test::CommandResult result = test::run_cli("train --quiet --data toy:moons --arch mlp:8-8 --epochs 2 --batch 50 --lr 0.3 --test-size 40 --out " + run);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  result = test::run_cli("report --run " + run + " --test-size 12 --out " + out);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output.find("report.html") != std::string::npos);
  const std::string html = read_text(fs::path(out) / "report.html");
  for (const char* section : {">Training<", ">The network is a kernel machine<", ">Kernels<", ">Decision regions<"}) CHECK(html.find(section) != std::string::npos);
  CHECK(occurrences(html, "<svg") == 3);                          // training curves, outputs scatter, error bars
  CHECK(occurrences(html, "src=\"data:image/png;base64,") == 7);  // three heatmaps, three colour bars, the regions
  CHECK(html.find("differ on 0 of 1600 grid points") != std::string::npos);
  CHECK(html.find("src=\"http") == std::string::npos);  // nothing fetched from elsewhere
  CHECK(html.find("href=") == std::string::npos);
  // The exact row of the table: errors at rounding level, all decisions agree.
  const size_t row = html.find("<tr><td>exact</td>");
  REQUIRE(row != std::string::npos);
  double absolute = 1, relative = 1;
  REQUIRE(std::sscanf(html.c_str() + row, "<tr><td>exact</td><td>%lf</td><td>%lf</td>", &absolute, &relative) == 2);
  CHECK(absolute < 1e-13);
  CHECK(html.substr(row, html.find("</tr>", row) - row).find("<td>all</td>") != std::string::npos);

  // Bad input: an existing --out, a missing run, a study directory without its table.
  result = test::run_cli("report --run " + run + " --out " + out);
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("--overwrite") != std::string::npos);
  result = test::run_cli("report --run " + (dir / "nothing").string() + " --out " + (dir / "r2").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("nothing") != std::string::npos);
  result = test::run_cli("report --run " + run + " --study " + run + " --test-size 2 --out " + (dir / "r3").string());
  CHECK(result.exit_code != 0);
  CHECK(result.output.find("results.json") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "r3"));

  // The page renders: a headless Chromium screenshot is a real, non-blank picture (Chromium is optional).
  if (fs::exists("/usr/bin/chromium")) {
    const fs::path shot = dir / "shot.png";
    const std::string command = "/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --window-size=900,1200 --screenshot=" + shot.string() +
                                " file://" + (fs::path(out) / "report.html").string() + " > /dev/null 2>&1";
    CHECK(std::system(command.c_str()) == 0);
    int width = 0, height = 0, channels = 0;
    unsigned char* pixels = stbi_load(shot.c_str(), &width, &height, &channels, 3);
    REQUIRE(pixels != nullptr);
    CHECK(width == 900);
    int64_t coloured = 0;  // pixels of the charts and heatmaps: neither grey nor white
    for (int64_t i = 0; i < static_cast<int64_t>(width) * height; ++i) {
      const int r = pixels[i * 3], g = pixels[i * 3 + 1], b = pixels[i * 3 + 2];
      coloured += std::max({r, g, b}) - std::min({r, g, b}) > 60;
    }
    stbi_image_free(pixels);
    CHECK(coloured > 1000);
  } else {
    MESSAGE("Chromium not installed: the screenshot check is skipped");
  }
  fs::remove_all(dir);
}

TEST_CASE("kernelscope report on an MNIST study: attributions, transformations, the study table and invariance chart") {
  const fs::path root = test::shared_datasets();
  if (root.empty()) {
    MESSAGE("skipped: ../shared/datasets not found");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("kernelscope-report-mnist-" + std::to_string(getpid()));
  fs::remove_all(dir);
  const std::string study = (dir / "study").string(), out = (dir / "report").string();
  test::CommandResult result = test::run_cli("study --data mnist:" + (root / "mnist").string() + " --classes 3,8 --arch mlp:16 --epochs 1 --train-size 64 --test-size 20 --invariance-size 10 --out " + study);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  result = test::run_cli("report --run " + study + "/run --study " + study + " --test-size 6 --top-k 2 --out " + out);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  const std::string html = read_text(fs::path(out) / "report.html");
  for (const char* section : {">Which training images made the decision<", ">Transformations<", ">The after kernel (study)<", "mean kernel cosine", "SVM test accuracy, NTK"})
    CHECK(html.find(section) != std::string::npos);
  // 3 heatmaps + 3 bars, 3 test images with 2 + 2 training images each, 5 transformation views.
  CHECK(occurrences(html, "src=\"data:image/png;base64,") == 6 + 3 * 5 + 5);
  CHECK(html.find("Decision regions") == std::string::npos);
  fs::remove_all(dir);
}

}  // namespace ks
