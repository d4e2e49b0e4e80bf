// The differentiable ops on graph nodes: each checks shapes, runs <op>_forward and records <op>_backward.
// They hold no formulas of their own (ops.cpp has those) and no layer state (nn/ has that).
#pragma once

#include <string>
#include <vector>

#include "autodiff/graph.h"
#include "autodiff/ops.h"

namespace ks {

Var matmul(const Var& a, const Var& b);                           // (N, K) x (K, M) -> (N, M)
Var linear(const Var& input, const Var& weight, const Var& bias);  // (N, I), (O, I), (O) or null -> (N, O)
// Elementwise; b has a's shape or the shape of a's trailing axes (a bias), broadcast over the leading ones.
Var add(const Var& a, const Var& b);
Var sub(const Var& a, const Var& b);
Var mul(const Var& a, const Var& b);
Var scale(const Var& input, double factor);
Var sum(const Var& input);   // -> (1)
Var mean(const Var& input);  // -> (1)
Var reshape(const Var& input, Shape shape);
Var flatten(const Var& input);  // (N, ...) -> (N, rest)
Var relu(const Var& input);
Var tanh(const Var& input);
Var sigmoid(const Var& input);
Var softplus(const Var& input);

struct Conv2dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
};
Var conv2d(const Var& input, const Var& weight, const Var& bias, Conv2dOptions options = {});  // (N,C,H,W), (O,C,k,k), (O) or null

struct Pool2dOptions {
  int64_t kernel = 2;
  int64_t stride = 0;  // 0 means equal to the kernel
};
Var maxpool2d(const Var& input, Pool2dOptions options = {});
Var avgpool2d(const Var& input, Pool2dOptions options = {});

// Losses: the mean over the batch of the per-sample loss, a (1) node.
Var logistic_loss(const Var& logits, const std::vector<int>& labels);  // logits (N) or (N, 1); labels 0/1
Var cross_entropy(const Var& logits, const std::vector<int>& labels);  // logits (N, C); labels in [0, C)
Var mse_loss(const Var& predictions, const Tensor& targets);           // same shapes

// The names of every op above as they appear in Node::op; the gradient checker's table must cover them all.
const std::vector<std::string>& differentiable_ops();

}  // namespace ks
