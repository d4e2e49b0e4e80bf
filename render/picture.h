// RGB pictures for reports, written as PNG with stb_image_write: kernel heatmaps, image strips, decision regions.
// Pixels only: captions, colour-scale ranges and numbers are written beside the pictures by the report, not drawn in them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "autodiff/tensor.h"

namespace ks {

struct Picture {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes per pixel
  Picture() = default;
  Picture(int64_t width, int64_t height, uint8_t fill = 255);
  void set(int64_t x, int64_t y, const std::array<uint8_t, 3>& colour);
};

// Colour maps on [0, 1]: a perceptual blue-to-yellow ramp (values), and blue-white-red (signed values mapped to [0, 1]).
std::array<uint8_t, 3> sequential_colour(double unit);
std::array<uint8_t, 3> diverging_colour(double unit);

// A matrix as a heatmap, each entry a cell × cell square. Signed matrices use the diverging map symmetric about 0, others
// the sequential map from min to max; `range` receives the (low, high) the colours span.
Picture heatmap(const Tensor& matrix, int64_t cell, std::pair<double, double>* range = nullptr);
// The colour bar of the same map, width × height, low at the left.
Picture colour_bar(bool diverging, int64_t width, int64_t height);
// One image (C, H, W) with C = 1 (grey) or 3 (RGB), pixels in [0, 1], each pixel scale × scale.
Picture image_picture(const double* pixels, int64_t channels, int64_t height, int64_t width, int64_t scale);
// Side by side with `gap` white pixels between.
Picture side_by_side(const std::vector<Picture>& pictures, int64_t gap);
// Decision regions of f over [x0, x1] × [y0, y1] (f > 0: orange, else blue, paler away from the boundary) with the points
// drawn on top (label 1 dark orange, label 0 dark blue).
Picture decision_regions(const std::function<double(double, double)>& f, double x0, double x1, double y0, double y1, int64_t size,
                         const Tensor& points, const std::vector<int>& labels);

void write_png(const std::filesystem::path& path, const Picture& picture);
std::string png_bytes(const Picture& picture);  // the PNG file's bytes, for embedding

}  // namespace ks
