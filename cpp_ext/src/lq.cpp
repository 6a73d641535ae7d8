#include "dmpc/lq.hpp"

namespace dmpc {

void RiccatiWorkspace::resize(int nx, int nu) {
  Qx = Vf = Vec::Zero(nx);
  Qu = tmp_u = Vec::Zero(nu);
  Qxx = FxtV = Mat::Zero(nx, nx);
  Quu = Quu_reg = Mat::Zero(nu, nu);
  Qux = FutV = W_ux = Mat::Zero(nu, nx);
  llt = Eigen::LLT<Mat>(nu);
}

bool riccati_step(const Mat& Fx, const Mat& Fu, const Vec* f, const Vec& lx, const Vec& lu, const Mat& lxx,
                  const Mat& luu, const Mat& lux, double mu, Vec& Vx, Mat& Vxx, Vec& kk, Mat& K, double& dV1,
                  double& dV2, RiccatiWorkspace& w) {
  // Q-function expansion around the nominal node. lazyProduct: coefficient-based products are
  // faster than Eigen's blocked GEMM at these small dynamic sizes.
  if (f != nullptr) {
    // V evaluated at the affine offset: V_x + V_xx f replaces V_x in the linear terms.
    w.Vf = Vx;
    w.Vf.noalias() += Vxx * (*f);
    w.Qx = lx;
    w.Qx.noalias() += Fx.transpose() * w.Vf;
    w.Qu = lu;
    w.Qu.noalias() += Fu.transpose() * w.Vf;
  } else {
    w.Qx = lx;
    w.Qx.noalias() += Fx.transpose() * Vx;
    w.Qu = lu;
    w.Qu.noalias() += Fu.transpose() * Vx;
  }
  w.FxtV.noalias() = Fx.transpose().lazyProduct(Vxx);
  w.FutV.noalias() = Fu.transpose().lazyProduct(Vxx);
  w.Qxx = lxx;
  w.Qxx.noalias() += w.FxtV.lazyProduct(Fx);
  w.Quu = luu;
  w.Quu.noalias() += w.FutV.lazyProduct(Fu);
  w.Qux = lux;
  w.Qux.noalias() += w.FutV.lazyProduct(Fx);
  // gains from the regularised Q_uu + mu I (Levenberg-Marquardt)
  w.Quu_reg = w.Quu;
  w.Quu_reg.diagonal().array() += mu;
  w.llt.compute(w.Quu_reg);
  if (w.llt.info() != Eigen::Success) return false;
  kk = -w.Qu;
  w.llt.solveInPlace(kk);
  K = -w.Qux;
  w.llt.solveInPlace(K);
  if (!kk.allFinite() || !K.allFinite()) return false;
  w.tmp_u.noalias() = w.Quu * kk;
  dV1 += kk.dot(w.Qu);
  dV2 += 0.5 * kk.dot(w.tmp_u);
  // V_x = Q_x + K^T (Q_uu k + Q_u) + Q_ux^T k ;  V_xx = Q_xx + K^T (Q_uu K + Q_ux) + Q_ux^T K
  w.tmp_u += w.Qu;
  Vx = w.Qx;
  Vx.noalias() += K.transpose() * w.tmp_u;
  Vx.noalias() += w.Qux.transpose() * kk;
  w.W_ux = w.Qux;
  w.W_ux.noalias() += w.Quu.lazyProduct(K);
  Vxx = w.Qxx;
  Vxx.noalias() += K.transpose().lazyProduct(w.W_ux);
  Vxx.noalias() += w.Qux.transpose().lazyProduct(K);
  // symmetrise in place
  for (Eigen::Index i = 0; i < Vxx.rows(); ++i)
    for (Eigen::Index j = i + 1; j < Vxx.cols(); ++j) {
      const double a = 0.5 * (Vxx(i, j) + Vxx(j, i));
      Vxx(i, j) = a;
      Vxx(j, i) = a;
    }
  return true;
}

}  // namespace dmpc
