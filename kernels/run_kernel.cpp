// A kernel of a trained run: parameters by kind, the first samples of a set, the tangent or conjugate Gram.
// The command-line program and the Python module both call it, so their Grams are the same bytes.
#include "kernels/run_kernel.h"

#include <algorithm>
#include <stdexcept>

namespace ks {

namespace {

struct ChosenParameters {
  Parameters theta;
  bool conjugate = false;
};

ChosenParameters parameters_of_kind(const Run& run, const std::string& kind) {
  if (kind == "ntk-init") return {run.theta0, false};
  if (kind == "after") return {run.thetaT, false};
  if (kind == "conjugate-init") return {run.theta0, true};
  if (kind == "conjugate-after") return {run.thetaT, true};
  if (kind.rfind("step:", 0) == 0) {
    const std::string digits = kind.substr(5);
    const bool whole = !digits.empty() && digits.size() < 13 && digits.find_first_not_of("0123456789") == std::string::npos;
    const int64_t step = whole ? std::stoll(digits) : -1;
    if (step < 0 || step > static_cast<int64_t>(run.steps.size()))
      throw std::invalid_argument("--kind " + kind + ": this run has steps 0.." + std::to_string(run.steps.size()));
    return {run.parameters_at(step), false};
  }
  throw std::invalid_argument("--kind " + kind + ": use ntk-init, after, conjugate-init, conjugate-after or step:S");
}

Tensor first_samples(const Run& run, const std::string& set, const std::string& flag, int64_t limit) {
  if (set != "train" && set != "test") throw std::invalid_argument(flag + " " + set + ": use train or test");
  if (limit < 0) throw std::invalid_argument("--limit " + std::to_string(limit) + ": use 0 (all) or a positive count");
  const Dataset& data = set == "train" ? run.task.train : run.task.test;
  return sample_rows(data.inputs, 0, limit > 0 ? std::min(limit, data.size()) : data.size());
}

Tensor conjugate_gram(const Run& run, const Parameters& theta, const Tensor& rows, const Tensor* cols, bool cosine) {
  const Tensor fr = conjugate_features(*run.model, theta, rows), fc = cols ? conjugate_features(*run.model, theta, *cols) : fr;
  const Tensor K = feature_gram(fr, fc);
  if (!cosine) return K;
  Tensor dr({fr.dim(0)}), dc({fc.dim(0)});
  dr.vector() = fr.matrix().rowwise().squaredNorm();
  dc.vector() = fc.matrix().rowwise().squaredNorm();
  return cosine_normalise(K, dr, dc);
}

}  // namespace

Tensor run_kernel(const Run& run, const RunKernelOptions& o) {
  const ChosenParameters chosen = parameters_of_kind(run, o.kind);
  const Tensor rows = first_samples(run, o.rows, "--rows", o.limit);
  const Tensor cols = first_samples(run, o.cols, "--cols", o.limit);
  const bool same = o.rows == o.cols;
  if (chosen.conjugate) return conjugate_gram(run, chosen.theta, rows, same ? nullptr : &cols, o.cosine);
  NtkOptions options;
  options.method = o.method;
  options.trace_outputs = o.trace_outputs;
  options.memory_budget_bytes = o.memory_budget_bytes;
  options.progress = o.progress;
  const Tensor K = ntk_gram(*run.model, chosen.theta, rows, same ? nullptr : &cols, options);
  if (!o.cosine) return K;
  const Tensor dr = ntk_diagonal(*run.model, chosen.theta, rows, options), dc = same ? dr : ntk_diagonal(*run.model, chosen.theta, cols, options);
  return cosine_normalise(K, dr, dc);
}

}  // namespace ks
