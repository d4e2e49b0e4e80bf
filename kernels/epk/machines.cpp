// The kernel machines of the exact path kernel and its approximations: names, class decisions, errors against the
// network, the fixed-kernel machines (NTK at θ_0, after kernel at θ_T) and the top attributions. No replay here.
#include "kernels/epk/machines.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ks {

QuadratureChoice parse_quadrature(const std::string& text) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("--quadrature '" + text + "': " + why + " (use auto, exact, gauss-legendre:N or adaptive:TOL)");
  };
  if (text == "auto") return {};
  if (text == "exact") return {PathQuadrature::exact};
  const size_t colon = text.find(':');
  const std::string name = text.substr(0, colon), value = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (name != "gauss-legendre" && name != "adaptive") throw bad("unknown quadrature");
  if (value.empty()) throw bad(name == "adaptive" ? "needs a tolerance, e.g. adaptive:1e-10" : "needs a node count, e.g. gauss-legendre:8");
  size_t used = 0;
  double number = 0.0;
  try {
    number = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || !std::isfinite(number)) throw bad("'" + value + "' is not a number");
  if (name == "adaptive") {
    if (number <= 0.0) throw bad("the tolerance must be positive");
    return {PathQuadrature::adaptive, 0, number};
  }
  if (number < 1.0 || number > 64.0 || number != std::floor(number)) throw bad("the node count must be a whole number from 1 to 64");
  return {PathQuadrature::gauss_legendre, static_cast<int64_t>(number), 0.0};
}

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

namespace {

// max |change − Σ_{i∈B_s} K(x, x_i)·a_{i,s}| over the steps, from the machine's (M·C, N·C) Gram.
double step_residual(const Tensor& gram, const FixedKernelInputs& in) {
  const int64_t M = in.initial.dim(0), C = in.initial.dim(1), N = in.coefficients.dim(0);
  double largest = 0.0;
  for (const StepTerms& step : *in.steps)
    for (int64_t r = 0; r < M * C; ++r) {
      double term = 0.0;
      for (size_t i = 0; i < step.batch->size(); ++i)
        for (int64_t d = 0; d < C; ++d) term += gram[r * N * C + (*step.batch)[i] * C + d] * step.a[static_cast<int64_t>(i) * C + d];
      largest = std::max(largest, std::abs(step.change[r] - term));
    }
  return largest;
}

}  // namespace

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
  machine.max_step_residual = in.steps ? step_residual(gram, in) : 0.0;
  machine.step_residual_known = in.steps && !in.decay_sum;
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
