// combine_rows, interpolation's blocked product, against the plain loops it replaced: the same bits, dense and strided,
// at column counts on and off its block; the interpolator's column form against its one-column form.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "autodiff/random.h"
#include "kernels/quadrature.h"

namespace ks {

namespace {

std::vector<double> random_values(Rng& rng, int64_t count) {
  std::vector<double> values(static_cast<size_t>(count));
  for (double& v : values) v = rng.normal();
  return values;
}

// The loops combine_rows replaced, in their statement form (zero the output, then add one input row at a time), so that a
// native build contracts them into FMAs exactly as it does the blocked form; every sum from 0, in order j = 0..inputs−1.
void combine_rows_reference(const RowCombination& c) {
  for (int64_t k = 0; k < c.outputs; ++k) {
    double* out = c.out + k * c.out_stride;
    for (int64_t u = 0; u < c.columns; ++u) out[u] = 0.0;
    for (int64_t j = 0; j < c.inputs; ++j) {
      const double weight = c.matrix[k * c.inputs + j];
      const double* row = c.rows + j * c.row_stride;
      for (int64_t u = 0; u < c.columns; ++u) out[u] += weight * row[u];
    }
  }
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

}  // namespace

TEST_CASE("combine_rows gives the plain loops' bits, dense and strided, on and off its block size") {
  Rng rng(7);
  for (int64_t columns : {1, 255, 256, 257, 700}) {
    for (int64_t inputs : {1, 3, 6}) {
      const int64_t outputs = inputs == 3 ? 17 : 4, row_stride = columns + 13, out_stride = columns + 5;  // 17: register tiles and rows beyond
      const std::vector<double> matrix = random_values(rng, outputs * inputs), rows = random_values(rng, inputs * row_stride);
      std::vector<double> fast(static_cast<size_t>(outputs * out_stride), -1.0), slow = fast;
      combine_rows({matrix.data(), outputs, inputs, rows.data(), row_stride, fast.data(), out_stride, columns});
      combine_rows_reference({matrix.data(), outputs, inputs, rows.data(), row_stride, slow.data(), out_stride, columns});
      CHECK(same_bits(fast, slow));  // the padding between rows untouched by both
      // The dense form is the strided one with strides equal to the columns.
      const std::vector<double> dense_rows = random_values(rng, inputs * columns);
      std::vector<double> dense(static_cast<size_t>(outputs * columns)), dense_slow = dense;
      combine_rows(matrix.data(), outputs, inputs, dense_rows.data(), columns, dense.data());
      combine_rows_reference({matrix.data(), outputs, inputs, dense_rows.data(), columns, dense_slow.data(), columns, columns});
      CHECK(same_bits(dense, dense_slow));
    }
  }
  // The check can fail: a different order of the sums changes some bits.
  const std::vector<double> matrix{1.0, 1e16, -1e16}, rows{1.0, 1.0, 1.0};
  double out = 0.0;
  combine_rows(matrix.data(), 1, 3, rows.data(), 1, &out);
  CHECK(out == 0.0);  // (1 + 1e16) − 1e16 in this order, where the other order gives 1
}

TEST_CASE("the interpolator's strided column form equals its dense form, and its one-column form to rounding") {
  Rng rng(11);
  for (int64_t degree : {0, 1, 4}) {
    const ChebyshevInterpolator interpolator(degree);
    const int64_t terms = degree + 1, columns = 300, stride = 517;
    const std::vector<double> values = random_values(rng, terms * stride);
    std::vector<double> strided(static_cast<size_t>(terms * columns)), dense = strided, packed(static_cast<size_t>(terms * columns));
    interpolator.coefficients_of_columns(values.data(), stride, columns, strided.data());
    for (int64_t k = 0; k < terms; ++k)
      for (int64_t u = 0; u < columns; ++u) packed[static_cast<size_t>(k * columns + u)] = values[static_cast<size_t>(k * stride + u)];
    interpolator.coefficients_of_columns(packed.data(), columns, dense.data());
    CHECK(same_bits(strided, dense));
    // The one-column form is a scalar loop, which a native build may contract differently: equal to rounding.
    for (int64_t u = 0; u < columns; ++u) {
      std::vector<double> one(static_cast<size_t>(terms));
      interpolator.coefficients(values.data() + u, stride, one.data());
      for (int64_t k = 0; k < terms; ++k) CHECK(std::abs(strided[static_cast<size_t>(k * columns + u)] - one[static_cast<size_t>(k)]) <= 1e-14 * (1.0 + std::abs(one[static_cast<size_t>(k)])));
    }
  }
}

}  // namespace ks
