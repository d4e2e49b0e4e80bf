// Kernel metrics with Eigen: Frobenius products, centering by subtracting row and column means, and a symmetric
// eigensolver for the effective rank. Shapes are checked and named in every error.
#include "kernels/metrics.h"

#include "autodiff/parallel.h"
#include "autodiff/math.h"

#include <Eigen/Eigenvalues>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ks {

namespace {

void check_square(const Tensor& kernel, const char* what) {
  if (kernel.rank() != 2 || kernel.dim(0) != kernel.dim(1) || kernel.dim(0) == 0)
    throw ShapeError(std::string(what) + ": the kernel must be square (N, N), got " + shape_string(kernel.shape()));
}

void check_same(const Tensor& first, const Tensor& second, const char* what) {
  if (first.shape() != second.shape() || first.rank() != 2)
    throw ShapeError(std::string(what) + ": kernels of different shapes " + shape_string(first.shape()) + " and " + shape_string(second.shape()));
}

double frobenius_cosine(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double denominator = a.norm() * b.norm();
  if (denominator == 0.0) throw std::invalid_argument("kernel alignment: a kernel is all zeros");
  return a.cwiseProduct(b).sum() / denominator;
}

Eigen::MatrixXd centered(const Tensor& kernel) {
  Eigen::MatrixXd k = kernel.matrix();
  const Eigen::VectorXd row_means = k.rowwise().mean(), column_means = k.colwise().mean().transpose();
  const double mean = k.mean();
  for (Eigen::Index i = 0; i < k.rows(); ++i)
    for (Eigen::Index j = 0; j < k.cols(); ++j) k(i, j) += mean - row_means(i) - column_means(j);
  return k;
}

}  // namespace

double kernel_alignment(const Tensor& first, const Tensor& second) {
  check_same(first, second, "kernel_alignment");
  return frobenius_cosine(first.matrix(), second.matrix());
}

double centered_kernel_alignment(const Tensor& first, const Tensor& second) {
  check_same(first, second, "centered_kernel_alignment");
  check_square(first, "centered_kernel_alignment");
  return frobenius_cosine(centered(first), centered(second));
}

double target_alignment(const Tensor& kernel, const std::vector<int>& labels) {
  check_square(kernel, "target_alignment");
  const int64_t N = kernel.dim(0);
  if (static_cast<int64_t>(labels.size()) != N)
    throw ShapeError("target_alignment: " + std::to_string(labels.size()) + " labels for a kernel with " + std::to_string(N) + " rows");
  Eigen::VectorXd y(N);
  for (int64_t i = 0; i < N; ++i) {
    if (labels[static_cast<size_t>(i)] != 0 && labels[static_cast<size_t>(i)] != 1)
      throw std::invalid_argument("target_alignment: label " + std::to_string(labels[static_cast<size_t>(i)]) + " found; two classes, 0 and 1, are needed");
    y(i) = labels[static_cast<size_t>(i)] == 1 ? 1.0 : -1.0;
  }
  const Eigen::MatrixXd k = kernel.matrix();
  return y.dot(k * y) / (k.norm() * y.squaredNorm());
}

double kernel_distance(const Tensor& first, const Tensor& second) { return 1.0 - kernel_alignment(first, second); }

EffectiveRank effective_rank(const Tensor& kernel) {
  check_square(kernel, "effective_rank");
  const Eigen::MatrixXd k = kernel.matrix();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(0.5 * (k + k.transpose()), Eigen::EigenvaluesOnly);
  const Eigen::VectorXd& values = solver.eigenvalues();
  const double largest = values.maxCoeff();
  if (!(largest > 0.0)) throw std::invalid_argument("effective_rank: the kernel has no positive eigenvalue");
  EffectiveRank rank;
  rank.trace_ratio = k.trace() / largest;
  double positive = 0.0;
  for (Eigen::Index i = 0; i < values.size(); ++i) positive += std::max(values(i), 0.0);
  double entropy = 0.0;
  for (Eigen::Index i = 0; i < values.size(); ++i)
    if (values(i) > 0.0) {
      const double p = values(i) / positive;
      entropy -= p * math::log(p);
    }
  rank.entropy = math::exp(entropy);
  return rank;
}

std::vector<EffectiveRank> effective_ranks(const std::vector<const Tensor*>& kernels) {
  std::vector<EffectiveRank> ranks(kernels.size());
  parallel_tasks(static_cast<int64_t>(kernels.size()), [&](int64_t k) { ranks[static_cast<size_t>(k)] = effective_rank(*kernels[static_cast<size_t>(k)]); });
  return ranks;
}

}  // namespace ks
