// Rng: xoshiro256** seeded by splitmix64, plus uniform, normal and permutation transforms.
// It is not cryptographic and not meant to match NumPy's or PyTorch's streams.
#include "autodiff/random.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace ks {

static uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t rotate_left(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
  uint64_t mixer = seed;
  for (auto& word : state_) word = splitmix64(mixer);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
  const uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotate_left(state_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform(double low, double high) { return low + (high - low) * uniform(); }

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double scale = std::sqrt(-2.0 * portable_log(s) / s);  // sqrt is correctly rounded by IEEE 754
  spare_ = v * scale;
  has_spare_ = true;
  return u * scale;
}

uint64_t Rng::below(uint64_t bound) {
  if (bound == 0) throw std::invalid_argument("Rng::below: bound must be positive");
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t draw;
  do draw = next_u64();
  while (draw >= limit);
  return draw % bound;
}

std::vector<int64_t> Rng::permutation(int64_t count) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = count - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(below(static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

double portable_log(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(x)) return x;
  int exponent = 0;
  double mantissa = std::frexp(x, &exponent);  // x = mantissa * 2^exponent, mantissa in [0.5, 1), exact
  if (mantissa < 0.70710678118654752440) {
    mantissa *= 2.0;
    exponent -= 1;
  }
  // log(m) = 2 atanh(f) with f = (m-1)/(m+1), |f| <= 0.1716: the odd series converges to full precision in 12 terms.
  const double f = (mantissa - 1.0) / (mantissa + 1.0);
  const double f2 = f * f;
  double series = 0.0;
  for (int k = 23; k >= 3; k -= 2) series = f2 * (1.0 / k + series);
  const double log_mantissa = 2.0 * f + 2.0 * f * series;
  // ln 2 split into a part exact in 32 bits and the rest, so exponent * hi is exact.
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return exponent * ln2_hi + (log_mantissa + exponent * ln2_lo);
}

}  // namespace ks
