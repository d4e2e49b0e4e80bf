// The abstract's claims of Long's "Properties of the After Kernel" (2021), each with the evidence a study measured and a
// verdict, made from results.json alone. It judges; it measures nothing (cli/study.cpp does).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ks {

struct Claim {
  std::string claim;     // the claim, shortened
  std::string evidence;  // the measured differences, mean ± standard error over the seeds
  std::string verdict;   // "reproduced", "not reproduced", "mixed", "within noise", or an observation
};

// A difference is called only when it is more than twice its standard error over the seeds (one seed: by its sign alone,
// said so in the verdict).
constexpr double kStandardErrors = 2.0;

// Claims (1) to (5) from one study's results.json (one or several seeds).
std::vector<Claim> study_claims(const nlohmann::json& results);
// Claim (6) from a learning-rate study: its results per rate, smallest rate first.
std::vector<Claim> learning_rate_claims(const std::vector<double>& rates, const std::vector<nlohmann::json>& results);
std::string claims_markdown(const std::vector<Claim>& claims);

}  // namespace ks
