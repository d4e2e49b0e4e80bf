// Architectures from a one-line spec (mlp:512-512, vgg:16, conv:32,32,M,64,64,M, with /tanh or /softplus) and their initialisation.
// It builds exactly the PyTorch nn.Sequential named in the README, so parameter names match its state_dict; it does not train.
#pragma once

#include <memory>
#include <string>

#include "nn/layers.h"

namespace ks {

InitKind parse_init(const std::string& name);
std::string init_name(InitKind kind);

struct ModelOptions {
  std::string spec = "mlp:512-512";
  Shape sample_shape;  // one input without the batch axis: (C, H, W) for images, (D) for vectors
  int64_t outputs = 1;
  InitKind init = InitKind::glorot_uniform;
  uint64_t seed = 0;
};

// Long's sizing (google-research after_kernel/run_ak_experiment.py): the spec of the width his code picks for about
// `parameters` parameters on inputs of sample_shape (C, H, W): the smallest width whose count, made his way, reaches it.
// "mlp": four hidden layers of that width (his count leaves out the first layer's bias); "vgg": vgg:W (his count takes
// a convolution's bias as in·out values). Throws std::invalid_argument naming the family or the shape.
std::string long_sized_spec(const std::string& family, const Shape& sample_shape, int64_t parameters);

// The network's structure. Throws std::invalid_argument naming the spec and what is wrong with it.
std::unique_ptr<Sequential> build_model(const ModelOptions& options);
// θ_0: options.init drawn from options.seed layer by layer in state_dict order (biases zero), the same on every machine.
Parameters initial_parameters(const Sequential& model, const ModelOptions& options);

}  // namespace ks
