#include "dmpc/models/ballbot.hpp"

#include <cmath>

#include "ballbot_generated.h"

// The generated functions are built from SX graphs: they need no work arrays. Regenerating with
// a CasADi version that does would trip these checks instead of writing out of bounds.
static_assert(dmpc_ballbot_dyn_SZ_W == 0 && dmpc_ballbot_dyn_SZ_IW == 0, "regenerate: work arrays");
static_assert(dmpc_ballbot_id_jac_SZ_W == 0 && dmpc_ballbot_id_jac_SZ_IW == 0, "regenerate: work arrays");
static_assert(dmpc_ballbot_fwd_SZ_W == 0 && dmpc_ballbot_fwd_SZ_IW == 0, "regenerate: work arrays");
static_assert(dmpc_ballbot_energy_SZ_W == 0 && dmpc_ballbot_energy_SZ_IW == 0, "regenerate: work arrays");
static_assert(dmpc_ballbot_wheel_rates_SZ_W == 0 && dmpc_ballbot_wheel_rates_SZ_IW == 0,
              "regenerate: work arrays");

namespace dmpc {
namespace {
using Mat5 = Eigen::Matrix<double, 5, 5>;
using Vec5 = Eigen::Matrix<double, 5, 1>;

/// Cholesky M = L L^T of a symmetric positive definite 5 x 5 matrix (lower triangle of M used).
/// Only the lower triangle of L is written (BallbotData zero-initialises the upper one).
inline void cholesky5(const Mat5& M, Mat5& L) {
  for (int j = 0; j < 5; ++j) {
    double d = M(j, j);
    for (int k = 0; k < j; ++k) d -= L(j, k) * L(j, k);
    const double ljj = std::sqrt(d);
    L(j, j) = ljj;
    const double inv = 1.0 / ljj;
    for (int i = j + 1; i < 5; ++i) {
      double s = M(i, j);
      for (int k = 0; k < j; ++k) s -= L(i, k) * L(j, k);
      L(i, j) = s * inv;
    }
  }
}

/// x = (L L^T)^{-1} b.
inline void cholesky5_solve(const Mat5& L, const Vec5& b, Vec5& x) {
  for (int i = 0; i < 5; ++i) {
    double s = b[i];
    for (int k = 0; k < i; ++k) s -= L(i, k) * x[k];
    x[i] = s / L(i, i);
  }
  for (int i = 4; i >= 0; --i) {
    double s = x[i];
    for (int k = i + 1; k < 5; ++k) s -= L(k, i) * x[k];
    x[i] = s / L(i, i);
  }
}

/// Minv = (L L^T)^{-1} = L^{-T} L^{-1}.
inline void cholesky5_inverse(const Mat5& L, Mat5& Minv) {
  Mat5 Li = Mat5::Zero();  // L^{-1}, lower triangular
  for (int j = 0; j < 5; ++j) {
    Li(j, j) = 1.0 / L(j, j);
    for (int i = j + 1; i < 5; ++i) {
      double s = 0.0;
      for (int k = j; k < i; ++k) s -= L(i, k) * Li(k, j);
      Li(i, j) = s / L(i, i);
    }
  }
  Minv.noalias() = Li.transpose() * Li;
}
}  // namespace

void BallbotParameters::validate() const {
  const auto bad = [](const char* what) {
    throw std::invalid_argument(std::string("BallbotParameters: ") + what);
  };
  if (!to_vector().allFinite()) bad("all fields must be finite");
  if (!(ball_radius > 0)) bad("ball_radius must be > 0");
  if (!(ball_mass > 0)) bad("ball_mass must be > 0");
  if (!(ball_inertia >= 0)) bad("ball_inertia must be >= 0");
  if (!(base_mass > 0)) bad("base_mass must be > 0");
  if (!(base_inertia.minCoeff() > 0)) bad("base_inertia entries must be > 0");
  if (!(wheel_radius > 0)) bad("wheel_radius must be > 0");
  if (!(wheel_zenith_angle > 0 && wheel_zenith_angle < M_PI / 2))
    bad("wheel_zenith_angle must be in (0, pi/2)");
}

Eigen::Matrix<double, 13, 1> BallbotParameters::to_vector() const {
  Eigen::Matrix<double, 13, 1> p;
  p << ball_radius, ball_mass, ball_inertia, base_mass, base_com, base_inertia, wheel_radius,
      wheel_zenith_angle, gravity;
  return p;
}

BallbotDynamics::BallbotDynamics(const BallbotParameters& params)
    : DynamicsModel(10, 3, 5), params_(params) {
  params_.validate();
  p_ = params_.to_vector();
  pc_ << p_, std::cos(params_.wheel_zenith_angle), std::sin(params_.wheel_zenith_angle),
      1.0 / params_.ball_radius;
}

std::shared_ptr<DynamicsData> BallbotDynamics::create_data() const {
  return std::make_shared<BallbotData>();
}

BallbotData& BallbotDynamics::cast(DynamicsData& data) const {
  auto* d = data_cast<BallbotData>(&data);
  if (d == nullptr)
    throw std::invalid_argument("BallbotDynamics needs a data object from its create_data()");
  return *d;
}

void BallbotDynamics::eval_dyn(BallbotData& d, const double* q, const double* v) const {
  const double* arg[3] = {q, v, p_.data()};
  double* res[3] = {d.M.data(), d.h.data(), d.ST.data()};
  dmpc_ballbot_dyn(arg, res, nullptr, nullptr, 0);
}

void BallbotDynamics::forward(BallbotData& d, const RefV& x, const RefV& u) const {
  eval_dyn(d, x.data(), x.data() + 5);
  d.rhs.noalias() = d.ST * Eigen::Map<const Eigen::Vector3d>(u.data());  // fixed-size product
  d.rhs -= d.h;
  cholesky5(d.M, d.L);
  cholesky5_solve(d.L, d.rhs, d.a);
  d.xdot.head<5>() = x.tail<5>();
  d.xdot.tail<5>() = d.a;
  d.x_fwd = x;
  d.u_fwd = u;
  d.fwd_valid = true;
}

void BallbotDynamics::calc(DynamicsData& data, const RefV& x, const RefV& u) const {
  forward(cast(data), x, u);
}

void BallbotDynamics::calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const {
  BallbotData& d = cast(data);
  // calc() at the same (x, u) already computed M, h, S^T, L and a (exact comparison).
  if (d.fwd_valid && d.x_fwd == x && d.u_fwd == u) {
    d.xdot.head<5>() = x.tail<5>();
    d.xdot.tail<5>() = d.a;
  } else {
    forward(d, x, u);
  }
  const double* arg[5] = {x.data(), x.data() + 5, d.a.data(), u.data(), p_.data()};
  double* res[2] = {d.dID_dq.data(), d.dID_dv.data()};
  dmpc_ballbot_id_jac(arg, res, nullptr, nullptr, 0);

  d.fx.topLeftCorner<5, 5>().setZero();
  d.fx.topRightCorner<5, 5>().setIdentity();
  cholesky5_inverse(d.L, d.Minv);
  d.fx.bottomLeftCorner<5, 5>().noalias() = -d.Minv * d.dID_dq;
  d.fx.bottomRightCorner<5, 5>().noalias() = -d.Minv * d.dID_dv;
  d.fu.topRows<5>().setZero();
  d.fu.bottomRows<5>().noalias() = d.Minv * d.ST;
}

void BallbotDynamics::calc_xdot(DynamicsData&, const double* x, const double* u,
                                double* xdot) const {
  // cos and sin of the same angle next to each other: compiled to one sincos call each
  const double trig[6] = {std::cos(x[2]), std::sin(x[2]), std::cos(x[3]),
                          std::sin(x[3]), std::cos(x[4]), std::sin(x[4])};
  const double* arg[4] = {trig, x + 5, u, pc_.data()};
  double* res[1] = {xdot + 5};
  dmpc_ballbot_fwd(arg, res, nullptr, nullptr, 0);
  for (int i = 0; i < 5; ++i) xdot[i] = x[5 + i];
}

Mat BallbotDynamics::mass_matrix(const RefV& q) const {
  check_vector(q, 5, "q");
  BallbotData d;
  const Eigen::Matrix<double, 5, 1> v = Eigen::Matrix<double, 5, 1>::Zero();
  eval_dyn(d, q.data(), v.data());
  return d.M;
}

Vec BallbotDynamics::bias(const RefV& q, const RefV& v) const {
  check_vector(q, 5, "q");
  check_vector(v, 5, "v");
  BallbotData d;
  eval_dyn(d, q.data(), v.data());
  return d.h;
}

Mat BallbotDynamics::actuation_map(const RefV& q) const {
  check_vector(q, 5, "q");
  BallbotData d;
  const Eigen::Matrix<double, 5, 1> v = Eigen::Matrix<double, 5, 1>::Zero();
  eval_dyn(d, q.data(), v.data());
  return d.ST;
}

Vec BallbotDynamics::wheel_rates(const RefV& x) const {
  check_vector(x, 10, "x");
  Eigen::Vector3d w;
  const double* arg[3] = {x.data(), x.data() + 5, p_.data()};
  double* res[1] = {w.data()};
  dmpc_ballbot_wheel_rates(arg, res, nullptr, nullptr, 0);
  return w;
}

double BallbotDynamics::kinetic_energy(const RefV& x) const {
  check_vector(x, 10, "x");
  double T = 0.0, V = 0.0;
  const double* arg[3] = {x.data(), x.data() + 5, p_.data()};
  double* res[2] = {&T, &V};
  dmpc_ballbot_energy(arg, res, nullptr, nullptr, 0);
  return T;
}

double BallbotDynamics::potential_energy(const RefV& x) const {
  check_vector(x, 10, "x");
  double T = 0.0, V = 0.0;
  const double* arg[3] = {x.data(), x.data() + 5, p_.data()};
  double* res[2] = {&T, &V};
  dmpc_ballbot_energy(arg, res, nullptr, nullptr, 0);
  return V;
}

double BallbotDynamics::energy(const RefV& x) const {
  return kinetic_energy(x) + potential_energy(x);
}

void BallbotDynamics::calc_drift_input_projection(DynamicsData& data, const RefV& x, const RefV& p,
                                                  Vec&, Vec& f, Vec& y) const {
  BallbotData& d = cast(data);
  const Eigen::Vector3d u0 = Eigen::Vector3d::Zero();
  forward(d, x, u0);
  f.head<5>() = x.tail<5>();
  f.tail<5>() = d.a;
  Vec5 z;
  const Vec5 pv = p.tail<5>();
  cholesky5_solve(d.L, pv, z);
  y.noalias() = d.ST.transpose() * z;
}

void BallbotDynamics::calc_input_jacobians(const DynamicsData& at_zero, DynamicsData&,
                                           const RefV& x, const RefV& p, const RefV& w, Vec&,
                                           Mat& Gp, Mat& Gw) const {
  const auto* z0 = data_cast<const BallbotData>(&at_zero);
  if (z0 == nullptr)
    throw std::invalid_argument("BallbotDynamics needs a data object from its create_data()");
  // g(x) = [0; G(q)], G = M^-1 S^T. With G frozen at this point, z = M^-1 p_v, alpha = G w:
  //   Gp = d(G^T p_v)/dq = d/dq [S z - G^T M z],  Gw = d(G w)/dq = M^-1 d/dq [S^T w - M alpha]
  // (one generated function of M(q) and S^T(q) only; tools/derive_ballbot.py "input_jac").
  Vec5 z;
  const Vec5 pv = p.tail<5>();
  cholesky5_solve(z0->L, pv, z);
  const Eigen::Matrix<double, 5, 3> G = z0->Minv * z0->ST;
  const Eigen::Vector3d wv = w.head<3>();
  const Vec5 alpha = G * wv;
  Eigen::Matrix<double, 3, 5> dy_dq;
  Mat5 dgw_dq;
  const double* arg[6] = {x.data(), z.data(), G.data(), wv.data(), alpha.data(), p_.data()};
  double* res[2] = {dy_dq.data(), dgw_dq.data()};
  dmpc_ballbot_input_jac(arg, res, nullptr, nullptr, 0);
  Gp.setZero();
  Gw.setZero();
  Gp.leftCols<5>() = dy_dq;
  Gw.block<5, 5>(5, 0).noalias() = z0->Minv * dgw_dq;
}

}  // namespace dmpc
