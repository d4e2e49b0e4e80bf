// The primitive ops' forward and backward kernels, and the slow references kept beside the fast ones.
// No shape checks here (functions.cpp does them) and no graph: each function reads and writes plain buffers.
#include "autodiff/ops.h"
#include "autodiff/math.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "autodiff/tensor.h"

namespace ks {

// ---- matrix products -------------------------------------------------------------------------

void matmul_forward(double* out, const double* a, const double* b, int64_t N, int64_t K, int64_t M) {
  MatrixMap(out, N, M).noalias() = ConstMatrixMap(a, N, K) * ConstMatrixMap(b, K, M);
}

void matmul_backward(double* da, double* db, const double* dout, const double* a, const double* b, int64_t N,
                     int64_t K, int64_t M) {
  ConstMatrixMap dout_map(dout, N, M);
  if (da) MatrixMap(da, N, K).noalias() += dout_map * ConstMatrixMap(b, K, M).transpose();
  if (db) MatrixMap(db, K, M).noalias() += ConstMatrixMap(a, N, K).transpose() * dout_map;
}

// Dense GEMMs run over fixed blocks of features, in parallel: a block's numbers come from the same GEMM whatever the
// thread count, so the bits do not depend on it. Small products stay serial (the same blocks, one thread).
constexpr int64_t kFeatureBlock = 64;
using StridedMap = Eigen::Map<MatrixRowMajor, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const MatrixRowMajor, 0, Eigen::OuterStride<>>;

static int64_t feature_blocks(int64_t features) { return (features + kFeatureBlock - 1) / kFeatureBlock; }
static bool worth_threads(int64_t N, int64_t I, int64_t O) { return N * I * O >= (int64_t{1} << 18); }

void linear_forward(double* out, const double* inp, const double* weight, const double* bias, int64_t N, int64_t I,
                    int64_t O) {
  // out (N, O), inp (N, I), weight (O, I), bias (O)
  const int64_t blocks = feature_blocks(O);
#pragma omp parallel for schedule(static) if (blocks > 1 && worth_threads(N, I, O))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * kFeatureBlock, count = std::min(kFeatureBlock, O - first);
    StridedMap out_block(out + first, N, count, Eigen::OuterStride<>(O));
    out_block.noalias() = ConstMatrixMap(inp, N, I) * ConstMatrixMap(weight + first * I, count, I).transpose();
    if (bias) out_block.rowwise() += Eigen::Map<const Eigen::RowVectorXd>(bias + first, count);
  }
}

void linear_backward(double* dinp, double* dweight, double* dbias, const double* dout, const double* inp,
                     const double* weight, int64_t N, int64_t I, int64_t O) {
  // dinp (N, I), dweight (O, I), dbias (O), dout (N, O), inp (N, I), weight (O, I)
  ConstMatrixMap dout_map(dout, N, O);
  const bool threads = worth_threads(N, I, O);
  if (dinp) {
    const int64_t blocks = feature_blocks(I);
#pragma omp parallel for schedule(static) if (blocks > 1 && threads)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t first = b * kFeatureBlock, count = std::min(kFeatureBlock, I - first);
      StridedMap(dinp + first, N, count, Eigen::OuterStride<>(I)).noalias() +=
          dout_map * ConstStridedMap(weight + first, O, count, Eigen::OuterStride<>(I));
    }
  }
  if (dweight) {
    const int64_t blocks = feature_blocks(O);
#pragma omp parallel for schedule(static) if (blocks > 1 && threads)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t first = b * kFeatureBlock, count = std::min(kFeatureBlock, O - first);
      MatrixMap(dweight + first * I, count, I).noalias() +=
          ConstStridedMap(dout + first, N, count, Eigen::OuterStride<>(O)).transpose() * ConstMatrixMap(inp, N, I);
    }
  }
  if (dbias) Eigen::Map<Eigen::RowVectorXd>(dbias, O) += dout_map.colwise().sum();
}

// ---- elementwise -----------------------------------------------------------------------------

void binary_forward(Binary kind, double* out, const double* a, const double* b, int64_t rows, int64_t period) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < period; ++j) {
      const int64_t i = r * period + j;
      switch (kind) {
        case Binary::add: out[i] = a[i] + b[j]; break;
        case Binary::sub: out[i] = a[i] - b[j]; break;
        case Binary::mul: out[i] = a[i] * b[j]; break;
      }
    }
}

void binary_backward(Binary kind, double* da, double* db, const double* dout, const double* a, const double* b,
                     int64_t rows, int64_t period) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < period; ++j) {
      const int64_t i = r * period + j;
      switch (kind) {
        case Binary::add:
          if (da) da[i] += dout[i];
          if (db) db[j] += dout[i];
          break;
        case Binary::sub:
          if (da) da[i] += dout[i];
          if (db) db[j] -= dout[i];
          break;
        case Binary::mul:
          if (da) da[i] += dout[i] * b[j];
          if (db) db[j] += dout[i] * a[i];
          break;
      }
    }
}

void scale_forward(double* out, const double* inp, double factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] * factor;
}

void scale_backward(double* dinp, const double* dout, double factor, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i] * factor;
}

// ---- reductions ------------------------------------------------------------------------------

void sum_forward(double* out, const double* inp, int64_t n) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += inp[i];
  out[0] = total;
}

void sum_backward(double* dinp, const double* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[0];
}

void mean_forward(double* out, const double* inp, int64_t n) {
  sum_forward(out, inp, n);
  out[0] /= static_cast<double>(n);
}

void mean_backward(double* dinp, const double* dout, int64_t n) {
  const double share = dout[0] / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) dinp[i] += share;
}

// ---- activations -----------------------------------------------------------------------------

double stable_sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + math::exp(-x));
  const double e = math::exp(x);
  return e / (1.0 + e);
}

double stable_softplus(double x) { return std::max(x, 0.0) + math::log1p(math::exp(-std::abs(x))); }

// Elementwise loops this long run on every thread (the piece finder calls them on many rows from one thread); each
// element is computed alone, so the bits do not depend on the split.
constexpr int64_t kParallelElements = 1 << 16;

void relu_forward(double* out, const double* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] > 0.0 ? inp[i] : 0.0;
}

void relu_backward(double* dinp, const double* dout, const double* inp, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= kParallelElements)
  for (int64_t i = 0; i < n; ++i)
    if (inp[i] > 0.0) dinp[i] += dout[i];
}

void tanh_forward(double* out, const double* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = math::tanh(inp[i]);
}

void tanh_backward(double* dinp, const double* dout, const double* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i] * (1.0 - out[i] * out[i]);
}

void sigmoid_forward(double* out, const double* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = stable_sigmoid(inp[i]);
}

void sigmoid_backward(double* dinp, const double* dout, const double* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i] * out[i] * (1.0 - out[i]);
}

void softplus_forward(double* out, const double* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = stable_softplus(inp[i]);
}

void softplus_backward(double* dinp, const double* dout, const double* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i] * stable_sigmoid(inp[i]);
}

// ---- convolution -----------------------------------------------------------------------------

// im2col for stride 1 and 'same' width (Wo = W): a patch row is the image shifted by one offset, so each row of the
// panel is one contiguous copy, then the columns and rows that fall in the padding are zeroed. The same values as the
// general form, with one copy per row instead of one per output row.
static void im2col_same_width(double* columns, const double* image, const Conv2dGeometry& g, int64_t column_count, int64_t column_offset) {
  const int64_t Ho = g.out_height(), W = g.width, k = g.kernel, image_size = g.height * W;
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj) {
        double* row = columns + ((c * k + ki) * k + kj) * column_count + column_offset;
        const int64_t shift = kj - g.padding;
        const int64_t first_row = std::max<int64_t>(0, g.padding - ki), last_row = std::min(Ho, g.height + g.padding - ki);
        std::fill_n(row, first_row * W, 0.0);
        if (last_row > first_row) {
          // Output (oi, oj) reads image[(oi − padding + ki)·W + oj + shift]: one run, less the elements before the image
          // (shift < 0) or after it (shift > 0), which the zeroed padding columns cover anyway.
          int64_t start = (first_row - g.padding + ki) * W + shift, from = first_row * W, count = (last_row - first_row) * W;
          if (start < 0) from -= start, count += start, start = 0;
          if (start + count > image_size) count = image_size - start;
          std::copy_n(image + c * image_size + start, count, row + from);
          for (int64_t oi = first_row; oi < last_row; ++oi) {
            if (shift < 0) std::fill_n(row + oi * W, -shift, 0.0);
            if (shift > 0) std::fill_n(row + oi * W + W - shift, shift, 0.0);
          }
        }
        std::fill(row + last_row * W, row + Ho * W, 0.0);
      }
}

void im2col(double* columns, const double* image, const Conv2dGeometry& g, int64_t column_count,
            int64_t column_offset) {
  const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel;
  if (g.stride == 1 && Wo == g.width && g.padding < k) return im2col_same_width(columns, image, g, column_count, column_offset);
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj) {
        double* row = columns + ((c * k + ki) * k + kj) * column_count + column_offset;
        // Output columns oj whose input column j = oj·stride − padding + kj lies inside the image: [first, last).
        const int64_t shift = kj - g.padding;
        const int64_t first = std::min(Wo, shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride);
        const int64_t last = std::max(first, std::min(Wo, g.width - shift <= 0 ? 0 : (g.width - shift + g.stride - 1) / g.stride));
        for (int64_t oi = 0; oi < Ho; ++oi) {
          double* out = row + oi * Wo;
          const int64_t i = oi * g.stride - g.padding + ki;
          if (i < 0 || i >= g.height) {
            std::fill_n(out, Wo, 0.0);
            continue;
          }
          const double* source = image + (c * g.height + i) * g.width + shift;
          std::fill_n(out, first, 0.0);
          if (g.stride == 1) std::copy(source + first, source + last, out + first);
          else for (int64_t oj = first; oj < last; ++oj) out[oj] = source[oj * g.stride];
          std::fill(out + last, out + Wo, 0.0);
        }
      }
}

// col2im for stride 1 and 'same' width, im2col_same_width's adjoint: a patch row adds into the image shifted by one
// offset, as one run of vector adds. The run's elements that wrap around a row edge (padding columns) land on pixels
// this row must not touch; those pixels are saved before and restored after, so every pixel receives exactly the
// general form's terms in its order: the same bits.
static void col2im_same_width(double* dimage, const double* columns, const Conv2dGeometry& g, int64_t column_count, int64_t column_offset) {
  const int64_t Ho = g.out_height(), W = g.width, k = g.kernel, image_size = g.height * W;
  std::vector<double> saved(static_cast<size_t>(Ho * k));  // at most |shift| < k wrapped elements per row
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj) {
        const double* row = columns + ((c * k + ki) * k + kj) * column_count + column_offset;
        const int64_t shift = kj - g.padding;
        const int64_t first_row = std::max<int64_t>(0, g.padding - ki), last_row = std::min(Ho, g.height + g.padding - ki);
        if (last_row <= first_row) continue;
        double* image = dimage + c * image_size;
        int64_t start = (first_row - g.padding + ki) * W + shift, from = first_row * W, count = (last_row - first_row) * W;
        if (start < 0) from -= start, count += start, start = 0;
        if (start + count > image_size) count = image_size - start;
        // The wrapped elements: output columns [0, −shift) or [W − shift, W) of each row, at image index p + shift.
        const auto for_each_wrapped = [&](const auto& visit) {
          for (int64_t oi = first_row; oi < last_row; ++oi)
            for (int64_t oj = shift < 0 ? 0 : W - shift; oj < (shift < 0 ? -shift : W); ++oj) {
              const int64_t target = (oi - g.padding + ki) * W + oj + shift;
              if (target >= start && target < start + count) visit(target);
            }
        };
        size_t n = 0;
        for_each_wrapped([&](int64_t target) { saved[n++] = image[target]; });
        double* into = image + start;
        const double* source = row + from;
        for (int64_t i = 0; i < count; ++i) into[i] += source[i];
        n = 0;
        for_each_wrapped([&](int64_t target) { image[target] = saved[n++]; });
      }
}

void col2im(double* dimage, const double* columns, const Conv2dGeometry& g, int64_t column_count,
            int64_t column_offset) {
  const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel;
  if (g.stride == 1 && Wo == g.width && g.padding < k) return col2im_same_width(dimage, columns, g, column_count, column_offset);
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj) {
        const double* row = columns + ((c * k + ki) * k + kj) * column_count + column_offset;
        // The output columns whose input column lies inside the image, as in im2col: no test per element.
        const int64_t shift = kj - g.padding;
        const int64_t first = std::min(Wo, shift >= 0 ? 0 : (-shift + g.stride - 1) / g.stride);
        const int64_t last = std::max(first, std::min(Wo, g.width - shift <= 0 ? 0 : (g.width - shift + g.stride - 1) / g.stride));
        for (int64_t oi = 0; oi < Ho; ++oi) {
          const int64_t i = oi * g.stride - g.padding + ki;
          if (i < 0 || i >= g.height) continue;
          double* target = dimage + (c * g.height + i) * g.width + shift;
          const double* from = row + oi * Wo;
          if (g.stride == 1)
            for (int64_t oj = first; oj < last; ++oj) target[oj] += from[oj];
          else
            for (int64_t oj = first; oj < last; ++oj) target[oj * g.stride] += from[oj];
        }
      }
}

void col2im_reference(double* dimage, const double* columns, const Conv2dGeometry& g, int64_t column_count, int64_t column_offset) {
  const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel;
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj)
        for (int64_t oi = 0; oi < Ho; ++oi)
          for (int64_t oj = 0; oj < Wo; ++oj) {
            const int64_t i = oi * g.stride - g.padding + ki, j = oj * g.stride - g.padding + kj;
            if (i >= 0 && i < g.height && j >= 0 && j < g.width)
              dimage[(c * g.height + i) * g.width + j] += columns[((c * k + ki) * k + kj) * column_count + column_offset + oi * Wo + oj];
          }
}

// One thread's scratch for a sample's patches: kept between calls, so the hot loops allocate nothing.
static double* scratch_columns(int64_t size) {
  thread_local std::vector<double> columns;
  return scratch_at_least(columns, size);
}

// ---- the panel product: out = left · panel, register-tiled, no packing -----------------------------
// Why not Eigen here: a convolution's product has few output channels (16) against an im2col panel of 10⁵ values that
// Eigen packs again before multiplying; read in place (its rows a padded stride apart, so they do not share cache sets),
// the panel feeds register tiles directly. Every output is Σ_k left(r, k)·panel(k, c) summed in k order, one chain per
// output, whatever the tile: the bits do not depend on the tile shape. multiply_add
// fuses exactly where the reference does, and in the portable build nowhere, so there not on the machine either.
namespace {

#if defined(__AVX512F__)
constexpr int kLanes = 8, kTileRows = 8, kTileVectors = 3;  // 24 of the 32 vector registers accumulate
#elif defined(__AVX__)
constexpr int kLanes = 4, kTileRows = 4, kTileVectors = 3;  // 12 of 16
#else
constexpr int kLanes = 2, kTileRows = 4, kTileVectors = 2;  // SSE2, NEON: 8 of 16
#endif
typedef double Lanes __attribute__((vector_size(kLanes * sizeof(double))));
// The same vector at any double's address, allowed to alias doubles (as the intrinsics headers' __m512d_u): loads and
// stores through it are single unaligned vector moves. Copies with __builtin_memcpy were split by some tunings (GCC 12's
// -march=native on a CPU it takes for a Rocket Lake, or -mtune=icelake-server) into halves through the stack, and then
// the accumulators lived in memory too: the tiles ran at a third of their speed. Same bits either way.
typedef double UnalignedLanes __attribute__((vector_size(kLanes * sizeof(double)), aligned(alignof(double)), may_alias));

// a·b + c as the vector tiles compute it: fused in the native build (the compiler contracts the tiles' a·b + c into FMA
// instructions where the machine has them), a product then a sum in the portable build (-ffp-contract=off): the
// reference and the tiles' edges round alike.
#if !defined(KERNELSCOPE_PORTABLE) && (defined(__FMA__) || defined(__ARM_FEATURE_FMA))
#define KERNELSCOPE_FUSED_TILES 1  // one condition for the scalar and the vector form, so they always round alike
#endif
inline double multiply_add(double a, double b, double c) {
#if defined(KERNELSCOPE_FUSED_TILES)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// The same, lane by lane, for the tiles: a broadcast value times a vector plus the sums. Fused by an explicit
// instruction, not left to the compiler's contraction: GCC's tuning for AMD Zen (-march=native on an EPYC:
// avoid_fma_chains) keeps a·b + c chains unfused, and the tiles then rounded unlike the reference's std::fma.
inline Lanes multiply_add(double a, Lanes b, Lanes c) {
  // set1 broadcasts straight from memory (a lane-filling loop became two shuffles per value on Zen 3: 20% slower).
#if defined(KERNELSCOPE_FUSED_TILES) && defined(__AVX512F__)
  return (Lanes)_mm512_fmadd_pd(_mm512_set1_pd(a), (__m512d)b, (__m512d)c);
#elif defined(KERNELSCOPE_FUSED_TILES) && defined(__AVX__)
  return (Lanes)_mm256_fmadd_pd(_mm256_set1_pd(a), (__m256d)b, (__m256d)c);
#elif defined(KERNELSCOPE_FUSED_TILES) && defined(__aarch64__)
  return (Lanes)vfmaq_f64((float64x2_t)c, vdupq_n_f64(a), (float64x2_t)b);
#elif defined(KERNELSCOPE_FUSED_TILES)
  return (Lanes)_mm_fmadd_pd(_mm_set1_pd(a), (__m128d)b, (__m128d)c);
#else
  return a * b + c;
#endif
}

// R rows × V vectors of sums from R rows of left and V vectors of each panel row (panel_row(k): where row k's vectors
// start), handed to store(r, v, sums). The plain product's rows are a stride apart; the convolution reads a padded
// image, each patch entry's row at its own offset.
template <int R, int V, class Store, class PanelRow>
void panel_tile(const Store& store, const double* left, int64_t left_stride, int64_t depth, const PanelRow& panel_row) {
  Lanes acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = Lanes{};
  for (int64_t k = 0; k < depth; ++k) {
    Lanes row[V];
    const double* vectors = panel_row(k);
    for (int v = 0; v < V; ++v) row[v] = *reinterpret_cast<const UnalignedLanes*>(vectors + v * kLanes);
    for (int r = 0; r < R; ++r) {
      const double weight = left[r * left_stride + k];
      for (int v = 0; v < V; ++v) acc[r][v] = multiply_add(weight, row[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) store(r, v, acc[r][v]);
}

// Every register tile of a rows × columns product: tile(R, V, row, column) for blocks of Vectors vectors (then 2, then
// 1) and Rows rows (then one at a time), R and V as std::integral_constant. Returns the first column no vector covers:
// the caller's scalar remainder.
// The rows of one column block: row_tile(R, row) for blocks of Rows rows, then one at a time.
template <int Rows, class RowTile>
void sweep_rows(int64_t rows, const RowTile& row_tile) {
  int64_t r = 0;
  for (; r + Rows <= rows; r += Rows) row_tile(std::integral_constant<int, Rows>{}, r);
  for (; r < rows; ++r) row_tile(std::integral_constant<int, 1>{}, r);
}

template <int Rows, int Vectors, class Tile>
int64_t sweep_tiles(int64_t rows, int64_t columns, const Tile& tile) {
  const auto columns_of = [&](auto V, int64_t first) { sweep_rows<Rows>(rows, [&](auto R, int64_t r) { tile(R, V, r, first); }); };
  int64_t c = 0, blocks = columns / kLanes / Vectors;
  // Not a last block of Vectors = 3 that leaves one vector behind, when two pairs can take the four (16 columns of 4
  // lanes: 2 + 2, not 3 + 1, whose single vector has a third of the multiply-adds per load).
  if (Vectors == 3 && columns / kLanes % Vectors == 1 && blocks > 0) --blocks;
  for (int64_t b = 0; b < blocks; ++b, c += Vectors * kLanes) columns_of(std::integral_constant<int, Vectors>{}, c);
  // Two vectors where they fit: twice the multiply-adds per broadcast left value of one (a weight gradient's 16 columns).
  if (Vectors > 2)
    for (; c + 2 * kLanes <= columns; c += 2 * kLanes) columns_of(std::integral_constant<int, 2>{}, c);
  for (; c + kLanes <= columns; c += kLanes) columns_of(std::integral_constant<int, 1>{}, c);
  return c;
}

}  // namespace

void panel_product(double* out, const double* left, const double* panel, const PanelShape& s) {
  const int64_t covered = sweep_tiles<kTileRows, kTileVectors>(s.rows, s.columns, [&](auto R, auto V, int64_t r, int64_t c) {
    double* into = out + r * s.out_row_stride() + c;
    const auto store = [&](int row, int v, Lanes sums) { *reinterpret_cast<UnalignedLanes*>(into + row * s.out_row_stride() + v * kLanes) = sums; };
    panel_tile<R(), V()>(store, left + r * s.left_stride, s.left_stride, s.depth, [&](int64_t k) { return panel + k * s.panel_stride + c; });
  });
  if (covered < s.columns) panel_product_reference(out, left, panel, s, covered);
}

void panel_product_reference(double* out, const double* left, const double* panel, const PanelShape& s, int64_t first_column) {
  for (int64_t r = 0; r < s.rows; ++r)
    for (int64_t c = first_column; c < s.columns; ++c) {
      double total = 0.0;
      for (int64_t k = 0; k < s.depth; ++k) total = multiply_add(left[r * s.left_stride + k], panel[k * s.panel_stride + c], total);
      out[r * s.out_row_stride() + c] = total;
    }
}

// An im2col panel's row stride: the row length plus one cache line, so successive rows do not map to one cache set.
static int64_t panel_stride(int64_t spatial) { return spatial + 8; }

// ---- the forward without a column panel (stride 1, same size) -----------------------------------
// im2col's row (c, ki, kj) is the zero-padded image shifted by ki·Wp + kj on a grid of H rows of Wp = W + 2·padding
// positions. A register tile of output channels × grid positions reads the padded image in place, each patch entry's
// row at its own offset; the grid's 2·padding extra positions per row are computed and dropped. Each output is the
// same chain, zero terms included, as the column panel's product: the same bits, without writing 9 copies of the image.
namespace {

struct PaddedImage {
  const double* values;    // (C, plane): each channel zero-padded to (H + 2·padding) rows of Wp, then zeros
  const int64_t* offsets;  // (patch): where patch entry (c, ki, kj)'s row starts: c·plane + ki·Wp + kj
  int64_t row_width, grid;  // Wp, and the grid positions computed: H·Wp rounded up to whole vectors
};

// Into the caller's buffers (the forward and the weight gradient keep their own: a sample's patches outlive forwards).
PaddedImage padded_image(const double* image, const Conv2dGeometry& g, std::vector<double>& values, std::vector<int64_t>& offsets) {
  const int64_t p = g.padding, k = g.kernel, Wp = g.width + 2 * p, grid = (g.height * Wp + kLanes - 1) / kLanes * kLanes;
  const int64_t plane = (grid + (k - 1) * (Wp + 1) + kLanes - 1) / kLanes * kLanes + 8;  // the last vector's farthest read, and a cache line
  scratch_at_least(values, g.in_channels * plane);
  scratch_at_least(offsets, g.patch_size());
  for (int64_t c = 0; c < g.in_channels; ++c) {
    double* padded = values.data() + c * plane;
    std::fill_n(padded, p * Wp + p, 0.0);  // the rows above and the first row's left padding
    for (int64_t i = 0; i < g.height; ++i) {
      double* row = padded + (i + p) * Wp + p;
      std::copy_n(image + (c * g.height + i) * g.width, g.width, row);
      std::fill_n(row + g.width, std::min<int64_t>(2 * p, plane - ((i + p) * Wp + p + g.width)), 0.0);  // right, then next left
    }
    std::fill(padded + (g.height + p) * Wp + p, padded + plane, 0.0);
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj) offsets[static_cast<size_t>((c * k + ki) * k + kj)] = c * plane + ki * Wp + kj;
  }
  return {values.data(), offsets.data(), Wp, grid};
}

bool same_size(const Conv2dGeometry& g) { return g.stride == 1 && g.out_width() == g.width && g.out_height() == g.height; }

void conv2d_forward_same_size(double* out, const double* image, const double* weight, const Conv2dGeometry& g) {
  thread_local std::vector<double> values;
  thread_local std::vector<int64_t> offsets;
  const PaddedImage in = padded_image(image, g, values, offsets);
  const int64_t patch = g.patch_size(), spatial = g.height * g.width;
  thread_local std::vector<double> grid;  // (O, in.grid)
  scratch_at_least(grid, g.out_channels * in.grid);
  sweep_tiles<kTileRows, kTileVectors>(g.out_channels, in.grid, [&](auto R, auto V, int64_t o, int64_t q) {
    double* into = grid.data() + o * in.grid + q;
    const auto store = [&](int row, int v, Lanes sums) { *reinterpret_cast<UnalignedLanes*>(into + row * in.grid + v * kLanes) = sums; };
    panel_tile<R(), V()>(store, weight + o * patch, patch, patch, [&](int64_t kk) { return in.values + in.offsets[kk] + q; });
  });
  for (int64_t o = 0; o < g.out_channels; ++o)
    for (int64_t i = 0; i < g.height; ++i) std::copy_n(grid.data() + o * in.grid + i * in.row_width, g.width, out + o * spatial + i * g.width);
}

}  // namespace

void conv2d_forward_sample(double* out, const double* image, const double* weight, const double* bias,
                           const Conv2dGeometry& g) {
  const int64_t spatial = g.out_height() * g.out_width(), stride = panel_stride(spatial);
  if (same_size(g)) {
    conv2d_forward_same_size(out, image, weight, g);
  } else {
    double* columns = scratch_columns(g.patch_size() * stride);
    im2col(columns, image, g, stride, 0);
    panel_product(out, weight, columns, {g.out_channels, g.patch_size(), spatial, g.patch_size(), stride});
  }
  if (bias)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t p = 0; p < spatial; ++p) out[o * spatial + p] += bias[o];
}

void conv2d_forward_sample_reference(double* out, const double* image, const double* weight, const double* bias, const Conv2dGeometry& g) {
  const int64_t spatial = g.out_height() * g.out_width();
  std::vector<double> columns(static_cast<size_t>(g.patch_size() * spatial));
  im2col(columns.data(), image, g, spatial, 0);
  panel_product_reference(out, weight, columns.data(), {g.out_channels, g.patch_size(), spatial, g.patch_size(), spatial});
  if (bias)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t p = 0; p < spatial; ++p) out[o * spatial + p] += bias[o];
}

// ---- the input gradient without a column panel (stride 1, same size) ----------------------------
// col2im(Wᵀ·dout) adds into pixel q of channel c, for each kernel offset kk = (ki, kj) in order, the product row (c, kk)
// at column q − shift(kk), shift = (ki − padding)·W + kj − padding, where that column is an output position. For one
// offset every channel's row reads dout at the same shift, so a register tile of channels × pixels takes dout shifted
// as its panel; it keeps its pixels in registers through all k² offsets, adding each offset's sums where valid. Each
// pixel receives the same sums in the same order as col2im of the column panel: the same bits, and neither that panel
// nor the image passes through memory once per offset.
namespace {

#if defined(__AVX512F__)
constexpr int kGradientRows = 4, kGradientVectors = 3;  // 12 pixel and 12 sum registers of 32
#elif defined(__AVX__)
// 6 pixel and 6 sum registers, 3 panel vectors and a broadcast: 16 of 16. On AMD Zen 3 (one thread) 18–22 GFLOP/s
// against 18–20 for 2 × 2; keeping the pixels in L1 for 4 × 2 or 4 × 3 sum tiles was slower (14–18).
constexpr int kGradientRows = 2, kGradientVectors = 3;
#else
constexpr int kGradientRows = 2, kGradientVectors = 2;  // 4 and 4 of 16
#endif
typedef int64_t LaneMask __attribute__((vector_size(kLanes * sizeof(int64_t)), aligned(alignof(int64_t)), may_alias));

struct ShiftedDout {
  const double* rows;     // (O, stride): dout's rows, each between zero halos wider than any shift
  int64_t stride;
  const int64_t* valid;   // (k², HW): all ones where pixel q takes offset kk's term, else 0
  const int64_t* shifts;  // (k²)
};

// The shifts of the k² offsets and which pixels take each: the geometry's alone, made once per thread and geometry (the
// layers of a net alternate between a few).
struct OffsetTable {
  std::vector<int64_t> valid, shifts;
};
const OffsetTable& offset_table(const Conv2dGeometry& g) {
  thread_local std::map<std::array<int64_t, 4>, OffsetTable> tables;
  const auto [found, made] = tables.try_emplace({g.height, g.width, g.kernel, g.padding});
  OffsetTable& table = found->second;
  if (!made) return table;
  const int64_t spatial = g.height * g.width, offsets = g.kernel * g.kernel;
  // One vector of zeros past the end: the last pixels' partial vector reads the last offset's row that far.
  table.valid.assign(static_cast<size_t>(offsets * spatial + kLanes), 0);
  table.shifts.resize(static_cast<size_t>(offsets));
  for (int64_t kk = 0; kk < offsets; ++kk) {
    const int64_t ki = kk / g.kernel, kj = kk % g.kernel;
    table.shifts[static_cast<size_t>(kk)] = (ki - g.padding) * g.width + kj - g.padding;
    for (int64_t q = 0; q < spatial; ++q) {
      const int64_t oi = q / g.width + g.padding - ki, oj = q % g.width + g.padding - kj;
      table.valid[static_cast<size_t>(kk * spatial + q)] = (oi >= 0 && oi < g.height && oj >= 0 && oj < g.width) ? -1 : 0;
    }
  }
  return table;
}

// One thread's scratch: dout with its halos.
ShiftedDout shifted_dout(const double* dout, const Conv2dGeometry& g) {
  const int64_t spatial = g.height * g.width;
  const int64_t reach = g.padding * (g.width + 1), halo = (reach + kLanes - 1) / kLanes * kLanes, stride = spatial + 2 * halo + 8;
  thread_local std::vector<double> rows;
  scratch_at_least(rows, g.out_channels * stride);
  for (int64_t o = 0; o < g.out_channels; ++o) {
    double* row = rows.data() + o * stride;
    std::fill_n(row, halo, 0.0);
    std::copy_n(dout + o * spatial, spatial, row + halo);
    std::fill(row + halo + spatial, row + stride, 0.0);
  }
  const OffsetTable& table = offset_table(g);
  return {rows.data() + halo, stride, table.valid.data(), table.shifts.data()};
}

// The first `count` lanes of a vector at `at`, the others zero; and their store. For the last pixels of a row that no
// whole vector covers: the lanes past them would be the next channel's pixels, or past the image.
inline Lanes load_first(const double* at, int64_t count) {
  Lanes x{};
  for (int64_t i = 0; i < count; ++i) x[i] = at[i];
  return x;
}
inline void store_first(double* at, Lanes x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) at[i] = x[i];
}

// R channels × V vectors of pixels from c, q. left: Wᵀ's row (c, 0); channel rows k²·O apart, offset rows O apart.
// count < V·kLanes (V = 1 only): the row's last `count` pixels in one partial vector, with the same arithmetic per pixel
// as a whole one; its other lanes read dout's zero halo and the valid table's zero tail, and are not stored.
template <int R, int V>
void input_gradient_tile(double* dimage, const double* left, const ShiftedDout& in, const Conv2dGeometry& g, int64_t c, int64_t q, Accumulate mode,
                         int64_t count = V * kLanes) {
  const int64_t spatial = g.height * g.width, O = g.out_channels, offsets = g.kernel * g.kernel;
  const bool partial = count < V * kLanes;
  Lanes pixels[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      const double* at = dimage + (c + r) * spatial + q + v * kLanes;
      pixels[r][v] = mode == Accumulate::assign ? Lanes{} : partial ? load_first(at, count) : *reinterpret_cast<const UnalignedLanes*>(at);
    }
  for (int64_t kk = 0; kk < offsets; ++kk) {
    const double* panel = in.rows + q - in.shifts[kk];
    Lanes sums[R][V];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) sums[r][v] = Lanes{};
    for (int64_t o = 0; o < O; ++o) {
      Lanes row[V];
      for (int v = 0; v < V; ++v) row[v] = *reinterpret_cast<const UnalignedLanes*>(panel + o * in.stride + v * kLanes);
      for (int r = 0; r < R; ++r) {
        const double weight = left[((c + r) * offsets + kk) * O + o];
        for (int v = 0; v < V; ++v) sums[r][v] = multiply_add(weight, row[v], sums[r][v]);
      }
    }
    for (int v = 0; v < V; ++v) {
      const LaneMask takes = *reinterpret_cast<const LaneMask*>(in.valid + kk * spatial + q + v * kLanes);
      for (int r = 0; r < R; ++r) pixels[r][v] = takes != 0 ? pixels[r][v] + sums[r][v] : pixels[r][v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) {
      double* at = dimage + (c + r) * spatial + q + v * kLanes;
      if (partial) store_first(at, pixels[r][v], count);
      else *reinterpret_cast<UnalignedLanes*>(at) = pixels[r][v];
    }
}

}  // namespace

void conv2d_backward_input_sample(double* dimage, const double* dout, const double* weight, const Conv2dGeometry& g, Accumulate mode) {
  const int64_t patch = g.patch_size();
  thread_local std::vector<double> transposed;  // Wᵀ, (patch, O): the left side of the panel product
  scratch_at_least(transposed, patch * g.out_channels);
  for (int64_t o = 0; o < g.out_channels; ++o)
    for (int64_t k = 0; k < patch; ++k) transposed[static_cast<size_t>(k * g.out_channels + o)] = weight[o * patch + k];
  conv2d_backward_input_sample_transposed(dimage, dout, transposed.data(), g, mode);
}

void conv2d_backward_input_sample_transposed(double* dimage, const double* dout, const double* transposed, const Conv2dGeometry& g,
                                             Accumulate mode) {
  const int64_t spatial = g.out_height() * g.out_width(), patch = g.patch_size();
  if (same_size(g)) {
    const ShiftedDout in = shifted_dout(dout, g);
    const int64_t covered = sweep_tiles<kGradientRows, kGradientVectors>(g.in_channels, spatial, [&](auto R, auto V, int64_t c, int64_t q) {
      input_gradient_tile<R(), V()>(dimage, transposed, in, g, c, q, mode);
    });
    // The last spatial − covered < kLanes pixels (4 of a 14 × 14 image's 196): one partial vector per channels' tile,
    // not pixel by pixel (a scalar chain over O·k² strided reads per pixel, which took a third of this function's time).
    if (covered < spatial)
      sweep_rows<kGradientRows>(g.in_channels, [&](auto R, int64_t c) { input_gradient_tile<R(), 1>(dimage, transposed, in, g, c, covered, mode, spatial - covered); });
    return;
  }
  if (mode == Accumulate::assign) std::fill_n(dimage, g.in_channels * g.height * g.width, 0.0);
  double* dcolumns = scratch_columns(patch * spatial);
  panel_product(dcolumns, transposed, dout, {patch, g.out_channels, spatial, g.out_channels, spatial});
  col2im(dimage, dcolumns, g, spatial, 0);
}

void conv2d_backward_input_sample_reference(double* dimage, const double* dout, const double* weight, const Conv2dGeometry& g, Accumulate mode) {
  const int64_t spatial = g.out_height() * g.out_width(), patch = g.patch_size();
  std::vector<double> transposed(static_cast<size_t>(patch * g.out_channels)), dcolumns(static_cast<size_t>(patch * spatial));
  for (int64_t o = 0; o < g.out_channels; ++o)
    for (int64_t k = 0; k < patch; ++k) transposed[static_cast<size_t>(k * g.out_channels + o)] = weight[o * patch + k];
  if (mode == Accumulate::assign) std::fill_n(dimage, g.in_channels * g.height * g.width, 0.0);
  panel_product_reference(dcolumns.data(), transposed.data(), dout, {patch, g.out_channels, spatial, g.out_channels, spatial});
  col2im_reference(dimage, dcolumns.data(), g, spatial, 0);
}

// ---- the weight gradient from patches read in place ------------------------------------------
// Wᵀ's gradient, patches · doutᵀ: (patch, HW) · (HW, O), a register tile of patch rows × output channels summing over the
// output positions in order. A patch row is read where it lies: in the zero-padded image (stride 1, same size: no
// im2col) or in im2col's columns; dout is transposed once (O·HW values against the product's patch·HW·O).
Conv2dPatches conv2d_patches(const double* image, const Conv2dGeometry& g) {
  thread_local std::vector<double> values;
  thread_local std::vector<int64_t> offsets;
  if (same_size(g)) {
    const PaddedImage padded = padded_image(image, g, values, offsets);
    return {padded.values, padded.offsets, padded.row_width};
  }
  const int64_t stride = panel_stride(g.out_height() * g.out_width());
  im2col(scratch_at_least(values, g.patch_size() * stride), image, g, stride, 0);
  scratch_at_least(offsets, g.patch_size());
  for (int64_t r = 0; r < g.patch_size(); ++r) offsets[static_cast<size_t>(r)] = r * stride;
  return {values.data(), offsets.data(), g.out_width()};
}

namespace {

// R patch rows from r × V vectors of output channels from o, summed over the Ho × Wo positions row by row.
template <int R, int V>
void weight_gradient_tile(double* out, int64_t O, const Conv2dPatches& patches, const double* dout_transposed, const Conv2dGeometry& g,
                          int64_t r, int64_t o) {
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  Lanes acc[R][V];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) acc[i][v] = Lanes{};
  const double* rows[R];
  for (int i = 0; i < R; ++i) rows[i] = patches.values + patches.row_offsets[r + i];
  for (int64_t oi = 0; oi < Ho; ++oi) {
    const double* panel = dout_transposed + oi * Wo * O + o;
    const int64_t at = oi * patches.row_width;
    for (int64_t oj = 0; oj < Wo; ++oj) {
      Lanes row[V];
      for (int v = 0; v < V; ++v) row[v] = *reinterpret_cast<const UnalignedLanes*>(panel + oj * O + v * kLanes);
      for (int i = 0; i < R; ++i) {
        const double value = rows[i][at + oj];
        for (int v = 0; v < V; ++v) acc[i][v] = multiply_add(value, row[v], acc[i][v]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) *reinterpret_cast<UnalignedLanes*>(out + (r + i) * O + o + v * kLanes) = acc[i][v];
}

// The same sums, one output at a time: the columns no vector covers, and (from column 0) the reference's.
void weight_gradient_columns(double* out, const Conv2dPatches& patches, const double* dout_transposed, const Conv2dGeometry& g, int64_t first) {
  const int64_t O = g.out_channels, Ho = g.out_height(), Wo = g.out_width();
  for (int64_t r = 0; r < g.patch_size(); ++r)
    for (int64_t o = first; o < O; ++o) {
      double total = 0.0;
      for (int64_t oi = 0; oi < Ho; ++oi)
        for (int64_t oj = 0; oj < Wo; ++oj)
          total = multiply_add(patches.values[patches.row_offsets[r] + oi * patches.row_width + oj], dout_transposed[(oi * Wo + oj) * O + o], total);
      out[r * O + o] = total;
    }
}

const double* transposed_dout(const double* dout, const Conv2dGeometry& g) {
  const int64_t spatial = g.out_height() * g.out_width(), O = g.out_channels;
  thread_local std::vector<double> transposed;  // (HW, O)
  double* into = scratch_at_least(transposed, spatial * O);
  // In blocks of 8 positions: each channel's 8 values are one cache line read whole. Position by position, the O
  // channel rows would be read as O streams a power-of-two stride apart, which share a cache set and evict each other.
  for (int64_t first = 0; first < spatial; first += 8)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t p = first; p < std::min(spatial, first + 8); ++p) into[p * O + o] = dout[o * spatial + p];
  return into;
}

}  // namespace

void conv2d_weight_gradient_from_patches(double* transposed_gradient, const Conv2dPatches& patches, const double* dout, const Conv2dGeometry& g) {
  const double* dout_transposed = transposed_dout(dout, g);
  const int64_t covered = sweep_tiles<kTileRows, kTileVectors>(g.patch_size(), g.out_channels, [&](auto R, auto V, int64_t r, int64_t o) {
    weight_gradient_tile<R(), V()>(transposed_gradient, g.out_channels, patches, dout_transposed, g, r, o);
  });
  if (covered < g.out_channels) weight_gradient_columns(transposed_gradient, patches, dout_transposed, g, covered);
}

void conv2d_weight_gradient_sample(double* transposed_gradient, const double* image, const double* dout, const Conv2dGeometry& g) {
  conv2d_weight_gradient_from_patches(transposed_gradient, conv2d_patches(image, g), dout, g);
}

void conv2d_weight_gradient_sample_reference(double* transposed_gradient, const double* image, const double* dout, const Conv2dGeometry& g) {
  const int64_t spatial = g.out_height() * g.out_width(), O = g.out_channels;
  std::vector<double> columns(static_cast<size_t>(g.patch_size() * spatial)), dout_transposed(static_cast<size_t>(spatial * O));
  im2col(columns.data(), image, g, spatial, 0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t p = 0; p < spatial; ++p) dout_transposed[static_cast<size_t>(p * O + o)] = dout[o * spatial + p];
  panel_product_reference(transposed_gradient, columns.data(), dout_transposed.data(), {g.patch_size(), spatial, O, spatial, O});
}

void conv2d_forward(double* out, const double* inp, const double* weight, const double* bias,
                    const Conv2dGeometry& g) {
  const int64_t out_size = g.out_channels * g.out_height() * g.out_width(), image_size = g.in_channels * g.height * g.width;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.batch; ++n) conv2d_forward_sample(out + n * out_size, inp + n * image_size, weight, bias, g);
}

void conv2d_backward(double* dinp, double* dweight, double* dbias, const double* dout, const double* inp,
                     const double* weight, const Conv2dGeometry& g) {
  const int64_t spatial = g.out_height() * g.out_width(), image_size = g.in_channels * g.height * g.width;
  const int64_t out_size = g.out_channels * spatial;
  std::vector<MatrixRowMajor> weight_partials(static_cast<size_t>(dweight ? g.batch : 0));  // per sample, ∂/∂Wᵀ: (patch, O)
  std::vector<Eigen::VectorXd> bias_partials(static_cast<size_t>(dbias ? g.batch : 0));
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.batch; ++n) {
    const ConstMatrixMap dout_columns(dout + n * out_size, g.out_channels, spatial);
    if (dweight) {
      weight_partials[static_cast<size_t>(n)].resize(g.patch_size(), g.out_channels);
      conv2d_weight_gradient_sample(weight_partials[static_cast<size_t>(n)].data(), inp + n * image_size, dout + n * out_size, g);
    }
    if (dbias) bias_partials[static_cast<size_t>(n)] = dout_columns.rowwise().sum();
    if (dinp) conv2d_backward_input_sample(dinp + n * image_size, dout + n * out_size, weight, g, Accumulate::add);
  }
  // Reduce in sample order so the sum does not depend on which thread ran which sample.
  for (int64_t n = 0; n < g.batch; ++n) {
    if (dweight) MatrixMap(dweight, g.out_channels, g.patch_size()) += weight_partials[static_cast<size_t>(n)].transpose();
    if (dbias) VectorMap(dbias, g.out_channels) += bias_partials[static_cast<size_t>(n)];
  }
}

void conv2d_forward_reference(double* out, const double* inp, const double* weight, const double* bias,
                              const Conv2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t oi = 0; oi < Ho; ++oi)
        for (int64_t oj = 0; oj < Wo; ++oj) {
          double total = bias ? bias[o] : 0.0;
          for (int64_t c = 0; c < g.in_channels; ++c)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t i = oi * g.stride - g.padding + ki, j = oj * g.stride - g.padding + kj;
                if (i < 0 || i >= g.height || j < 0 || j >= g.width) continue;
                total += weight[((o * g.in_channels + c) * k + ki) * k + kj] *
                         inp[((n * g.in_channels + c) * g.height + i) * g.width + j];
              }
          out[((n * g.out_channels + o) * Ho + oi) * Wo + oj] = total;
        }
}

void conv2d_backward_reference(double* dinp, double* dweight, double* dbias, const double* dout,
                               const double* inp, const double* weight, const Conv2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width(), k = g.kernel;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t oi = 0; oi < Ho; ++oi)
        for (int64_t oj = 0; oj < Wo; ++oj) {
          const double upstream = dout[((n * g.out_channels + o) * Ho + oi) * Wo + oj];
          if (dbias) dbias[o] += upstream;
          for (int64_t c = 0; c < g.in_channels; ++c)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t i = oi * g.stride - g.padding + ki, j = oj * g.stride - g.padding + kj;
                if (i < 0 || i >= g.height || j < 0 || j >= g.width) continue;
                const int64_t w = ((o * g.in_channels + c) * k + ki) * k + kj;
                const int64_t x = ((n * g.in_channels + c) * g.height + i) * g.width + j;
                if (dweight) dweight[w] += upstream * inp[x];
                if (dinp) dinp[x] += upstream * weight[w];
              }
        }
}

// ---- pooling ---------------------------------------------------------------------------------

// Each window's first largest value, by selects rather than a branch per comparison (on ReLU outputs the comparison
// goes either way about half the time, and a mispredicted branch cost more than the rest of the pass): the same choice
// as the reference's strict comparison, ties and NaNs alike.
void maxpool2d_forward(double* out, int64_t* argmax, const double* inp, const Pool2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width();
#pragma omp parallel for schedule(static) if (g.batch * g.channels * Ho * Wo >= kParallelElements)
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane)
    for (int64_t oi = 0; oi < Ho; ++oi)
      for (int64_t oj = 0; oj < Wo; ++oj) {
        const int64_t corner = (plane * g.height + oi * g.stride) * g.width + oj * g.stride;
        int64_t best = corner;
        double value = inp[corner];
        for (int64_t ki = 0; ki < g.kernel; ++ki)
          for (int64_t kj = 0; kj < g.kernel; ++kj) {
            const int64_t index = corner + ki * g.width + kj;
            const double candidate = inp[index];
            const bool larger = candidate > value;
            best = larger ? index : best;
            value = larger ? candidate : value;
          }
        const int64_t o = (plane * Ho + oi) * Wo + oj;
        out[o] = value;
        argmax[o] = best;
      }
}

void maxpool2d_forward_reference(double* out, int64_t* argmax, const double* inp, const Pool2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane)
    for (int64_t oi = 0; oi < Ho; ++oi)
      for (int64_t oj = 0; oj < Wo; ++oj) {
        int64_t best = -1;
        for (int64_t ki = 0; ki < g.kernel; ++ki)
          for (int64_t kj = 0; kj < g.kernel; ++kj) {
            const int64_t index = (plane * g.height + oi * g.stride + ki) * g.width + oj * g.stride + kj;
            if (best < 0 || inp[index] > inp[best]) best = index;  // strict: ties keep the first
          }
        const int64_t o = (plane * Ho + oi) * Wo + oj;
        out[o] = inp[best];
        argmax[o] = best;
      }
}

void maxpool2d_backward(double* dinp, const double* dout, const int64_t* argmax, const Pool2dGeometry& g) {
  const int64_t outputs = g.batch * g.channels * g.out_height() * g.out_width();
  for (int64_t o = 0; o < outputs; ++o) dinp[argmax[o]] += dout[o];
}

void avgpool2d_forward(double* out, const double* inp, const Pool2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  const double area = static_cast<double>(g.kernel * g.kernel);
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane)
    for (int64_t oi = 0; oi < Ho; ++oi)
      for (int64_t oj = 0; oj < Wo; ++oj) {
        double total = 0.0;
        for (int64_t ki = 0; ki < g.kernel; ++ki)
          for (int64_t kj = 0; kj < g.kernel; ++kj)
            total += inp[(plane * g.height + oi * g.stride + ki) * g.width + oj * g.stride + kj];
        out[(plane * Ho + oi) * Wo + oj] = total / area;
      }
}

void avgpool2d_backward(double* dinp, const double* dout, const Pool2dGeometry& g) {
  const int64_t Ho = g.out_height(), Wo = g.out_width();
  const double area = static_cast<double>(g.kernel * g.kernel);
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane)
    for (int64_t oi = 0; oi < Ho; ++oi)
      for (int64_t oj = 0; oj < Wo; ++oj) {
        const double share = dout[(plane * Ho + oi) * Wo + oj] / area;
        for (int64_t ki = 0; ki < g.kernel; ++ki)
          for (int64_t kj = 0; kj < g.kernel; ++kj)
            dinp[(plane * g.height + oi * g.stride + ki) * g.width + oj * g.stride + kj] += share;
      }
}

// ---- losses ----------------------------------------------------------------------------------

static double signed_label(int label) { return label == 1 ? 1.0 : -1.0; }

double logistic_loss_forward(const double* logits, const int* labels, int64_t N) {
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += stable_softplus(-signed_label(labels[n]) * logits[n]);
  return total / static_cast<double>(N);
}

void logistic_loss_backward(double* dlogits, double dloss, const double* logits, const int* labels, int64_t N) {
  for (int64_t n = 0; n < N; ++n) {
    const double y = signed_label(labels[n]);
    dlogits[n] += dloss * (-y * stable_sigmoid(-y * logits[n])) / static_cast<double>(N);
  }
}

static double log_sum_exp(const double* row, int64_t C) {
  const double peak = *std::max_element(row, row + C);
  double total = 0.0;
  for (int64_t c = 0; c < C; ++c) total += math::exp(row[c] - peak);
  return peak + math::log(total);
}

double cross_entropy_forward(const double* logits, const int* labels, int64_t N, int64_t C) {
  double total = 0.0;
  for (int64_t n = 0; n < N; ++n) total += log_sum_exp(logits + n * C, C) - logits[n * C + labels[n]];
  return total / static_cast<double>(N);
}

void cross_entropy_backward(double* dlogits, double dloss, const double* logits, const int* labels, int64_t N,
                            int64_t C) {
  const double share = dloss / static_cast<double>(N);
  for (int64_t n = 0; n < N; ++n) {
    const double normaliser = log_sum_exp(logits + n * C, C);
    for (int64_t c = 0; c < C; ++c) {
      const double probability = math::exp(logits[n * C + c] - normaliser);
      dlogits[n * C + c] += share * (probability - (c == labels[n] ? 1.0 : 0.0));
    }
  }
}

double mse_loss_forward(const double* predictions, const double* targets, int64_t N, int64_t C) {
  double total = 0.0;
  for (int64_t i = 0; i < N * C; ++i) total += (predictions[i] - targets[i]) * (predictions[i] - targets[i]);
  return total / static_cast<double>(N * C);
}

void mse_loss_backward(double* dpredictions, double dloss, const double* predictions, const double* targets,
                       int64_t N, int64_t C) {
  const double share = 2.0 * dloss / static_cast<double>(N * C);
  for (int64_t i = 0; i < N * C; ++i) dpredictions[i] += share * (predictions[i] - targets[i]);
}

}  // namespace ks
