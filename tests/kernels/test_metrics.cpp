// Kernel metrics on matrices with known answers.
#include <doctest/doctest.h>

#include "kernels/metrics.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("alignment, CKA, distance and effective rank on kernels with known answers") {
  Rng rng(5);
  const Tensor features = test::random_tensor({12, 4}, rng);
  Tensor K({12, 12});
  K.matrix() = features.matrix() * features.matrix().transpose();
  CHECK(kernel_alignment(K, K) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(centered_kernel_alignment(K, K) == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(kernel_distance(K, K) == doctest::Approx(0.0).epsilon(1e-14));
  // A positive multiple changes nothing.
  Tensor twice = K;
  twice.vector() *= 3.0;
  CHECK(kernel_alignment(K, twice) == doctest::Approx(1.0).epsilon(1e-14));

  // Block-orthogonal kernels (one lives on the first half of the points, the other on the second): alignment 0.
  Tensor first({6, 6}), second({6, 6});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      first[i * 6 + j] = 1.0 + (i == j);
      second[(i + 3) * 6 + j + 3] = 2.0 + (i == j);
    }
  CHECK(kernel_alignment(first, second) == 0.0);
  CHECK(kernel_distance(first, second) == 1.0);
  // Orthogonal after centering too: block-diagonal centred identities on disjoint halves with zero-mean patterns.
  Tensor a({4, 4}), b({4, 4});
  a.matrix() << 1, -1, 0, 0, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0;
  b.matrix() << 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, -1, 0, 0, -1, 1;
  CHECK(centered_kernel_alignment(a, b) == doctest::Approx(0.0).epsilon(1e-15));

  // Target alignment: the ideal kernel yyᵀ has alignment 1 with its labels, and −yyᵀ has −1.
  const std::vector<int> labels{0, 1, 1, 0};
  Tensor ideal({4, 4});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j) ideal[i * 4 + j] = (labels[static_cast<size_t>(i)] ? 1.0 : -1.0) * (labels[static_cast<size_t>(j)] ? 1.0 : -1.0);
  CHECK(target_alignment(ideal, labels) == doctest::Approx(1.0).epsilon(1e-15));
  ideal.vector() *= -1.0;
  CHECK(target_alignment(ideal, labels) == doctest::Approx(-1.0).epsilon(1e-15));

  // Effective rank: the identity of size n has both ranks n; a rank-one kernel has both 1; diag(2, 1, 1): trace/λmax = 2.
  Tensor identity({5, 5});
  identity.matrix().setIdentity();
  CHECK(effective_rank(identity).trace_ratio == doctest::Approx(5.0));
  CHECK(effective_rank(identity).entropy == doctest::Approx(5.0));
  Tensor rank_one({5, 5});
  rank_one.matrix().setOnes();
  CHECK(effective_rank(rank_one).entropy == doctest::Approx(1.0));
  Tensor diagonal({3, 3});
  diagonal.matrix().diagonal() << 2, 1, 1;
  CHECK(effective_rank(diagonal).trace_ratio == doctest::Approx(2.0));
  CHECK(effective_rank(diagonal).entropy == doctest::Approx(std::exp(-(0.5 * std::log(0.5) + 0.5 * std::log(0.25)))));

  CHECK_THROWS_WITH(kernel_alignment(K, identity), doctest::Contains("different shapes"));
  CHECK_THROWS_WITH(target_alignment(identity, {0, 1}), doctest::Contains("2 labels"));
  CHECK_THROWS_WITH(effective_rank(Tensor({2, 3})), doctest::Contains("square"));
}

}  // namespace ks

namespace ks {

TEST_CASE("effective_ranks computes several spectra at once, each bit for bit as effective_rank, and rethrows an error") {
  Rng rng(12);
  std::vector<Tensor> kernels;
  for (int64_t n : {5, 9, 7}) {
    const Tensor features = test::random_tensor({n, 3}, rng);
    Tensor K({n, n});
    K.matrix() = features.matrix() * features.matrix().transpose();
    kernels.push_back(K);
  }
  const std::vector<EffectiveRank> ranks = effective_ranks({&kernels[0], &kernels[1], &kernels[2]});
  REQUIRE(ranks.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    const EffectiveRank alone = effective_rank(kernels[k]);
    CHECK(ranks[k].trace_ratio == alone.trace_ratio);
    CHECK(ranks[k].entropy == alone.entropy);
  }
  CHECK(ranks[0].entropy != ranks[1].entropy);
  const Tensor zero({4, 4});
  CHECK_THROWS_WITH_AS(effective_ranks({&kernels[0], &zero}), doctest::Contains("no positive eigenvalue"), std::invalid_argument);
}

}  // namespace ks
