// Rng: the project's own seeded generator (xoshiro256**) with its own uniform and normal transforms.
// It does not use <random> distributions: their output differs between standard libraries, ours is bit-identical everywhere.
#pragma once

#include <cstdint>
#include <vector>

namespace ks {

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  double uniform();                          // [0, 1), 53 random bits
  double uniform(double low, double high);   // [low, high)
  double normal();                           // N(0, 1), Marsaglia's polar method
  uint64_t below(uint64_t bound);            // uniform integer in [0, bound), unbiased
  // A seeded Fisher–Yates permutation of 0..count-1.
  std::vector<int64_t> permutation(int64_t count);

 private:
  uint64_t state_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

// Natural logarithm from +, -, *, / and exact exponent extraction only, so it rounds identically on any IEEE machine
// (libm's log may differ in the last bit between versions). Accurate to about 1 ulp.
double portable_log(double x);

}  // namespace ks
