/// @file lq.hpp
/// @brief One step of the Riccati backward recursion of a discrete-time LQ problem, shared by
///        SLQ (slq.hpp) and the KL-constrained LQR of guided policy search (gps/kl_lqr.hpp).
///
/// Stage model around a nominal point: x' = F_x x + F_u u + f, stage cost
/// l = l_x^T x + l_u^T u + 1/2 [x;u]^T [[l_xx, l_ux^T], [l_ux, l_uu]] [x;u]. Given the value
/// expansion V(x') = V_x^T x' + 1/2 x'^T V_xx x' of the next node, one step forms
///   Q_x  = l_x + F_x^T (V_x + V_xx f),   Q_u  = l_u + F_u^T (V_x + V_xx f),
///   Q_xx = l_xx + F_x^T V_xx F_x,        Q_uu = l_uu + F_u^T V_xx F_u,   Q_ux = l_ux + F_u^T V_xx F_x,
/// the gains k = -(Q_uu + mu I)^{-1} Q_u, K = -(Q_uu + mu I)^{-1} Q_ux and the value expansion of
/// this node V_x = Q_x + K^T (Q_uu k + Q_u) + Q_ux^T k, V_xx = Q_xx + K^T (Q_uu K + Q_ux) + Q_ux^T K
/// (symmetrised). The affine term f is zero for SLQ (deviation coordinates around a rollout) and
/// the fitted offset f_t for the linear-Gaussian dynamics of guided policy search (MDGPS App. B.1).
#pragma once

#include <Eigen/Cholesky>

#include "dmpc/common.hpp"

namespace dmpc {

/// @brief Preallocated temporaries of riccati_step (a step allocates nothing once sized).
struct RiccatiWorkspace {
  Vec Qx, Qu, tmp_u, Vf;
  Mat Qxx, Quu, Qux, FxtV, FutV, Quu_reg, W_ux;
  /// Cholesky factor of Q_uu + mu I of the last successful step (e.g. for Sigma = Q_uu^{-1}).
  Eigen::LLT<Mat> llt;
  RiccatiWorkspace() = default;
  RiccatiWorkspace(int nx, int nu) { resize(nx, nu); }
  void resize(int nx, int nu);
};

/// @brief One backward Riccati step (see the file comment). On entry Vx, Vxx hold the next
///        node's value expansion, on success this node's. Returns false (Vx, Vxx unspecified)
///        when Q_uu + mu I is not positive definite or the gains are not finite.
/// @param f affine dynamics term, or nullptr for f = 0
/// @param dV1,dV2 accumulate the predicted decrease terms k^T Q_u and 1/2 k^T Q_uu k
bool riccati_step(const Mat& Fx, const Mat& Fu, const Vec* f, const Vec& lx, const Vec& lu, const Mat& lxx,
                  const Mat& luu, const Mat& lux, double mu, Vec& Vx, Mat& Vxx, Vec& k, Mat& K, double& dV1,
                  double& dV2, RiccatiWorkspace& w);

}  // namespace dmpc
