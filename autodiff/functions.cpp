// Graph wrappers for the primitive ops: shape checks with messages that name the op and shapes, then forward and a recorded backward.
// No arithmetic here beyond index bookkeeping; the kernels are in ops.cpp.
#include "autodiff/functions.h"

#include <cmath>

namespace ks {

static double* grad_of(const Var& node) { return node && node->requires_grad ? node->grad_buffer().data() : nullptr; }

[[noreturn]] static void shape_fail(const std::string& op, const std::string& detail) { throw ShapeError(op + ": " + detail); }

static void require_rank(const std::string& op, const std::string& what, const Var& node, int rank) {
  if (node->value.rank() != rank)
    shape_fail(op, what + " must have rank " + std::to_string(rank) + ", got " + shape_string(node->shape()));
}

Var matmul(const Var& a, const Var& b) {
  require_rank("matmul", "a", a, 2);
  require_rank("matmul", "b", b, 2);
  const int64_t N = a->value.dim(0), K = a->value.dim(1), M = b->value.dim(1);
  if (b->value.dim(0) != K)
    shape_fail("matmul", "inner dimensions differ: a " + shape_string(a->shape()) + ", b " + shape_string(b->shape()));
  Tensor out({N, M});
  matmul_forward(out.data(), a->value.data(), b->value.data(), N, K, M);
  return make_node("matmul", std::move(out), {a, b}, [N, K, M](Node& self) {
    const Var &a = self.parents[0], &b = self.parents[1];
    matmul_backward(grad_of(a), grad_of(b), self.grad.data(), a->value.data(), b->value.data(), N, K, M);
  });
}

Var linear(const Var& input, const Var& weight, const Var& bias) {
  require_rank("linear", "input", input, 2);
  require_rank("linear", "weight", weight, 2);
  const int64_t N = input->value.dim(0), I = input->value.dim(1), O = weight->value.dim(0);
  if (weight->value.dim(1) != I)
    shape_fail("linear", "input " + shape_string(input->shape()) + " has " + std::to_string(I) +
                             " features but weight " + shape_string(weight->shape()) + " expects " +
                             std::to_string(weight->value.dim(1)));
  if (bias && bias->shape() != Shape{O})
    shape_fail("linear", "bias " + shape_string(bias->shape()) + " must be (" + std::to_string(O) + ")");
  Tensor out({N, O});
  linear_forward(out.data(), input->value.data(), weight->value.data(), bias ? bias->value.data() : nullptr, N, I, O);
  std::vector<Var> parents{input, weight};
  if (bias) parents.push_back(bias);
  return make_node("linear", std::move(out), parents, [N, I, O](Node& self) {
    const Var &input = self.parents[0], &weight = self.parents[1];
    const Var bias = self.parents.size() > 2 ? self.parents[2] : nullptr;
    linear_backward(grad_of(input), grad_of(weight), grad_of(bias), self.grad.data(), input->value.data(),
                    weight->value.data(), N, I, O);
  });
}

static Var binary(Binary kind, const std::string& op, const Var& a, const Var& b) {
  const Shape &sa = a->shape(), &sb = b->shape();
  const bool trailing = sb.size() <= sa.size() && std::equal(sb.rbegin(), sb.rend(), sa.rbegin());
  if (!trailing)
    shape_fail(op, "b " + shape_string(sb) + " must equal a " + shape_string(sa) + " or its trailing axes");
  const int64_t period = b->value.numel(), rows = period ? a->value.numel() / period : 0;
  Tensor out(sa);
  binary_forward(kind, out.data(), a->value.data(), b->value.data(), rows, period);
  return make_node(op, std::move(out), {a, b}, [kind, rows, period](Node& self) {
    const Var &a = self.parents[0], &b = self.parents[1];
    binary_backward(kind, grad_of(a), grad_of(b), self.grad.data(), a->value.data(), b->value.data(), rows, period);
  });
}

Var add(const Var& a, const Var& b) { return binary(Binary::add, "add", a, b); }
Var sub(const Var& a, const Var& b) { return binary(Binary::sub, "sub", a, b); }
Var mul(const Var& a, const Var& b) { return binary(Binary::mul, "mul", a, b); }

Var scale(const Var& input, double factor) {
  Tensor out(input->shape());
  scale_forward(out.data(), input->value.data(), factor, out.numel());
  return make_node("scale", std::move(out), {input}, [factor](Node& self) {
    scale_backward(grad_of(self.parents[0]), self.grad.data(), factor, self.grad.numel());
  });
}

Var sum(const Var& input) {
  Tensor out({1});
  sum_forward(out.data(), input->value.data(), input->value.numel());
  return make_node("sum", std::move(out), {input}, [](Node& self) {
    sum_backward(grad_of(self.parents[0]), self.grad.data(), self.parents[0]->value.numel());
  });
}

Var mean(const Var& input) {
  if (input->value.numel() == 0) shape_fail("mean", "input is empty");
  Tensor out({1});
  mean_forward(out.data(), input->value.data(), input->value.numel());
  return make_node("mean", std::move(out), {input}, [](Node& self) {
    mean_backward(grad_of(self.parents[0]), self.grad.data(), self.parents[0]->value.numel());
  });
}

Var reshape(const Var& input, Shape shape) {
  if (shape_numel(shape) != input->value.numel())
    shape_fail("reshape", "cannot view " + shape_string(input->shape()) + " as " + shape_string(shape));
  return make_node("reshape", input->value.reshaped(std::move(shape)), {input}, [](Node& self) {
    self.parents[0]->grad_buffer().vector() += self.grad.vector();
  });
}

Var flatten(const Var& input) {
  const int64_t N = input->value.dim(0);
  return reshape(input, {N, N ? input->value.numel() / N : 0});
}

using Elementwise = void (*)(double*, const double*, int64_t);
using ElementwiseBackward = void (*)(double*, const double*, const double*, int64_t);

// Activations whose derivative is read from the input (relu, softplus) or from the output (tanh, sigmoid).
static Var activation(const std::string& op, const Var& input, Elementwise forward, ElementwiseBackward backward,
                      bool derivative_from_output) {
  Tensor out(input->shape());
  forward(out.data(), input->value.data(), out.numel());
  return make_node(op, std::move(out), {input}, [backward, derivative_from_output](Node& self) {
    const Var& input = self.parents[0];
    const double* saved = derivative_from_output ? self.value.data() : input->value.data();
    backward(grad_of(input), self.grad.data(), saved, self.grad.numel());
  });
}

Var relu(const Var& input) { return activation("relu", input, relu_forward, relu_backward, false); }
Var tanh(const Var& input) { return activation("tanh", input, tanh_forward, tanh_backward, true); }
Var sigmoid(const Var& input) { return activation("sigmoid", input, sigmoid_forward, sigmoid_backward, true); }
Var softplus(const Var& input) { return activation("softplus", input, softplus_forward, softplus_backward, false); }

Var conv2d(const Var& input, const Var& weight, const Var& bias, Conv2dOptions options) {
  require_rank("conv2d", "input", input, 4);
  require_rank("conv2d", "weight", weight, 4);
  const Tensor &x = input->value, &w = weight->value;
  Conv2dGeometry g{x.dim(0), x.dim(1), x.dim(2), x.dim(3), w.dim(0), w.dim(2), options.stride, options.padding};
  if (w.dim(1) != g.in_channels || w.dim(2) != w.dim(3))
    shape_fail("conv2d", "weight " + shape_string(w.shape()) + " must be (out, " + std::to_string(g.in_channels) +
                             ", k, k) for input " + shape_string(x.shape()));
  const bool kernel_fits = g.kernel >= 1 && g.kernel <= g.height + 2 * options.padding && g.kernel <= g.width + 2 * options.padding;
  if (options.stride < 1 || options.padding < 0 || !kernel_fits)
    shape_fail("conv2d", "kernel " + std::to_string(g.kernel) + ", stride " + std::to_string(options.stride) +
                             " and padding " + std::to_string(options.padding) + " do not fit input " +
                             shape_string(x.shape()));
  if (bias && bias->shape() != Shape{g.out_channels})
    shape_fail("conv2d", "bias " + shape_string(bias->shape()) + " must be (" + std::to_string(g.out_channels) + ")");
  Tensor out({g.batch, g.out_channels, g.out_height(), g.out_width()});
  conv2d_forward(out.data(), x.data(), w.data(), bias ? bias->value.data() : nullptr, g);
  std::vector<Var> parents{input, weight};
  if (bias) parents.push_back(bias);
  return make_node("conv2d", std::move(out), parents, [g](Node& self) {
    const Var &input = self.parents[0], &weight = self.parents[1];
    const Var bias = self.parents.size() > 2 ? self.parents[2] : nullptr;
    conv2d_backward(grad_of(input), grad_of(weight), grad_of(bias), self.grad.data(), input->value.data(),
                    weight->value.data(), g);
  });
}

static Pool2dGeometry pool_geometry(const std::string& op, const Var& input, Pool2dOptions options) {
  require_rank(op, "input", input, 4);
  const Tensor& x = input->value;
  const int64_t stride = options.stride ? options.stride : options.kernel;
  Pool2dGeometry g{x.dim(0), x.dim(1), x.dim(2), x.dim(3), options.kernel, stride};
  if (options.kernel < 1 || stride < 1 || options.kernel > g.height || options.kernel > g.width)
    shape_fail(op, "kernel " + std::to_string(options.kernel) + " and stride " + std::to_string(stride) +
                       " do not fit input " + shape_string(x.shape()));
  return g;
}

Var maxpool2d(const Var& input, Pool2dOptions options) {
  const Pool2dGeometry g = pool_geometry("maxpool2d", input, options);
  Tensor out({g.batch, g.channels, g.out_height(), g.out_width()});
  auto argmax = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(out.numel()));
  maxpool2d_forward(out.data(), argmax->data(), input->value.data(), g);
  return make_node("maxpool2d", std::move(out), {input}, [g, argmax](Node& self) {
    maxpool2d_backward(grad_of(self.parents[0]), self.grad.data(), argmax->data(), g);
  });
}

Var avgpool2d(const Var& input, Pool2dOptions options) {
  const Pool2dGeometry g = pool_geometry("avgpool2d", input, options);
  Tensor out({g.batch, g.channels, g.out_height(), g.out_width()});
  avgpool2d_forward(out.data(), input->value.data(), g);
  return make_node("avgpool2d", std::move(out), {input}, [g](Node& self) {
    avgpool2d_backward(grad_of(self.parents[0]), self.grad.data(), g);
  });
}

static void check_labels(const std::string& op, const Var& logits, const std::vector<int>& labels, int64_t classes) {
  const int64_t N = logits->value.dim(0);
  if (static_cast<int64_t>(labels.size()) != N)
    shape_fail(op, std::to_string(labels.size()) + " labels for logits " + shape_string(logits->shape()));
  for (int label : labels)
    if (label < 0 || label >= classes)
      shape_fail(op, "label " + std::to_string(label) + " outside [0, " + std::to_string(classes) + ")");
}

Var logistic_loss(const Var& logits, const std::vector<int>& labels) {
  const Shape& s = logits->shape();
  if (!(s.size() == 1 || (s.size() == 2 && s[1] == 1)))
    shape_fail("logistic_loss", "logits must be (N) or (N, 1), got " + shape_string(s));
  check_labels("logistic_loss", logits, labels, 2);
  const int64_t N = s[0];
  Tensor out({1}, logistic_loss_forward(logits->value.data(), labels.data(), N));
  return make_node("logistic_loss", std::move(out), {logits}, [labels, N](Node& self) {
    const Var& logits = self.parents[0];
    logistic_loss_backward(grad_of(logits), self.grad[0], logits->value.data(), labels.data(), N);
  });
}

Var cross_entropy(const Var& logits, const std::vector<int>& labels) {
  require_rank("cross_entropy", "logits", logits, 2);
  const int64_t N = logits->value.dim(0), C = logits->value.dim(1);
  check_labels("cross_entropy", logits, labels, C);
  Tensor out({1}, cross_entropy_forward(logits->value.data(), labels.data(), N, C));
  return make_node("cross_entropy", std::move(out), {logits}, [labels, N, C](Node& self) {
    const Var& logits = self.parents[0];
    cross_entropy_backward(grad_of(logits), self.grad[0], logits->value.data(), labels.data(), N, C);
  });
}

Var mse_loss(const Var& predictions, const Tensor& targets) {
  if (predictions->shape() != targets.shape())
    shape_fail("mse_loss", "predictions " + shape_string(predictions->shape()) + " and targets " +
                               shape_string(targets.shape()) + " differ");
  const int64_t N = targets.dim(0), C = N ? targets.numel() / N : 0;
  Tensor out({1}, mse_loss_forward(predictions->value.data(), targets.data(), N, C));
  return make_node("mse_loss", std::move(out), {predictions}, [targets, N, C](Node& self) {
    const Var& predictions = self.parents[0];
    mse_loss_backward(grad_of(predictions), self.grad[0], predictions->value.data(), targets.data(), N, C);
  });
}

const std::vector<std::string>& differentiable_ops() {
  static const std::vector<std::string> names{
      "matmul", "linear",   "add",       "sub",       "mul",           "scale",         "sum",
      "mean",   "reshape",  "relu",      "tanh",      "sigmoid",       "softplus",      "conv2d",
      "maxpool2d", "avgpool2d", "logistic_loss", "cross_entropy", "mse_loss"};
  return names;
}

}  // namespace ks
