// Pictures: the PNG bytes decode back to the same pixels, heatmaps span their range with the map's end colours, and the
// image, side-by-side and decision-region pictures put known pixels where they belong.
#include <doctest/doctest.h>

#include <stb_image.h>

#include "render/picture.h"
#include "tests/helpers.h"

namespace ks {

namespace {

std::array<uint8_t, 3> pixel(const Picture& picture, int64_t x, int64_t y) {
  const size_t at = static_cast<size_t>((y * picture.width + x) * 3);
  return {picture.rgb[at], picture.rgb[at + 1], picture.rgb[at + 2]};
}

}  // namespace

TEST_CASE("png_bytes decodes back to the same pixels") {
  Picture picture(7, 5);
  Rng rng(3);
  for (uint8_t& byte : picture.rgb) byte = static_cast<uint8_t>(rng.next_u64() & 255);
  const std::string bytes = png_bytes(picture);
  CHECK(bytes.substr(1, 3) == "PNG");
  int width = 0, height = 0, channels = 0;
  unsigned char* decoded = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), &width, &height, &channels, 3);
  REQUIRE(decoded != nullptr);
  CHECK(width == 7);
  CHECK(height == 5);
  CHECK(std::equal(picture.rgb.begin(), picture.rgb.end(), decoded));
  stbi_image_free(decoded);
}

TEST_CASE("heatmap: cells of the right size, range reported, map ends at the extremes") {
  Tensor positive({2, 3});
  for (int64_t i = 0; i < 6; ++i) positive[i] = 1.0 + static_cast<double>(i);
  std::pair<double, double> range;
  const Picture picture = heatmap(positive, 4, &range);
  CHECK(picture.width == 12);
  CHECK(picture.height == 8);
  CHECK(range == std::pair<double, double>(1.0, 6.0));
  CHECK(pixel(picture, 0, 0) == sequential_colour(0.0));   // the minimum, top-left cell
  CHECK(pixel(picture, 3, 3) == sequential_colour(0.0));   // the whole cell
  CHECK(pixel(picture, 11, 7) == sequential_colour(1.0));  // the maximum, bottom-right cell
  CHECK(pixel(picture, 4, 0) == sequential_colour(0.2));

  Tensor signed_matrix({1, 2});
  signed_matrix[0] = -1.0;
  signed_matrix[1] = 3.0;
  const Picture diverging = heatmap(signed_matrix, 1, &range);
  CHECK(range == std::pair<double, double>(-3.0, 3.0));  // symmetric about 0, so white means 0
  CHECK(pixel(diverging, 1, 0) == diverging_colour(1.0));
  CHECK(pixel(diverging, 0, 0) == diverging_colour(1.0 / 3.0));
  CHECK(colour_bar(true, 10, 2).width == 10);
}

TEST_CASE("image_picture, side_by_side and decision_regions put pixels where they belong") {
  const double grey[4] = {0.0, 1.0, 0.5, 0.25};  // (1, 2, 2)
  const Picture image = image_picture(grey, 1, 2, 2, 3);
  CHECK(image.width == 6);
  CHECK(pixel(image, 0, 0) == std::array<uint8_t, 3>{0, 0, 0});
  CHECK(pixel(image, 5, 2) == std::array<uint8_t, 3>{255, 255, 255});
  CHECK(pixel(image, 1, 4)[0] == 128);
  const double rgb[3] = {1.0, 0.0, 0.0};  // (3, 1, 1)
  CHECK(pixel(image_picture(rgb, 3, 1, 1, 1), 0, 0) == std::array<uint8_t, 3>{255, 0, 0});

  const Picture both = side_by_side({image, image_picture(rgb, 3, 1, 1, 2)}, 4);
  CHECK(both.width == 6 + 4 + 2);
  CHECK(both.height == 6);
  CHECK(pixel(both, 10, 0) == std::array<uint8_t, 3>{255, 0, 0});
  CHECK(pixel(both, 7, 0) == std::array<uint8_t, 3>{255, 255, 255});  // the gap

  // f > 0 on the right half: the two halves differ in colour and each half is one hue family.
  const Tensor no_points({0, 2});
  const Picture regions = decision_regions([](double x, double) { return x; }, -1, 1, -1, 1, 20, no_points, {});
  const auto left = pixel(regions, 2, 10), right = pixel(regions, 17, 10);
  CHECK(left[2] > left[0]);    // blue side
  CHECK(right[0] > right[2]);  // orange side
  CHECK_THROWS_AS(heatmap(Tensor({3}), 2), ShapeError);
}

}  // namespace ks
