// max-pooling's branch-free forward against the branching reference, bit for bit: values, argmax, ties and NaNs.
// Finite-difference checks of the pooling ops live in test_gradcheck.cpp; this file only compares fast against slow.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "autodiff/ops.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("maxpool2d_forward picks the same window element as the reference, ties and NaNs included") {
  Rng rng(17);
  // Few distinct values, so windows hold ties; a negative zero beside a zero, and NaNs, where only the order decides.
  const double values[] = {-1.0, -0.0, 0.0, 0.5, 0.5, 2.0, std::numeric_limits<double>::quiet_NaN()};
  for (int trial = 0; trial < 60; ++trial) {
    Pool2dGeometry g;
    g.batch = 1 + static_cast<int64_t>(rng.below(3));
    g.channels = 1 + static_cast<int64_t>(rng.below(3));
    g.kernel = 1 + static_cast<int64_t>(rng.below(3));
    g.stride = 1 + static_cast<int64_t>(rng.below(3));
    g.height = g.kernel + static_cast<int64_t>(rng.below(6));
    g.width = g.kernel + static_cast<int64_t>(rng.below(6));
    const int64_t size = g.batch * g.channels * g.height * g.width, outputs = g.batch * g.channels * g.out_height() * g.out_width();
    std::vector<double> input(static_cast<size_t>(size));
    for (double& v : input) v = values[rng.below(trial % 2 ? 7 : 6)];  // NaNs in every other trial
    std::vector<double> fast(static_cast<size_t>(outputs)), slow(static_cast<size_t>(outputs));
    std::vector<int64_t> fast_index(static_cast<size_t>(outputs)), slow_index(static_cast<size_t>(outputs));
    maxpool2d_forward(fast.data(), fast_index.data(), input.data(), g);
    maxpool2d_forward_reference(slow.data(), slow_index.data(), input.data(), g);
    INFO("trial " << trial << ": k=" << g.kernel << " stride=" << g.stride << " H=" << g.height << " W=" << g.width);
    CHECK(fast_index == slow_index);
    CHECK(std::memcmp(fast.data(), slow.data(), sizeof(double) * fast.size()) == 0);
  }
}

}  // namespace ks
