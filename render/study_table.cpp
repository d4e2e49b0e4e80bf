// The study table's rows from results.json, and their Markdown and HTML forms.
#include "render/study_table.h"

#include <cstdio>
#include <functional>

#include "render/html.h"

namespace ks {

namespace {

std::string percent(double x) { return number(100 * x, "%.2f%%"); }

std::string separated(const nlohmann::json& svm) {
  return svm.at("separated").get<bool>() ? std::string("yes") : "NO (" + std::to_string(svm.at("training_errors").get<int64_t>()) + " errors)";
}

// Rows from one (init, after) pair of values.
void add_row(StudyTable& table, const std::string& label, const std::function<std::string(const char* stage)>& value) {
  table.rows.push_back({label, value("init"), value("after")});
}

}  // namespace

StudyTable study_table(const nlohmann::json& r) {
  StudyTable table;
  const nlohmann::json& classes = r.at("classes");
  table.header = {r.at("model").get<std::string>() + ", " + classes.at(0).get<std::string>() + " vs " + classes.at(1).get<std::string>() + " (" +
                      std::to_string(r.at("train_size").get<int64_t>()) + " train, " + std::to_string(r.at("test_size").get<int64_t>()) + " test, " +
                      std::to_string(r.at("epochs").get<int64_t>()) + " epochs" + (r.at("augment").get<bool>() ? ", augmented" : "") + ")",
                  "init", "after"};
  const nlohmann::json &svm = r.at("svm"), &metrics = r.at("metrics");
  add_row(table, "network test accuracy", [&](const char* s) { return percent(r.at("network_test_accuracy").at(s).get<double>()); });
  add_row(table, "SVM test accuracy, NTK", [&](const char* s) { return percent(svm.at("ntk").at(s).at("test_accuracy").get<double>()); });
  add_row(table, "SVM test accuracy, conjugate kernel", [&](const char* s) { return percent(svm.at("conjugate").at(s).at("test_accuracy").get<double>()); });
  add_row(table, "SVM support vectors, NTK / conjugate", [&](const char* s) {
    return std::to_string(svm.at("ntk").at(s).at("support_vectors").get<int64_t>()) + " / " + std::to_string(svm.at("conjugate").at(s).at("support_vectors").get<int64_t>());
  });
  add_row(table, "training set separated, NTK / conjugate", [&](const char* s) { return separated(svm.at("ntk").at(s)) + " / " + separated(svm.at("conjugate").at(s)); });
  add_row(table, "SVM training margin, NTK", [&](const char* s) { return number(svm.at("ntk").at(s).at("margin").get<double>(), "%.4g"); });
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{{"alignment of conjugate kernel with NTK", "alignment_conjugate_ntk"},
                                                                                   {"CKA of conjugate kernel with NTK", "cka_conjugate_ntk"},
                                                                                   {"target alignment of NTK", "target_alignment_ntk"}})
    add_row(table, label, [&](const char* s) { return number(metrics.at(s).at(key).get<double>(), "%.4f"); });
  add_row(table, "effective rank of NTK (trace/λmax, entropy)", [&](const char* s) {
    const nlohmann::json& rank = metrics.at(s).at("effective_rank_ntk");
    return number(rank.at("trace_over_max").get<double>(), "%.1f") + ", " + number(rank.at("spectral_entropy").get<double>(), "%.1f");
  });
  if (r.contains("invariance"))
    for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{{"invariance to 1-pixel shifts", "shift"},
                                                                                     {"invariance to ±0.25 rad rotations", "rotation"},
                                                                                     {"invariance to zoom", "zoom"},
                                                                                     {"quadrant-swap score (lower = more global)", "quadrant_swap"}})
      add_row(table, label, [&](const char* s) { return number(r.at("invariance").at(s).at(key).get<double>(), "%.4f"); });
  table.notes.push_back("Kernel distance (Fort et al.) between the NTK at init and after: " + number(metrics.at("kernel_distance_ntk_init_after").get<double>(), "%.4f"));
  std::string not_separated;
  for (const char* stage : {"init", "after"})
    for (const char* name : {"ntk", "conjugate"})
      if (!svm.at(name).at(stage).at("separated").get<bool>()) not_separated += std::string(" ") + name + " " + stage + ";";
  std::string unconverged;
  for (const char* stage : {"init", "after"})
    for (const char* name : {"ntk", "conjugate"})
      if (!svm.at(name).at(stage).value("converged", true)) unconverged += std::string(" ") + name + " " + stage + ";";
  if (!unconverged.empty())
    table.notes.push_back("libsvm stopped at its iteration limit WITHOUT CONVERGING on:" + unconverged + " those accuracies are of unconverged solutions.");
  if (!not_separated.empty())
    table.notes.push_back("The training set is NOT separated by the SVM on:" + not_separated + " those SVMs are soft-margin solutions with C = " +
                          number(r.at("svm_c").get<double>(), "%g") + ".");
  return table;
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
