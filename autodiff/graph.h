// The reverse-mode tape: tensor nodes that know their parents and how to send gradient back to them.
// It holds no op formulas (ops.h) and no shape rules (functions.h); backward sorts once and walks in reverse, never recursing.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autodiff/tensor.h"

namespace ks {

struct Node;
using Var = std::shared_ptr<Node>;

struct Node {
  std::string op;            // "leaf" for inputs and parameters
  Tensor value;
  Tensor grad;               // empty until something sends gradient here
  bool requires_grad = false;
  std::vector<Var> parents;
  // Adds this node's grad, pulled back through the op, into its parents' grads.
  std::function<void(Node& self)> backward;

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();                   // frees long chains iteratively, so a deep graph cannot overflow the stack

  Tensor& grad_buffer();     // the grad, allocated as zeros on first use
  const Shape& shape() const { return value.shape(); }
};

// A leaf that never receives gradient (data, labels).
Var constant(Tensor value);
// A leaf whose gradient accumulates across backward calls until zero_grad.
Var parameter(Tensor value);
// A node computed by `op` from `parents`; needs grad when any parent does.
Var make_node(std::string op, Tensor value, std::vector<Var> parents, std::function<void(Node&)> backward);

// Seeds root's gradient (ones for a scalar root, or the given seed of root's shape) and runs every backward once,
// in reverse topological order. Throws when a node that must pass gradient on has no backward.
void backward(const Var& root);
void backward(const Var& root, const Tensor& seed);

void zero_grad(const std::vector<Var>& parameters);

}  // namespace ks
