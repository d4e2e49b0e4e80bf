// conv2d's fast forms (panel-free for stride 1 and same size, im2col + panel product otherwise) against the naive direct
// convolution and bit for bit against their references. Finite-difference checks of conv2d live in test_gradcheck.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

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

namespace ks {

TEST_CASE("the register-tiled panel product equals the plain triple loop bit for bit, tile edges and strides included") {
  Rng rng(41);
  for (const PanelShape& shape : {PanelShape{16, 144, 1024, 144, 1032}, PanelShape{13, 7, 53, 9, 60}, PanelShape{1, 1, 1, 1, 1},
                                  PanelShape{144, 16, 256, 16, 256}, PanelShape{27, 1024, 16, 1032, 16}, PanelShape{9, 3, 31, 3, 31},
                                  PanelShape{11, 5, 40, 6, 41}}) {
    INFO(shape.rows << "x" << shape.depth << "x" << shape.columns);
    const Tensor left = test::random_tensor({shape.rows, shape.left_stride}, rng);
    const Tensor panel = test::random_tensor({shape.depth, shape.panel_stride}, rng);
    Tensor fast({shape.rows, shape.columns}), slow({shape.rows, shape.columns});
    panel_product(fast.data(), left.data(), panel.data(), shape);
    panel_product_reference(slow.data(), left.data(), panel.data(), shape);
    CHECK(test::bit_equal(fast, slow));
    CHECK(slow.vector().cwiseAbs().maxCoeff() > 0.0);
  }
}

}  // namespace ks

namespace ks {

TEST_CASE("im2col's one-copy form for stride 1 and same width equals the patch definition value for value") {
  Rng rng(43);
  for (const Conv2dGeometry& g : {Conv2dGeometry{1, 2, 5, 5, 1, 3, 1, 1}, Conv2dGeometry{1, 3, 7, 4, 1, 5, 1, 2}, Conv2dGeometry{1, 1, 6, 6, 1, 1, 1, 0},
                                  Conv2dGeometry{1, 2, 3, 8, 1, 5, 1, 2}}) {
    const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel, stride = Ho * Wo + 3;
    REQUIRE(Wo == g.width);
    const Tensor image = test::random_tensor({g.in_channels, g.height, g.width}, rng);
    std::vector<double> columns(static_cast<size_t>(g.patch_size() * stride), -1.0);
    im2col(columns.data(), image.data(), g, stride, 2);
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t ki = 0; ki < k; ++ki)
        for (int64_t kj = 0; kj < k; ++kj)
          for (int64_t oi = 0; oi < Ho; ++oi)
            for (int64_t oj = 0; oj < Wo; ++oj) {
              const int64_t i = oi - g.padding + ki, j = oj - g.padding + kj;
              const bool inside = i >= 0 && i < g.height && j >= 0 && j < g.width;
              const double expected = inside ? image[(c * g.height + i) * g.width + j] : 0.0;
              CHECK(columns[static_cast<size_t>(((c * k + ki) * k + kj) * stride + 2 + oi * Wo + oj)] == expected);
            }
  }
}

}  // namespace ks

namespace ks {

TEST_CASE("col2im's run form for stride 1 and same width, and its general form, equal the per-element loop bit for bit") {
  Rng rng(59);
  for (const Conv2dGeometry& g : {Conv2dGeometry{1, 2, 5, 5, 1, 3, 1, 1}, Conv2dGeometry{1, 3, 7, 4, 1, 5, 1, 2}, Conv2dGeometry{1, 1, 6, 6, 1, 1, 1, 0},
                                  Conv2dGeometry{1, 2, 3, 8, 1, 5, 1, 2}, Conv2dGeometry{1, 16, 32, 32, 1, 3, 1, 1}, Conv2dGeometry{1, 2, 9, 7, 1, 3, 2, 1},
                                  Conv2dGeometry{1, 2, 6, 6, 1, 3, 1, 0}}) {
    INFO("C=" << g.in_channels << " H=" << g.height << " W=" << g.width << " k=" << g.kernel << " stride=" << g.stride << " pad=" << g.padding);
    const int64_t stride = g.out_height() * g.out_width() + 3;
    const Tensor columns = test::random_tensor({g.patch_size(), stride}, rng);
    // Both add into the same start, negative zeros and magnitudes that make the order of the sums show in the bits.
    Tensor fast = test::random_tensor({g.in_channels, g.height, g.width}, rng, -1e3, 1e3);
    for (int64_t i = 0; i < fast.numel(); i += 5) fast[i] = -0.0;
    Tensor slow = fast;
    col2im(fast.data(), columns.data(), g, stride, 2);
    col2im_reference(slow.data(), columns.data(), g, stride, 2);
    CHECK(test::bit_equal(fast, slow));
  }
}

}  // namespace ks

namespace ks {

namespace {

// The geometries the panel-free forms are checked on: same size (stride 1) with channels above, at and below a register
// tile, widths whose rows are and are not whole vectors, kernels 1, 3 and 5; then two that keep the column panel.
const std::vector<Conv2dGeometry> kFastPathGeometries = {
    {1, 16, 32, 32, 16, 3, 1, 1}, {1, 9, 7, 7, 9, 3, 1, 1}, {1, 3, 28, 28, 6, 3, 1, 1}, {1, 2, 9, 5, 3, 5, 1, 2},  {1, 17, 14, 14, 17, 1, 1, 0},
    {1, 16, 16, 16, 32, 3, 1, 1}, {1, 32, 16, 16, 32, 3, 1, 1},
    {1, 32, 14, 14, 32, 3, 1, 1} /* vgg's second block on 28 × 28 images: 196 = 24·8 + 4 */, {1, 3, 9, 7, 4, 3, 2, 1}, {1, 2, 6, 6, 3, 3, 1, 0}};

std::string describe(const Conv2dGeometry& g) {
  return "C=" + std::to_string(g.in_channels) + " O=" + std::to_string(g.out_channels) + " H=" + std::to_string(g.height) + " W=" +
         std::to_string(g.width) + " k=" + std::to_string(g.kernel) + " stride=" + std::to_string(g.stride) + " pad=" + std::to_string(g.padding);
}

// Magnitudes that make the order of the sums show in the bits, and negative zeros (a skipped term must leave −0.0 alone).
Tensor order_revealing(const Shape& shape, Rng& rng) {
  Tensor values = test::random_tensor(shape, rng, -1e3, 1e3);
  for (int64_t i = 0; i < values.numel(); i += 5) values[i] = -0.0;
  return values;
}

}  // namespace

TEST_CASE("the input gradient without a column panel equals the panel's triple loop folded back by col2im, bit for bit") {
  Rng rng(61);
  for (const Conv2dGeometry& g : kFastPathGeometries) {
    INFO(describe(g));
    const Tensor dout = test::random_tensor({g.out_channels, g.out_height(), g.out_width()}, rng);
    const Tensor weight = test::random_tensor({g.out_channels, g.in_channels, g.kernel, g.kernel}, rng);
    // add: both start from the same values.
    Tensor fast = order_revealing({g.in_channels, g.height, g.width}, rng), slow = fast;
    conv2d_backward_input_sample(fast.data(), dout.data(), weight.data(), g, Accumulate::add);
    conv2d_backward_input_sample_reference(slow.data(), dout.data(), weight.data(), g, Accumulate::add);
    CHECK(test::bit_equal(fast, slow));
    // assign: whatever the image held before (here NaN) is gone, as if it had been zeroed.
    Tensor assigned({g.in_channels, g.height, g.width}), zeroed({g.in_channels, g.height, g.width});
    for (int64_t i = 0; i < assigned.numel(); ++i) assigned[i] = std::nan("");
    conv2d_backward_input_sample(assigned.data(), dout.data(), weight.data(), g, Accumulate::assign);
    conv2d_backward_input_sample_reference(zeroed.data(), dout.data(), weight.data(), g, Accumulate::add);
    CHECK(test::bit_equal(assigned, zeroed));
    CHECK(zeroed.vector().cwiseAbs().maxCoeff() > 0.0);
  }
}

TEST_CASE("the forward without a column panel equals im2col then the panel's triple loop, bit for bit") {
  Rng rng(67);
  for (const Conv2dGeometry& g : kFastPathGeometries) {
    INFO(describe(g));
    const Tensor image = order_revealing({g.in_channels, g.height, g.width}, rng);
    const Tensor weight = test::random_tensor({g.out_channels, g.in_channels, g.kernel, g.kernel}, rng);
    const Tensor bias = test::random_tensor({g.out_channels}, rng);
    Tensor fast({g.out_channels, g.out_height(), g.out_width()}), slow = fast;
    conv2d_forward_sample(fast.data(), image.data(), weight.data(), bias.data(), g);
    conv2d_forward_sample_reference(slow.data(), image.data(), weight.data(), bias.data(), g);
    CHECK(test::bit_equal(fast, slow));
    CHECK(slow.vector().cwiseAbs().maxCoeff() > 0.0);
  }
}

TEST_CASE("the weight gradient from patches read in place equals im2col then the panel's triple loop, bit for bit") {
  Rng rng(71);
  for (const Conv2dGeometry& g : kFastPathGeometries) {
    INFO(describe(g));
    const Tensor image = order_revealing({g.in_channels, g.height, g.width}, rng);
    const Tensor dout = test::random_tensor({g.out_channels, g.out_height(), g.out_width()}, rng);
    Tensor fast({g.patch_size(), g.out_channels}), slow = fast, again = fast;
    conv2d_weight_gradient_sample(fast.data(), image.data(), dout.data(), g);
    conv2d_weight_gradient_sample_reference(slow.data(), image.data(), dout.data(), g);
    CHECK(test::bit_equal(fast, slow));
    CHECK(slow.vector().cwiseAbs().maxCoeff() > 0.0);
    // Patches made once serve several output gradients (the per-sample gradient rows): a second use, the same bits.
    const Conv2dPatches patches = conv2d_patches(image.data(), g);
    conv2d_weight_gradient_from_patches(again.data(), patches, dout.data(), g);
    conv2d_weight_gradient_from_patches(again.data(), patches, dout.data(), g);
    CHECK(test::bit_equal(again, slow));
  }
}

}  // namespace ks
