// The update rules (momentum, Nesterov, Adam, AdamW) against closed forms for a constant gradient, plain SGD against its
// formula bit for bit, bad hyper-parameters refused by name, and training with each rule replayable and thread-independent.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>

#include "nn/model.h"
#include "nn/optimizer.h"
#include "nn/train.h"
#include "tests/helpers.h"

namespace ks {

namespace {

// One tensor θ and a constant gradient g, updated `steps` times by the rule.
Tensor after_updates(OptimizerOptions o, const Tensor& theta0, const Tensor& g, int steps, double lr, double decay) {
  Parameters theta{theta0};
  OptimizerState state;
  for (int s = 0; s < steps; ++s) optimizer_update(o, state, theta, {g}, lr, decay);
  CHECK(state.updates == steps);
  return theta[0];
}

// Two epochs of batch 16 with weight decay under the rule: the runs the training and replay tests share.
TrainOptions rule_options(OptimizerKind kind) {
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 16;
  options.learning_rate = kind == OptimizerKind::adam || kind == OptimizerKind::adamw ? 0.01 : 0.1;
  options.weight_decay = 1e-3;
  options.optimizer.kind = kind;
  return options;
}

}  // namespace

TEST_CASE("optimizer names parse, and bad names and hyper-parameters are refused naming them") {
  for (const char* name : {"sgd", "momentum", "nesterov", "adam", "adamw"}) CHECK(optimizer_name(parse_optimizer(name)) == name);
  CHECK_THROWS_WITH_AS(parse_optimizer("rmsprop"), doctest::Contains("'rmsprop'"), std::invalid_argument);
  OptimizerOptions o;
  o.momentum = 1.0;
  CHECK_THROWS_WITH_AS(check_optimizer(o), doctest::Contains("momentum"), std::invalid_argument);
  o = {};
  o.kind = OptimizerKind::nesterov;
  o.dampening = 0.1;
  CHECK_THROWS_WITH_AS(check_optimizer(o), doctest::Contains("dampening"), std::invalid_argument);
  o = {};
  o.epsilon = 0.0;
  CHECK_THROWS_WITH_AS(check_optimizer(o), doctest::Contains("epsilon"), std::invalid_argument);
  o = {};
  o.beta2 = std::nan("");
  CHECK_THROWS_WITH_AS(check_optimizer(o), doctest::Contains("beta2"), std::invalid_argument);
}

TEST_CASE("each update rule matches its closed form under a constant gradient") {
  Rng rng(3);
  const Tensor theta0 = test::random_tensor({7}, rng), g = test::random_tensor({7}, rng);
  const double lr = 0.1, mu = 0.8;
  const int T = 5;
  OptimizerOptions o;
  SUBCASE("plain SGD is θ − η(g + λθ), bit for bit") {
    Tensor expected = theta0;
    for (int s = 0; s < T; ++s)
      for (int64_t i = 0; i < 7; ++i) expected[i] = expected[i] - lr * (g[i] + 0.01 * expected[i]);
    CHECK(test::bit_equal(after_updates(o, theta0, g, T, lr, 0.01), expected));
  }
  SUBCASE("momentum and Nesterov: buf_k = g(1 − μ^k)/(1 − μ)") {
    for (OptimizerKind kind : {OptimizerKind::momentum, OptimizerKind::nesterov}) {
      o.kind = kind;
      o.momentum = mu;
      const Tensor got = after_updates(o, theta0, g, T, lr, 0.0);
      for (int64_t i = 0; i < 7; ++i) {
        double expected = theta0[i];
        for (int k = 1; k <= T; ++k) {
          const double buffer = g[i] * (1.0 - std::pow(mu, k)) / (1.0 - mu);
          expected -= lr * (kind == OptimizerKind::nesterov ? g[i] + mu * buffer : buffer);
        }
        CHECK(std::abs(got[i] - expected) <= 1e-14 * std::max(1.0, std::abs(expected)));
      }
    }
  }
  SUBCASE("Adam: the bias-corrected moments are g and g², each step η·g/(|g| + ε); AdamW decays θ first") {
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw}) {
      o.kind = kind;
      o.epsilon = 1e-3;  // large enough to be seen
      const double decay = kind == OptimizerKind::adamw ? 0.05 : 0.0;
      const Tensor got = after_updates(o, theta0, g, T, lr, decay);
      for (int64_t i = 0; i < 7; ++i) {
        double expected = theta0[i];
        for (int k = 1; k <= T; ++k) expected = expected * (1.0 - lr * decay) - lr * g[i] / (std::abs(g[i]) + o.epsilon);
        CHECK(std::abs(got[i] - expected) <= 1e-13 * std::max(1.0, std::abs(expected)));
      }
    }
  }
}

TEST_CASE("training with momentum, Nesterov, Adam and AdamW replays bit-exactly and does not depend on the thread count") {
  const Dataset data = make_toy_dataset({"moons", 96, 0.1, 2});
  const test::Network network = test::network({"mlp:12-12", {2}, 1, InitKind::glorot_uniform, 8});
  for (OptimizerKind kind : {OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw}) {
    INFO(optimizer_name(kind));
    const TrainOptions options = rule_options(kind);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const TrainResult one = train(*network.model, network.theta, data, data, options);
    omp_set_num_threads(4);
    const TrainResult four = train(*network.model, network.theta, data, data, options);
    omp_set_num_threads(threads);
    for (size_t k = 0; k < one.final_parameters.size(); ++k) CHECK(test::bit_equal(one.final_parameters[k], four.final_parameters[k]));
    const Parameters replayed = replay(*network.model, network.theta, data, one.steps, 0, static_cast<int64_t>(one.steps.size()),
                                       options.weight_decay, options.loss, {}, options.optimizer);
    for (size_t k = 0; k < replayed.size(); ++k) CHECK(test::bit_equal(replayed[k], one.final_parameters[k]));
    // The rule is really in use: plain SGD on the same batches ends elsewhere.
    const Parameters plain = replay(*network.model, network.theta, data, one.steps, 0, static_cast<int64_t>(one.steps.size()), options.weight_decay,
                                    options.loss);
    CHECK((plain[0].vector() - replayed[0].vector()).cwiseAbs().maxCoeff() > 1e-6);
    CHECK_THROWS_WITH_AS(replay(*network.model, network.theta, data, one.steps, 1, 2, options.weight_decay, options.loss, {}, options.optimizer),
                         doctest::Contains("needs the optimizer's state after 1 updates"), std::invalid_argument);
  }
}

TEST_CASE("replay from a checkpoint in the middle of a momentum, Nesterov, Adam or AdamW run is bit-exact, with its state") {
  const Dataset data = make_toy_dataset({"moons", 96, 0.1, 3});
  const test::Network network = test::network({"mlp:12-12", {2}, 1, InitKind::glorot_uniform, 8});
  for (OptimizerKind kind : {OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw}) {
    INFO(optimizer_name(kind));
    TrainOptions options = rule_options(kind);
    options.lr_cosine = true;
    options.checkpoint_every = 5;
    Parameters theta_at_7;
    OptimizerState state_at_7;
    TrainCallbacks callbacks;
    callbacks.on_checkpoint = [&](int64_t step, const Parameters& theta, const OptimizerState& state) {
      if (step != 5) return;
      theta_at_7 = theta;
      state_at_7 = state;
    };
    const TrainResult trained = train(*network.model, network.theta, data, data, options, callbacks);
    REQUIRE(state_at_7.updates == 5);
    const int64_t total = static_cast<int64_t>(trained.steps.size());
    const ReplayOptions replay_options{options.weight_decay, options.loss, {}, options.optimizer};
    OptimizerState state = state_at_7;
    replay_steps(*network.model, theta_at_7, state, data, trained.steps, 5, total, replay_options);
    CHECK(state.updates == total);
    for (size_t k = 0; k < theta_at_7.size(); ++k) {
      CHECK(test::bit_equal(theta_at_7[k], trained.final_parameters[k]));
      CHECK(test::bit_equal(state.first[k], trained.final_state.first[k]));
    }
    // Without the buffers the same steps end elsewhere: the state really carries the run.
    OptimizerState emptied = state_at_7;
    for (Tensor& buffer : emptied.first) buffer.vector().setZero();
    Parameters theta = trained.final_parameters;
    replay_steps(*network.model, theta, emptied, data, trained.steps, 5, 6, replay_options);
    Parameters reference = trained.final_parameters;
    OptimizerState kept = trained.final_state;
    kept.updates = 5;
    replay_steps(*network.model, reference, kept, data, trained.steps, 5, 6, replay_options);
    CHECK_FALSE(test::bit_equal(theta[0], reference[0]));
  }
}

}  // namespace ks

namespace ks {

TEST_CASE("learning-rate schedules: cosine annealing per step and linear warm-up, recorded per step; bad values refused") {
  const Dataset data = make_toy_dataset({"moons", 64, 0.1, 2});
  const test::Network network = test::network({"mlp:6", {2}, 1, InitKind::glorot_uniform, 8});
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 16;
  options.learning_rate = 0.2;
  options.lr_cosine = true;
  options.lr_min = 0.02;
  options.warmup_steps = 3;
  const TrainResult result = train(*network.model, network.theta, data, data, options);
  const int64_t S = static_cast<int64_t>(result.steps.size());
  REQUIRE(S == 8);
  for (int64_t s = 0; s < S; ++s) {
    const double cosine = 0.02 + 0.18 * (1.0 + std::cos(3.14159265358979323846 * static_cast<double>(s) / static_cast<double>(S))) / 2.0;
    const double expected = cosine * (s < 3 ? static_cast<double>(s + 1) / 3.0 : 1.0);
    CHECK(result.steps[static_cast<size_t>(s)].learning_rate == doctest::Approx(expected).epsilon(1e-14));
  }
  options.lr_min = 0.5;
  CHECK_THROWS_WITH_AS(train(*network.model, network.theta, data, data, options), doctest::Contains("lr_min"), std::invalid_argument);
  options.lr_min = 0.0;
  options.warmup_steps = -1;
  CHECK_THROWS_WITH_AS(train(*network.model, network.theta, data, data, options), doctest::Contains("warmup_steps"), std::invalid_argument);
}

}  // namespace ks
