// The registry of layer kinds: one entry per kind, with a small example the generic layer test runs through the
// whole contract. A kind that is built anywhere but missing here fails that test; adding a kind is its file plus a line here.
#include "nn/layers.h"

namespace ks {

const std::vector<LayerKindEntry>& layer_kinds() {
  static const std::vector<LayerKindEntry> kinds{
      {"dense", [] { return make_dense({5, 3, true, 1.0}); }, {4, 5}},
      {"conv2d", [] { return make_conv2d({2, 3, 3, 1, 1, true, 1.0}); }, {3, 2, 5, 5}},
      {"relu", [] { return make_activation(ActivationKind::relu); }, {3, 2, 3, 3}},
      {"tanh", [] { return make_activation(ActivationKind::tanh); }, {3, 7}},
      {"softplus", [] { return make_activation(ActivationKind::softplus); }, {3, 7}},
      {"max_pool", [] { return make_max_pool({2, 2}); }, {2, 3, 4, 6}},
      {"average_pool", [] { return make_average_pool({2, 2, false}); }, {2, 3, 4, 6}},
      {"flatten", [] { return make_flatten(); }, {3, 2, 2, 3}},
      {"identity", [] { return make_identity(); }, {3, 2, 2, 3}},
  };
  return kinds;
}

}  // namespace ks
