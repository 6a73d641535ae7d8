/// @file random.hpp
/// @brief Fast seeded random numbers for sampling-based MPC: the SplitMix64 generator and a
///        ziggurat standard-normal sampler (Marsaglia & Tsang, "The Ziggurat Method for
///        Generating Random Variables", J. Stat. Softw. 5(8), 2000), 256 layers, double precision.
///
/// Both are deterministic functions of the seed (no global state), so per-sample streams seeded
/// by (seed, iteration, sample) are independent of the thread that draws them.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace dmpc {

/// @brief SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by the golden-ratio
///        increment and passed through a bijective mixer; passes BigCrush. Two multiplications
///        per 64-bit output.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// @brief Uniform in the open interval (0, 1) (53 random bits).
  double uniform_open() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

/// @brief Standard normal N(0, 1) by the ziggurat method.
///
/// The density f(x) = exp(-x^2/2) on x >= 0 is covered by N = 256 layers of equal area V: a base
/// layer (the rectangle [0, r] x [0, f(r)] plus the tail x > r, area r f(r) + int_r^inf f) and
/// N - 1 rectangles [0, X_i] x [f(X_i), f(X_{i+1})], X_{i+1} = f^{-1}(f(X_i) + V / X_i), X_1 = r,
/// X_0 = V / f(r), X_N = 0. One 64-bit draw picks the layer i (low 8 bits) and a signed
/// uniform s in [-1, 1) (high 53 bits); x = s X_i is returned at once when |x| < X_{i+1} (about
/// 99 % of draws). Otherwise: in a wedge (i > 0) x is accepted if a uniform height in
/// [f(X_i), f(X_{i+1})] lies below f(x); in the base layer with |x| >= r the tail is sampled
/// exactly by Marsaglia's method (a = -ln(U1)/r, b = -ln(U2) until 2b > a^2, x = r + a).
/// Rejected draws start over, so the output is exactly N(0, 1) up to floating point.
class ZigguratNormal {
 public:
  static constexpr int kLayers = 256;
  /// @brief The shared tables (built once, thread-safe static initialisation).
  static const ZigguratNormal& instance();

  /// @brief One N(0, 1) draw from rng.
  double operator()(SplitMix64& rng) const {
    for (;;) {
      const std::uint64_t bits = rng.next();
      const int i = static_cast<int>(bits & 0xFF);
      // signed 53-bit integer in [-2^52, 2^52) -> s in [-1, 1)
      const double s = static_cast<double>(static_cast<std::int64_t>(bits) >> 11) * 0x1.0p-52;
      const double x = s * X_[i];
      if (std::fabs(x) < X_[i + 1]) return x;
      const double y = slow_path(rng, i, x);
      if (y == y) return y;  // NaN marks a rejection: draw again
    }
  }

  /// @brief Layer boundaries X_0..X_N (size N + 1), for tests.
  const std::array<double, kLayers + 1>& boundaries() const { return X_; }
  /// @brief Right edge r = X_1 of the base rectangle and the common layer area V.
  double r() const { return X_[1]; }
  double area() const { return V_; }

 private:
  ZigguratNormal();
  double slow_path(SplitMix64& rng, int i, double x) const;
  std::array<double, kLayers + 1> X_{};  ///< layer widths X_0 > X_1 = r > ... > X_N = 0
  std::array<double, kLayers + 1> F_{};  ///< f(X_i)
  double V_ = 0.0;
};

}  // namespace dmpc
