// Hard-margin SVMs on a precomputed kernel, through libsvm's precomputed-kernel mode (C-SVC with a large C), for two classes.
// It does not compute kernels (ntk.h does) and keeps no libsvm object: the dual solution is copied out and evaluated here.
#pragma once

#include <vector>

#include "autodiff/tensor.h"

namespace ks {

struct SvmOptions {
  double C = 1e6;                   // large: separable training data are separated exactly
  bool scale_by_mean_norm = false;  // divide every kernel value by the mean training K(x_i, x_i) (Long 2021)
  double tolerance = 1e-6;          // libsvm's stopping tolerance (eps)
  double cache_mb = 256;
};

// The dual solution: f(x) = Σ_i coefficients_i K(x, x_i) / scale + bias; f > 0 means label 1.
struct SvmModel {
  std::vector<double> coefficients;  // (N) α_i y_i, y_i = ±1; zero off the support vectors
  double bias = 0.0;
  double scale = 1.0;                // what the kernel was divided by
  int64_t support_vectors = 0;
  double margin = 0.0;               // geometric margin on the training set, min_i y_i f(x_i) / ‖w‖ (negative if not separated)
  int64_t training_errors = 0;       // training points on the wrong side: 0 means the training set is separated
  bool converged = true;             // false when libsvm stopped at its iteration limit: the solution is not the optimum
  bool separated() const { return training_errors == 0; }
  std::vector<double> libsvm_training_decisions;  // libsvm's own decision values on the training points, oriented as f
};

// gram (N, N) symmetric; labels 0/1, both present. Throws naming the problem otherwise.
SvmModel fit_svm(const Tensor& gram, const std::vector<int>& labels, const SvmOptions& options = {});
// Several SVMs on one labelling fitted at once, one per thread (libsvm is single-threaded), each the model fit_svm
// gives it; an error in any is thrown after all have finished.
std::vector<SvmModel> fit_svms(const std::vector<const Tensor*>& grams, const std::vector<int>& labels, const SvmOptions& options = {});
// cross (M, N): K(test, train), finite. Returns f for each row; throws naming the first non-finite entry.
std::vector<double> svm_decision(const SvmModel& model, const Tensor& cross);
// Fraction of rows whose sign of f matches the 0/1 label.
double svm_accuracy(const SvmModel& model, const Tensor& cross, const std::vector<int>& labels);

}  // namespace ks
