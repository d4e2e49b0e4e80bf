// The study table's rows from results.json, and their Markdown and HTML forms.
#include "render/study_table.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "render/html.h"

namespace ks {

namespace {

// A number of one run, or "mean ± standard error" of several seeds' summary {mean, se, values}, scaled.
std::string cell(const nlohmann::json& x, const char* format, double scale = 1.0) {
  if (x.is_object()) return number(scale * x.at("mean").get<double>(), format) + " ± " + number(scale * x.at("se").get<double>(), format);
  return number(scale * x.get<double>(), format);
}

std::string percent(const nlohmann::json& x) { return cell(x, "%.2f", 100.0) + "%"; }

// A flag of one run, or whether it held in every seed's run (summary {all, count, runs}).
bool every_run(const nlohmann::json& flag) { return flag.is_object() ? flag.at("all").get<bool>() : flag.get<bool>(); }

std::string separated(const nlohmann::json& svm) {
  const nlohmann::json& flag = svm.at("separated");
  if (every_run(flag)) return "yes";
  if (flag.is_object())
    return "NO in " + std::to_string(flag.at("runs").get<int64_t>() - flag.at("count").get<int64_t>()) + " of " + std::to_string(flag.at("runs").get<int64_t>()) + " runs";
  return "NO (" + std::to_string(svm.at("training_errors").get<int64_t>()) + " errors)";
}

// Rows from one (init, after) pair of values.
void add_row(StudyTable& table, const std::string& label, const std::function<std::string(const char* stage)>& value) {
  table.rows.push_back({label, value("init"), value("after")});
}

std::string heading(const nlohmann::json& r) {
  const nlohmann::json& classes = r.at("classes");
  std::string out = r.at("model").get<std::string>() + ", " + classes.at(0).get<std::string>() + " vs " + classes.at(1).get<std::string>() + " (" +
                    std::to_string(r.at("train_size").get<int64_t>()) + " train, " + std::to_string(r.at("test_size").get<int64_t>()) + " test, " +
                    cell(r.at("epochs"), "%.0f") + " epochs";
  if (r.at("augment").get<bool>()) out += ", augmented" + (r.contains("augmentation") ? ": " + r.at("augmentation").get<std::string>() : std::string());
  if (r.contains("seeds")) out += ", " + std::to_string(r.at("seeds").size()) + " seeds: mean ± standard error";
  return out + ")";
}

void svm_rows(StudyTable& table, const nlohmann::json& r) {
  const nlohmann::json& svm = r.at("svm");
  add_row(table, "network test accuracy", [&](const char* s) { return percent(r.at("network_test_accuracy").at(s)); });
  add_row(table, "SVM test accuracy, NTK", [&](const char* s) { return percent(svm.at("ntk").at(s).at("test_accuracy")); });
  add_row(table, "SVM test accuracy, conjugate kernel", [&](const char* s) { return percent(svm.at("conjugate").at(s).at("test_accuracy")); });
  add_row(table, "SVM support vectors, NTK / conjugate", [&](const char* s) {
    return cell(svm.at("ntk").at(s).at("support_vectors"), "%.0f") + " / " + cell(svm.at("conjugate").at(s).at("support_vectors"), "%.0f");
  });
  add_row(table, "training set separated, NTK / conjugate", [&](const char* s) { return separated(svm.at("ntk").at(s)) + " / " + separated(svm.at("conjugate").at(s)); });
  add_row(table, "SVM training margin, NTK", [&](const char* s) { return cell(svm.at("ntk").at(s).at("margin"), "%.4g"); });
}

void metric_rows(StudyTable& table, const nlohmann::json& r) {
  const nlohmann::json& metrics = r.at("metrics");
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{{"alignment of conjugate kernel with NTK", "alignment_conjugate_ntk"},
                                                                                   {"CKA of conjugate kernel with NTK", "cka_conjugate_ntk"},
                                                                                   {"target alignment of NTK", "target_alignment_ntk"}})
    add_row(table, label, [&](const char* s) { return cell(metrics.at(s).at(key), "%.4f"); });
  // Older results have no effective_rank_points: their ranks are on the whole training set.
  const nlohmann::json& points = metrics.value("effective_rank_points", r.at("train_size"));
  const bool sampled = points.get<int64_t>() < r.at("train_size").get<int64_t>();
  add_row(table, std::string("effective rank of NTK (trace/λmax, entropy") + (sampled ? ", " + points.dump() + " training points)" : ")"), [&](const char* s) {
    const nlohmann::json& rank = metrics.at(s).at("effective_rank_ntk");
    return cell(rank.at("trace_over_max"), "%.1f") + ", " + cell(rank.at("spectral_entropy"), "%.1f");
  });
  if (!r.contains("invariance")) return;
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{{"invariance to 1-pixel shifts", "shift"},
                                                                                   {"invariance to ±0.25 rad rotations", "rotation"},
                                                                                   {"invariance to zoom", "zoom"},
                                                                                   {"quadrant-swap score (lower = more global)", "quadrant_swap"},
                                                                                   {"patch-shuffle score, 4 × 4 (lower = more global)", "patch_shuffle"}})
    if (r.at("invariance").at("init").contains(key))
      add_row(table, label, [&](const char* s) { return cell(r.at("invariance").at(s).at(key), "%.4f"); });
}

void note_rows(StudyTable& table, const nlohmann::json& r) {
  const nlohmann::json& svm = r.at("svm");
  table.notes.push_back("Kernel distance (Fort et al.) between the NTK at init and after: " + cell(r.at("metrics").at("kernel_distance_ntk_init_after"), "%.4f"));
  std::string not_separated, unconverged;
  for (const char* stage : {"init", "after"})
    for (const char* name : {"ntk", "conjugate"}) {
      const nlohmann::json& fit = svm.at(name).at(stage);
      if (!every_run(fit.at("separated"))) not_separated += std::string(" ") + name + " " + stage + ";";
      if (fit.contains("converged") && !every_run(fit.at("converged"))) unconverged += std::string(" ") + name + " " + stage + ";";
    }
  if (!unconverged.empty())
    table.notes.push_back("libsvm stopped at its iteration limit WITHOUT CONVERGING on:" + unconverged + " those accuracies are of unconverged solutions.");
  if (!not_separated.empty())
    table.notes.push_back("The training set is NOT separated by the SVM on:" + not_separated + " those SVMs are soft-margin solutions with C = " +
                          number(r.at("svm_c").get<double>(), "%g") + ".");
}

}  // namespace

StudyTable study_table(const nlohmann::json& r) {
  StudyTable table;
  table.header = {heading(r), "init", "after"};
  svm_rows(table, r);
  metric_rows(table, r);
  note_rows(table, r);
  return table;
}

std::string learning_rate_table_markdown(const std::vector<double>& rates, const std::vector<nlohmann::json>& results) {
  std::string out = "| learning rate | epochs | final training loss | network test accuracy | after-kernel SVM test accuracy | quadrant swap | "
                    "patch shuffle | shift | rotation | zoom |\n|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t k = 0; k < rates.size(); ++k) {
    const nlohmann::json& r = results[k];
    out += "| " + number(rates[k], "%g") + " | " + cell(r.at("epochs"), "%.0f") + " | " + cell(r.at("final_train_loss"), "%.4f") + " | " +
           percent(r.at("network_test_accuracy").at("after")) + " | " + percent(r.at("svm").at("ntk").at("after").at("test_accuracy"));
    for (const char* key : {"quadrant_swap", "patch_shuffle", "shift", "rotation", "zoom"})
      out += " | " + (r.contains("invariance") ? cell(r.at("invariance").at("after").at(key), "%.4f") : std::string("–"));
    out += " |\n";
  }
  for (size_t k = 0; k < rates.size(); ++k) {
    const nlohmann::json& r = results[k];
    const double target = r.value("loss_target", 0.0);
    const nlohmann::json& loss = r.at("final_train_loss");
    double worst = 0.0;
    if (loss.is_object())
      for (const nlohmann::json& value : loss.at("values")) worst = std::max(worst, value.get<double>());
    else
      worst = loss.get<double>();
    if (target > 0.0 && worst > target)
      out += "\nAt learning rate " + number(rates[k], "%g") + " a run stopped at its maximum epochs with training loss " + number(worst, "%.4f") +
             ", above the target " + number(target, "%g") + ": its row is not at the same training loss.\n";
  }
  if (results.front().value("loss_target", 0.0) <= 0.0) out += "\nNo --loss-target: the rates' rows are not at the same training loss.\n";
  return out;
}

std::string study_table_markdown(const StudyTable& table) {
  std::string out = "| " + table.header[0] + " | " + table.header[1] + " | " + table.header[2] + " |\n|---|---|---|\n";
  for (const auto& row : table.rows) out += "| " + row[0] + " | " + row[1] + " | " + row[2] + " |\n";
  for (const std::string& note : table.notes) out += "\n" + note + "\n";
  return out;
}

std::string study_table_html(const StudyTable& table) {
  std::vector<std::vector<std::string>> rows{{table.header.begin(), table.header.end()}};
  for (const auto& row : table.rows) rows.emplace_back(row.begin(), row.end());
  std::string html = html_table(rows);
  for (const std::string& note : table.notes) html += "<p>" + html_escape(note) + "</p>";
  return html;
}

}  // namespace ks
