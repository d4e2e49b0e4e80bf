// libsvm in precomputed-kernel mode: every training row is N + 2 svm_nodes (the sample's serial number, its N kernel
// values, the terminator), 16 bytes each, so a 4,000-point Gram needs 256 MB there; libsvm is freed before returning.
#include "kernels/svm.h"

#include "autodiff/parallel.h"

#include <svm.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

namespace ks {

namespace {

void check_binary(const std::vector<int>& labels, int64_t N, const char* what) {
  if (static_cast<int64_t>(labels.size()) != N)
    throw ShapeError(std::string(what) + ": " + std::to_string(labels.size()) + " labels for a kernel with " + std::to_string(N) + " rows");
  int64_t count[2] = {0, 0};
  for (int label : labels) {
    if (label != 0 && label != 1)
      throw std::invalid_argument(std::string(what) + ": label " + std::to_string(label) + " found; the SVM takes two classes, labelled 0 and 1");
    ++count[label];
  }
  if (count[0] == 0 || count[1] == 0)
    throw std::invalid_argument(std::string(what) + ": class " + std::string(count[0] == 0 ? "0" : "1") + " is empty; the SVM needs examples of both classes");
}

// libsvm says only in its printed text that it stopped at its iteration limit: keep that, print nothing.
thread_local bool iteration_limit_reached = false;
void listen(const char* text) {
  if (std::strstr(text, "max number of iterations")) iteration_limit_reached = true;
}

}  // namespace

SvmModel fit_svm(const Tensor& gram, const std::vector<int>& labels, const SvmOptions& options) {
  if (gram.rank() != 2 || gram.dim(0) != gram.dim(1)) throw ShapeError("fit_svm: the training kernel must be square (N, N), got " + shape_string(gram.shape()));
  const int64_t N = gram.dim(0);
  check_binary(labels, N, "fit_svm");
  double largest = 0.0, diagonal = 0.0;
  for (int64_t i = 0; i < N * N; ++i) {
    if (!std::isfinite(gram[i])) throw std::invalid_argument("fit_svm: the training kernel has a non-finite value at (" + std::to_string(i / N) + ", " + std::to_string(i % N) + ")");
    largest = std::max(largest, std::abs(gram[i]));
  }
  for (int64_t i = 0; i < N; ++i)
    for (int64_t j = i + 1; j < N; ++j)
      if (std::abs(gram[i * N + j] - gram[j * N + i]) > 1e-12 * largest)
        throw std::invalid_argument("fit_svm: the training kernel is not symmetric: K(" + std::to_string(i) + ", " + std::to_string(j) + ") = " +
                                    std::to_string(gram[i * N + j]) + " but K(" + std::to_string(j) + ", " + std::to_string(i) + ") = " + std::to_string(gram[j * N + i]));
  for (int64_t i = 0; i < N; ++i) diagonal += gram[i * N + i];
  SvmModel model;
  model.scale = options.scale_by_mean_norm ? diagonal / static_cast<double>(N) : 1.0;
  if (!(model.scale > 0.0)) throw std::invalid_argument("fit_svm: the mean training norm is not positive; the kernel cannot be scaled by it");

  std::vector<svm_node> nodes(static_cast<size_t>(N * (N + 2)));
  std::vector<svm_node*> rows(static_cast<size_t>(N));
  std::vector<double> targets(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) {
    svm_node* row = nodes.data() + i * (N + 2);
    rows[static_cast<size_t>(i)] = row;
    row[0] = {0, static_cast<double>(i + 1)};
    for (int64_t j = 0; j < N; ++j) row[j + 1] = {static_cast<int>(j + 1), gram[i * N + j] / model.scale};
    row[N + 1] = {-1, 0.0};
    targets[static_cast<size_t>(i)] = labels[static_cast<size_t>(i)] == 1 ? 1.0 : -1.0;
  }
  svm_problem problem{static_cast<int>(N), targets.data(), rows.data()};
  svm_parameter parameter{};
  parameter.svm_type = C_SVC;
  parameter.kernel_type = PRECOMPUTED;
  parameter.cache_size = options.cache_mb;
  parameter.eps = options.tolerance;
  parameter.C = options.C;
  parameter.shrinking = 1;
  if (const char* error = svm_check_parameter(&problem, &parameter)) throw std::invalid_argument(std::string("fit_svm: libsvm: ") + error);
  svm_set_print_string_function(listen);
  iteration_limit_reached = false;
  std::unique_ptr<svm_model, void (*)(svm_model*)> trained(svm_train(&problem, &parameter), [](svm_model* m) { svm_free_and_destroy_model(&m); });
  if (!trained) throw std::runtime_error("fit_svm: libsvm did not return a model");
  model.converged = !iteration_limit_reached;

  // libsvm's decision is positive for its first label; orient it so that positive means label 1.
  const double orientation = trained->label[0] == 1 ? 1.0 : -1.0;
  model.coefficients.assign(static_cast<size_t>(N), 0.0);
  model.support_vectors = trained->l;
  std::vector<int> indices(static_cast<size_t>(trained->l));
  svm_get_sv_indices(trained.get(), indices.data());
  for (int k = 0; k < trained->l; ++k) model.coefficients[static_cast<size_t>(indices[static_cast<size_t>(k)] - 1)] = orientation * trained->sv_coef[0][k];
  model.bias = -orientation * trained->rho[0];

  // Margin: ‖w‖² = Σ_ij c_i c_j K_ij on the scaled kernel; the geometric margin of the closest training point.
  double norm_squared = 0.0;
  for (int64_t i = 0; i < N; ++i) {
    const double ci = model.coefficients[static_cast<size_t>(i)];
    if (ci == 0.0) continue;
    for (int64_t j = 0; j < N; ++j) norm_squared += ci * model.coefficients[static_cast<size_t>(j)] * gram[i * N + j] / model.scale;
  }
  const std::vector<double> decisions = svm_decision(model, gram);
  double closest = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < N; ++i) {
    const double functional = targets[static_cast<size_t>(i)] * decisions[static_cast<size_t>(i)];
    closest = std::min(closest, functional);
    if (functional <= 0.0) ++model.training_errors;
    double value = 0.0;
    svm_predict_values(trained.get(), rows[static_cast<size_t>(i)], &value);
    model.libsvm_training_decisions.push_back(orientation * value);
  }
  model.margin = norm_squared > 0.0 ? closest / std::sqrt(norm_squared) : 0.0;
  return model;
}

std::vector<SvmModel> fit_svms(const std::vector<const Tensor*>& grams, const std::vector<int>& labels, const SvmOptions& options) {
  std::vector<SvmModel> models(grams.size());
  parallel_tasks(static_cast<int64_t>(grams.size()), [&](int64_t k) { models[static_cast<size_t>(k)] = fit_svm(*grams[static_cast<size_t>(k)], labels, options); });
  return models;
}

std::vector<double> svm_decision(const SvmModel& model, const Tensor& cross) {
  const int64_t N = static_cast<int64_t>(model.coefficients.size());
  if (cross.rank() != 2 || cross.dim(1) != N)
    throw ShapeError("svm_decision: the kernel against the training set must be (M, " + std::to_string(N) + "), got " + shape_string(cross.shape()));
  for (int64_t k = 0; k < cross.numel(); ++k)
    if (!std::isfinite(cross[k]))
      throw std::invalid_argument("svm_decision: the test kernel has a non-finite value at (" + std::to_string(k / N) + ", " + std::to_string(k % N) + ")");
  std::vector<double> f(static_cast<size_t>(cross.dim(0)));
  for (int64_t m = 0; m < cross.dim(0); ++m) {
    double total = 0.0;
    for (int64_t i = 0; i < N; ++i) total += model.coefficients[static_cast<size_t>(i)] * cross[m * N + i];
    f[static_cast<size_t>(m)] = total / model.scale + model.bias;
  }
  return f;
}

double svm_accuracy(const SvmModel& model, const Tensor& cross, const std::vector<int>& labels) {
  check_binary(labels, cross.dim(0), "svm_accuracy");
  const std::vector<double> f = svm_decision(model, cross);
  int64_t correct = 0;
  for (size_t m = 0; m < f.size(); ++m) correct += (f[m] > 0.0) == (labels[m] == 1);
  return static_cast<double>(correct) / static_cast<double>(f.size());
}

}  // namespace ks
