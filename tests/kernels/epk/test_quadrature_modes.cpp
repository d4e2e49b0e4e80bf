// The EPK's quadrature modes on a small conv net: exact, gauss-legendre:N and adaptive:TOL, each reporting its errors
// and per-step residuals; the text parser; the piece finder checked independently for missed and spurious breakpoints.
#include <doctest/doctest.h>

#include "kernels/epk.h"
#include "kernels/epk/pieces.h"
#include "kernels/epk/rows.h"
#include "tests/helpers.h"

namespace ks {

namespace {

struct ConvRun {
  test::Network network = test::network({"conv:3,M,4", {1, 6, 6}, 1, InitKind::he_normal, 1});
  Dataset data;
  TrainResult trained;
  Tensor test_inputs;
  ConvRun() {
    Rng rng(5);
    data = test::pixel_threshold_dataset(rng, 24, 6, 7);
    TrainOptions options;
    options.epochs = 2;
    options.batch_size = 8;
    options.learning_rate = 0.4;
    trained = train(*network.model, network.theta, data, data, options);
    test_inputs = test::random_tensor({4, 1, 6, 6}, rng, 0.0, 1.0);
  }
  EpkResult epk(QuadratureChoice quadrature, double weight_decay = 0.0) const {
    EpkOptions options;
    options.quadrature = quadrature;
    const TrainingRecord record{&data, &trained.steps, weight_decay, LossKind::logistic};
    return exact_path_kernel(*network.model, network.theta, test_inputs, record, options);
  }
};

const KernelMachine& exact_machine(const EpkResult& result) { return result.machines.front(); }
double largest(const Tensor& t) { return t.vector().cwiseAbs().maxCoeff(); }

}  // namespace

TEST_CASE("--quadrature text: the modes parse, and bad text is refused naming it") {
  CHECK(parse_quadrature("auto").mode == PathQuadrature::automatic);
  CHECK(parse_quadrature("exact").mode == PathQuadrature::exact);
  const QuadratureChoice gl = parse_quadrature("gauss-legendre:12");
  CHECK((gl.mode == PathQuadrature::gauss_legendre && gl.nodes == 12));
  const QuadratureChoice adaptive = parse_quadrature("adaptive:1e-9");
  CHECK((adaptive.mode == PathQuadrature::adaptive && adaptive.tolerance == 1e-9));
  for (const char* bad : {"", "gauss", "gauss-legendre", "gauss-legendre:0", "gauss-legendre:65", "gauss-legendre:2.5", "gauss-legendre:x", "adaptive:",
                          "adaptive:-1", "adaptive:nan", "adaptive:1e-9x", "exact:3"}) {
    INFO(bad);
    try {
      parse_quadrature(bad);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos);
    }
  }
}

TEST_CASE("every quadrature mode reports its reconstruction error and per-step residual for every machine") {
  const ConvRun run;
  const EpkResult exact = run.epk({PathQuadrature::exact});
  const double scale = largest(exact.final);
  CHECK(exact.quadrature.breakpoints > 0);
  CHECK(exact_machine(exact).max_abs_error <= 1e-13 * scale);
  CHECK(exact_machine(exact).max_step_residual <= 1e-13 * scale);
  CHECK(exact.quadrature.max_segment_residual <= 1e-13 * scale);
  for (const KernelMachine& m : exact.machines) {
    CHECK(m.step_residual_known);
    if (m.kind != PathKernel::exact) CHECK(m.max_step_residual > 1e-8 * scale);  // the approximations are visibly off
  }
  // gauss-legendre:N without breakpoints: inexact, says so, and more nodes bring it closer.
  const EpkResult few = run.epk({PathQuadrature::gauss_legendre, 2}), many = run.epk({PathQuadrature::gauss_legendre, 64});
  CHECK(few.quadrature.breakpoints == 0);
  CHECK(few.quadrature.nodes == 2 * exact.steps * run.test_inputs.dim(0));
  CHECK(exact_machine(few).max_abs_error > 1e3 * exact_machine(exact).max_abs_error);
  CHECK(exact_machine(few).max_step_residual > 1e3 * exact_machine(exact).max_step_residual);
  CHECK(exact_machine(many).max_step_residual < exact_machine(few).max_step_residual);
  // adaptive:TOL meets its tolerance on every step.
  const EpkResult adaptive = run.epk({PathQuadrature::adaptive, 0, 1e-7});
  INFO("initial " << largest(adaptive.initial) << " final " << scale << " pieces " << adaptive.quadrature.pieces);
  CHECK(adaptive.quadrature.max_segment_residual <= 1e-7 * scale);
  CHECK(adaptive.quadrature.nodes > few.quadrature.nodes);
}

TEST_CASE("with weight decay the fixed kernels' per-step residual is reported unknown, the step machines' known") {
  const EpkResult result = ConvRun().epk({PathQuadrature::exact}, 0.01);
  for (const KernelMachine& m : result.machines)
    CHECK(m.step_residual_known == (m.kind == PathKernel::exact || m.kind == PathKernel::domingos));
  CHECK(exact_machine(result).max_step_residual <= 1e-13 * largest(result.final));
}

TEST_CASE("summed rows (gradients summed per input, contracted once) equal the per-row kernels and derivatives") {
  const ConvRun run;
  const Sequential& model = *run.network.model;
  Parameters theta = run.network.theta;
  const StepRecord& recorded = run.trained.steps.front();
  const Tensor batch_inputs = gather_rows(run.data.inputs, recorded.batch);
  const Parameters base = theta;
  sgd_step(model, theta, run.data, recorded.batch, recorded.learning_rate, 0.0, LossKind::logistic, 0, {});
  const Parameters direction = difference(theta, base);
  const Segment segment{&base, &direction};
  const int64_t M = run.test_inputs.dim(0), C = 1, b = batch_inputs.dim(0);
  for (KernelMethod method : {KernelMethod::jacobian, KernelMethod::automatic}) {
    INFO("method " << static_cast<int>(method));
    Tensor batch_outputs;
    const std::vector<Tile> tiles = batch_tiles(model, base, batch_inputs, method, batch_outputs);
    const StepBatch batch{&segment, &tiles, b * C, C, method};
    Rng rng(9);
    std::vector<QuadratureRow> rows;  // 40 rows over the inputs: more than one tile, tiles holding two inputs
    for (int64_t k = 0; k < 40; ++k) rows.push_back({k * M / 40, rng.uniform(0.0, 1.0), rng.uniform(-1.0, 1.0)});
    StepIntegral per_row = empty_integral(M, C, b * C), summed = empty_integral(M, C, b * C);
    add_rows(per_row, rows, evaluate_rows(model, run.test_inputs, batch, rows, {&base, &direction, false}), C);
    const RowRequest request{&base, &direction, true};
    const RowValues values = evaluate_rows(model, run.test_inputs, batch, rows, request);
    // Forced onto the Jacobian path, every layer's share is in the sums; automatic keeps the dense head structured.
    CHECK((values.kernel.cwiseAbs().maxCoeff() == 0.0) == (method == KernelMethod::jacobian));
    add_rows(summed, rows, values, C);
    contract_sums(summed, batch, request);
    for (int64_t m = 0; m < M; ++m) {
      const MatrixRowMajor& expected = per_row.kernel[static_cast<size_t>(m)];
      CHECK(expected.cwiseAbs().maxCoeff() > 0.0);
      CHECK((summed.kernel[static_cast<size_t>(m)] - expected).cwiseAbs().maxCoeff() <= 1e-13 * expected.cwiseAbs().maxCoeff());
    }
    CHECK((summed.along_theta.vector() - per_row.along_theta.vector()).cwiseAbs().maxCoeff() <= 1e-13 * largest(per_row.along_theta));
    CHECK((summed.along_direction.vector() - per_row.along_direction.vector()).cwiseAbs().maxCoeff() <= 1e-13 * largest(per_row.along_direction));
  }
}

TEST_CASE("exact quadrature is refused for a smooth net, naming the way out") {
  const test::Network tanh_net = test::network({"mlp:4/tanh", {2}, 1, InitKind::he_normal, 1});
  Dataset data = make_toy_dataset({"moons", 16, 0.1, 3});
  TrainOptions options;
  options.epochs = 1;
  options.batch_size = 8;
  const TrainResult trained = train(*tanh_net.model, tanh_net.theta, data, data, options);
  EpkOptions epk;
  epk.quadrature = {PathQuadrature::exact};
  const TrainingRecord record{&data, &trained.steps, 0.0, LossKind::logistic};
  CHECK_THROWS_WITH_AS(exact_path_kernel(*tanh_net.model, tanh_net.theta, data.inputs, record, epk),
                       doctest::Contains("adaptive:TOL"), std::invalid_argument);
}

TEST_CASE("the piece finder misses no pattern change and reports no spurious breakpoint (checked at piece midpoints)") {
  const ConvRun run;
  int64_t breakpoints = 0, spurious = 0;
  Parameters theta = run.network.theta;
  for (const StepRecord& step : run.trained.steps) {
    const Parameters base = theta;
    sgd_step(*run.network.model, theta, run.data, step.batch, step.learning_rate, 0.0, LossKind::logistic, 0, {});
    const Parameters direction = difference(theta, base);
    Segment segment{&base, &direction};
    const std::vector<std::vector<double>> bounds = path_pieces(*run.network.model, run.test_inputs, segment);
    const PieceCheck check = check_pieces(*run.network.model, run.test_inputs, segment, bounds);
    breakpoints += check.breakpoints;
    spurious += check.spurious;
    // Missed changes: halving every piece finds no new pattern change inside one.
    std::vector<std::vector<double>> halved = bounds;
    for (std::vector<double>& edges : halved) {
      std::vector<double> finer{edges.front()};
      for (size_t k = 1; k < edges.size(); ++k) finer.insert(finer.end(), {0.5 * (edges[k - 1] + edges[k]), edges[k]});
      edges = finer;
    }
    const PieceCheck inside = check_pieces(*run.network.model, run.test_inputs, segment, halved);
    CHECK(inside.breakpoints - inside.spurious == check.breakpoints - check.spurious);
  }
  MESSAGE("breakpoints " << breakpoints << ", spurious " << spurious);
  CHECK(breakpoints > 10);
  CHECK(spurious == 0);
}

}  // namespace ks
