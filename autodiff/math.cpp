// kernelscope's own elementary functions: Cody–Waite argument reduction and fixed polynomials evaluated by Horner, with
// basic operations only (the portable build compiles with -ffp-contract=off, so no fused multiply-add enters either).
#include "autodiff/math.h"

#include <array>
#include <limits>

namespace ks::math {

namespace {

constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;  // ln 2 = hi + lo, hi exact in 32 bits
constexpr double kInvLn2 = 1.44269504088896338700e+00;
constexpr double kPiO2Hi = 1.57079632673412561417e+00, kPiO2Mid = 6.07710050650619224932e-11, kPiO2Lo = 2.02226624879595063154e-21;
constexpr double kTwoOverPi = 6.36619772367581382433e-01;

// 1/n! for n = 0..23, computed once by IEEE multiplications and divisions (the same on every machine).
const double* inverse_factorials() {
  static const auto table = [] {
    std::array<double, 24> t{};
    double f = 1.0;
    for (int n = 0; n < 24; ++n) {
      if (n > 1) f *= n;
      t[static_cast<size_t>(n)] = 1.0 / f;
    }
    return t;
  }();
  return table.data();
}

// e^r - 1 for |r| <= 0.35 by its Taylor series to r^14 (truncation below 1e-18 relative).
double expm1_small(double r) {
  const double* inverse = inverse_factorials();
  double p = inverse[14];
  for (int k = 13; k >= 2; --k) p = p * r + inverse[k];
  return r + r * (r * p);
}

// 2·atanh(s) for |s| <= 0.172 by its series to s^31: log((1 + s)/(1 − s)).
double two_atanh(double s) {
  const double s2 = s * s;
  double p = 1.0 / 31.0;
  for (int k = 29; k >= 3; k -= 2) p = p * s2 + 1.0 / k;
  return 2.0 * s + 2.0 * s * (s2 * p);
}

// log(m) for m in [sqrt(1/2), sqrt(2)].
double log_reduced(double m) { return two_atanh((m - 1.0) / (m + 1.0)); }

// sin and cos of |r| <= π/4 by their Taylor series to r^23 and r^22.
double sin_reduced(double r) {
  const double* inverse = inverse_factorials();
  const double r2 = r * r;
  double p = 0.0;
  for (int n = 23; n >= 3; n -= 2) p = p * r2 + ((n / 2) % 2 ? -inverse[n] : inverse[n]);
  return r + r * (r2 * p);
}

double cos_reduced(double r) {
  const double* inverse = inverse_factorials();
  const double r2 = r * r;
  double p = 0.0;
  for (int n = 22; n >= 2; n -= 2) p = p * r2 + ((n / 2) % 2 ? -inverse[n] : inverse[n]);
  return 1.0 + r2 * p;
}

// x = q·π/2 + r with |r| <= π/4 (three-part π/2: exact for |x| up to about 1e5, which covers every use here).
double reduce_quadrant(double x, int64_t& q) {
  const double n = std::nearbyint(x * kTwoOverPi);
  q = static_cast<int64_t>(n);
  return ((x - n * kPiO2Hi) - n * kPiO2Mid) - n * kPiO2Lo;
}

}  // namespace

double portable_exp(double x) {
  if (std::isnan(x)) return x;
  if (x > 709.782712893384) return std::numeric_limits<double>::infinity();
  if (x < -745.1332191019412) return 0.0;
  const double k = std::nearbyint(x * kInvLn2);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  return std::ldexp(1.0 + expm1_small(r), static_cast<int>(k));
}

double portable_expm1(double x) {
  if (std::abs(x) <= 0.34) return expm1_small(x);
  return portable_exp(x) - 1.0;
}

double portable_log(double x) {
  if (std::isnan(x) || x < 0.0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0.0) return -std::numeric_limits<double>::infinity();
  if (std::isinf(x)) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m·2^e, m in [1/2, 1)
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    --e;
  }
  const double E = static_cast<double>(e);
  return E * kLn2Hi + (log_reduced(m) + E * kLn2Lo);
}

double portable_log1p(double x) {
  if (std::abs(x) < 0.1) return two_atanh(x / (2.0 + x));  // log(1 + x), no rounding of 1 + x
  const double u = 1.0 + x;
  return portable_log(u) + (x - (u - 1.0)) / u;  // the rounding of 1 + x, corrected to first order
}

double portable_tanh(double x) {
  if (std::isnan(x)) return x;
  const double a = std::abs(x);
  if (a > 22.0) return std::copysign(1.0, x);
  const double e = portable_expm1(2.0 * a);
  return std::copysign(e / (e + 2.0), x);
}

// sin(x + shift·π/2): cos is sin a quadrant on, so both share one reduction.
double sine_shifted(double x, int64_t shift) {
  if (!std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  int64_t q = 0;
  const double r = reduce_quadrant(x, q);
  switch ((((q + shift) % 4) + 4) % 4) {
    case 0: return sin_reduced(r);
    case 1: return cos_reduced(r);
    case 2: return -sin_reduced(r);
    default: return -cos_reduced(r);
  }
}

double portable_sin(double x) { return sine_shifted(x, 0); }
double portable_cos(double x) { return sine_shifted(x, 1); }

double integer_power(double x, int64_t n) {
  if (n < 0) return 1.0 / integer_power(x, -n);
  double result = 1.0, base = x;
  for (; n > 0; n >>= 1, base *= base)
    if (n & 1) result *= base;
  return result;
}

}  // namespace ks::math
