// conv2d's im2col + GEMM path against the naive direct convolution, forward and backward, on random geometries.
// Finite-difference checks of conv2d live in test_gradcheck.cpp; this file only compares fast against slow.
#include <doctest/doctest.h>

#include "autodiff/ops.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("conv2d equals the naive reference within 1e-12 on random shapes, strides and paddings") {
  Rng rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    Conv2dGeometry g;
    g.batch = 1 + static_cast<int64_t>(rng.below(trial < 35 ? 4 : 40));  // a few batches span several chunks
    g.in_channels = 1 + static_cast<int64_t>(rng.below(4));
    g.out_channels = 1 + static_cast<int64_t>(rng.below(5));
    g.kernel = 1 + static_cast<int64_t>(rng.below(5));
    g.stride = 1 + static_cast<int64_t>(rng.below(3));
    g.padding = static_cast<int64_t>(rng.below(3));
    g.height = g.kernel + static_cast<int64_t>(rng.below(8));
    g.width = g.kernel + static_cast<int64_t>(rng.below(8));
    const Tensor input = test::random_tensor({g.batch, g.in_channels, g.height, g.width}, rng);
    const Tensor weight = test::random_tensor({g.out_channels, g.in_channels, g.kernel, g.kernel}, rng);
    const Tensor bias = test::random_tensor({g.out_channels}, rng);
    const Shape out_shape{g.batch, g.out_channels, g.out_height(), g.out_width()};
    Tensor fast(out_shape), slow(out_shape);
    conv2d_forward(fast.data(), input.data(), weight.data(), bias.data(), g);
    conv2d_forward_reference(slow.data(), input.data(), weight.data(), bias.data(), g);
    INFO("trial " << trial << ": N=" << g.batch << " C=" << g.in_channels << " O=" << g.out_channels << " k=" << g.kernel
                  << " stride=" << g.stride << " pad=" << g.padding << " H=" << g.height << " W=" << g.width);
    CHECK(test::relative_error(fast, slow) < 1e-12);

    const Tensor upstream = test::random_tensor(out_shape, rng);
    // Start from the same non-zero gradients: both must add.
    Tensor dinp_fast = test::random_tensor(input.shape(), rng), dinp_slow = dinp_fast;
    Tensor dweight_fast = test::random_tensor(weight.shape(), rng), dweight_slow = dweight_fast;
    Tensor dbias_fast = test::random_tensor(bias.shape(), rng), dbias_slow = dbias_fast;
    conv2d_backward(dinp_fast.data(), dweight_fast.data(), dbias_fast.data(), upstream.data(), input.data(),
                    weight.data(), g);
    conv2d_backward_reference(dinp_slow.data(), dweight_slow.data(), dbias_slow.data(), upstream.data(), input.data(),
                              weight.data(), g);
    CHECK(test::relative_error(dinp_fast, dinp_slow) < 1e-12);
    CHECK(test::relative_error(dweight_fast, dweight_slow) < 1e-12);
    CHECK(test::relative_error(dbias_fast, dbias_slow) < 1e-12);
  }
}

}  // namespace ks
