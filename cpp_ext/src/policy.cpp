#include "dmpc/policy.hpp"

#include <cmath>

namespace dmpc {
namespace {
/// Node index i and fraction a in [0, 1] for time t on a grid of n intervals.
void locate(double t, double t0, double dt, int n, int& i, double& a) {
  double s = (t - t0) / dt;
  if (!(s > 0.0)) s = 0.0;  // also catches NaN
  if (s >= n) {
    i = n;
    a = 0.0;
    return;
  }
  i = static_cast<int>(std::floor(s));
  a = s - i;
}
}  // namespace

Vec Policy::feedforward(double t) const {
  if (empty()) throw std::runtime_error("Policy is empty (no solve has succeeded yet)");
  const int N = horizon();
  int i;
  double a;
  locate(t, t0, dt, N - 1, i, a);
  if (interpolation == Interpolation::ZeroOrderHold || i >= N - 1) return u_ff.row(i).transpose();
  return ((1.0 - a) * u_ff.row(i) + a * u_ff.row(i + 1)).transpose();
}

Mat Policy::gain(double t) const {
  if (empty()) throw std::runtime_error("Policy is empty (no solve has succeeded yet)");
  const int N = horizon();
  int i;
  double a;
  locate(t, t0, dt, N - 1, i, a);
  if (interpolation == Interpolation::ZeroOrderHold || i >= N - 1) return K[i];
  return (1.0 - a) * K[i] + a * K[i + 1];
}

Vec Policy::nominal_state(double t) const {
  if (empty()) throw std::runtime_error("Policy is empty (no solve has succeeded yet)");
  const int N = horizon();
  int i;
  double a;
  locate(t, t0, dt, N, i, a);
  if (i >= N) return x_nom.row(N).transpose();
  return ((1.0 - a) * x_nom.row(i) + a * x_nom.row(i + 1)).transpose();
}

Vec Policy::control(double t, const RefV& x) const {
  if (empty()) throw std::runtime_error("Policy is empty (no solve has succeeded yet)");
  check_vector(x, nx(), "x");
  if (!std::isfinite(t)) throw std::invalid_argument("t must be finite");
  const int N = horizon();
  int i;
  double a;
  locate(t, t0, dt, N - 1, i, a);
  const Vec xn = nominal_state(t);
  if (interpolation == Interpolation::ZeroOrderHold || i >= N - 1)
    return u_ff.row(i).transpose() + K[i] * (x - xn);
  return ((1.0 - a) * u_ff.row(i) + a * u_ff.row(i + 1)).transpose() +
         ((1.0 - a) * K[i] + a * K[i + 1]) * (x - xn);
}

Policy Policy::shifted(double t_new0) const {
  if (empty()) return *this;
  Policy p;
  p.t0 = t_new0;
  p.dt = dt;
  p.interpolation = interpolation;
  const int N = horizon();
  p.u_ff.resize(N, nu());
  p.x_nom.resize(N + 1, nx());
  p.K.resize(N);
  for (int k = 0; k < N; ++k) {
    const double t = t_new0 + k * dt;
    p.u_ff.row(k) = feedforward(t).transpose();
    p.K[k] = gain(t);
  }
  for (int k = 0; k <= N; ++k) p.x_nom.row(k) = nominal_state(t_new0 + k * dt).transpose();
  return p;
}

}  // namespace dmpc
