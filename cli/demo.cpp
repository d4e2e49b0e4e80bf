// `kernelscope demo`: the README's first command. Trains small ReLU networks on a 2D toy set and on a real image pair
// (Fashion-MNIST from Debian, or MNIST with --data), shows that the exact path kernel machine reproduces every output while
// the NTK and Domingos' kernel do not, compares SVMs on the initial and the after kernel, and writes one HTML report.
#include <chrono>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "render/html.h"
#include "datasets/loaders.h"
#include "datasets/task.h"
#include "kernels/after_kernel.h"
#include "kernels/epk.h"
#include "kernels/svm.h"
#include "nn/model.h"
#include "nn/train.h"

namespace ks::cli {

namespace {

struct DemoOptions {
  std::string data = "fashion:";  // Debian's dataset-fashion-mnist
  std::string classes = "7,9";    // sneaker vs ankle boot
  uint64_t seed = 0;
  std::string out = "kernelscope-demo";
};

void print_machines(const EpkResult& result, int64_t inputs) {
  std::printf("    %-36s %14s %14s %18s\n", "kernel machine", "max abs error", "max rel error", "decisions agree");
  const char* names[] = {"exact path kernel (Bell et al. 2023)", "NTK at initialisation", "after kernel (NTK at the end)", "Domingos' discrete path kernel"};
  for (const KernelMachine& m : result.machines) {
    int64_t agreeing = 0;
    const int64_t C = result.outputs;
    for (int64_t n = 0; n < inputs; ++n) agreeing += decision(m.outputs.data() + n * C, C) == decision(result.final.data() + n * C, C);
    std::printf("    %-36s %14.2e %14.2e %11lld of %lld\n", names[static_cast<int>(m.kind)], m.max_abs_error, m.max_rel_error,
                static_cast<long long>(agreeing), static_cast<long long>(inputs));
  }
  std::printf("    (%lld pieces between ReLU switches, %lld Gauss-Legendre nodes, in %.1f s)\n",
              static_cast<long long>(result.quadrature.pieces), static_cast<long long>(result.quadrature.nodes), result.seconds);
}

// Trains through `train` into a run directory, then writes the run's report sections (which compute the EPK).
RunReport train_and_explain(const TrainCommandOptions& training, const std::string& label, int64_t test_inputs) {
  if (run_train(training) != 0) throw std::runtime_error("training " + label + " failed");
  const Run run = load_run(training.out);
  ReportOptions report;
  report.test_size = test_inputs;
  report.heading = 3;
  std::fprintf(stderr, "demo: rewriting %s as kernel machines\n", label.c_str());
  RunReport result = report_run_sections(run, report, label);
  print_machines(result.epk, result.epk.final.dim(0));
  return result;
}

std::string svm_table(const std::vector<std::pair<std::string, SvmModel>>& rows, const std::vector<double>& accuracies) {
  std::string html = "<table><tr><th>kernel</th><th>test accuracy</th><th>support vectors</th><th>training margin</th><th>training set separated</th></tr>";
  for (size_t r = 0; r < rows.size(); ++r) {
    char line[256];
    std::snprintf(line, sizeof line, "<tr><td>%s</td><td>%.1f%%</td><td>%lld</td><td>%.3g</td><td>%s</td></tr>", rows[r].first.c_str(), 100 * accuracies[r],
                  static_cast<long long>(rows[r].second.support_vectors), rows[r].second.margin, rows[r].second.separated() ? "yes" : "no");
    html += line;
  }
  return html + "</table>";
}

int run_demo(const DemoOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  // A data folder that does not exist fails now, not after part 1.
  if (const size_t colon = o.data.find(':'); colon != std::string::npos && colon + 1 < o.data.size() && !std::filesystem::exists(o.data.substr(colon + 1)))
    throw std::runtime_error("--data " + o.data + ": no such folder " + o.data.substr(colon + 1));
  // Re-running the demo replaces its own earlier output (marked as a demo's), never anything else.
  const std::filesystem::path out(o.out);
  if (std::filesystem::exists(out) && !std::filesystem::exists(out / kOutputMarker))
    throw std::runtime_error(o.out + " exists and is not an earlier demo's output; choose another --out");
  RunWriter writer(out, {"demo", std::filesystem::exists(out), {}});
  const std::filesystem::path runs = writer.directory() / "runs";
  std::filesystem::create_directories(runs);
  std::printf("kernelscope demo: a trained network is exactly a kernel machine.\n\n");

  std::printf("1. Two moons (2D toy set): a 2-32-32-1 ReLU network, mini-batch SGD, 10 epochs\n");
  TrainCommandOptions toy;
  toy.data = "toy:moons";
  toy.arch = "mlp:32-32";
  toy.init = "he-normal";
  toy.epochs = 10;
  toy.batch = 40;
  toy.lr = 0.3;
  toy.test_size = 200;
  toy.seed = o.seed;
  toy.out = (runs / "moons").string();
  toy.quiet = true;
  toy.out_label = (out / "runs" / "moons").string();
  const RunReport toy_report = train_and_explain(toy, "runs/moons", 200);

  std::printf("\n2. Real images: %s classes %s, a 784-128-128-1 ReLU network, 2 epochs\n", o.data.c_str(), o.classes.c_str());
  TrainCommandOptions images;
  images.data = o.data;
  images.classes = o.classes;
  images.arch = "mlp:128-128";
  images.epochs = 2;
  images.train_size = 600;
  images.test_size = 200;
  images.seed = o.seed;
  images.out = (runs / "images").string();
  images.quiet = true;
  images.out_label = (out / "runs" / "images").string();
  const RunReport image_report = train_and_explain(images, "runs/images", 40);

  std::printf("\n3. The after kernel (Long 2021): hard-margin SVMs on the network's tangent kernel, same 600 training images\n");
  const Run run = load_run(images.out);
  std::vector<std::pair<std::string, SvmModel>> svms;
  std::vector<double> accuracies;
  const AfterKernelResult protocol = after_kernel_protocol(*run.model, run.theta0, run.thetaT, run.task.train, run.task.test, run.config.training.loss);
  for (const AfterKernelSide* side : {&protocol.initial, &protocol.after}) {
    svms.emplace_back(side->after ? "NTK after training" : "NTK at initialisation", side->svm);
    accuracies.push_back(side->svm_accuracy);
    std::printf("    %-26s test accuracy %.1f%%, %lld support vectors%s\n", (svms.back().first + ":").c_str(), 100 * accuracies.back(),
                static_cast<long long>(side->svm.support_vectors), side->svm.separated() ? "" : " (training set NOT separated)");
  }
  std::printf("    the network itself:        test accuracy %.1f%%\n", 100 * protocol.after.network_accuracy);

  const std::string body =
      "<p>kernelscope trained two small ReLU networks with SGD and then rewrote each, exactly, as a kernel machine over its training points "
      "and steps. Each part below shows how it was trained, the exact path kernel beside the approximate kernels, and what the kernels look like.</p>"
      "<h2>Part 1: two moons</h2>" + toy_report.html + "<h2>Part 2: " + o.data + " classes " + o.classes + "</h2>" + image_report.html +
      "<h2>Part 3: the after kernel</h2><p>Hard-margin SVMs (libsvm, C = 10<sup>6</sup>) on the tangent kernel of the image network at "
      "initialisation and after training, with the same " + std::to_string(run.task.train.size()) + " training and " + std::to_string(run.task.test.size()) +
      " test images. Long (2021) found the after kernel's SVM is often the more accurate one.</p>" + svm_table(svms, accuracies);
  std::ofstream(writer.directory() / "report.html") << report_page("kernelscope demo: a trained network is a kernel machine", body);
  writer.finish();
  std::printf("\nDone in %.0f s. The report: %s\nNext: `kernelscope train`, then `kernelscope epk`, `kernelscope study` and `kernelscope report` (see README.md).\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), std::filesystem::absolute(out / "report.html").string().c_str());
  return 0;
}

}  // namespace

Command register_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* demo = app.add_subcommand("demo", "Show a trained network rewritten exactly as a kernel machine, beside the NTK, Domingos' kernel and after-kernel SVMs");
  demo->add_option("--data", o->data, "Image source: fashion: (Debian's Fashion-MNIST) or mnist:DIR")->capture_default_str();
  demo->add_option("--classes", o->classes, "The image pair (first = negative)")->capture_default_str();
  demo->add_option("--out", o->out, "Output directory: report.html and the two run directories (an earlier demo's output there is replaced)")->capture_default_str();
  demo->add_option("--seed", o->seed, "Seed for data, initialisation and shuffling")->capture_default_str();
  return {demo, [o] { return run_demo(*o); }};
}

}  // namespace ks::cli
