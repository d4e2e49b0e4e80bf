// Image transformations on small images with known results.
#include <doctest/doctest.h>

#include "datasets/transform.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("translation, rotation, zoom, quadrant swap and patch shuffle move pixels as they should") {
  Rng rng(11);
  const Tensor images = test::random_tensor({2, 3, 6, 6}, rng);
  auto at = [](const Tensor& t, int64_t n, int64_t c, int64_t y, int64_t x) { return t[((n * t.dim(1) + c) * t.dim(2) + y) * t.dim(3) + x]; };

  // A shift moves pixels exactly and fills with zeros.
  const Tensor shifted = translate_images(images, 1, -2);
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 6; ++x) {
      const int64_t sy = y + 2, sx = x - 1;
      const double expected = (sy < 6 && sx >= 0) ? at(images, 1, 2, sy, sx) : 0.0;
      CHECK(at(shifted, 1, 2, y, x) == expected);
    }

  // A quarter turn counter-clockwise is transpose + vertical flip: out(y, x) = in(x, W−1−y), exactly.
  const Tensor turned = rotate_images(images, 3.14159265358979323846 / 2);
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 6; ++x) CHECK(at(turned, 0, 1, y, x) == at(images, 0, 1, x, 5 - y));
  // Four quarter turns and a zero rotation give the image back.
  CHECK(test::bit_equal(rotate_images(images, 0.0), images));
  // A non-trivial angle really interpolates (the check above can fail).
  CHECK_FALSE(test::bit_equal(rotate_images(images, 0.3), images));

  // Zoom of a constant image is constant; zoom with crop = size is the identity.
  Tensor constant({1, 1, 28, 28});
  for (int64_t i = 0; i < constant.numel(); ++i) constant[i] = 0.7;
  const Tensor zoomed = zoom_images(constant, 26);
  for (int64_t i = 0; i < zoomed.numel(); ++i) CHECK(zoomed[i] == doctest::Approx(0.7).epsilon(1e-15));
  CHECK(test::relative_error(zoom_images(images, 6), images) < 1e-15);
  // Zooming a horizontal ramp keeps it a ramp, stretched about the centre.
  Tensor ramp({1, 1, 4, 32});
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 32; ++x) ramp[y * 32 + x] = static_cast<double>(x);
  const Tensor stretched = zoom_images(ramp, 4);
  CHECK(stretched[16] - stretched[15] == doctest::Approx(4.0 / 32.0 * 1.0).epsilon(1e-12));

  // Quadrant swap exchanges upper-left and lower-right, leaves the others, and is its own inverse.
  const Tensor swapped = swap_quadrants(images);
  CHECK(at(swapped, 1, 0, 0, 0) == at(images, 1, 0, 3, 3));
  CHECK(at(swapped, 1, 0, 5, 5) == at(images, 1, 0, 2, 2));
  CHECK(at(swapped, 1, 0, 0, 5) == at(images, 1, 0, 0, 5));
  CHECK(test::bit_equal(swap_quadrants(swapped), images));

  // Patch shuffle is a permutation of pixels: same multiset, same result for the same seed.
  const Tensor shuffled = shuffle_patches(images, 3, 7);
  CHECK(test::bit_equal(shuffled, shuffle_patches(images, 3, 7)));
  std::vector<double> before(images.data(), images.data() + images.numel()), after(shuffled.data(), shuffled.data() + shuffled.numel());
  std::sort(before.begin(), before.end());
  std::sort(after.begin(), after.end());
  CHECK(before == after);

  // Augmentation is reproducible from its seed and stream.
  CHECK(test::bit_equal(augment_images(images, 4, 9), augment_images(images, 4, 9)));
  CHECK_FALSE(test::bit_equal(augment_images(images, 4, 9), augment_images(images, 4, 10)));

  CHECK_THROWS_WITH(swap_quadrants(Tensor({1, 1, 5, 6})), doctest::Contains("even"));
  CHECK_THROWS_WITH(zoom_images(images, 9), doctest::Contains("crop 9"));
  CHECK_THROWS_WITH(translate_images(Tensor({3, 4}), 1, 0), doctest::Contains("(N, C, H, W)"));
}

}  // namespace ks

namespace ks {

TEST_CASE("Long's Keras augmentation: rotations within ±15° with the edges repeated, never a shift, reproducible") {
  Rng rng(8);
  // A constant image stays constant only when the outside is filled from the edge (zeros would darken the corners).
  Tensor flat({6, 1, 8, 8});
  for (int64_t i = 0; i < flat.numel(); ++i) flat[i] = 0.7;
  const Tensor turned = keras_augment_images(flat, 3, 1);
  for (int64_t i = 0; i < turned.numel(); ++i) CHECK(turned[i] == doctest::Approx(0.7).epsilon(1e-15));
  const Tensor ours = augment_images(flat, 3, 1);
  double darkest = 1.0;
  for (int64_t i = 0; i < ours.numel(); ++i) darkest = std::min(darkest, ours[i]);
  CHECK(darkest < 0.5);
  // Rotation only: the centre pixel of an odd-sized image with a bright centre cross stays where it is (a 1-pixel shift
  // would move it), and the cross turns by at most 15°: its arm 2 pixels out moves by 2 sin 15° ≈ 0.52 pixel at most.
  Tensor cross({20, 1, 9, 9});
  for (int64_t n = 0; n < 20; ++n)
    for (int64_t k = 0; k < 9; ++k) cross[(n * 9 + 4) * 9 + k] = cross[(n * 9 + k) * 9 + 4] = 1.0;
  const Tensor moved = keras_augment_images(cross, 5, 2);
  for (int64_t n = 0; n < 20; ++n) {
    CHECK(moved[(n * 9 + 4) * 9 + 4] == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(moved[(n * 9 + 4) * 9 + 6] > 0.45);
  }
  CHECK(test::bit_equal(keras_augment_images(cross, 5, 2), moved));
  CHECK_FALSE(test::bit_equal(keras_augment_images(cross, 5, 3), moved));
}

}  // namespace ks
