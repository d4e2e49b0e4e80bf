// Long's claims judged from results.json: per-seed differences (after − init, or largest − smallest learning rate),
// their mean and standard error, and a verdict by the sign and size of that mean.
#include "render/claims.h"

#include <cmath>
#include <tuple>

#include "render/html.h"

namespace ks {

namespace {

// The value at `path` in every seed's run (results["runs"]), or in the one run.
std::vector<double> per_run(const nlohmann::json& results, const std::string& path) {
  const nlohmann::json::json_pointer at(path);
  std::vector<double> values;
  if (results.contains("runs"))
    for (const nlohmann::json& run : results.at("runs")) values.push_back(run.at(at).get<double>());
  else
    values.push_back(results.at(at).get<double>());
  return values;
}

bool measured(const nlohmann::json& results, const std::string& path) {
  const nlohmann::json& one = results.contains("runs") ? results.at("runs").at(0) : results;
  return one.contains(nlohmann::json::json_pointer(path));
}

struct Difference {
  double mean = 0.0, se = 0.0;
  size_t runs = 0;
};

Difference difference(const std::vector<double>& to, const std::vector<double>& from) {
  Difference d;
  d.runs = to.size();
  for (size_t k = 0; k < to.size(); ++k) d.mean += (to[k] - from[k]) / static_cast<double>(to.size());
  if (d.runs < 2) return d;
  double squares = 0.0;
  for (size_t k = 0; k < to.size(); ++k) squares += (to[k] - from[k] - d.mean) * (to[k] - from[k] - d.mean);
  d.se = std::sqrt(squares / static_cast<double>(d.runs - 1)) / std::sqrt(static_cast<double>(d.runs));
  return d;
}

std::string shown(const Difference& d, const char* format, double scale = 1.0) {
  std::string out = number(scale * d.mean, format);
  if (d.runs > 1) out += " ± " + number(scale * d.se, format);
  return out;
}

// +1: the claimed direction, −1: the opposite, 0: within noise.
int direction(const Difference& d, bool claimed_increase) {
  const double signed_mean = claimed_increase ? d.mean : -d.mean;
  if (d.runs < 2) return signed_mean > 0 ? 1 : (signed_mean < 0 ? -1 : 0);
  if (std::abs(d.mean) <= kStandardErrors * d.se) return 0;
  return signed_mean > 0 ? 1 : -1;
}

std::string verdict(const std::vector<int>& directions, size_t runs) {
  int agree = 0, against = 0;
  for (int d : directions) agree += d > 0, against += d < 0;
  const std::string suffix = runs < 2 ? " (one seed: by sign only)" : "";
  const int n = static_cast<int>(directions.size());
  if (agree == n) return "reproduced" + suffix;
  if (against == n) return "not reproduced (the opposite)" + suffix;
  if (agree == 0 && against == 0) return "within noise";
  if (agree == 0) return "not reproduced" + suffix;
  return "mixed" + suffix;
}

// One claim on after − init of the scores at `keys` under results[prefix][stage][key].
Claim after_minus_init(const nlohmann::json& r, const std::string& claim, const std::string& prefix, const std::vector<std::pair<std::string, std::string>>& keys,
                       bool claimed_increase, const char* format, double scale) {
  Claim c{claim, "", ""};
  std::vector<int> directions;
  size_t runs = 0;
  for (const auto& [label, key] : keys) {
    const Difference d = difference(per_run(r, prefix + "/after/" + key), per_run(r, prefix + "/init/" + key));
    c.evidence += (c.evidence.empty() ? "" : "; ") + label + " after − init " + shown(d, format, scale);
    directions.push_back(direction(d, claimed_increase));
    runs = d.runs;
  }
  c.verdict = verdict(directions, runs);
  return c;
}

}  // namespace

std::vector<Claim> study_claims(const nlohmann::json& r) {
  std::vector<Claim> claims;
  claims.push_back(after_minus_init(r, "(1) after some epochs, the after kernel's SVM is more accurate than the initial NTK's", "/svm/ntk",
                                    {{"SVM test accuracy (points)", "test_accuracy"}}, true, "%.2f", 100.0));
  const bool mlp = r.at("model").get<std::string>().rfind("mlp", 0) == 0;
  if (r.contains("invariance")) {
    std::vector<std::pair<std::string, std::string>> global{{"quadrant-swap score", "quadrant_swap"}};
    if (r.at("invariance").at("init").contains("patch_shuffle")) global.push_back({"patch-shuffle score", "patch_shuffle"});
    // A more global kernel changes more when the image is rearranged: its score falls.
    if (mlp)
      claims.push_back(after_minus_init(r, "(3) the MLP's after kernel is less global than its initial NTK", "/invariance", global, true, "%.4f", 1.0));
    else
      claims.push_back(after_minus_init(r, "(2) the convolutional net's after kernel is more global than its initial NTK", "/invariance", global, false, "%.4f", 1.0));
    claims.push_back(after_minus_init(r, "(4) the after kernel is more invariant to small shifts, rotations and zooms", "/invariance",
                                      {{"shift", "shift"}, {"rotation", "rotation"}, {"zoom", "zoom"}}, true, "%.4f", 1.0));
  }
  Claim conjugate{"(5) the conjugate kernel sometimes, not always, approximates the NTK and the after kernel", "", ""};
  bool close = true, far = true;
  for (const char* stage : {"init", "after"}) {
    double mean = 0.0;
    for (double v : per_run(r, std::string("/metrics/") + stage + "/cka_conjugate_ntk")) mean += v;
    mean /= static_cast<double>(per_run(r, std::string("/metrics/") + stage + "/cka_conjugate_ntk").size());
    conjugate.evidence += (conjugate.evidence.empty() ? "" : "; ") + std::string("CKA with the ") + (stage[0] == 'i' ? "initial NTK " : "after kernel ") + number(mean, "%.3f");
    close = close && mean >= 0.9;
    far = far && mean < 0.9;
  }
  conjugate.verdict = close ? "approximates here (CKA ≥ 0.9)" : (far ? "does not approximate here (CKA < 0.9)" : "approximates one of them here");
  claims.push_back(conjugate);
  return claims;
}

std::vector<Claim> learning_rate_claims(const std::vector<double>& rates, const std::vector<nlohmann::json>& results) {
  const nlohmann::json &low = results.front(), &high = results.back();
  Claim c{"(6) at the same training loss, a larger learning rate gives a more accurate, more global, more invariant after kernel", "", ""};
  std::vector<int> directions;
  size_t runs = 0;
  const std::vector<std::tuple<std::string, std::string, bool, double>> measures{
      {"SVM test accuracy (points)", "/svm/ntk/after/test_accuracy", true, 100.0},
      {"quadrant-swap score", "/invariance/after/quadrant_swap", false, 1.0},
      {"shift invariance", "/invariance/after/shift", true, 1.0},
      {"rotation invariance", "/invariance/after/rotation", true, 1.0},
      {"zoom invariance", "/invariance/after/zoom", true, 1.0}};
  for (const auto& [label, path, increase, scale] : measures) {
    if (!measured(low, path)) continue;
    const Difference d = difference(per_run(high, path), per_run(low, path));
    c.evidence += (c.evidence.empty() ? "" : "; ") + label + " at lr " + number(rates.back(), "%g") + " − at " + number(rates.front(), "%g") + " " +
                  shown(d, scale > 1 ? "%.2f" : "%.4f", scale);
    directions.push_back(direction(d, increase));
    runs = d.runs;
  }
  c.verdict = verdict(directions, runs);
  return {c};
}

std::string claims_markdown(const std::vector<Claim>& claims) {
  std::string out = "| Long's claim | evidence (mean ± standard error over the seeds) | verdict |\n|---|---|---|\n";
  for (const Claim& c : claims) out += "| " + c.claim + " | " + c.evidence + " | " + c.verdict + " |\n";
  return out;
}

}  // namespace ks
