// Tensor: a float64 array of up to four dimensions, row-major (NCHW), with RowMajor Eigen maps for arithmetic.
// It records nothing and holds no gradient: the graph (graph.h) does that.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ks {

using Shape = std::vector<int64_t>;

// Eigen's vectorised reductions and GEMV start with a scalar prologue up to the first aligned element, so their
// summation order, and the bits, would follow malloc's addresses. Every tensor therefore starts on a 64-byte boundary.
// std::bad_alloc that says how much was asked for and what to do.
struct OutOfMemory : std::bad_alloc {
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};
[[noreturn]] inline void throw_out_of_memory(size_t bytes) {
  throw OutOfMemory("out of memory: an array of " + std::to_string(bytes / (1 << 20)) + " MiB (" + std::to_string(bytes / 8) +
                    " float64 values) does not fit; use fewer samples (--limit, --train-size, --test-size) or a smaller network");
}

template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t count) {
    const size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
    void* memory = std::aligned_alloc(64, bytes ? bytes : 64);
    if (!memory) throw_out_of_memory(bytes);
    return static_cast<T*>(memory);
  }
  void deallocate(T* pointer, size_t) { std::free(pointer); }
  // Sizing a buffer (AlignedBuffer(n), resize) leaves the values uninitialised: Tensor::uninitialised skips the zero fill
  // where every value is written next. Tensor's own constructors still fill.
  template <typename U>
  void construct(U* pointer) noexcept {
    ::new (static_cast<void*>(pointer)) U;
  }
  template <typename U, typename... Args>
  void construct(U* pointer, Args&&... args) {
    ::new (static_cast<void*>(pointer)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};
using AlignedBuffer = std::vector<double, AlignedAllocator<double>>;
using MatrixRowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<MatrixRowMajor>;
using ConstMatrixMap = Eigen::Map<const MatrixRowMajor>;
using VectorMap = Eigen::Map<Eigen::VectorXd>;
using ConstVectorMap = Eigen::Map<const Eigen::VectorXd>;

// Thrown for any shape that an op cannot accept; the message names the op and the shapes.
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::string shape_string(const Shape& shape);

// Eigen picks its matrix-product blocking from the CPU's cache sizes, read at run time, and the blocking sets the order of
// the sums: kernelscope pins them (at start-up, before any product) so the bits depend only on the instruction set.
// The values are this project's machines' own, so pinning changed no result there.
inline constexpr std::ptrdiff_t kPinnedCacheSizes[3] = {48 * 1024, 1024 * 1024, 384 * 1024 * 1024};
void pin_gemm_blocking();
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, double fill = 0.0);
  Tensor(Shape shape, const std::vector<double>& values);
  Tensor(Shape shape, AlignedBuffer values);
  // For outputs whose every value is written before it is read (large per-sample Jacobians): no zero fill.
  static Tensor uninitialised(Shape shape);

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const { return shape_.at(static_cast<size_t>(axis)); }
  int64_t numel() const { return static_cast<int64_t>(values_.size()); }
  bool empty() const { return values_.empty(); }

  double* data() { return values_.data(); }
  const double* data() const { return values_.data(); }
  AlignedBuffer& values() { return values_; }
  const AlignedBuffer& values() const { return values_; }
  double& operator[](int64_t index) { return values_[static_cast<size_t>(index)]; }
  double operator[](int64_t index) const { return values_[static_cast<size_t>(index)]; }

  // The first axis as rows, everything else as columns.
  MatrixMap matrix();
  ConstMatrixMap matrix() const;
  VectorMap vector() { return VectorMap(values_.data(), numel()); }
  ConstVectorMap vector() const { return ConstVectorMap(values_.data(), numel()); }

  Tensor reshaped(Shape shape) const;
  void fill(double value);

 private:
  Shape shape_;
  AlignedBuffer values_;
};

// Asks malloc to keep freed blocks instead of returning them to the system: the per-tile buffers of the kernels and
// convolutions are freed and allocated again thousands of times, and fresh pages cost a fault and a clear each time.
void keep_freed_memory();

}  // namespace ks
