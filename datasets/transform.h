// Image transformations for invariance measures and augmentation, on batches (N, C, H, W): whole-pixel translation,
// rotation and zoom with bilinear interpolation, quadrant swap, seeded patch shuffle. Zero fill outside the image; no colour ops.
#pragma once

#include <cstdint>

#include "autodiff/tensor.h"

namespace ks {

// out(y, x) = in(y − dy, x − dx): positive dx moves content right, positive dy down.
Tensor translate_images(const Tensor& images, int64_t dx, int64_t dy);
// Counter-clockwise by `radians` about the image centre, bilinear; a source point within 1e-9 of a pixel is that pixel,
// so quarter turns move pixels exactly.
Tensor rotate_images(const Tensor& images, double radians);
// The central crop × crop square, resized back to H × W bilinearly (pixel centres aligned, as PyTorch's align_corners=False).
Tensor zoom_images(const Tensor& images, int64_t crop);
// Upper-left and lower-right quadrants exchanged (H and W even).
Tensor swap_quadrants(const Tensor& images);
// The image cut into a k × k grid of equal patches, the patches permuted by a permutation drawn from seed (the same for all).
Tensor shuffle_patches(const Tensor& images, int64_t k, uint64_t seed);
// Training augmentation: per image, a rotation uniform in ±max_radians and shifts dx, dy uniform in {−1, 0, 1}, drawn from
// an Rng seeded by (seed, stream): the same seed and stream give the same images.
Tensor augment_images(const Tensor& images, uint64_t seed, uint64_t stream, double max_radians = 15.0 * 3.14159265358979323846 / 180.0);
// Long's augmentation as his Keras code runs it: ImageDataGenerator(rotation_range=15, width_shift_range=1,
// height_shift_range=1). An int shift range of 1 draws its shift from range(1), so always 0: per image, only a rotation
// uniform in ±15°, bilinear, the outside filled from the nearest edge pixel (fill_mode 'nearest', Keras's default).
Tensor keras_augment_images(const Tensor& images, uint64_t seed, uint64_t stream);

}  // namespace ks
