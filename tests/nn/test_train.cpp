// SGD training: bit-exact replay of every step, bit-identity across thread counts, divergence errors, schedules and weight decay.
// The accuracy bars on real data are in test_bars.cpp.
#include <doctest/doctest.h>
#include <omp.h>

#include "nn/model.h"
#include "nn/train.h"
#include "tests/helpers.h"

namespace ks {

static bool same_bits(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!test::bit_equal(a[i], b[i])) return false;
  return true;
}

TEST_CASE("replaying the recorded trajectory gives bit-identical parameters at every step") {
  const Dataset data = make_toy_dataset({"spirals", 120, 0.05, 3});
  for (const char* spec : {"mlp:16-16", "mlp:12/tanh"}) {
    const test::Network network_ = test::network({spec, {2}, 1, InitKind::glorot_uniform, 4});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    const Parameters& theta0 = theta;
    std::vector<std::vector<Tensor>> seen;  // θ_s for every s, recorded during training
    TrainOptions options;
    options.epochs = 3;
    options.batch_size = 16;
    options.learning_rate = 0.3;
    options.weight_decay = 1e-3;
    options.lr_step_epochs = 2;
    options.checkpoint_every = 1;
    TrainCallbacks callbacks;
    callbacks.on_checkpoint = [&](int64_t, const std::vector<Tensor>& values, const OptimizerState&) { seen.push_back(values); };
    const TrainResult result = train(*model, theta, data, data, options, callbacks);
    seen.push_back(result.final_parameters);
    REQUIRE(seen.size() == result.steps.size());
    CHECK(result.steps.back().learning_rate == doctest::Approx(0.03));
    Parameters current = theta0;
    for (size_t s = 0; s < result.steps.size(); ++s) {
      current = replay(*model, current, data, result.steps, static_cast<int64_t>(s), static_cast<int64_t>(s) + 1, options.weight_decay, options.loss);
      INFO(spec << " step " << s + 1);
      CHECK(same_bits(current, seen[s]));
    }
    // A replay with the wrong weight decay drifts: the comparison can fail.
    CHECK_FALSE(same_bits(replay(*model, theta0, data, result.steps, 0, static_cast<int64_t>(result.steps.size()), 0.0, options.loss), seen.back()));
    // θ is an argument: training and replay left θ_0 as it was.
    CHECK(same_bits(theta0, test::network({spec, {2}, 1, InitKind::glorot_uniform, 4}).theta));
  }
}

TEST_CASE("training gives the same bits with 1, 2 and 4 threads") {
  Rng rng(8);
  const Dataset data = test::random_image_dataset({3, 8, 8}, 70, 3, rng);
  std::vector<std::vector<Tensor>> results;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 4}) {
    omp_set_num_threads(threads);
    const test::Network network_ = test::network({"conv:4,M,6", {3, 8, 8}, 3, InitKind::he_normal, 2});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    TrainOptions options;
    options.epochs = 2;
    options.batch_size = 40;  // more than one conv chunk per batch
    options.learning_rate = 0.1;
    options.loss = LossKind::cross_entropy;
    results.push_back(train(*model, theta, data, data, options).final_parameters);
  }
  omp_set_num_threads(saved);
  CHECK(same_bits(results[0], results[1]));
  CHECK(same_bits(results[0], results[2]));
}

TEST_CASE("a NaN loss stops training with an error naming the step") {
  Dataset data = make_toy_dataset({"moons", 40, 0.1, 1});
  data.inputs[2 * 17] = std::nan("");
  const test::Network network_ = test::network({"mlp:4", {2}, 1, InitKind::glorot_uniform, 0});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  TrainOptions options;
  options.batch_size = 40;
  CHECK_THROWS_WITH_AS(train(*model, theta, data, data, options), doctest::Contains("at step 0"), std::runtime_error);
  Dataset good = make_toy_dataset({"moons", 40, 0.1, 1});
  options.learning_rate = 1e300;
  options.epochs = 5;
  CHECK_THROWS_WITH_AS(train(*model, theta, good, good, options), doctest::Contains("diverged"), std::runtime_error);
}

TEST_CASE("full-batch gradient descent on a toy set drives the loss down; MSE and cross-entropy heads train") {
  const Dataset data = make_toy_dataset({"moons", 200, 0.1, 5});
  for (LossKind loss : {LossKind::logistic, LossKind::mse, LossKind::cross_entropy}) {
    const int64_t outputs = loss == LossKind::cross_entropy ? 2 : 1;
    const test::Network network_ = test::network({"mlp:32-32", {2}, outputs, InitKind::glorot_uniform, 1});
    const auto& model = network_.model;
    const Parameters& theta = network_.theta;
    TrainOptions options;
    options.epochs = 300;
    options.batch_size = 1000;
    options.learning_rate = loss == LossKind::mse ? 0.1 : 0.5;
    options.loss = loss;
    const TrainResult result = train(*model, theta, data, data, options);
    INFO(loss_name(loss));
    CHECK(result.steps.size() == 300);
    CHECK(result.steps.back().batch.size() == 200);
    CHECK(result.steps.back().loss < 0.5 * result.steps.front().loss);
    CHECK(result.metrics.back().train_accuracy > 0.95);
  }
}

TEST_CASE("augmented training replays bit-exactly, and the exact path kernel sees the augmented images") {
  Rng rng(12);
  const Dataset data = test::random_image_dataset({1, 8, 8}, 24, 2, rng);
  const test::Network network_ = test::network({"conv:3,M", {1, 8, 8}, 1, InitKind::glorot_uniform, 1});
  const auto& model = network_.model;
  const Parameters& theta = network_.theta;
  const Parameters& theta0 = theta;
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 8;
  options.learning_rate = 0.2;
  options.augment = true;
  const TrainResult result = train(*model, theta, data, data, options);
  const Parameters& thetaT = result.final_parameters;
  CHECK(same_bits(replay(*model, theta0, data, result.steps, 0, static_cast<int64_t>(result.steps.size()), 0.0, options.loss, augmentation_of(options)), thetaT));
  // Without the augmentation the replay is a different trajectory: the check above can fail.
  CHECK_FALSE(same_bits(replay(*model, theta0, data, result.steps, 0, static_cast<int64_t>(result.steps.size()), 0.0, options.loss), thetaT));
}

}  // namespace ks

namespace ks {

TEST_CASE("training to a loss target runs Long's chunks (10, 20, 40 epochs) and stops at the first chunk that reaches it") {
  CHECK(loss_target_chunk_end(10));
  CHECK(loss_target_chunk_end(30));
  CHECK(loss_target_chunk_end(70));
  CHECK_FALSE(loss_target_chunk_end(20));
  CHECK_FALSE(loss_target_chunk_end(9));
  const Dataset data = make_toy_dataset({"moons", 40, 0.1, 4});
  const test::Network network = test::network({"mlp:8", {2}, 1, InitKind::glorot_uniform, 2});
  TrainOptions options;
  options.batch_size = 40;
  options.learning_rate = 0.5;
  options.max_epochs = 70;
  // A target the first chunk cannot reach but the second can: training stops after 30 epochs.
  options.epochs = 10;
  const double after_ten = train(*network.model, network.theta, data, data, options).metrics.back().train_loss;
  options.epochs = 30;
  const double after_thirty = train(*network.model, network.theta, data, data, options).metrics.back().train_loss;
  REQUIRE(after_thirty < after_ten);
  options.loss_target = 0.5 * (after_ten + after_thirty);
  const TrainResult reached = train(*network.model, network.theta, data, data, options);
  CHECK(reached.metrics.size() == 30);
  // Out of reach: max_epochs ends it.
  options.loss_target = 1e-12;
  CHECK(train(*network.model, network.theta, data, data, options).metrics.size() == 70);
  options.lr_cosine = true;
  CHECK_THROWS_WITH_AS(train(*network.model, network.theta, data, data, options), doctest::Contains("loss target"), std::invalid_argument);
}

}  // namespace ks
