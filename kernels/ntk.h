// Empirical tangent kernels K(x, x') = ⟨∇θ f(x), ∇θ f(x')⟩ at a given θ (neural-tangents' kernel_fn(x1, x2, params)), built from fixed-size tiles,
// by Jacobian contraction or by the structured (Novak et al. 2022) contraction, chosen per layer; plus the conjugate kernel.
// θ is always an argument: these functions choose no parameters (θ_0, θ_T, θ_s) and change nothing they are given.
#pragma once

#include <functional>
#include <string>

#include "kernels/trace.h"

namespace ks {

enum class KernelMethod { automatic, jacobian, structured };
std::string kernel_method_name(KernelMethod method);  // "auto", "jacobian", "structured"
KernelMethod parse_kernel_method(const std::string& name);

struct NtkOptions {
  KernelMethod method = KernelMethod::automatic;
  bool trace_outputs = false;          // C outputs: Σ_c K_cc blocks, (N, M) instead of (N·C, M·C)
  double memory_budget_bytes = 2e9;    // for the resident panel of per-sample gradients
  std::function<void(int64_t done, int64_t total)> progress;  // called from one thread at a time
};

// Rows follow inputs_a (row n·C + c), columns inputs_b; when inputs_b is null the Gram of inputs_a with itself,
// computed once per pair of tiles and mirrored, so it is exactly symmetric.
Tensor ntk_gram(const Sequential& model, const Parameters& theta, const Tensor& inputs_a, const Tensor* inputs_b, const NtkOptions& options = {});
// K(x, x) for every row without the full Gram: (N·C) or (N) with trace_outputs.
Tensor ntk_diagonal(const Sequential& model, const Parameters& theta, const Tensor& inputs, const NtkOptions& options = {});

// φ(x): the input of the last parameterised (the final Linear) layer, (N, F); and K = φ_a φ_bᵀ.
Tensor conjugate_features(const Sequential& model, const Parameters& theta, const Tensor& inputs);
Tensor conjugate_kernel(const Sequential& model, const Parameters& theta, const Tensor& inputs_a, const Tensor* inputs_b);
Tensor feature_gram(const Tensor& features_a, const Tensor& features_b);  // φ_a φ_bᵀ, entry by entry (size-independent bits)

// K(x, x') / sqrt(K(x, x) K(x', x')).
Tensor cosine_normalise(const Tensor& gram, const Tensor& diagonal_rows, const Tensor& diagonal_columns);

// Which method the cost model picks for each parameterised layer (for reports and tests).
std::vector<KernelMethod> chosen_methods(const Sequential& model, const Shape& sample_shape, KernelMethod requested);

}  // namespace ks
