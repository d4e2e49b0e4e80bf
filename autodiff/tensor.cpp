// Tensor: storage, shape checks and Eigen views.
// No arithmetic beyond what the views give: ops live in ops.cpp.
#include "autodiff/tensor.h"

#include <malloc.h>

#include <sstream>

namespace ks {

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ")";
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t count = 1;
  for (int64_t extent : shape) count *= extent;
  return count;
}

static void check_shape(const Shape& shape) {
  if (shape.empty() || shape.size() > 4)
    throw ShapeError("Tensor: rank must be 1 to 4, got shape " + shape_string(shape));
  for (int64_t extent : shape)
    if (extent < 0) throw ShapeError("Tensor: negative extent in shape " + shape_string(shape));
}

Tensor::Tensor(Shape shape, double fill) : shape_(std::move(shape)) {
  check_shape(shape_);
  values_.assign(static_cast<size_t>(shape_numel(shape_)), fill);
}

Tensor::Tensor(Shape shape, const std::vector<double>& values)
    : Tensor(std::move(shape), AlignedBuffer(values.begin(), values.end())) {}

Tensor Tensor::uninitialised(Shape shape) {
  check_shape(shape);
  const auto count = static_cast<size_t>(shape_numel(shape));
  return Tensor(std::move(shape), AlignedBuffer(count));
}

Tensor::Tensor(Shape shape, AlignedBuffer values) : shape_(std::move(shape)), values_(std::move(values)) {
  check_shape(shape_);
  if (shape_numel(shape_) != numel())
    throw ShapeError("Tensor: shape " + shape_string(shape_) + " needs " + std::to_string(shape_numel(shape_)) +
                     " values, got " + std::to_string(numel()));
}

MatrixMap Tensor::matrix() {
  int64_t rows = shape_.empty() ? 0 : shape_[0];
  return MatrixMap(values_.data(), rows, rows ? numel() / rows : 0);
}

ConstMatrixMap Tensor::matrix() const {
  int64_t rows = shape_.empty() ? 0 : shape_[0];
  return ConstMatrixMap(values_.data(), rows, rows ? numel() / rows : 0);
}

Tensor Tensor::reshaped(Shape shape) const {
  if (shape_numel(shape) != numel())
    throw ShapeError("reshape: cannot view " + shape_string(shape_) + " as " + shape_string(shape));
  return Tensor(std::move(shape), values_);
}

void Tensor::fill(double value) { std::fill(values_.begin(), values_.end(), value); }

void pin_gemm_blocking() { Eigen::setCpuCacheSizes(kPinnedCacheSizes[0], kPinnedCacheSizes[1], kPinnedCacheSizes[2]); }

// Before main: every product of the library and of its users runs with the pinned blocking.
static const bool gemm_blocking_pinned = [] {
  pin_gemm_blocking();
  return true;
}();

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace ks
