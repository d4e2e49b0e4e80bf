// Transformations written as "for every output pixel, where does it come from": one sampling function serves rotation and
// zoom, so both interpolate the same way. Shapes are checked; every function returns a new batch.
#include "datasets/transform.h"
#include "autodiff/math.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "autodiff/random.h"

namespace ks {

namespace {

void check_images(const Tensor& images, const char* what) {
  if (images.rank() != 4) throw ShapeError(std::string(what) + ": images must be (N, C, H, W), got " + shape_string(images.shape()));
}

double snapped(double coordinate) {
  const double nearest = std::round(coordinate);
  return std::abs(coordinate - nearest) < 1e-9 ? nearest : coordinate;
}

// How a sample outside the image is filled: zeros, or the nearest edge pixel (Keras's default fill_mode 'nearest').
enum class Fill { zero, nearest };

// Bilinear sample of one plane (H, W) at (y, x); zero outside, or with `nearest` the point clamped into the image
// first (for linear interpolation the same as repeating the edge pixels, as scipy's mode 'nearest').
double sample(const double* plane, int64_t H, int64_t W, double y, double x, Fill fill) {
  if (fill == Fill::nearest) {
    y = std::clamp(y, 0.0, static_cast<double>(H - 1));
    x = std::clamp(x, 0.0, static_cast<double>(W - 1));
  }
  y = snapped(y);
  x = snapped(x);
  const double y0 = std::floor(y), x0 = std::floor(x);
  const double fy = y - y0, fx = x - x0;
  double total = 0.0;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const double weight = (dy ? fy : 1.0 - fy) * (dx ? fx : 1.0 - fx);
      if (weight == 0.0) continue;
      const int64_t yi = static_cast<int64_t>(y0) + dy, xi = static_cast<int64_t>(x0) + dx;
      if (yi < 0 || yi >= H || xi < 0 || xi >= W) continue;
      total += weight * plane[yi * W + xi];
    }
  return total;
}

// out(y, x) = in(source(y, x)) for every plane, with source given per output pixel.
template <typename Source>
Tensor resample(const Tensor& images, Source source, Fill fill = Fill::zero) {
  Tensor out(images.shape());
  const int64_t planes = images.dim(0) * images.dim(1), H = images.dim(2), W = images.dim(3);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        double sy, sx;
        source(y, x, sy, sx);
        out[(p * H + y) * W + x] = sample(images.data() + p * H * W, H, W, sy, sx, fill);
      }
  return out;
}

Tensor rotate_one(const Tensor& images, double radians, Fill fill = Fill::zero) {
  const double cy = 0.5 * static_cast<double>(images.dim(2) - 1), cx = 0.5 * static_cast<double>(images.dim(3) - 1);
  const double c = math::cos(radians), s = math::sin(radians);
  // Counter-clockwise on screen (y down): the output pixel comes from the inverse rotation of its offset.
  return resample(images, [&](int64_t y, int64_t x, double& sy, double& sx) {
    const double oy = static_cast<double>(y) - cy, ox = static_cast<double>(x) - cx;
    sx = cx + c * ox - s * oy;
    sy = cy + s * ox + c * oy;
  }, fill);
}

}  // namespace

Tensor translate_images(const Tensor& images, int64_t dx, int64_t dy) {
  check_images(images, "translate_images");
  Tensor out(images.shape());
  const int64_t planes = images.dim(0) * images.dim(1), H = images.dim(2), W = images.dim(3);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        const int64_t sy = y - dy, sx = x - dx;
        if (sy >= 0 && sy < H && sx >= 0 && sx < W) out[(p * H + y) * W + x] = images[(p * H + sy) * W + sx];
      }
  return out;
}

Tensor rotate_images(const Tensor& images, double radians) {
  check_images(images, "rotate_images");
  return rotate_one(images, radians);
}

Tensor zoom_images(const Tensor& images, int64_t crop) {
  check_images(images, "zoom_images");
  const int64_t H = images.dim(2), W = images.dim(3);
  if (crop < 1 || crop > std::min(H, W)) throw std::invalid_argument("zoom_images: crop " + std::to_string(crop) + " must be in 1.." + std::to_string(std::min(H, W)));
  const double top = 0.5 * static_cast<double>(H - crop), left = 0.5 * static_cast<double>(W - crop);
  const double sy_scale = static_cast<double>(crop) / static_cast<double>(H), sx_scale = static_cast<double>(crop) / static_cast<double>(W);
  return resample(images, [&](int64_t y, int64_t x, double& sy, double& sx) {
    // Within the crop, clamped to its pixel centres so the edge is repeated rather than faded.
    const double cy = std::clamp((static_cast<double>(y) + 0.5) * sy_scale - 0.5, 0.0, static_cast<double>(crop - 1));
    const double cx = std::clamp((static_cast<double>(x) + 0.5) * sx_scale - 0.5, 0.0, static_cast<double>(crop - 1));
    sy = top + cy;
    sx = left + cx;
  });
}

Tensor swap_quadrants(const Tensor& images) {
  check_images(images, "swap_quadrants");
  const int64_t H = images.dim(2), W = images.dim(3);
  if (H % 2 || W % 2) throw ShapeError("swap_quadrants: height and width must be even, got " + shape_string(images.shape()));
  Tensor out = images;
  const int64_t planes = images.dim(0) * images.dim(1), h = H / 2, w = W / 2;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        out[(p * H + y) * W + x] = images[(p * H + y + h) * W + x + w];
        out[(p * H + y + h) * W + x + w] = images[(p * H + y) * W + x];
      }
  return out;
}

Tensor shuffle_patches(const Tensor& images, int64_t k, uint64_t seed) {
  check_images(images, "shuffle_patches");
  const int64_t H = images.dim(2), W = images.dim(3);
  if (k < 1 || H % k || W % k) throw ShapeError("shuffle_patches: a " + std::to_string(k) + " x " + std::to_string(k) + " grid does not divide " + shape_string(images.shape()));
  Rng rng(seed);
  const std::vector<int64_t> order = rng.permutation(k * k);  // output patch q shows input patch order[q]
  const int64_t ph = H / k, pw = W / k, planes = images.dim(0) * images.dim(1);
  Tensor out(images.shape());
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t q = 0; q < k * k; ++q) {
      const int64_t from = order[static_cast<size_t>(q)];
      for (int64_t y = 0; y < ph; ++y)
        for (int64_t x = 0; x < pw; ++x)
          out[(p * H + (q / k) * ph + y) * W + (q % k) * pw + x] = images[(p * H + (from / k) * ph + y) * W + (from % k) * pw + x];
    }
  return out;
}

namespace {

// Every image of the batch through transform(rng, image) (image: (1, C, H, W)), one Rng for the batch seeded by
// (seed, stream) and drawn from in image order: the same seed and stream give the same images.
template <typename Transform>
Tensor each_image(const Tensor& images, uint64_t seed, uint64_t stream, const Transform& transform) {
  Rng rng(seed * 0x9E3779B97F4A7C15ULL + stream + 1);
  const int64_t N = images.dim(0), size = images.numel() / N;
  Tensor out(images.shape());
  Shape one = images.shape();
  one[0] = 1;
  for (int64_t n = 0; n < N; ++n) {
    const Tensor image(one, std::vector<double>(images.data() + n * size, images.data() + (n + 1) * size));
    const Tensor changed = transform(rng, image);
    std::copy_n(changed.data(), size, out.data() + n * size);
  }
  return out;
}

}  // namespace

Tensor keras_augment_images(const Tensor& images, uint64_t seed, uint64_t stream) {
  check_images(images, "keras_augment_images");
  return each_image(images, seed, stream, [](Rng& rng, const Tensor& image) {
    const double degrees = rng.uniform(-15.0, 15.0);  // ROTATION_RANGE; width_shift_range = 1 draws only 0
    return rotate_one(image, degrees * 3.14159265358979323846 / 180.0, Fill::nearest);
  });
}

Tensor augment_images(const Tensor& images, uint64_t seed, uint64_t stream, double max_radians) {
  check_images(images, "augment_images");
  return each_image(images, seed, stream, [max_radians](Rng& rng, const Tensor& image) {
    const double angle = rng.uniform(-max_radians, max_radians);
    const int64_t dx = static_cast<int64_t>(rng.below(3)) - 1, dy = static_cast<int64_t>(rng.below(3)) - 1;
    return translate_images(rotate_one(image, angle), dx, dy);
  });
}

}  // namespace ks
