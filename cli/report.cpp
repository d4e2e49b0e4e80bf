// `kernelscope report`: one self-contained HTML page about a run (pictures as embedded PNG, charts as inline SVG): training,
// the exact path kernel against the approximate kernels, attributions, kernel heatmaps, transformations, and a study's table.
// It computes the EPK itself on a few test inputs; it reads a study directory when given one. It never needs a server.
// Charts are small hand-written SVG: four chart kinds did not justify a plotting dependency (gnuplot would add a package
// and a data-file round trip for what is a few dozen lines of markup).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "datasets/picture.h"
#include "datasets/transform.h"
#include "kernels/epk.h"
#include "kernels/ntk.h"
#include "nn/run.h"

namespace ks::cli {

namespace {

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += table[(chunk >> 18) & 63];
    out += table[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[chunk & 63] : '=';
  }
  return out;
}

std::string img(const Picture& picture, const std::string& alt) {
  return "<img alt=\"" + alt + "\" src=\"data:image/png;base64," + base64(png_bytes(picture)) + "\">";
}

std::string number(double value, const char* pattern = "%.3g") {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

// A small SVG chart: axes, ticks at the ends, series of points or lines.
struct Series {
  std::string name, colour;
  std::vector<double> x, y;
  bool line = false;
};

std::string chart(const std::vector<Series>& series, const std::string& x_label, const std::string& y_label, bool log_y, bool diagonal) {
  const double W = 420, H = 300, left = 60, bottom = 40, top = 15, right = 130;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-300)) : y; };
  for (const Series& s : series)
    for (size_t k = 0; k < s.x.size(); ++k) {
      x0 = std::min(x0, s.x[k]);
      x1 = std::max(x1, s.x[k]);
      y0 = std::min(y0, ty(s.y[k]));
      y1 = std::max(y1, ty(s.y[k]));
    }
  if (diagonal) x0 = y0 = std::min(x0, y0), x1 = y1 = std::max(x1, y1);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto py = [&](double y) { return H - bottom - (ty(y) - y0) / (y1 - y0) * (H - bottom - top); };
  auto py_raw = [&](double t) { return H - bottom - (t - y0) / (y1 - y0) * (H - bottom - top); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\"" << H - bottom - top << "\" fill=\"none\" stroke=\"#888\"/>";
  auto y_tick = [&](double t) { return log_y ? "1e" + number(t, "%.0f") : number(t); };
  svg << "<text x=\"" << left - 4 << "\" y=\"" << py_raw(y0) << "\" text-anchor=\"end\">" << y_tick(y0) << "</text>";
  svg << "<text x=\"" << left - 4 << "\" y=\"" << py_raw(y1) + 8 << "\" text-anchor=\"end\">" << y_tick(y1) << "</text>";
  svg << "<text x=\"" << left << "\" y=\"" << H - bottom + 14 << "\">" << number(x0) << "</text>";
  svg << "<text x=\"" << W - right << "\" y=\"" << H - bottom + 14 << "\" text-anchor=\"end\">" << number(x1) << "</text>";
  svg << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">" << x_label << "</text>";
  svg << "<text transform=\"translate(14," << (top + H - bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << y_label << "</text>";
  if (diagonal) svg << "<line x1=\"" << px(x0) << "\" y1=\"" << py(x0) << "\" x2=\"" << px(x1) << "\" y2=\"" << py(x1) << "\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>";
  int legend = 0;
  for (const Series& s : series) {
    if (s.line) {
      svg << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"2\" points=\"";
      for (size_t k = 0; k < s.x.size(); ++k) svg << px(s.x[k]) << "," << py(s.y[k]) << " ";
      svg << "\"/>";
    }
    for (size_t k = 0; k < s.x.size(); ++k) svg << "<circle cx=\"" << px(s.x[k]) << "\" cy=\"" << py(s.y[k]) << "\" r=\"2.5\" fill=\"" << s.colour << "\" fill-opacity=\"0.7\"/>";
    svg << "<rect x=\"" << W - right + 10 << "\" y=\"" << top + 14 * legend << "\" width=\"10\" height=\"10\" fill=\"" << s.colour << "\"/>";
    svg << "<text x=\"" << W - right + 24 << "\" y=\"" << top + 9 + 14 * legend++ << "\">" << s.name << "</text>";
  }
  svg << "</svg>";
  return svg.str();
}

// Horizontal bars, one group per label and one bar per series in it; on a log scale the bars start at the smallest decade.
struct Bars {
  std::string name, colour;
  std::vector<double> values;  // one per label
};

std::string bar_chart(const std::vector<std::string>& labels, const std::vector<Bars>& series, const std::string& value_label, bool log_x) {
  const double left = 110, right = 20, top = 10, bar = 14, group_gap = 10, legend = 18;
  const double W = 520, plot = W - left - right;
  const double H = top + labels.size() * (series.size() * bar + group_gap) + 36 + legend * (series.size() > 1);
  auto tx = [&](double v) { return log_x ? std::log10(std::max(v, 1e-300)) : v; };
  double low = log_x ? 1e300 : 0, high = -1e300;
  for (const Bars& s : series)
    for (double v : s.values) low = log_x ? std::min(low, tx(v)) : low, high = std::max(high, tx(v));
  if (log_x) low = std::floor(low), high = std::ceil(high);
  if (high <= low) high = low + 1;
  auto px = [&](double v) { return left + (tx(v) - low) / (high - low) * plot; };
  auto tick = [&](double t) { return log_x ? "1e" + number(t, "%.0f") : number(t); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"11\">";
  double y = top;
  for (size_t l = 0; l < labels.size(); ++l) {
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + series.size() * bar / 2 + 4 << "\" text-anchor=\"end\">" << labels[l] << "</text>";
    for (const Bars& s : series) {
      const double v = s.values[l];
      svg << "<rect x=\"" << left << "\" y=\"" << y + 1 << "\" width=\"" << std::max(1.0, px(v) - left) << "\" height=\"" << bar - 2 << "\" fill=\"" << s.colour << "\"/>";
      // The value sits after the bar, or inside it in white where the bar reaches the right edge.
      const bool inside = px(v) > W - right - 50;
      svg << "<text x=\"" << (inside ? px(v) - 4 : px(v) + 4) << "\" y=\"" << y + bar - 3 << "\" font-size=\"10\"" << (inside ? " text-anchor=\"end\" fill=\"#fff\"" : "")
          << ">" << number(v, log_x ? "%.1e" : "%.3f") << "</text>";
      y += bar;
    }
    y += group_gap;
  }
  svg << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << y << "\" stroke=\"#888\"/>";
  svg << "<text x=\"" << left << "\" y=\"" << y + 12 << "\">" << tick(low) << "</text><text x=\"" << W - right << "\" y=\"" << y + 12
      << "\" text-anchor=\"end\">" << tick(high) << "</text><text x=\"" << left + plot / 2 << "\" y=\"" << y + 26 << "\" text-anchor=\"middle\">" << value_label << "</text>";
  if (series.size() > 1)
    for (size_t k = 0; k < series.size(); ++k)
      svg << "<rect x=\"" << left + 90 * k << "\" y=\"" << y + 34 << "\" width=\"10\" height=\"10\" fill=\"" << series[k].colour << "\"/><text x=\"" << left + 90 * k + 14
          << "\" y=\"" << y + 43 << "\">" << series[k].name << "</text>";
  svg << "</svg>";
  return svg.str();
}

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

std::string markdown_table_to_html(const std::string& markdown) {
  std::istringstream in(markdown);
  std::string line, html = "<table>";
  bool header = true;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      if (!line.empty()) html += "</table><p>" + line + "</p><table>";
      continue;
    }
    if (line.find("---") != std::string::npos) continue;
    html += "<tr>";
    std::istringstream cells(line.substr(1));
    std::string cell;
    while (std::getline(cells, cell, '|')) html += (header ? "<th>" : "<td>") + cell + (header ? "</th>" : "</td>");
    html += "</tr>";
    header = false;
  }
  return html + "</table>";
}

}  // namespace

std::string report_page(const std::string& title, const std::string& body) {
  std::ostringstream html;
  html << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << title << "</title><style>"
       << "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0}"
       << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}img{image-rendering:pixelated;margin:2px;vertical-align:middle}"
       << "figure{display:inline-block;margin:4px 10px;text-align:center;font-size:12px}.small{color:#666;font-size:13px}</style></head><body>"
       << "<h1>" << title << "</h1>" << body
       << "<p class=\"small\">Written by kernelscope. Numbers are float64; everything above can be recomputed from the run directories.</p></body></html>\n";
  return html.str();
}

void write_report(const std::string& out, bool overwrite, const std::string& page) {
  RunWriter writer(out, overwrite);
  std::ofstream(writer.directory() / "report.html") << page;
  writer.finish();
}

RunReport report_run_sections(const Run& run, const ReportOptions& o, const std::string& label) {
  std::ostringstream html;
  const std::string title = run.config.model.spec + " on " + run.config.source.source;
  html << "<p class=\"small\">Run <code>" << label << "</code>: " << title << "</p>";

  // 1. Training.
  std::ifstream metrics_file(run.directory / "metrics.json");
  nlohmann::json metrics;
  metrics_file >> metrics;
  Series train_accuracy{"train accuracy", "#1f77b4", {}, {}, true}, test_accuracy{"test accuracy", "#d62728", {}, {}, true};
  for (const auto& epoch : metrics["epochs"]) {
    train_accuracy.x.push_back(epoch["epoch"].get<double>());
    train_accuracy.y.push_back(epoch["train_accuracy"].get<double>());
    test_accuracy.x.push_back(epoch["epoch"].get<double>());
    test_accuracy.y.push_back(epoch["test_accuracy"].get<double>());
  }
  const TrainOptions& t = run.config.training;
  html << "<h" << o.heading << ">Training</h" << o.heading << "><p>The network <code>" << run.config.model.spec << "</code> (" << run.model->parameter_count() << " parameters) was trained with SGD: "
       << t.epochs << " epochs of batch " << t.batch_size << ", learning rate " << t.learning_rate << ", " << loss_name(t.loss) << " loss"
       << (t.weight_decay > 0 ? ", weight decay " + number(t.weight_decay) : "") << (t.augment ? ", augmented batches" : "") << ", on " << run.task.train.size()
       << " training samples, " << run.steps.size() << " steps in all. The chart shows accuracy after each epoch; it ended at "
       << number(100 * test_accuracy.y.back(), "%.1f") << "% on " << run.task.test.size() << " test samples.</p>"
       << chart({train_accuracy, test_accuracy}, "epoch", "accuracy", false, false);

  // 2. The exact path kernel.
  const int64_t M = std::min(o.test_size, run.task.test.size());
  std::vector<int64_t> first;
  for (int64_t m = 0; m < M; ++m) first.push_back(m);
  const Tensor test = gather_inputs(run.task.test, first);
  const TrainingRecord record = TrainingRecord::from(run);
  std::fprintf(stderr, "report: exact path kernel on %lld test inputs over %zu steps\n", static_cast<long long>(M), run.steps.size());
  const EpkResult epk = exact_path_kernel(*run.model, run.theta0, test, record);
  const int64_t C = epk.outputs, N = run.task.train.size();
  html << "<h" << o.heading << ">The network is a kernel machine</h" << o.heading << "><p>Replaying the " << run.steps.size() << " SGD steps, the exact path kernel (Bell et al. 2023) writes the "
       << "trained network's output on each test input as its initial output plus a sum, over steps and training points, of a loss derivative times "
       << "a kernel value K<sub>s</sub>(x, x<sub>i</sub>) = ⟨∫₀¹∇f(x; θ<sub>s</sub>(t))dt, ∇f(x<sub>i</sub>; θ<sub>s</sub>)⟩. The integral is exact: "
       << epk.quadrature.pieces << " pieces between ReLU switches, " << epk.quadrature.nodes << " Gauss–Legendre nodes. The same sum with the NTK at "
       << "initialisation, the after kernel or Domingos' discrete path kernel is only an approximation. On " << M << " test inputs:</p>"
       << "<table><tr><th>kernel machine</th><th>max abs error</th><th>max rel error</th><th>decisions agree</th></tr>";
  std::vector<Series> scatter;
  std::vector<std::string> kernel_names;
  Bars errors{"max abs error", "#555", {}};
  const char* colours[] = {"#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd"};
  int k = 0;
  for (const KernelMachine& m : epk.machines) {
    html << "<tr><td>" << path_kernel_name(m.kind) << "</td><td>" << number(m.max_abs_error, "%.2e") << "</td><td>" << number(m.max_rel_error, "%.2e")
         << "</td><td>" << (m.decisions_agree ? "all" : "not all") << "</td></tr>";
    Series s{path_kernel_name(m.kind), colours[k % 4], {}, {}, false};
    for (int64_t i = 0; i < M * C; ++i) {
      s.x.push_back(epk.final[i]);
      s.y.push_back(m.outputs[i]);
    }
    scatter.push_back(s);
    ++k;
    kernel_names.push_back(path_kernel_name(m.kind));
    errors.values.push_back(std::max(m.max_abs_error, 1e-17));
  }
  html << "</table><p>Left: each kernel machine's output against the network's (the exact path kernel's points lie on the diagonal). Right: "
       << "the largest absolute error of each, on a log scale.</p>"
       << chart(scatter, "network output f(x; θ_T)", "kernel machine output", false, true)
       << bar_chart(kernel_names, {errors}, "max abs error |f(x; θ_T) − machine(x)|", true);

  // 3. Kernel heatmaps.
  const std::vector<int64_t> rows = by_class(run.task.test, std::min(M, o.kernel_size), M), columns = by_class(run.task.train, o.kernel_size, N);
  html << "<h" << o.heading << ">Kernels</h" << o.heading << "><p>Kernel values between test inputs (rows) and training samples (columns), both ordered by class, so each picture "
       << "shows four blocks. The colour scale is below each picture with its range.</p>";
  // value(r, c): the kernel between rows[r] and columns[c], first output of each.
  auto kernel_figure = [&](const std::function<double(size_t, size_t)>& value, const std::string& name) {
    Tensor matrix({static_cast<int64_t>(rows.size()), static_cast<int64_t>(columns.size())});
    for (size_t r = 0; r < rows.size(); ++r)
      for (size_t c = 0; c < columns.size(); ++c) matrix[static_cast<int64_t>(r * columns.size() + c)] = value(r, c);
    std::pair<double, double> range;
    const Picture picture = heatmap(matrix, rows.size() < 30 ? 6 : 4, &range);
    return "<figure>" + img(picture, name) + "<br>" + img(colour_bar(range.first < 0, picture.width, 10), "scale") + "<br>" + number(range.first) + " … " +
           number(range.second) + "<br>" + name + "</figure>";
  };
  html << kernel_figure([&](size_t r, size_t c) { return epk.kernel[(rows[r] * C) * N * C + columns[c] * C]; }, "exact path kernel Σ_s K_s");
  const Tensor train_columns = gather_inputs(run.task.train, columns), test_rows = gather_inputs(run.task.test, rows);
  const int64_t width = static_cast<int64_t>(columns.size()) * C;
  for (bool after : {false, true}) {
    const Tensor K = ntk_gram(*run.model, after ? run.thetaT : run.theta0, test_rows, &train_columns);
    html << kernel_figure([&](size_t r, size_t c) { return K[static_cast<int64_t>(r) * C * width + static_cast<int64_t>(c) * C]; },
                          after ? "after kernel (NTK at θ_T)" : "NTK at initialisation");
  }

  // 4. Attributions and 5. transformations (images only); 2D toy sets: decision regions.
  const bool images = test.rank() == 4;
  if (images) {
    const int64_t scale = test.dim(2) <= 32 ? 3 : 1;
    html << "<h" << o.heading << ">Which training images made the decision</h" << o.heading << "><p>For a test image, each training image's exact share c<sub>i</sub>(x) of the change "
         << "f(x; θ_T) − f(x; θ_0) (the shares add up to it exactly). Shown: the " << o.top_k << " largest positive and negative shares.</p>";
    for (int64_t m = 0; m < std::min<int64_t>(3, M); ++m) {
      const int64_t output = C == 1 ? 0 : decision(epk.final.data() + m * C, C);
      const TopAttributions top = top_attributions(epk.attributions, m, output, o.top_k);
      html << "<div><figure>" << img(sample_picture(test, m, scale), "test") << "<br>test image " << m << "<br>f = " << number(epk.final[m * C + output]) << "</figure> ";
      for (size_t j = 0; j < top.positive.size(); ++j)
        html << "<figure>" << img(sample_picture(run.task.train.inputs, top.positive[j], scale), "positive") << "<br>+" << number(top.positive_values[j]) << "</figure>";
      html << " | ";
      for (size_t j = 0; j < top.negative.size(); ++j)
        html << "<figure>" << img(sample_picture(run.task.train.inputs, top.negative[j], scale), "negative") << "<br>" << number(top.negative_values[j]) << "</figure>";
      html << "</div>";
    }
    std::vector<int64_t> one{0};
    const Tensor image = gather_inputs(run.task.test, one);
    const int64_t size = image.dim(2);
    html << "<h" << o.heading << ">Transformations</h" << o.heading << "><p>The transformations the invariance scores use, on one test image: a 1-pixel shift, a 0.25 rad rotation, "
         << "a zoom (central " << size - 2 << " pixels resized back to " << size << "), and the quadrant swap.</p>";
    const std::vector<std::pair<std::string, Tensor>> views{{"original", image}, {"shift", translate_images(image, 1, 0)}, {"rotation", rotate_images(image, 0.25)},
                                                            {"zoom", zoom_images(image, size - 2)}, {"quadrant swap", swap_quadrants(image)}};
    for (const auto& [name, view] : views) html << "<figure>" << img(sample_picture(view, 0, scale * 2), name) << "<br>" << name << "</figure>";
  } else if (test.rank() == 2 && test.dim(1) == 2 && C == 1) {
    // Decision regions of the network and of the EPK machine on a grid: the EPK is evaluated at every grid point.
    const int64_t grid = 40;
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (int64_t n = 0; n < N; ++n) {
      x0 = std::min(x0, run.task.train.inputs[n * 2]), x1 = std::max(x1, run.task.train.inputs[n * 2]);
      y0 = std::min(y0, run.task.train.inputs[n * 2 + 1]), y1 = std::max(y1, run.task.train.inputs[n * 2 + 1]);
    }
    const double pad_x = 0.1 * (x1 - x0), pad_y = 0.1 * (y1 - y0);
    x0 -= pad_x, x1 += pad_x, y0 -= pad_y, y1 += pad_y;
    Tensor points({grid * grid, 2});
    for (int64_t j = 0; j < grid; ++j)
      for (int64_t i = 0; i < grid; ++i) {
        points[(j * grid + i) * 2] = x0 + (i + 0.5) / grid * (x1 - x0);
        points[(j * grid + i) * 2 + 1] = y1 - (j + 0.5) / grid * (y1 - y0);
      }
    EpkOptions grid_options;
    grid_options.kernels = {PathKernel::exact};
    grid_options.keep_kernel = false;
    std::fprintf(stderr, "report: exact path kernel on a %lld x %lld grid for the decision regions\n", static_cast<long long>(grid), static_cast<long long>(grid));
    const EpkResult regions = exact_path_kernel(*run.model, run.theta0, points, record, grid_options);
    auto lookup = [&](const Tensor& values) {
      return [&, values](double x, double y) {
        const int64_t i = std::clamp<int64_t>(static_cast<int64_t>((x - x0) / (x1 - x0) * grid), 0, grid - 1);
        const int64_t j = std::clamp<int64_t>(static_cast<int64_t>((y1 - y) / (y1 - y0) * grid), 0, grid - 1);
        return values[j * grid + i];
      };
    };
    int64_t differing = 0;
    for (int64_t g = 0; g < grid * grid; ++g) differing += (regions.final[g] > 0) != (regions.machines[0].outputs[g] > 0);
    html << "<h" << o.heading << ">Decision regions</h" << o.heading << "><p>Left: the network's decision on a " << grid << "×" << grid << " grid; right: the exact path kernel machine's, "
         << "computed from the training points and steps alone. They differ on " << differing << " of " << grid * grid << " grid points. Dots: training points.</p>"
         << img(side_by_side({decision_regions(lookup(regions.final), x0, x1, y0, y1, 240, run.task.train.inputs, run.task.train.labels),
                              decision_regions(lookup(regions.machines[0].outputs), x0, x1, y0, y1, 240, run.task.train.inputs, run.task.train.labels)}, 12),
                "decision regions");
  }

  // 6. A study's results.
  if (!o.study.empty()) {
    const std::filesystem::path study(o.study);
    std::ifstream table_file(study / "results.md");
    if (!table_file) throw std::runtime_error(o.study + ": no results.md (not a directory written by `kernelscope study`)");
    std::stringstream table;
    table << table_file.rdbuf();
    html << "<h" << o.heading << ">The after kernel (study)</h" << o.heading << "><p>Hard-margin SVMs on the tangent kernel and on the conjugate kernel at initialisation and after "
         << "training (Long 2021), kernel alignments, and invariance scores: the mean cosine K(x, Tx)/√(K(x,x)K(Tx,Tx)) over test images; the quadrant-swap "
         << "score measures globality (lower = more global).</p>" << markdown_table_to_html(table.str());
    std::ifstream results_file(study / "results.json");
    nlohmann::json results;
    if (results_file) results_file >> results;
    if (results.contains("invariance")) {
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
    }
  }
  return {html.str(), epk};
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
  cmd->add_option("--test-size", o->test_size, "Test inputs for the exact path kernel")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Training images shown per test image, positive and negative")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--kernel-size", o->kernel_size, "Training samples in the kernel heatmaps")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--out", o->out, "Output directory (report.html; written under a temporary name, renamed when complete)")->required();
  cmd->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  return {cmd, [o] { return run_report(*o); }};
}

}  // namespace ks::cli
