// The piece finder: on a piece where the earlier layers' patterns are fixed, a layer's input is a polynomial of known
// degree in t; it is sampled at Chebyshev points, interpolated, and its sign or winner changes found to full precision.
#include "kernels/epk/pieces.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>

#include "kernels/epk.h"
#include "kernels/quadrature.h"

namespace ks {

namespace {

// Units are tested in blocks this wide: the block's d + 1 coefficient rows and its tails stay in L1 between their
// computation and the tests (computed for all units first, they went to memory and were read back twice).
constexpr int64_t kUnitBlock = 256;

// Σ_{k ≥ 1} |c_k| per column of coefficients (d + 1, columns): each unit lies within this of its c_0 on the piece.
void absolute_tails(const double* coefficients, int64_t degree, int64_t columns, double* tails) {
  std::fill_n(tails, columns, 0.0);
  for (int64_t k = 1; k <= degree; ++k)
    for (int64_t u = 0; u < columns; ++u) tails[u] += std::abs(coefficients[k * columns + u]);
}

// Roots in (-1, 1) of unit polynomials given by values at Chebyshev points, mapped to t in (a, b). A unit whose
// constant term outweighs the others' magnitudes (|p(u) − c_0| ≤ Σ|c_k| on [-1, 1]) has none: most leave at that test.
void relu_roots(const double* values, int64_t units, const ChebyshevInterpolator& interpolator, double a, double b, std::vector<double>& roots) {
  const int64_t degree = interpolator.degree(), terms = degree + 1;
  thread_local std::vector<double> scratch;  // the block's coefficients (d + 1, width), then Σ_{k ≥ 1} |c_k| per unit
  scratch.resize(static_cast<size_t>((terms + 1) * kUnitBlock));
  double* all = scratch.data();
  double* tail = all + terms * kUnitBlock;
  std::vector<double> coefficients(static_cast<size_t>(terms));
  for (int64_t start = 0; start < units; start += kUnitBlock) {
    const int64_t width = std::min(kUnitBlock, units - start);
    interpolator.coefficients_of_columns(values + start, units, width, all);
    absolute_tails(all, degree, width, tail);
    for (int64_t u = 0; u < width; ++u) {
      if (std::abs(all[u]) > tail[u]) continue;
      for (int64_t k = 0; k <= degree; ++k) coefficients[static_cast<size_t>(k)] = all[k * width + u];
      for (double root : sign_changes(coefficients.data(), degree)) roots.push_back(a + 0.5 * (root + 1.0) * (b - a));
    }
  }
}

// Whether one unit of the window at `corner` stays above all the others on the whole piece: its lowest value there
// (c_0 − r) exceeds every other unit's highest (c_0 + r). Then no crossing can change the winner, and the window's
// pairwise tests are skipped (most windows leave here).
bool one_unit_wins(const double* constant, const double* radius, int64_t corner, int64_t width, int64_t kernel) {
  int64_t leader = corner;
  double leader_low = -std::numeric_limits<double>::infinity();
  for (int64_t ky = 0; ky < kernel; ++ky)
    for (int64_t kx = 0; kx < kernel; ++kx) {
      const int64_t unit = corner + ky * width + kx;
      const double low = constant[unit] - radius[unit];
      if (low > leader_low) leader_low = low, leader = unit;
    }
  for (int64_t ky = 0; ky < kernel; ++ky)
    for (int64_t kx = 0; kx < kernel; ++kx) {
      const int64_t unit = corner + ky * width + kx;
      if (unit != leader && !(constant[unit] + radius[unit] < leader_low)) return false;
    }
  return true;
}

// Whether every unit of the window at `corner` is the zero polynomial (c_0 = 0 and Σ|c_k| = 0): a window of units that
// ReLU switched off on the whole piece, most of the windows one_unit_wins cannot settle (ties at zero). Every pairwise
// difference is then identically zero, so window_crossings would find no root: skipping it changes nothing.
bool all_units_zero(const double* constant, const double* radius, int64_t corner, int64_t width, int64_t kernel) {
  for (int64_t ky = 0; ky < kernel; ++ky)
    for (int64_t kx = 0; kx < kernel; ++kx) {
      const int64_t unit = corner + ky * width + kx;
      if (constant[unit] != 0.0 || radius[unit] != 0.0) return false;
    }
  return true;
}

// The winner changes of one window whose candidates' coefficients are `coefficients` (window × (d + 1)): crossings of
// two candidates where they are on top.
void window_crossings(const std::vector<double>& coefficients, std::vector<double>& difference, int64_t window, int64_t degree, double a,
                      double b, std::vector<double>& roots) {
  const int64_t terms = degree + 1;
  for (int64_t p = 0; p < window; ++p)
    for (int64_t q = p + 1; q < window; ++q) {
      double tail = 0.0;
      for (int64_t k = 0; k < terms; ++k) {
        difference[static_cast<size_t>(k)] = coefficients[static_cast<size_t>(p * terms + k)] - coefficients[static_cast<size_t>(q * terms + k)];
        if (k > 0) tail += std::abs(difference[static_cast<size_t>(k)]);
      }
      if (std::abs(difference[0]) > tail) continue;  // no crossing: sign_changes' first test, without the call
      for (double root : sign_changes(difference.data(), degree)) {
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < window; ++k) best = std::max(best, evaluate_polynomial(coefficients.data() + k * terms, degree, root));
        const double crossing = evaluate_polynomial(coefficients.data() + p * terms, degree, root);
        double scale = 0.0;  // the window's largest coefficient: only here, as crossings are rare
        for (double value : coefficients) scale = std::max(scale, std::abs(value));
        // Crossings below the envelope do not change the winner; a loose test only adds harmless pieces.
        if (crossing >= best - 1e-10 * scale) roots.push_back(a + 0.5 * (root + 1.0) * (b - a));
      }
    }
}

// Where a max-pool window's winner changes: crossings of two candidates on the window's upper envelope. One channel's
// plane at a time: its coefficients and radii stay in cache while its windows are tested.
void pool_roots(const double* values, int64_t size, const Shape& shape, const NonlinearLayer& pool,
                const ChebyshevInterpolator& interpolator, double a, double b, std::vector<double>& roots) {
  const int64_t channels = shape[1], height = shape[2], width = shape[3], plane = height * width;
  const int64_t out_height = (height - pool.kernel) / pool.stride + 1, out_width = (width - pool.kernel) / pool.stride + 1;
  const int64_t degree = interpolator.degree(), terms = degree + 1, window = pool.kernel * pool.kernel;
  thread_local std::vector<double> scratch;  // the plane's coefficients (d + 1, plane), then its radii
  scratch.resize(static_cast<size_t>((terms + 1) * plane));
  double* all = scratch.data();
  double* radius = all + terms * plane;
  std::vector<double> coefficients(static_cast<size_t>(window * terms)), difference(static_cast<size_t>(terms));
  for (int64_t c = 0; c < channels; ++c) {
    interpolator.coefficients_of_columns(values + c * plane, size, plane, all);
    absolute_tails(all, degree, plane, radius);  // each unit lies in [c_0 − r, c_0 + r] on the piece
    for (int64_t oy = 0; oy < out_height; ++oy)
      for (int64_t ox = 0; ox < out_width; ++ox) {
        const int64_t corner = oy * pool.stride * width + ox * pool.stride;
        if (one_unit_wins(all, radius, corner, width, pool.kernel) || all_units_zero(all, radius, corner, width, pool.kernel)) continue;
        for (int64_t ky = 0; ky < pool.kernel; ++ky)
          for (int64_t kx = 0; kx < pool.kernel; ++kx) {
            const int64_t position = (oy * pool.stride + ky) * width + ox * pool.stride + kx;
            double* target = coefficients.data() + (ky * pool.kernel + kx) * terms;
            for (int64_t k = 0; k < terms; ++k) target[k] = all[k * plane + position];
          }
        window_crossings(coefficients, difference, window, degree, a, b, roots);
      }
  }
}

}  // namespace

PieceShape analyse_pieces(const Sequential& model) {
  PieceShape shape;
  for (size_t l = 0; l < model.layers().size(); ++l) {
    const PieceInfo piece = model.layers()[l]->piece();
    const int64_t index = static_cast<int64_t>(l);
    switch (piece.role) {
      case PieceRole::parameterised: ++shape.parameterised; break;
      case PieceRole::relu_like: shape.nonlinear.push_back({index, false, shape.parameterised, 0, 0}); break;
      case PieceRole::max_window: shape.nonlinear.push_back({index, true, shape.parameterised, piece.kernel, piece.stride}); break;
      case PieceRole::smooth: shape.piecewise_polynomial = false; break;
      case PieceRole::linear: break;
    }
  }
  return shape;
}

namespace {

constexpr int64_t kSweepRows = 192;  // rows per layer call while sweeping; more pieces are swept in chunks, depth first
// Roots this close to a piece's ends, relative to its length, are that end: interpolation noise of a unit that changes
// sign there (already a breakpoint) must not add a sliver piece.
constexpr double kEdgeTolerance = 1e-13;

struct Piece {
  double a, b;
};

// Values of a degree-d polynomial given at chebyshev_points(d) (rows of `size` values) at the points u of [-1, 1]: the
// Lagrange basis at each u, then one combine_rows pass.
void resample(const double* from, int64_t size, int64_t degree, const std::vector<double>& u, double* to) {
  const std::vector<double> nodes = chebyshev_points(degree);
  std::vector<double> basis(u.size() * nodes.size());  // (u, nodes)
  for (size_t j = 0; j < u.size(); ++j)
    for (size_t k = 0; k < nodes.size(); ++k) {
      double l = 1.0;
      for (size_t i = 0; i < nodes.size(); ++i)
        if (i != k) l *= (u[j] - nodes[i]) / (nodes[k] - nodes[i]);
      basis[j * nodes.size() + k] = l;
    }
  combine_rows(basis.data(), static_cast<int64_t>(u.size()), static_cast<int64_t>(nodes.size()), from, size, to);
}

// A layer's output on its pieces, kept for a later layer that reads it (a residual sum): pieces only split further
// along the walk, so every later piece lies inside one of these.
struct KeptOutput {
  std::vector<Piece> pieces;
  std::shared_ptr<const Tensor> values;  // at the Chebyshev points of `degree` of every piece: the walk's own, not a copy
  int64_t degree = 0;
};
using Values = std::shared_ptr<const Tensor>;  // the walk's values, shared with the kept outputs read later
Values shared(Tensor values) { return std::make_shared<const Tensor>(std::move(values)); }
using KeptOutputs = std::map<int64_t, std::shared_ptr<const KeptOutput>>;
Tensor kept_output_at(const KeptOutputs& kept, int64_t layer, const std::vector<double>& t);

// The index of the piece holding t among sorted, contiguous pieces: the first whose end lies beyond t (the last for t at
// the very end).
size_t holding(const std::vector<Piece>& pieces, double t) {
  const auto found = std::upper_bound(pieces.begin(), pieces.end(), t, [](double x, const Piece& piece) { return x < piece.b; });
  return found == pieces.end() ? pieces.size() - 1 : static_cast<size_t>(found - pieces.begin());
}

// One input's walk through the layers: `values` holds layer l's input at the Chebyshev points of degree `degree` of every
// piece, (pieces·(degree+1), ...). Nonlinear layers split pieces where a unit's sign or a window's winner changes (the
// sub-pieces' values are the parent's polynomial resampled: no forward again); parameterised layers raise the degree.
// A layer reading a sum of earlier outputs gets them resampled onto the current pieces at the highest degree.
struct Sweep {
  const Sequential& model;
  const PieceShape& network;
  const Segment& segment;
  int64_t sample;
  std::vector<double>& bounds;  // the input's breakpoints, appended in order
  const PieceLeafVisitor* visit = nullptr;  // handed each run of final pieces, with the parameterised layers' outputs

  // Whether layer l's output is kept for later: a later layer reads it, or the visitor will ask for it.
  bool keeps(size_t l) const { return model.read_later(static_cast<int64_t>(l)) || (visit && model.layers()[l]->parameterised()); }

  void walk(size_t l, std::vector<Piece> pieces, Values values, int64_t degree, KeptOutputs kept) {
    const auto& layers = model.layers();
    if (l == 0 && model.read_later(Sequential::kNetworkInput)) keep(Sequential::kNetworkInput, pieces, values, degree, kept);
    for (; l < layers.size(); ++l) {
      const Layer& layer = *layers[l];
      const PieceInfo info = layer.piece();
      if (!model.chained(l)) values = shared(summed_input(l, pieces, *values, degree, kept));
      std::vector<Values> chunks;  // the sub-pieces' values in chunks, when split wrote them so
      bool applied = false;        // whether split ran layer l already: values or chunks are its output
      if (info.role == PieceRole::relu_like || info.role == PieceRole::max_window) chunks = split(l, pieces, values, degree, applied);
      if (static_cast<int64_t>(pieces.size()) * (degree + 2) > kSweepRows && pieces.size() > 1) {
        if (chunks.empty()) chunks = in_chunks(*values, pieces.size(), degree);
        descend_in_chunks(l, pieces, chunks, degree, kept, applied);
        return;
      }
      if (!applied) values = shared(advance(l, pieces, *values, degree));
      if (layer.parameterised()) ++degree;
      if (keeps(l)) keep(static_cast<int64_t>(l), pieces, values, degree, kept);
    }
    for (const Piece& piece : pieces) bounds.push_back(piece.b);
    if (visit) hand_over(pieces, kept);
  }

  // Pieces per chunk at this degree: a layer call then has at most kSweepRows rows.
  static size_t chunk_pieces(int64_t degree) { return static_cast<size_t>(std::max<int64_t>(1, kSweepRows / (degree + 2))); }

  // Layer l and the rest of the walk, depth first on chunks of pieces, in order, so memory stays bounded and the bounds
  // stay sorted.
  // With `applied`, the chunks hold layer l's output already.
  void descend_in_chunks(size_t l, const std::vector<Piece>& pieces, const std::vector<Values>& chunks, int64_t degree, const KeptOutputs& kept,
                         bool applied) {
    const Layer& layer = *model.layers()[l];
    const size_t per_chunk = chunk_pieces(degree);
    for (size_t k = 0; k < chunks.size(); ++k) {
      const size_t first = k * per_chunk, last = std::min(pieces.size(), first + per_chunk);
      const std::vector<Piece> chunk(pieces.begin() + static_cast<int64_t>(first), pieces.begin() + static_cast<int64_t>(last));
      Values next = applied ? chunks[k] : shared(advance(l, chunk, *chunks[k], degree));
      const int64_t raised = degree + (layer.parameterised() ? 1 : 0);
      KeptOutputs chunk_kept = kept;
      if (keeps(l)) keep(static_cast<int64_t>(l), chunk, next, raised, chunk_kept);
      walk(l + 1, chunk, std::move(next), raised, std::move(chunk_kept));
    }
  }

  // The values of `count` pieces copied into chunks of chunk_pieces(degree) pieces (when no split wrote them so).
  static std::vector<Values> in_chunks(const Tensor& values, size_t count, int64_t degree) {
    const int64_t points = degree + 1, size = values.numel() / values.dim(0);
    const size_t per_chunk = chunk_pieces(degree);
    std::vector<Values> chunks;
    for (size_t first = 0; first < count; first += per_chunk) {
      const int64_t rows = static_cast<int64_t>(std::min(count, first + per_chunk) - first) * points;
      Tensor part = Tensor::uninitialised(with_batch(values.shape(), rows));  // copied in whole
      std::copy_n(values.data() + static_cast<int64_t>(first) * points * size, part.numel(), part.data());
      chunks.push_back(shared(std::move(part)));
    }
    return chunks;
  }

  void hand_over(const std::vector<Piece>& pieces, const KeptOutputs& kept) const {
    PieceLeaf leaf;
    leaf.sample = sample;
    for (const Piece& piece : pieces) leaf.pieces.push_back({piece.a, piece.b});
    leaf.outputs_at = [kept](int64_t layer, const std::vector<double>& t) { return kept_output_at(kept, layer, t); };
    (*visit)(leaf);
  }

  static void keep(int64_t layer, const std::vector<Piece>& pieces, const Values& values, int64_t degree, KeptOutputs& kept) {
    kept[layer] = std::make_shared<const KeptOutput>(KeptOutput{pieces, values, degree});
  }

  Tensor summed_input(size_t l, const std::vector<Piece>& pieces, const Tensor& values, int64_t& degree, const KeptOutputs& kept) const;

  // Layer l on the pieces' rows; a parameterised layer first resamples its input at one more point per piece.
  Tensor advance(size_t l, const std::vector<Piece>& pieces, const Tensor& values, int64_t degree) const {
    const Layer& layer = *model.layers()[l];
    if (!layer.parameterised()) return segment_layer_output(model, static_cast<int64_t>(l), values, with_rows(pieces, degree));
    const int64_t points = degree + 1, size = values.numel() / values.dim(0);
    const std::vector<double> raised = chebyshev_points(degree + 1);
    Tensor input = Tensor::uninitialised(with_batch(values.shape(), static_cast<int64_t>(pieces.size()) * (points + 1)));  // resample writes all
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < pieces.size(); ++p)
      resample(values.data() + static_cast<int64_t>(p) * points * size, size, degree, raised, input.data() + static_cast<int64_t>(p) * (points + 1) * size);
    return segment_layer_output(model, static_cast<int64_t>(l), input, with_rows(pieces, degree + 1));
  }

  // The segment's rows: each piece's Chebyshev points of `degree`, all on this input.
  Segment with_rows(const std::vector<Piece>& pieces, int64_t degree) const {
    Segment rows = segment;
    rows.t.clear();
    rows.samples.clear();
    for (const Piece& piece : pieces)
      for (double t : chebyshev_points(degree, piece.a, piece.b)) {
        rows.t.push_back(t);
        rows.samples.push_back(sample);
      }
    return rows;
  }

  std::vector<Values> split(size_t l, std::vector<Piece>& pieces, Values& values, int64_t degree, bool& applied) const;
};

// Layer `layer`'s kept output at the points t, each interpolated on the kept piece that holds it.
Tensor kept_output_at(const KeptOutputs& kept, int64_t layer, const std::vector<double>& t) {
  const auto found = kept.find(layer);
  if (found == kept.end()) throw std::logic_error("find_pieces: layer " + std::to_string(layer) + "'s output was not kept");
  const KeptOutput& output = *found->second;
  const Tensor& values = *output.values;
  const int64_t size = values.numel() / values.dim(0), points = output.degree + 1;
  Tensor out = Tensor::uninitialised(with_batch(values.shape(), static_cast<int64_t>(t.size())));  // every row resampled
  // Consecutive points on one kept piece (a piece's Gauss–Legendre nodes) in one resample call: the piece's values are
  // read once for all of them. Each row is the same sum in the same order either way.
  for (size_t j = 0; j < t.size();) {
    const size_t q = holding(output.pieces, t[j]);
    const Piece& holder = output.pieces[q];
    const auto local = [&](double x) { return 2.0 * (x - holder.a) / (holder.b - holder.a) - 1.0; };
    std::vector<double> u{local(t[j])};
    size_t end = j + 1;
    for (; end < t.size() && holding(output.pieces, t[end]) == q; ++end) u.push_back(local(t[end]));
    resample(values.data() + static_cast<int64_t>(q) * points * size, size, output.degree, u, out.data() + static_cast<int64_t>(j) * size);
    j = end;
  }
  return out;
}

// Layer l's input as the sum of its sources' outputs, each resampled from the piece containing every current piece onto
// that piece's Chebyshev points of the highest source degree (exact: each is a polynomial of at most that degree there).
Tensor Sweep::summed_input(size_t l, const std::vector<Piece>& pieces, const Tensor& values, int64_t& degree, const KeptOutputs& kept) const {
  std::vector<KeptOutput> current;  // layer l − 1's output, when read: the walk's own values
  std::vector<const KeptOutput*> sources;
  int64_t highest = 0;
  for (int64_t source : model.sources(l)) {
    if (source == static_cast<int64_t>(l) - 1) {
      current.push_back({pieces, std::shared_ptr<const Tensor>(std::shared_ptr<const Tensor>(), &values), degree});  // not owned: the walk's
      sources.push_back(&current.back());
    } else {
      const auto found = kept.find(source);
      if (found == kept.end()) throw std::logic_error("find_pieces: layer " + std::to_string(source) + "'s output was not kept");
      sources.push_back(found->second.get());
    }
    highest = std::max(highest, sources.back()->degree);
  }
  const Tensor& like = *sources.front()->values;  // every source has the layer's input shape
  const int64_t points = highest + 1, size = like.numel() / like.dim(0);
  Tensor sum(with_batch(like.shape(), static_cast<int64_t>(pieces.size()) * points));
  std::vector<double> part(static_cast<size_t>(points * size));
  for (const KeptOutput* source : sources)
    for (size_t p = 0; p < pieces.size(); ++p) {
      const size_t q = holding(source->pieces, 0.5 * (pieces[p].a + pieces[p].b));
      const Piece& parent = source->pieces[q];
      std::vector<double> u = chebyshev_points(highest, pieces[p].a, pieces[p].b);
      for (double& x : u) x = 2.0 * (x - parent.a) / (parent.b - parent.a) - 1.0;
      resample(source->values->data() + static_cast<int64_t>(q) * (source->degree + 1) * size, size, source->degree, u, part.data());
      double* into = sum.data() + static_cast<int64_t>(p) * points * size;
      for (int64_t k = 0; k < points * size; ++k) into[k] += part[static_cast<size_t>(k)];
    }
  degree = highest;
  return sum;
}

// The roots of nonlinear layer l on every piece; each piece becomes its sub-pieces, their values resampled from it and
// passed through layer l at once (when any piece splits; then `applied` is set and the values are layer l's output).
// When the sub-pieces are too many for one layer call, their values are written straight into the walk's chunks (no
// copy later), and returned; otherwise into shared_values, and none are returned.
std::vector<Values> Sweep::split(size_t l, std::vector<Piece>& pieces, Values& shared_values, int64_t degree, bool& applied) const {
  const Tensor& values = *shared_values;
  applied = false;
  if (degree == 0) return {};  // constant along the segment: nothing changes
  const NonlinearLayer* layer = nullptr;
  for (const NonlinearLayer& candidate : network.nonlinear)
    if (candidate.layer == static_cast<int64_t>(l)) layer = &candidate;
  const ChebyshevInterpolator interpolator(degree);
  const int64_t points = degree + 1, size = values.numel() / values.dim(0);
  std::vector<std::vector<double>> roots(pieces.size());
#pragma omp parallel for schedule(dynamic)
  for (int64_t p = 0; p < static_cast<int64_t>(pieces.size()); ++p) {
    const Piece& piece = pieces[static_cast<size_t>(p)];
    const double* block = values.data() + p * points * size;
    std::vector<double>& found = roots[static_cast<size_t>(p)];
    if (layer->max_pool) pool_roots(block, size, values.shape(), *layer, interpolator, piece.a, piece.b, found);
    else relu_roots(block, size, interpolator, piece.a, piece.b, found);
    std::sort(found.begin(), found.end());
  }
  std::vector<std::pair<size_t, Piece>> parents;  // (parent, sub-piece) in order
  for (size_t p = 0; p < pieces.size(); ++p) {
    const double margin = kEdgeTolerance * (pieces[p].b - pieces[p].a);
    double start = pieces[p].a;
    for (double t : roots[p])
      if (t - start > std::max(margin, 4e-16) && pieces[p].b - t > std::max(margin, 4e-16)) {
        parents.push_back({p, {start, t}});
        start = t;
      }
    parents.push_back({p, {start, pieces[p].b}});
  }
  if (parents.size() == pieces.size()) return {};
  const size_t per_chunk = static_cast<int64_t>(parents.size()) * (degree + 2) > kSweepRows ? chunk_pieces(degree) : parents.size();
  // Layer l itself runs on each sub-piece while its resampled values are still in cache, so the chunks hold its output:
  // an elementwise or windowed layer gives each row the same bits alone as in a batch, and the walk skips its advance.
  const Shape output_row = model.layers()[l]->output_shape(with_batch(values.shape(), 1));
  const int64_t output_size = shape_numel(output_row);
  std::vector<Tensor> chunks;
  for (size_t first = 0; first < parents.size(); first += per_chunk)
    chunks.push_back(Tensor::uninitialised(with_batch(output_row, static_cast<int64_t>(std::min(parents.size(), first + per_chunk) - first) * points)));  // every sub-piece written
#pragma omp parallel for schedule(dynamic)
  for (int64_t k = 0; k < static_cast<int64_t>(parents.size()); ++k) {
    const auto& [p, sub] = parents[static_cast<size_t>(k)];
    const Piece& parent = pieces[p];
    const double* from = values.data() + static_cast<int64_t>(p) * points * size;
    thread_local Tensor input;  // (points, ...): one sub-piece's input to layer l
    if (input.shape() != with_batch(values.shape(), points)) input = Tensor::uninitialised(with_batch(values.shape(), points));
    if (sub.a == parent.a && sub.b == parent.b) {
      std::copy_n(from, points * size, input.data());
    } else {
      std::vector<double> u = chebyshev_points(degree, sub.a, sub.b);
      for (double& x : u) x = 2.0 * (x - parent.a) / (parent.b - parent.a) - 1.0;
      resample(from, size, degree, u, input.data());
    }
    const Tensor output = model.layers()[l]->apply(input, {}, nullptr);  // no parameters: the segment's t plays no part
    double* to = chunks[static_cast<size_t>(k) / per_chunk].data() + static_cast<int64_t>(static_cast<size_t>(k) % per_chunk) * points * output_size;
    std::copy_n(output.data(), points * output_size, to);
  }
  std::vector<Piece> split_pieces;
  for (const auto& entry : parents) split_pieces.push_back(entry.second);
  pieces = std::move(split_pieces);
  applied = true;
  if (chunks.size() == 1) {
    shared_values = shared(std::move(chunks.front()));
    return {};
  }
  std::vector<Values> out;
  for (Tensor& chunk : chunks) out.push_back(shared(std::move(chunk)));
  shared_values = nullptr;  // the chunks hold the values now
  return out;
}

}  // namespace

// Sorted piece bounds [0, ..., 1] of every input's activation pattern along base + t·direction, in one sweep through the
// layers per input (see Sweep). Inputs run in parallel when there are several; one input's layer calls run in parallel.
std::vector<std::vector<double>> find_pieces(const Sequential& model, const PieceShape& network, const Tensor& inputs, const Segment& segment,
                                             const PieceLeafVisitor* visit) {
  const int64_t M = inputs.dim(0);
  std::vector<std::vector<double>> bounds(static_cast<size_t>(M), std::vector<double>{0.0});
#pragma omp parallel for schedule(dynamic) if (M > 1)
  for (int64_t m = 0; m < M; ++m) {
    Sweep sweep{model, network, segment, m, bounds[static_cast<size_t>(m)], visit};
    sweep.walk(0, {{0.0, 1.0}}, shared(sample_rows(inputs, m, 1)), 0, {});
  }
  return bounds;
}

namespace {

// Each row's activation pattern at nonlinear layer `layer` (input values (rows, ...)): ReLU signs, or max-pool winners.
std::vector<std::vector<int64_t>> patterns(const Tensor& values, const NonlinearLayer& layer) {
  const int64_t rows = values.dim(0), size = values.numel() / rows;
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(rows));
  for (int64_t n = 0; n < rows; ++n) {
    const double* x = values.data() + n * size;
    std::vector<int64_t>& pattern = out[static_cast<size_t>(n)];
    if (!layer.max_pool) {
      for (int64_t i = 0; i < size; ++i) pattern.push_back(x[i] > 0.0);
      continue;
    }
    const int64_t channels = values.dim(1), height = values.dim(2), width = values.dim(3);
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t oy = 0; oy + layer.kernel <= height; oy += layer.stride)
        for (int64_t ox = 0; ox + layer.kernel <= width; ox += layer.stride) {
          int64_t best = 0;
          for (int64_t k = 1; k < layer.kernel * layer.kernel; ++k) {
            const int64_t at = (c * height + oy + k / layer.kernel) * width + ox + k % layer.kernel;
            const int64_t winner = (c * height + oy + best / layer.kernel) * width + ox + best % layer.kernel;
            if (x[at] > x[winner]) best = k;
          }
          pattern.push_back(best);
        }
  }
  return out;
}

}  // namespace

PieceCheck check_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment, const std::vector<std::vector<double>>& bounds) {
  const PieceShape network = analyse_pieces(model);
  PieceCheck check;
  Segment rows = segment;
  rows.first_base = rows.first_direction = nullptr;
  rows.t.clear();
  rows.samples.clear();
  for (size_t m = 0; m < bounds.size(); ++m)
    for (size_t k = 0; k + 1 < bounds[m].size(); ++k) {
      rows.t.push_back(0.5 * (bounds[m][k] + bounds[m][k + 1]));
      rows.samples.push_back(static_cast<int64_t>(m));
    }
  // Per row, whether it differs from the previous row (of the same input) at any nonlinear layer.
  std::vector<bool> changed(rows.t.size(), false);
  std::vector<Tensor> outputs{gather_rows(inputs, rows.samples)};
  for (size_t l = 0; l < model.layers().size(); ++l) {
    const Tensor values = model.gather_input(l, outputs, add_tensors);
    for (const NonlinearLayer& layer : network.nonlinear)
      if (layer.layer == static_cast<int64_t>(l)) {
        const std::vector<std::vector<int64_t>> p = patterns(values, layer);
        for (size_t r = 1; r < p.size(); ++r) changed[r] = changed[r] || p[r] != p[r - 1];
      }
    outputs.push_back(segment_layer_output(model, static_cast<int64_t>(l), values, rows));
  }
  for (size_t r = 1; r < rows.t.size(); ++r) {
    if (rows.samples[r] != rows.samples[r - 1]) continue;
    ++check.breakpoints;
    if (!changed[r]) ++check.spurious;
  }
  return check;
}

std::vector<std::vector<double>> path_pieces(const Sequential& model, const Tensor& inputs, const Segment& segment) {
  const PieceShape network = analyse_pieces(model);
  if (!network.piecewise_polynomial) throw std::invalid_argument("path_pieces: the network has smooth activations; it is not piecewise polynomial along a segment");
  Segment plain = segment;
  plain.first_base = plain.first_direction = nullptr;
  return find_pieces(model, network, inputs, plain);
}

}  // namespace ks
