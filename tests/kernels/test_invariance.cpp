// Invariance scores: exactly 1 for the identity, below 1 for a real transformation, and the same as cosines of the full Gram.
#include <doctest/doctest.h>

#include "datasets/transform.h"
#include "kernels/invariance.h"
#include "kernels/ntk.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("the invariance score is exactly 1 for the identity and matches the full NTK's cosines otherwise") {
  for (const char* spec : {"conv:4,M", "conv:2,R,M,R3"}) {  // plain and residual
    INFO(spec);
    Rng rng(2);
    const test::Network network_ = test::network({spec, {1, 8, 8}, 1, InitKind::glorot_uniform, 3});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    const Tensor images = test::random_inputs({1, 8, 8}, 37, rng);  // more than one tile
    CHECK(invariance_score(*model, theta, images, images) == 1.0);
    const Tensor shifted = translate_images(images, 1, 0);
    const Tensor cosines = paired_ntk_cosines(*model, theta, images, shifted);
    const double score = invariance_score(*model, theta, images, shifted);
    CHECK(score < 1.0);
    // Reference: the full Gram of [images; shifted] and its diagonal.
    const int64_t N = images.dim(0);
    Tensor both({2 * N, 1, 8, 8});
    std::copy_n(images.data(), images.numel(), both.data());
    std::copy_n(shifted.data(), shifted.numel(), both.data() + images.numel());
    const Tensor K = ntk_gram(*model, theta, both, nullptr);
    for (int64_t n = 0; n < N; ++n) {
      const double expected = K[n * 2 * N + N + n] / std::sqrt(K[n * 2 * N + n] * K[(N + n) * 2 * N + N + n]);
      CHECK(cosines[n] == doctest::Approx(expected).epsilon(1e-12));
    }
    CHECK_THROWS_WITH(invariance_score(*model, theta, images, Tensor({3, 1, 8, 8})), doctest::Contains("same shape"));
  }
}

}  // namespace ks
