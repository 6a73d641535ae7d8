#include "dmpc/gps/kl_lqr.hpp"

#include <cmath>

#include "dmpc/lq.hpp"

namespace dmpc::gps {

void KlLqrSettings::validate() const {
  if (!(eta_min > 0) || !(eta_max > eta_min)) throw std::invalid_argument("KlLqrSettings: need 0 < eta_min < eta_max");
  if (max_tries < 1) throw std::invalid_argument("KlLqrSettings.max_tries must be >= 1");
  if (!(tolerance > 0 && tolerance < 1)) throw std::invalid_argument("KlLqrSettings.tolerance must be in (0, 1)");
  if (!(delta0 > 0)) throw std::invalid_argument("KlLqrSettings.delta0 must be > 0");
}

namespace {

/// One backward pass at fixed eta; false when some Q~_uu is not PD.
bool backward_once(const LinearGaussianDynamics& dyn, const QuadraticCost& cost, const LinearGaussianPolicy* ref,
                   double eta, std::vector<Mat>& K, Mat& k, std::vector<Mat>& cov) {
  const int T = cost.horizon(), nx = dyn.nx(), nu = dyn.nu(), D = nx + nu;
  RiccatiWorkspace w(nx, nu);
  Vec Vx = Vec::Zero(nx);
  Mat Vxx = Mat::Zero(nx, nx);
  const Mat Fx0 = Mat::Zero(nx, nx), Fu0 = Mat::Zero(nx, nu);
  Mat C(D, D);
  Vec c(D), kt(nu);
  Mat Kt(nu, nx);
  double dV1 = 0.0, dV2 = 0.0;
  const double inv_eta = 1.0 / eta;
  for (int t = T - 1; t >= 0; --t) {
    C = cost.Cm[t] * inv_eta;
    c = cost.cv.row(t).transpose() * inv_eta;
    if (ref != nullptr) {
      const Mat& Kb = ref->K()[t];
      const Mat& Pb = ref->inv_cov()[t];
      const Mat PK = Pb * Kb;  // Sb^-1 Kb
      const Vec kb = ref->k().row(t).transpose();
      C.topLeftCorner(nx, nx).noalias() += Kb.transpose() * PK;
      C.topRightCorner(nx, nu).noalias() -= PK.transpose();
      C.bottomLeftCorner(nu, nx).noalias() -= PK;
      C.bottomRightCorner(nu, nu) += Pb;
      c.head(nx).noalias() += PK.transpose() * kb;
      c.tail(nu).noalias() -= Pb * kb;
    }
    const Mat lxx = C.topLeftCorner(nx, nx), luu = C.bottomRightCorner(nu, nu), lux = C.bottomLeftCorner(nu, nx);
    const Vec lx = c.head(nx), lu = c.tail(nu);
    bool ok;
    if (t == T - 1) {
      ok = riccati_step(Fx0, Fu0, nullptr, lx, lu, lxx, luu, lux, 0.0, Vx, Vxx, kt, Kt, dV1, dV2, w);
    } else {
      const Mat Fx = dyn.F[t].leftCols(nx), Fu = dyn.F[t].rightCols(nu);
      const Vec f = dyn.f.row(t).transpose();
      ok = riccati_step(Fx, Fu, &f, lx, lu, lxx, luu, lux, 0.0, Vx, Vxx, kt, Kt, dV1, dV2, w);
    }
    if (!ok) return false;
    K[t] = Kt;
    k.row(t) = kt.transpose();
    cov[t] = w.llt.solve(Mat::Identity(nu, nu));  // Sigma_t = Q~_uu^-1
    cov[t] = 0.5 * (cov[t] + cov[t].transpose()).eval();
    Eigen::LLT<Mat> chk(cov[t]);
    if (chk.info() != Eigen::Success || !cov[t].allFinite()) return false;
  }
  return true;
}

}  // namespace

LinearGaussianPolicy kl_lqr_backward(const LinearGaussianDynamics& dyn, const QuadraticCost& cost,
                                     const LinearGaussianPolicy* reference, double& eta,
                                     const KlLqrSettings& settings) {
  settings.validate();
  const int T = cost.horizon(), nx = dyn.nx(), nu = dyn.nu();
  dyn.validate(T, nx, nu);
  cost.validate(T, nx + nu);
  if (nu < 1) throw std::invalid_argument("kl_lqr: the dynamics have no controls");
  if (reference != nullptr && (reference->horizon() != T || reference->nx() != nx || reference->nu() != nu))
    throw std::invalid_argument("kl_lqr: the reference policy does not match the dynamics' horizon and sizes");
  if (!(eta > 0) || !std::isfinite(eta)) throw std::invalid_argument("kl_lqr: eta must be positive and finite");
  std::vector<Mat> K(T), cov(T);
  Mat k(T, nu);
  const double eta0 = eta;
  double delta = settings.delta0;
  while (!backward_once(dyn, cost, reference, eta, K, k, cov)) {
    eta = eta0 + delta;
    delta *= 2.0;
    if (eta > settings.eta_max)
      throw std::runtime_error("kl_lqr: Q~_uu is not positive definite for any eta up to eta_max");
  }
  return LinearGaussianPolicy(std::move(K), std::move(k), std::move(cov));
}

KlLqrResult kl_lqr_solve(const LinearGaussianDynamics& dyn, const QuadraticCost& cost,
                         const LinearGaussianPolicy& reference, double epsilon, double eta0,
                         const KlLqrSettings& settings) {
  settings.validate();
  if (!(epsilon > 0) || !std::isfinite(epsilon)) throw std::invalid_argument("kl_lqr_solve: epsilon must be > 0");
  if (!(eta0 > 0) || !std::isfinite(eta0)) throw std::invalid_argument("kl_lqr_solve: eta0 must be > 0");
  KlLqrResult res;
  res.epsilon = epsilon;
  double lo = settings.eta_min, hi = settings.eta_max;
  double eta = std::min(std::max(eta0, lo), hi);
  for (int it = 0; it < settings.max_tries; ++it) {
    LinearGaussianPolicy p = kl_lqr_backward(dyn, cost, &reference, eta, settings);
    const double kl = p.kl(reference, dyn);
    res.tries = it + 1;
    res.eta_history.push_back(eta);
    res.kl_history.push_back(kl);
    res.policy = std::move(p);
    res.eta = eta;
    res.kl = kl;
    const double con = kl - epsilon;
    if (std::abs(con) < settings.tolerance * epsilon) {
      res.converged = true;
      break;
    }
    if (con < 0) {  // eta too large: the constraint is slack
      hi = eta;
      eta = std::max(std::sqrt(lo * hi), 0.1 * hi);
    } else {  // eta too small
      lo = eta;
      eta = std::min(std::sqrt(lo * hi), 10.0 * lo);
    }
    if (hi <= settings.eta_min * (1 + 1e-12)) {
      res.message = "KL below epsilon even at eta_min (the unconstrained optimum is inside the bound)";
      break;
    }
    if (lo >= settings.eta_max * (1 - 1e-12)) {
      res.message = "KL above epsilon even at eta_max";
      break;
    }
  }
  if (!res.converged && res.message.empty()) res.message = "max_tries reached";
  return res;
}

}  // namespace dmpc::gps
