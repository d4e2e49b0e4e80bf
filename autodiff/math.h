// Elementary functions the results depend on (exp, log, log1p, tanh, sin, cos, integer powers). In the portable build
// they are kernelscope's own, from IEEE basic operations only, so no libm variant chosen at run time (glibc picks FMA
// code on CPUs that have it) can change a bit; the native build uses the C library's. Nothing else lives here.
#pragma once

#include <cmath>
#include <cstdint>

namespace ks::math {

// kernelscope's own, in every build (tested against the C library's to 2 ulp).
double portable_exp(double x);
double portable_expm1(double x);
double portable_log(double x);
double portable_log1p(double x);
double portable_tanh(double x);
double portable_sin(double x);
double portable_cos(double x);
// x^n by repeated squaring in a fixed order (exact order, so the same bits everywhere).
double integer_power(double x, int64_t n);

#if defined(KERNELSCOPE_PORTABLE)
inline double pow(double x, int64_t n) { return integer_power(x, n); }
inline double exp(double x) { return portable_exp(x); }
inline double log(double x) { return portable_log(x); }
inline double log1p(double x) { return portable_log1p(x); }
inline double tanh(double x) { return portable_tanh(x); }
inline double sin(double x) { return portable_sin(x); }
inline double cos(double x) { return portable_cos(x); }
#else
inline double pow(double x, int64_t n) { return std::pow(x, static_cast<double>(n)); }
inline double exp(double x) { return std::exp(x); }
inline double log(double x) { return std::log(x); }
inline double log1p(double x) { return std::log1p(x); }
inline double tanh(double x) { return std::tanh(x); }
inline double sin(double x) { return std::sin(x); }
inline double cos(double x) { return std::cos(x); }
#endif

}  // namespace ks::math
