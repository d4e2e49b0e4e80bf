// Long's claims judged from results.json: the verdict follows the per-seed differences' mean and standard error.
#include <doctest/doctest.h>

#include "render/claims.h"

namespace ks {

namespace {

// A study's results.json with the given per-seed NTK SVM accuracies at init and after, and flat invariance scores.
nlohmann::json seeds_results(const std::vector<double>& init, const std::vector<double>& after, const std::string& model = "vgg:8") {
  nlohmann::json results{{"model", model}, {"runs", nlohmann::json::array()}};
  for (size_t k = 0; k < init.size(); ++k) {
    nlohmann::json run;
    run["svm"]["ntk"]["init"]["test_accuracy"] = init[k];
    run["svm"]["ntk"]["after"]["test_accuracy"] = after[k];
    for (const char* stage : {"init", "after"}) {
      run["metrics"][stage]["cka_conjugate_ntk"] = 0.95;
      for (const char* key : {"shift", "rotation", "zoom", "quadrant_swap", "patch_shuffle"}) run["invariance"][stage][key] = 0.5;
    }
    results["runs"].push_back(run);
  }
  results["invariance"] = results["runs"][0]["invariance"];
  return results;
}

}  // namespace

TEST_CASE("a claim is reproduced, refuted or within noise by the mean difference against twice its standard error") {
  // After − init: +2, +3, +4 points: mean 3, standard error 0.577: reproduced.
  std::vector<Claim> claims = study_claims(seeds_results({0.90, 0.90, 0.90}, {0.92, 0.93, 0.94}));
  CHECK(claims[0].verdict == "reproduced");
  CHECK(claims[0].evidence.find("3.00 ± 0.58") != std::string::npos);
  // −2, −3, −4: the opposite.
  claims = study_claims(seeds_results({0.92, 0.93, 0.94}, {0.90, 0.90, 0.90}));
  CHECK(claims[0].verdict == "not reproduced (the opposite)");
  // +4, −3, +1: mean 0.67, standard error 2.03: within noise.
  claims = study_claims(seeds_results({0.90, 0.93, 0.90}, {0.94, 0.90, 0.91}));
  CHECK(claims[0].verdict == "within noise");
  // Unchanged invariances are within noise; the conjugate kernel's CKA of 0.95 approximates; an MLP is judged on claim (3).
  CHECK(claims[2].verdict == "within noise");
  CHECK(claims[3].verdict.find("approximates here") == 0);
  CHECK(study_claims(seeds_results({0.9}, {0.95}, "mlp:64"))[1].claim.find("(3)") == 0);
  CHECK(study_claims(seeds_results({0.9}, {0.95}))[0].verdict == "reproduced (one seed: by sign only)");
}

TEST_CASE("the learning-rate claim compares the largest rate's after kernel with the smallest's") {
  const nlohmann::json low = seeds_results({0.9, 0.9}, {0.90, 0.91}), high = seeds_results({0.9, 0.9}, {0.95, 0.97});
  const std::vector<Claim> claims = learning_rate_claims({0.01, 0.1}, {low, high});
  REQUIRE(claims.size() == 1);
  CHECK(claims[0].evidence.find("at lr 0.1 − at 0.01 5.50 ± 0.50") != std::string::npos);
  CHECK(claims[0].verdict == "mixed");  // more accurate, but the invariances did not move
}

}  // namespace ks
