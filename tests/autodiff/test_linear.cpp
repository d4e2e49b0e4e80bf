// The dense layer's blocked, threaded GEMMs against plain loops, forward and backward, and their bits across thread counts.
// Finite-difference checks of linear live in test_gradcheck.cpp; this file only compares fast against slow.
#include <doctest/doctest.h>
#include <omp.h>

#include "autodiff/ops.h"
#include "tests/helpers.h"

namespace ks {

namespace {

struct LinearResult {
  Tensor out, dinp, dweight, dbias;
};

LinearResult run_linear(const Tensor& input, const Tensor& weight, const Tensor& bias, const Tensor& upstream, const Tensor& start_dinp,
                        const Tensor& start_dweight, const Tensor& start_dbias) {
  const int64_t N = input.dim(0), I = input.dim(1), O = weight.dim(0);
  LinearResult r{Tensor({N, O}), start_dinp, start_dweight, start_dbias};
  linear_forward(r.out.data(), input.data(), weight.data(), bias.data(), N, I, O);
  linear_backward(r.dinp.data(), r.dweight.data(), r.dbias.data(), upstream.data(), input.data(), weight.data(), N, I, O);
  return r;
}

}  // namespace

TEST_CASE("linear's feature-blocked GEMMs equal plain loops within 1e-12, add into gradients, and keep their bits for 1, 2 and 4 threads") {
  Rng rng(5);
  // Sizes below and above the threading threshold, with partial feature blocks.
  for (const auto& [N, I, O] : std::vector<std::array<int64_t, 3>>{{3, 5, 7}, {33, 100, 130}, {40, 200, 65}, {7, 300, 1}}) {
    const Tensor input = test::random_tensor({N, I}, rng), weight = test::random_tensor({O, I}, rng), bias = test::random_tensor({O}, rng);
    const Tensor upstream = test::random_tensor({N, O}, rng);
    const Tensor start_dinp = test::random_tensor({N, I}, rng), start_dweight = test::random_tensor({O, I}, rng),
                 start_dbias = test::random_tensor({O}, rng);
    const LinearResult fast = run_linear(input, weight, bias, upstream, start_dinp, start_dweight, start_dbias);

    LinearResult slow{Tensor({N, O}), start_dinp, start_dweight, start_dbias};
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o) {
        double total = bias[o];
        for (int64_t i = 0; i < I; ++i) total += input[n * I + i] * weight[o * I + i];
        slow.out[n * O + o] = total;
        slow.dbias[o] += upstream[n * O + o];
        for (int64_t i = 0; i < I; ++i) {
          slow.dinp[n * I + i] += upstream[n * O + o] * weight[o * I + i];
          slow.dweight[o * I + i] += upstream[n * O + o] * input[n * I + i];
        }
      }
    INFO("N=" << N << " I=" << I << " O=" << O);
    CHECK(test::relative_error(fast.out, slow.out) < 1e-12);
    CHECK(test::relative_error(fast.dinp, slow.dinp) < 1e-12);
    CHECK(test::relative_error(fast.dweight, slow.dweight) < 1e-12);
    CHECK(test::relative_error(fast.dbias, slow.dbias) < 1e-12);

    const int threads = omp_get_max_threads();
    for (int t : {1, 2, 4}) {
      omp_set_num_threads(t);
      const LinearResult again = run_linear(input, weight, bias, upstream, start_dinp, start_dweight, start_dbias);
      CHECK(again.out.values() == fast.out.values());
      CHECK(again.dinp.values() == fast.dinp.values());
      CHECK(again.dweight.values() == fast.dweight.values());
    }
    omp_set_num_threads(threads);
  }
}

}  // namespace ks
