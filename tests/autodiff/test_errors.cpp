// Malformed shapes throw ShapeError with a message naming the op and the shapes, in every build type.
// It does not test valid shapes (the gradient checker does).
#include <doctest/doctest.h>

#include "autodiff/functions.h"
#include "tests/helpers.h"

namespace ks {

static void check_throws_naming(const std::function<void()>& call, const std::string& op, const std::string& shape) {
  try {
    call();
    FAIL("no exception for a malformed " << op);
  } catch (const ShapeError& error) {
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find(op) != std::string::npos);
    CHECK(message.find(shape) != std::string::npos);
  }
}

TEST_CASE("malformed shapes throw ShapeError naming the op and shapes") {
  Var a = constant(Tensor({2, 3})), b = constant(Tensor({4, 5})), image = constant(Tensor({1, 3, 8, 8}));
  check_throws_naming([&] { matmul(a, b); }, "matmul", "(4, 5)");
  check_throws_naming([&] { linear(a, b, nullptr); }, "linear", "(2, 3)");
  check_throws_naming([&] { linear(a, constant(Tensor({4, 3})), constant(Tensor({5}))); }, "linear", "(5)");
  check_throws_naming([&] { add(a, constant(Tensor({2}))); }, "add", "(2, 3)");
  check_throws_naming([&] { mul(a, b); }, "mul", "(4, 5)");
  check_throws_naming([&] { reshape(a, {4, 2}); }, "reshape", "(4, 2)");
  check_throws_naming([&] { conv2d(image, constant(Tensor({4, 2, 3, 3})), nullptr); }, "conv2d", "(4, 2, 3, 3)");
  check_throws_naming([&] { conv2d(a, constant(Tensor({4, 3, 3, 3})), nullptr); }, "conv2d", "(2, 3)");
  check_throws_naming([&] { conv2d(image, constant(Tensor({4, 3, 9, 9})), nullptr); }, "conv2d", "(1, 3, 8, 8)");
  check_throws_naming([&] { maxpool2d(image, {9, 0}); }, "maxpool2d", "(1, 3, 8, 8)");
  check_throws_naming([&] { cross_entropy(a, {0, 5}); }, "cross_entropy", "5");
  check_throws_naming([&] { cross_entropy(a, {0}); }, "cross_entropy", "(2, 3)");
  check_throws_naming([&] { logistic_loss(a, {0, 1}); }, "logistic_loss", "(2, 3)");
  check_throws_naming([&] { mse_loss(a, Tensor({3, 2})); }, "mse_loss", "(3, 2)");
  check_throws_naming([&] { Tensor({2, 2}, std::vector<double>(3)); }, "Tensor", "(2, 2)");
  check_throws_naming([&] { Tensor({1, 1, 1, 1, 1}); }, "Tensor", "(1, 1, 1, 1, 1)");
}

}  // namespace ks
