// The exact path kernel through residual sums: the piece finder on a net whose layers read sums of earlier outputs
// (identity skip and 1x1 projection) misses no pattern change and adds none, and the reconstruction is exact.
#include <doctest/doctest.h>

#include "kernels/epk.h"
#include "kernels/epk/rows.h"
#include "tests/helpers.h"

namespace ks {

TEST_CASE("residual nets: the piece finder is complete and tight, and the EPK exact with SGD and every rule with state") {
  const test::Network network = test::network({"conv:3,R,M,R5", {1, 6, 6}, 1, InitKind::he_normal, 2});
  Rng rng(9);
  const Dataset data = test::pixel_threshold_dataset(rng, 24, 6, 7);
  const Tensor test_inputs = test::random_tensor({3, 1, 6, 6}, rng, 0.0, 1.0);
  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 8;
  options.learning_rate = 0.2;
  const TrainResult trained = train(*network.model, network.theta, data, data, options);
  int64_t breakpoints = 0, spurious = 0;
  Parameters theta = network.theta;
  for (const StepRecord& step : trained.steps) {
    const Parameters base = theta;
    sgd_step(*network.model, theta, data, step.batch, step.learning_rate, 0.0, LossKind::logistic, 0, {});
    const Parameters direction = difference(theta, base);
    const Segment segment{&base, &direction};
    const std::vector<std::vector<double>> bounds = path_pieces(*network.model, test_inputs, segment);
    const PieceCheck check = check_pieces(*network.model, test_inputs, segment, bounds);
    breakpoints += check.breakpoints;
    spurious += check.spurious;
    std::vector<std::vector<double>> halved = bounds;  // a missed change would show inside a halved piece
    for (std::vector<double>& edges : halved) {
      std::vector<double> finer{edges.front()};
      for (size_t k = 1; k < edges.size(); ++k) finer.insert(finer.end(), {0.5 * (edges[k - 1] + edges[k]), edges[k]});
      edges = finer;
    }
    const PieceCheck inside = check_pieces(*network.model, test_inputs, segment, halved);
    CHECK(inside.breakpoints - inside.spurious == check.breakpoints - check.spurious);
  }
  MESSAGE("residual net: breakpoints " << breakpoints << ", spurious " << spurious);
  CHECK(breakpoints > 10);
  CHECK(spurious == 0);
  const TrainingRecord record{&data, &trained.steps, 0.0, LossKind::logistic};
  {
    const EpkResult sgd = exact_path_kernel(*network.model, network.theta, test_inputs, record);
    CHECK(sgd.machines.front().max_rel_error <= 1e-12);
    CHECK(sgd.quadrature.breakpoints > 0);
  }
  // Every rule with state, with weight decay and a cosine schedule, through the backward walk.
  options.weight_decay = 1e-3;
  options.lr_cosine = true;
  for (OptimizerKind kind : {OptimizerKind::momentum, OptimizerKind::nesterov, OptimizerKind::adam, OptimizerKind::adamw}) {
    INFO(optimizer_name(kind));
    options.optimizer.kind = kind;
    options.learning_rate = kind == OptimizerKind::adam || kind == OptimizerKind::adamw ? 0.01 : 0.1;
    const TrainResult with_rule = train(*network.model, network.theta, data, data, options);
    const TrainingRecord rule_record{&data, &with_rule.steps, options.weight_decay, LossKind::logistic, {}, options.optimizer};
    const EpkResult walked = exact_path_kernel(*network.model, network.theta, test_inputs, rule_record);
    CHECK(walked.machines.front().max_rel_error <= 1e-12);
    CHECK(walked.quadrature.breakpoints > 0);
  }
}

}  // namespace ks
