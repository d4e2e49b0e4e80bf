// The tape's engine: node construction, an iterative topological sort, and the reverse walk.
// It knows nothing of particular ops; those register their backward when they build a node.
#include "autodiff/graph.h"

#include <unordered_set>
#include <utility>

namespace ks {

Tensor& Node::grad_buffer() {
  if (grad.empty() && !value.empty()) grad = Tensor(value.shape(), 0.0);
  if (grad.shape() != value.shape()) grad = Tensor(value.shape(), 0.0);
  return grad;
}

Node::~Node() {
  std::vector<Var> pending = std::move(parents);
  while (!pending.empty()) {
    Var node = std::move(pending.back());
    pending.pop_back();
    if (node && node.use_count() == 1)  // we hold the last reference: take its parents before it dies
      for (Var& parent : node->parents) pending.push_back(std::move(parent));
  }
}

Var constant(Tensor value) {
  auto node = std::make_shared<Node>();
  node->op = "leaf";
  node->value = std::move(value);
  return node;
}

Var parameter(Tensor value) {
  Var node = constant(std::move(value));
  node->requires_grad = true;
  return node;
}

Var make_node(std::string op, Tensor value, std::vector<Var> parents, std::function<void(Node&)> backward) {
  auto node = std::make_shared<Node>();
  node->op = std::move(op);
  node->value = std::move(value);
  for (const Var& parent : parents) node->requires_grad = node->requires_grad || parent->requires_grad;
  if (node->requires_grad) {
    node->parents = std::move(parents);  // constants-only subgraphs keep nothing alive
    node->backward = std::move(backward);
  }
  return node;
}

// Post-order over nodes that need grad, with an explicit stack instead of recursion.
static std::vector<Node*> topological_order(Node* root) {
  std::vector<Node*> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack{{root, 0}};
  visited.insert(root);
  while (!stack.empty()) {
    auto& [node, next_parent] = stack.back();
    if (next_parent < node->parents.size()) {
      Node* parent = node->parents[next_parent++].get();
      if (parent->requires_grad && visited.insert(parent).second) stack.emplace_back(parent, 0);
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  return order;
}

void backward(const Var& root, const Tensor& seed) {
  if (!root->requires_grad) throw std::logic_error("backward: the root (" + root->op + ") depends on no parameter");
  if (seed.shape() != root->shape())
    throw ShapeError("backward: seed " + shape_string(seed.shape()) + " does not match root " + root->op + " " +
                     shape_string(root->shape()));
  root->grad_buffer().vector() += seed.vector();
  std::vector<Node*> order = topological_order(root.get());
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node& node = **it;
    if (node.parents.empty()) continue;
    if (!node.backward) throw std::logic_error("backward: op '" + node.op + "' has no backward");
    node.backward(node);
  }
}

void backward(const Var& root) {
  if (root->value.numel() != 1)
    throw ShapeError("backward: root " + root->op + " " + shape_string(root->shape()) +
                     " is not a scalar; pass a seed of its shape");
  backward(root, Tensor(root->shape(), 1.0));
}

void zero_grad(const std::vector<Var>& parameters) {
  for (const Var& parameter : parameters)
    if (!parameter->grad.empty()) parameter->grad.fill(0.0);
}

}  // namespace ks
