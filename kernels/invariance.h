// Invariance of a tangent kernel to a transformation T: the mean over images of the cosine K(x, Tx) / sqrt(K(x, x) K(Tx, Tx)),
// with K the NTK (traced over outputs) at a given θ. It does not transform images (datasets/transform.h does).
#pragma once

#include "nn/layers.h"

namespace ks {

// K(a_n, b_n) / sqrt(K(a_n, a_n) K(b_n, b_n)) for every n: (N). a and b must have the same shape.
Tensor paired_ntk_cosines(const Sequential& model, const Parameters& theta, const Tensor& a, const Tensor& b);
// The mean of paired_ntk_cosines(images, transformed).
double invariance_score(const Sequential& model, const Parameters& theta, const Tensor& images, const Tensor& transformed);

}  // namespace ks
