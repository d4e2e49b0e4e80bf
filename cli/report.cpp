// `kernelscope report`: one self-contained HTML page about a run: training, the exact path kernel against the approximate
// kernels, attributions, kernel heatmaps, transformations, and a study's table (from its results.json). It first computes
// a RunReportData (the EPK on a few test inputs, the heatmaps' kernels), then renders it with render/; it never needs a server.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/checks.h"
#include "cli/commands.h"
#include "datasets/transform.h"
#include "kernels/epk.h"
#include "kernels/ntk.h"
#include "nn/run.h"
#include "render/html.h"
#include "render/picture.h"
#include "render/study_table.h"

namespace ks::cli {

namespace {

// What one run's report shows, computed before any markup is written.
struct RunReportData {
  std::string title, label;
  std::vector<double> epochs, train_accuracy, test_accuracy;
  Tensor test;   // the M test inputs of the EPK
  EpkResult epk;
  std::vector<int64_t> rows, columns;                     // heatmap test rows and training columns, by class
  std::vector<std::pair<std::string, Tensor>> heatmaps;   // name, (rows, columns) on the first output
  struct Shares {
    int64_t input = 0;
    double output = 0.0;
    TopAttributions top;
  };
  std::vector<Shares> shares;                             // images: top attributions of the first test inputs
  std::vector<std::pair<std::string, Tensor>> views;      // images: one test image and its transformations
  struct Regions {
    int64_t grid = 40;
    double x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    Tensor network, machine;  // (grid²) outputs
  };
  std::optional<Regions> regions;                         // 2-D toy sets
  std::optional<StudyTable> study;
  nlohmann::json study_results;
};

// Rows of a test/train subset ordered by class, so heatmaps show the class blocks.
std::vector<int64_t> by_class(const Dataset& data, int64_t count, int64_t limit) {
  std::vector<int64_t> order;
  for (int label = 0; label < 2; ++label)
    for (int64_t n = 0; n < std::min(limit, data.size()) && static_cast<int64_t>(order.size()) < count * (label + 1) / 2; ++n)
      if (data.labels[static_cast<size_t>(n)] == label) order.push_back(n);
  return order;
}

Picture sample_picture(const Tensor& inputs, int64_t n, int64_t scale) {
  const int64_t size = inputs.numel() / inputs.dim(0);
  return image_picture(inputs.data() + n * size, inputs.dim(1), inputs.dim(2), inputs.dim(3), scale);
}

std::string heading(const ReportOptions& o, const std::string& text) {
  return "<h" + std::to_string(o.heading) + ">" + text + "</h" + std::to_string(o.heading) + ">";
}

// ---- computation ---------------------------------------------------------------------------------

// metrics.json's accuracy per epoch; a damaged file is named with what is wrong.
void read_training_curve(const Run& run, RunReportData& data) {
  const std::filesystem::path file = run.directory / "metrics.json";
  try {
    std::ifstream in(file);
    const nlohmann::json metrics = nlohmann::json::parse(in);
    for (const auto& epoch : metrics.at("epochs")) {
      data.epochs.push_back(epoch.at("epoch").get<double>());
      data.train_accuracy.push_back(epoch.at("train_accuracy").get<double>());
      data.test_accuracy.push_back(epoch.at("test_accuracy").get<double>());
    }
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(file.string() + ": not a kernelscope metrics file (" + error.what() + "); retrain the run");
  }
  if (data.epochs.empty()) throw std::runtime_error(file.string() + ": \"epochs\" is empty; retrain the run");
}

void compute_kernels(const Run& run, const ReportOptions& o, RunReportData& data) {
  const int64_t M = data.test.dim(0), N = run.task.train.size(), C = data.epk.outputs;
  data.rows = by_class(run.task.test, std::min(M, o.kernel_size), M);
  data.columns = by_class(run.task.train, o.kernel_size, N);
  const auto R = static_cast<int64_t>(data.rows.size()), K = static_cast<int64_t>(data.columns.size());
  Tensor epk({R, K});
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < K; ++c) epk[r * K + c] = data.epk.kernel[(data.rows[r] * C) * N * C + data.columns[c] * C];
  data.heatmaps.emplace_back("exact path kernel Σ_s K_s", std::move(epk));
  const Tensor train_columns = gather_inputs(run.task.train, data.columns), test_rows = gather_inputs(run.task.test, data.rows);
  for (bool after : {false, true}) {
    const Tensor gram = ntk_gram(*run.model, after ? run.thetaT : run.theta0, test_rows, &train_columns);
    Tensor first_output({R, K});
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < K; ++c) first_output[r * K + c] = gram[r * C * K * C + c * C];
    data.heatmaps.emplace_back(after ? "after kernel (NTK at θ_T)" : "NTK at initialisation", std::move(first_output));
  }
}

void compute_image_sections(const Run& run, const ReportOptions& o, RunReportData& data) {
  const int64_t C = data.epk.outputs;
  for (int64_t m = 0; m < std::min<int64_t>(3, data.test.dim(0)); ++m) {
    const int64_t output = C == 1 ? 0 : decision(data.epk.final.data() + m * C, C);
    data.shares.push_back({m, data.epk.final[m * C + output], top_attributions(data.epk.attributions, m, output, o.top_k)});
  }
  const Tensor image = gather_inputs(run.task.test, {0});
  const int64_t size = image.dim(2);
  data.views = {{"original", image}, {"shift", translate_images(image, 1, 0)}, {"rotation", rotate_images(image, 0.25)},
                {"zoom", zoom_images(image, size - 2)}, {"quadrant swap", swap_quadrants(image)}};
}

// Decision regions of the network and of the EPK machine on a grid: the EPK is evaluated at every grid point.
void compute_regions(const Run& run, RunReportData& data) {
  RunReportData::Regions g;
  const Tensor& points_in = run.task.train.inputs;
  g.x0 = g.y0 = 1e300, g.x1 = g.y1 = -1e300;
  for (int64_t n = 0; n < run.task.train.size(); ++n) {
    g.x0 = std::min(g.x0, points_in[n * 2]), g.x1 = std::max(g.x1, points_in[n * 2]);
    g.y0 = std::min(g.y0, points_in[n * 2 + 1]), g.y1 = std::max(g.y1, points_in[n * 2 + 1]);
  }
  const double pad_x = 0.1 * (g.x1 - g.x0), pad_y = 0.1 * (g.y1 - g.y0);
  g.x0 -= pad_x, g.x1 += pad_x, g.y0 -= pad_y, g.y1 += pad_y;
  Tensor points({g.grid * g.grid, 2});
  for (int64_t j = 0; j < g.grid; ++j)
    for (int64_t i = 0; i < g.grid; ++i) {
      points[(j * g.grid + i) * 2] = g.x0 + (i + 0.5) / g.grid * (g.x1 - g.x0);
      points[(j * g.grid + i) * 2 + 1] = g.y1 - (j + 0.5) / g.grid * (g.y1 - g.y0);
    }
  EpkOptions grid_options;
  grid_options.kernels = {PathKernel::exact};
  grid_options.keep_kernel = false;
  std::fprintf(stderr, "report: exact path kernel on a %lld x %lld grid for the decision regions\n", static_cast<long long>(g.grid), static_cast<long long>(g.grid));
  const EpkResult regions = exact_path_kernel(*run.model, run.theta0, points, TrainingRecord::from(run), grid_options);
  g.network = regions.final;
  g.machine = regions.machines[0].outputs;
  data.regions = std::move(g);
}

// A study's results.json, the table's only source.
void read_study(const std::string& directory, RunReportData& data) {
  const std::filesystem::path file = std::filesystem::path(directory) / "results.json";
  std::ifstream in(file);
  if (!in || std::filesystem::is_directory(file))
    throw std::runtime_error(directory + ": no results.json (not a directory written by `kernelscope study`)");
  try {
    data.study_results = nlohmann::json::parse(in);
    data.study = study_table(data.study_results);
  } catch (const nlohmann::json::exception& error) {
    throw std::runtime_error(file.string() + ": not a kernelscope study result (" + error.what() + "); rerun `kernelscope study`");
  }
}

RunReportData compute_report(const Run& run, const ReportOptions& o, const std::string& label) {
  RunReportData data;
  data.title = run.config.model.spec + " on " + run.config.source.source;
  data.label = label;
  read_training_curve(run, data);
  if (!o.study.empty()) read_study(o.study, data);  // before the long part: a bad --study fails at once
  const int64_t M = std::min(o.test_size, run.task.test.size());
  if (M == 0) throw std::runtime_error(run.directory.string() + ": the run has no test inputs (train with --test-size > 0)");
  std::vector<int64_t> first;
  for (int64_t m = 0; m < M; ++m) first.push_back(m);
  data.test = gather_inputs(run.task.test, first);
  std::fprintf(stderr, "report: exact path kernel on %lld test inputs over %zu steps\n", static_cast<long long>(M), run.steps.size());
  data.epk = exact_path_kernel(*run.model, run.theta0, data.test, TrainingRecord::from(run));
  compute_kernels(run, o, data);
  if (data.test.rank() == 4) compute_image_sections(run, o, data);
  else if (data.test.rank() == 2 && data.test.dim(1) == 2 && data.epk.outputs == 1) compute_regions(run, data);
  return data;
}

// ---- rendering --------------------------------------------------------------------------------------

std::string render_training(const Run& run, const ReportOptions& o, const RunReportData& data) {
  const TrainOptions& t = run.config.training;
  const Series train{"train accuracy", "#1f77b4", data.epochs, data.train_accuracy, true}, test{"test accuracy", "#d62728", data.epochs, data.test_accuracy, true};
  std::ostringstream html;
  html << heading(o, "Training") << "<p>The network <code>" << html_escape(run.config.model.spec) << "</code> (" << run.model->parameter_count()
       << " parameters) was trained with SGD: " << t.epochs << " epochs of batch " << t.batch_size << ", learning rate " << t.learning_rate << ", "
       << loss_name(t.loss) << " loss" << (t.weight_decay > 0 ? ", weight decay " + number(t.weight_decay) : "") << (t.augment ? ", augmented batches" : "")
       << ", on " << run.task.train.size() << " training samples, " << run.steps.size() << " steps in all. The chart shows accuracy after each epoch; it ended at "
       << number(100 * data.test_accuracy.back(), "%.1f") << "% on " << run.task.test.size() << " test samples.</p>"
       << chart({train, test}, "epoch", "accuracy", false, false);
  return html.str();
}

std::string render_epk(const Run& run, const ReportOptions& o, const RunReportData& data) {
  const EpkResult& epk = data.epk;
  const int64_t M = data.test.dim(0), C = epk.outputs;
  std::ostringstream html;
  html << heading(o, "The network is a kernel machine") << "<p>Replaying the " << run.steps.size() << " SGD steps, the exact path kernel (Bell et al. 2023) writes the "
       << "trained network's output on each test input as its initial output plus a sum, over steps and training points, of a loss derivative times "
       << "a kernel value K<sub>s</sub>(x, x<sub>i</sub>) = ⟨∫₀¹∇f(x; θ<sub>s</sub>(t))dt, ∇f(x<sub>i</sub>; θ<sub>s</sub>)⟩. The integral is exact: "
       << epk.quadrature.pieces << " pieces between ReLU switches, " << epk.quadrature.nodes << " Gauss–Legendre nodes. The same sum with the NTK at "
       << "initialisation, the after kernel or Domingos' discrete path kernel is only an approximation. On " << M << " test inputs:</p>";
  std::vector<std::vector<std::string>> table{{"kernel machine", "max abs error", "max rel error", "decisions agree"}};
  std::vector<Series> scatter;
  std::vector<std::string> names;
  Bars errors{"max abs error", "#555", {}};
  const char* colours[] = {"#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd"};
  for (const KernelMachine& m : epk.machines) {
    table.push_back({path_kernel_name(m.kind), number(m.max_abs_error, "%.2e"), number(m.max_rel_error, "%.2e"), m.decisions_agree ? "all" : "not all"});
    Series s{path_kernel_name(m.kind), colours[scatter.size() % 4], {}, {}, false};
    for (int64_t i = 0; i < M * C; ++i) {
      s.x.push_back(epk.final[i]);
      s.y.push_back(m.outputs[i]);
    }
    scatter.push_back(s);
    names.push_back(path_kernel_name(m.kind));
    errors.values.push_back(std::max(m.max_abs_error, 1e-17));
  }
  html << html_table(table) << "<p>Left: each kernel machine's output against the network's (the exact path kernel's points lie on the diagonal). Right: "
       << "the largest absolute error of each, on a log scale.</p>" << chart(scatter, "network output f(x; θ_T)", "kernel machine output", false, true)
       << bar_chart(names, {errors}, "max abs error |f(x; θ_T) − machine(x)|", true);
  return html.str();
}

std::string render_kernels(const ReportOptions& o, const RunReportData& data) {
  std::ostringstream html;
  html << heading(o, "Kernels") << "<p>Kernel values between test inputs (rows) and training samples (columns), both ordered by class, so each picture "
       << "shows four blocks. The colour scale is below each picture with its range.</p>";
  for (const auto& [name, matrix] : data.heatmaps) {
    std::pair<double, double> range;
    const Picture picture = heatmap(matrix, data.rows.size() < 30 ? 6 : 4, &range);
    html << "<figure>" << img(picture, name) << "<br>" << img(colour_bar(range.first < 0, picture.width, 10), "scale") << "<br>" << number(range.first)
         << " … " << number(range.second) << "<br>" << html_escape(name) << "</figure>";
  }
  return html.str();
}

std::string render_images(const Run& run, const ReportOptions& o, const RunReportData& data) {
  const int64_t scale = data.test.dim(2) <= 32 ? 3 : 1;
  std::ostringstream html;
  html << heading(o, "Which training images made the decision") << "<p>For a test image, each training image's exact share c<sub>i</sub>(x) of the change "
       << "f(x; θ_T) − f(x; θ_0) (the shares add up to it exactly). Shown: the " << o.top_k << " largest positive and negative shares.</p>";
  for (const RunReportData::Shares& s : data.shares) {
    html << "<div><figure>" << img(sample_picture(data.test, s.input, scale), "test") << "<br>test image " << s.input << "<br>f = " << number(s.output) << "</figure> ";
    for (size_t j = 0; j < s.top.positive.size(); ++j)
      html << "<figure>" << img(sample_picture(run.task.train.inputs, s.top.positive[j], scale), "positive") << "<br>+" << number(s.top.positive_values[j]) << "</figure>";
    html << " | ";
    for (size_t j = 0; j < s.top.negative.size(); ++j)
      html << "<figure>" << img(sample_picture(run.task.train.inputs, s.top.negative[j], scale), "negative") << "<br>" << number(s.top.negative_values[j]) << "</figure>";
    html << "</div>";
  }
  const int64_t size = data.views.front().second.dim(2);
  html << heading(o, "Transformations") << "<p>The transformations the invariance scores use, on one test image: a 1-pixel shift, a 0.25 rad rotation, "
       << "a zoom (central " << size - 2 << " pixels resized back to " << size << "), and the quadrant swap.</p>";
  for (const auto& [name, view] : data.views) html << "<figure>" << img(sample_picture(view, 0, scale * 2), name) << "<br>" << name << "</figure>";
  return html.str();
}

std::string render_regions(const Run& run, const ReportOptions& o, const RunReportData::Regions& g) {
  auto lookup = [&](const Tensor& values) {
    return [&g, values](double x, double y) {
      const int64_t i = std::clamp<int64_t>(static_cast<int64_t>((x - g.x0) / (g.x1 - g.x0) * g.grid), 0, g.grid - 1);
      const int64_t j = std::clamp<int64_t>(static_cast<int64_t>((g.y1 - y) / (g.y1 - g.y0) * g.grid), 0, g.grid - 1);
      return values[j * g.grid + i];
    };
  };
  int64_t differing = 0;
  for (int64_t k = 0; k < g.grid * g.grid; ++k) differing += (g.network[k] > 0) != (g.machine[k] > 0);
  const Dataset& train = run.task.train;
  std::ostringstream html;
  html << heading(o, "Decision regions") << "<p>Left: the network's decision on a " << g.grid << "×" << g.grid << " grid; right: the exact path kernel machine's, "
       << "computed from the training points and steps alone. They differ on " << differing << " of " << g.grid * g.grid << " grid points. Dots: training points.</p>"
       << img(side_by_side({decision_regions(lookup(g.network), g.x0, g.x1, g.y0, g.y1, 240, train.inputs, train.labels),
                            decision_regions(lookup(g.machine), g.x0, g.x1, g.y0, g.y1, 240, train.inputs, train.labels)}, 12),
              "decision regions");
  return html.str();
}

std::string render_study(const ReportOptions& o, const RunReportData& data) {
  std::ostringstream html;
  html << heading(o, "The after kernel (study)") << "<p>Hard-margin SVMs on the tangent kernel and on the conjugate kernel at initialisation and after "
       << "training (Long 2021), kernel alignments, and invariance scores: the mean cosine K(x, Tx)/√(K(x,x)K(Tx,Tx)) over test images; the quadrant-swap "
       << "score measures globality (lower = more global).</p>" << study_table_html(*data.study);
  const nlohmann::json& results = data.study_results;
  if (!results.contains("invariance")) return html.str();
  const std::vector<std::pair<std::string, std::string>> scores{{"shift", "1-pixel shift"}, {"rotation", "±0.25 rad rotation"}, {"zoom", "zoom"}, {"quadrant_swap", "quadrant swap"}};
  Bars init{"NTK at init", "#1f77b4", {}}, after{"after kernel", "#d62728", {}};
  std::vector<std::string> labels;
  for (const auto& [key, label] : scores) {
    labels.push_back(label);
    init.values.push_back(results["invariance"]["init"][key].get<double>());
    after.values.push_back(results["invariance"]["after"][key].get<double>());
  }
  html << "<p>Invariance of the tangent kernel before and after training, on " << results["invariance"]["images"].get<int64_t>()
       << " test images (higher = more invariant; for the quadrant swap, lower = more global):</p>" << bar_chart(labels, {init, after}, "mean kernel cosine", false);
  return html.str();
}

std::string render_report(const Run& run, const ReportOptions& o, const RunReportData& data) {
  std::string html = "<p class=\"small\">Run <code>" + html_escape(data.label) + "</code>: " + html_escape(data.title) + "</p>";
  html += render_training(run, o, data) + render_epk(run, o, data) + render_kernels(o, data);
  if (!data.shares.empty()) html += render_images(run, o, data);
  if (data.regions) html += render_regions(run, o, *data.regions);
  if (data.study) html += render_study(o, data);
  return html;
}

}  // namespace

void write_report(const std::string& out, bool overwrite, const std::string& page) {
  RunWriter writer(out, {"report", overwrite, {}});
  std::ofstream(writer.directory() / "report.html") << page;
  writer.finish();
}

RunReport report_run_sections(const Run& run, const ReportOptions& o, const std::string& label) {
  RunReportData data = compute_report(run, o, label);
  std::string html = render_report(run, o, data);
  return {std::move(html), std::move(data.epk)};
}

namespace {

int run_report(const ReportOptions& o) {
  const Run run = load_run(o.run);
  if (std::filesystem::exists(o.out) && !o.overwrite)
    throw std::runtime_error(o.out + " exists; choose another --out or pass --overwrite");
  const RunReport report = report_run_sections(run, o, o.run);
  write_report(o.out, o.overwrite, report_page("kernelscope report: " + run.config.model.spec + " on " + run.config.source.source, report.html));
  std::printf("report written to %s\n", (std::filesystem::path(o.out) / "report.html").string().c_str());
  return 0;
}

}  // namespace

Command register_report(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "Write a self-contained HTML report of a run: training, EPK exactness, attributions, kernels, transformations");
  cmd->add_option("--run", o->run, "Run directory written by `kernelscope train`")->required();
  cmd->add_option("--study", o->study, "A directory written by `kernelscope study`, for its table");
  cmd->add_option("--test-size", o->test_size, "Test inputs for the exact path kernel")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Training images shown per test image, positive and negative")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--kernel-size", o->kernel_size, "Training samples in the kernel heatmaps")->check(whole_number(1))->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory (report.html; written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  return {cmd, [o] { return run_report(*o); }};
}

}  // namespace ks::cli
