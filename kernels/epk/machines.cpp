// The kernel machines of the exact path kernel and its approximations: names, class decisions, errors against the
// network, the fixed-kernel machines (NTK at θ_0, after kernel at θ_T) and the top attributions. No replay here.
#include "kernels/epk/machines.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ks {

std::string path_kernel_name(PathKernel kind) {
  switch (kind) {
    case PathKernel::exact: return "exact";
    case PathKernel::ntk_init: return "ntk-init";
    case PathKernel::after: return "after";
    case PathKernel::domingos: return "domingos";
  }
  return "?";
}

PathKernel parse_path_kernel(const std::string& name) {
  for (PathKernel kind : {PathKernel::exact, PathKernel::ntk_init, PathKernel::after, PathKernel::domingos})
    if (name == path_kernel_name(kind)) return kind;
  throw std::invalid_argument("unknown path kernel '" + name + "' (use exact, ntk-init, after or domingos)");
}


void error_summary(KernelMachine& machine, const Tensor& network) {
  const int64_t M = network.dim(0), C = network.dim(1);
  machine.max_abs_error = 0.0;
  machine.max_rel_error = 0.0;
  machine.decisions_agree = true;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t c = 0; c < C; ++c) {
      const double truth = network[m * C + c], error = std::abs(machine.outputs[m * C + c] - truth);
      machine.max_abs_error = std::max(machine.max_abs_error, error);
      machine.max_rel_error = std::max(machine.max_rel_error, truth != 0.0 ? error / std::abs(truth) : error);
    }
    if (decision(machine.outputs.data() + m * C, C) != decision(network.data() + m * C, C)) machine.decisions_agree = false;
  }
}

KernelMachine fixed_kernel_machine(const FixedKernelInputs& in, const Parameters& theta, KernelMethod method) {
  KernelMachine machine;
  NtkOptions ntk_options;
  ntk_options.method = method;
  const Tensor gram = ntk_gram(in.model, theta, in.test_inputs, &in.train_inputs, ntk_options);
  const int64_t M = in.initial.dim(0), C = in.initial.dim(1), N = in.coefficients.dim(0);
  machine.outputs = in.initial;
  machine.weight_decay = Tensor({M, C});
  for (int64_t r = 0; r < M * C; ++r) {
    double total = 0.0;
    for (int64_t q = 0; q < N * C; ++q) total += gram[r * N * C + q] * in.coefficients[q];
    machine.outputs[r] += total;
  }
  if (in.decay_sum) {
    const Tensor product = jacobian_vector_product(trace_network(in.model, theta, in.test_inputs), *in.decay_sum);
    for (int64_t r = 0; r < M * C; ++r) {
      machine.weight_decay[r] = product[r];
      machine.outputs[r] += product[r];
    }
  }
  return machine;
}

TopAttributions top_attributions(const Tensor& attributions, int64_t input, int64_t output, int64_t k) {
  if (attributions.rank() != 3) throw ShapeError("top_attributions: attributions must be (M, N, C), got " + shape_string(attributions.shape()));
  const int64_t N = attributions.dim(1), C = attributions.dim(2);
  std::vector<std::pair<double, int64_t>> values;
  for (int64_t n = 0; n < N; ++n) values.emplace_back(attributions[(input * N + n) * C + output], n);
  // Ties broken by position, so the order is reproducible.
  std::sort(values.begin(), values.end(), [](const auto& x, const auto& y) { return x.first != y.first ? x.first > y.first : x.second < y.second; });
  TopAttributions top;
  for (int64_t j = 0; j < std::min(k, N) && values[static_cast<size_t>(j)].first > 0.0; ++j) {
    top.positive.push_back(values[static_cast<size_t>(j)].second);
    top.positive_values.push_back(values[static_cast<size_t>(j)].first);
  }
  for (int64_t j = 0; j < std::min(k, N) && values[static_cast<size_t>(N - 1 - j)].first < 0.0; ++j) {
    top.negative.push_back(values[static_cast<size_t>(N - 1 - j)].second);
    top.negative_values.push_back(values[static_cast<size_t>(N - 1 - j)].first);
  }
  return top;
}

}  // namespace ks
