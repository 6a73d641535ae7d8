#include "dmpc/random.hpp"

#include <limits>

namespace dmpc {

namespace {
/// r for 256 layers (Marsaglia & Tsang 2000): the value for which the recursion for X_i closes
/// at the mode (f(X_{N-1}) + V / X_{N-1} = 1).
constexpr double kR256 = 3.6541528853610088;
double f(double x) { return std::exp(-0.5 * x * x); }
}  // namespace

ZigguratNormal::ZigguratNormal() {
  const double r = kR256;
  V_ = r * f(r) + std::sqrt(M_PI / 2.0) * std::erfc(r / std::sqrt(2.0));
  X_[0] = V_ / f(r);
  X_[1] = r;
  for (int i = 2; i < kLayers; ++i) {
    const double y = f(X_[i - 1]) + V_ / X_[i - 1];
    X_[i] = y < 1.0 ? std::sqrt(-2.0 * std::log(y)) : 0.0;
  }
  X_[kLayers] = 0.0;
  for (int i = 0; i <= kLayers; ++i) F_[i] = f(X_[i]);
  F_[0] = 0.0;  // the base layer spans heights [0, f(r)]; only its tail part reaches slow_path
}

const ZigguratNormal& ZigguratNormal::instance() {
  static const ZigguratNormal z;
  return z;
}

double ZigguratNormal::slow_path(SplitMix64& rng, int i, double x) const {
  if (i == 0) {  // |x| >= r: exact tail sample beyond r
    const double r = X_[1];
    double a, b;
    do {
      a = -std::log(rng.uniform_open()) / r;
      b = -std::log(rng.uniform_open());
    } while (b + b < a * a);
    return x < 0.0 ? -(r + a) : r + a;
  }
  // wedge of layer i between heights f(X_i) and f(X_{i+1})
  const double y = F_[i] + rng.uniform_open() * (F_[i + 1] - F_[i]);
  if (y < f(x)) return x;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace dmpc
