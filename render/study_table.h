// The after-kernel study's table, made from its results.json alone, so `study` (Markdown) and `report` (HTML) show the
// same rows. Rendering only: the numbers are the study's; nothing is computed here.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ks {

struct StudyTable {
  std::array<std::string, 3> header;            // what was studied, "init", "after"
  std::vector<std::array<std::string, 3>> rows;  // label, at initialisation, after training
  std::vector<std::string> notes;                // sentences under the table
};
// Throws nlohmann::json::exception naming the missing or mistyped key when results is not a study's results.json.
StudyTable study_table(const nlohmann::json& results);
std::string study_table_markdown(const StudyTable& table);
std::string study_table_html(const StudyTable& table);
// Long's learning-rate study: one row per rate (its results.json, one or several seeds), the after kernel's numbers.
std::string learning_rate_table_markdown(const std::vector<double>& rates, const std::vector<nlohmann::json>& results);

}  // namespace ks
