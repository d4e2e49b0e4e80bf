// Pictures by direct pixel writes; PNG encoding is stb_image_write's (libstb-dev). Colour maps are small piecewise-linear
// tables, so the same matrix always gives the same pixels.
#include "render/picture.h"

#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

namespace ks {

namespace {

std::array<uint8_t, 3> interpolate(const std::vector<std::array<double, 3>>& stops, double unit) {
  unit = std::clamp(std::isfinite(unit) ? unit : 0.0, 0.0, 1.0);
  const double position = unit * static_cast<double>(stops.size() - 1);
  const size_t k = std::min(static_cast<size_t>(position), stops.size() - 2);
  const double f = position - static_cast<double>(k);
  std::array<uint8_t, 3> colour{};
  for (int c = 0; c < 3; ++c) colour[static_cast<size_t>(c)] = static_cast<uint8_t>(std::lround(255.0 * ((1 - f) * stops[k][static_cast<size_t>(c)] + f * stops[k + 1][static_cast<size_t>(c)])));
  return colour;
}

void append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

Picture::Picture(int64_t w, int64_t h, uint8_t fill) : width(w), height(h), rgb(static_cast<size_t>(w * h * 3), fill) {
  if (w <= 0 || h <= 0) throw std::invalid_argument("Picture: size " + std::to_string(w) + " x " + std::to_string(h) + " must be positive");
}

void Picture::set(int64_t x, int64_t y, const std::array<uint8_t, 3>& colour) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  std::copy(colour.begin(), colour.end(), rgb.begin() + (y * width + x) * 3);
}

std::array<uint8_t, 3> sequential_colour(double unit) {
  // Close to matplotlib's viridis at five stops.
  static const std::vector<std::array<double, 3>> stops{{0.267, 0.005, 0.329}, {0.230, 0.322, 0.546}, {0.128, 0.567, 0.551}, {0.369, 0.789, 0.383}, {0.993, 0.906, 0.144}};
  return interpolate(stops, unit);
}

std::array<uint8_t, 3> diverging_colour(double unit) {
  static const std::vector<std::array<double, 3>> stops{{0.020, 0.188, 0.380}, {0.400, 0.655, 0.812}, {0.969, 0.969, 0.969}, {0.957, 0.647, 0.510}, {0.404, 0.000, 0.122}};
  return interpolate(stops, unit);
}

Picture heatmap(const Tensor& matrix, int64_t cell, std::pair<double, double>* range) {
  if (matrix.rank() != 2) throw ShapeError("heatmap: a matrix is needed, got " + shape_string(matrix.shape()));
  const int64_t rows = matrix.dim(0), columns = matrix.dim(1);
  double low = matrix.numel() ? matrix[0] : 0.0, high = low;
  for (int64_t i = 0; i < matrix.numel(); ++i) {
    low = std::min(low, matrix[i]);
    high = std::max(high, matrix[i]);
  }
  const bool diverging = low < 0.0 && high > 0.0;
  if (diverging) {
    high = std::max(-low, high);
    low = -high;
  }
  if (range) *range = {low, high};
  Picture picture(columns * cell, rows * cell);
  const double span = high > low ? high - low : 1.0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c) {
      const double unit = (matrix[r * columns + c] - low) / span;
      const std::array<uint8_t, 3> colour = diverging ? diverging_colour(unit) : sequential_colour(unit);
      for (int64_t y = 0; y < cell; ++y)
        for (int64_t x = 0; x < cell; ++x) picture.set(c * cell + x, r * cell + y, colour);
    }
  return picture;
}

Picture colour_bar(bool diverging, int64_t width, int64_t height) {
  Picture picture(width, height);
  for (int64_t x = 0; x < width; ++x) {
    const double unit = width > 1 ? static_cast<double>(x) / static_cast<double>(width - 1) : 0.0;
    for (int64_t y = 0; y < height; ++y) picture.set(x, y, diverging ? diverging_colour(unit) : sequential_colour(unit));
  }
  return picture;
}

Picture image_picture(const double* pixels, int64_t channels, int64_t height, int64_t width, int64_t scale) {
  if (channels != 1 && channels != 3) throw std::invalid_argument("image_picture: 1 or 3 channels, got " + std::to_string(channels));
  Picture picture(width * scale, height * scale);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      std::array<uint8_t, 3> colour{};
      for (int64_t c = 0; c < 3; ++c) {
        const double value = pixels[((channels == 1 ? 0 : c) * height + y) * width + x];
        colour[static_cast<size_t>(c)] = static_cast<uint8_t>(std::lround(255.0 * std::clamp(value, 0.0, 1.0)));
      }
      for (int64_t dy = 0; dy < scale; ++dy)
        for (int64_t dx = 0; dx < scale; ++dx) picture.set(x * scale + dx, y * scale + dy, colour);
    }
  return picture;
}

Picture side_by_side(const std::vector<Picture>& pictures, int64_t gap) {
  if (pictures.empty()) throw std::invalid_argument("side_by_side: no pictures");
  int64_t width = -gap, height = 0;
  for (const Picture& p : pictures) {
    width += p.width + gap;
    height = std::max(height, p.height);
  }
  Picture out(width, height);
  int64_t left = 0;
  for (const Picture& p : pictures) {
    for (int64_t y = 0; y < p.height; ++y) std::copy_n(p.rgb.begin() + y * p.width * 3, p.width * 3, out.rgb.begin() + (y * width + left) * 3);
    left += p.width + gap;
  }
  return out;
}

Picture decision_regions(const std::function<double(double, double)>& f, double x0, double x1, double y0, double y1, int64_t size,
                         const Tensor& points, const std::vector<int>& labels) {
  Picture picture(size, size);
  auto to_x = [&](int64_t px) { return x0 + (static_cast<double>(px) + 0.5) / static_cast<double>(size) * (x1 - x0); };
  auto to_y = [&](int64_t py) { return y1 - (static_cast<double>(py) + 0.5) / static_cast<double>(size) * (y1 - y0); };
  for (int64_t py = 0; py < size; ++py)
    for (int64_t px = 0; px < size; ++px) {
      const double value = f(to_x(px), to_y(py));
      const double strength = 0.25 + 0.35 * std::min(1.0, std::abs(value) / 3.0);
      const std::array<double, 3> hue = value > 0 ? std::array<double, 3>{1.0, 0.55, 0.1} : std::array<double, 3>{0.15, 0.4, 0.85};
      std::array<uint8_t, 3> colour{};
      for (size_t c = 0; c < 3; ++c) colour[c] = static_cast<uint8_t>(std::lround(255.0 * (1.0 - strength * (1.0 - hue[c]))));
      picture.set(px, py, colour);
    }
  for (int64_t n = 0; n < points.dim(0); ++n) {
    const int64_t cx = std::lround((points[n * 2] - x0) / (x1 - x0) * static_cast<double>(size) - 0.5);
    const int64_t cy = std::lround((y1 - points[n * 2 + 1]) / (y1 - y0) * static_cast<double>(size) - 0.5);
    const std::array<uint8_t, 3> colour = labels[static_cast<size_t>(n)] ? std::array<uint8_t, 3>{170, 70, 0} : std::array<uint8_t, 3>{10, 40, 130};
    for (int64_t dy = -2; dy <= 2; ++dy)
      for (int64_t dx = -2; dx <= 2; ++dx)
        if (dx * dx + dy * dy <= 5) picture.set(cx + dx, cy + dy, colour);
  }
  return picture;
}

std::string png_bytes(const Picture& picture) {
  std::string bytes;
  if (!stbi_write_png_to_func(append, &bytes, static_cast<int>(picture.width), static_cast<int>(picture.height), 3, picture.rgb.data(), static_cast<int>(picture.width * 3)))
    throw std::runtime_error("png_bytes: stb_image_write failed");
  return bytes;
}

void write_png(const std::filesystem::path& path, const Picture& picture) {
  const std::string bytes = png_bytes(picture);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file || std::fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size()) {
    if (file) std::fclose(file);
    throw std::runtime_error("write_png: cannot write " + path.string());
  }
  if (std::fclose(file) != 0) throw std::runtime_error("write_png: cannot write " + path.string());
}

}  // namespace ks
