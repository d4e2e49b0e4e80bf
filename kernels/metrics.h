// Numbers that compare kernels: alignment, centered alignment (CKA), target alignment, Fort et al.'s kernel distance,
// effective rank. Inputs are Gram matrices as Tensors; nothing here computes a kernel.
#pragma once

#include <vector>

#include "autodiff/tensor.h"

namespace ks {

// ⟨K₁, K₂⟩_F / (‖K₁‖_F ‖K₂‖_F), uncentered.
double kernel_alignment(const Tensor& first, const Tensor& second);
// The same after centering both with H = I − 11ᵀ/n (CKA). Square kernels only.
double centered_kernel_alignment(const Tensor& first, const Tensor& second);
// yᵀKy / (‖K‖_F ‖y‖²) with y = ±1 from 0/1 labels.
double target_alignment(const Tensor& kernel, const std::vector<int>& labels);
// Fort et al. 2020: 1 − uncentered alignment.
double kernel_distance(const Tensor& first, const Tensor& second);

struct EffectiveRank {
  double trace_ratio = 0.0;  // trace / λ_max
  double entropy = 0.0;      // exp(−Σ p_k log p_k), p_k = λ_k / Σλ, over the positive eigenvalues
};
EffectiveRank effective_rank(const Tensor& kernel);
// Several at once, one per thread (each eigenvalue problem is single-threaded: minutes at 10⁴ points), as effective_rank.
std::vector<EffectiveRank> effective_ranks(const std::vector<const Tensor*>& kernels);

}  // namespace ks
