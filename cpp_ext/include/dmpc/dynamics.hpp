/// @file dynamics.hpp
/// @brief Continuous-time, control-affine dynamics models: xdot = f(x) + g(x) u (Eq. (10) of
///        deep-value-mpc).
///
/// Model/Data split (as in crocoddyl): a DynamicsModel is an immutable description; all
/// scratch memory and results live in a DynamicsData created by create_data(). One Data per
/// thread; models are shared read-only across threads.
#pragma once

#include <string>

#include "dmpc/common.hpp"

namespace dmpc {

/// @brief Results and buffers of one dynamics evaluation.
struct DynamicsData {
  DynamicsData(int nx, int nu)
      : xdot(Vec::Zero(nx)), fx(Mat::Zero(nx, nx)), fu(Mat::Zero(nx, nu)) {}
  virtual ~DynamicsData() = default;
  Vec xdot;  ///< state derivative, size nx
  Mat fx;    ///< d xdot / d x at (x, u), nx x nx
  Mat fu;    ///< d xdot / d u = g(x), nx x nu (independent of u: the models are control-affine)
};

/// @brief Abstract continuous-time dynamics xdot = f(x) + g(x) u.
///
/// Every model is control-affine, so f(x) = xdot(x, 0) and g(x) = fu(x, .). The Deep Value
/// MPC running cost (Eq. (14)) relies on this, and on d(g(x) w)/dx = fx(x, w) - fx(x, 0).
class DynamicsModel {
 public:
  /// @param[in] nx state dimension
  /// @param[in] nu control dimension
  /// @param[in] nq configuration dimension when the state is x = [q; v] with qdot = v and
  ///               nq == nv (second-order mechanical systems, enables semi-implicit Euler);
  ///               0 for a general first-order system.
  DynamicsModel(int nx, int nu, int nq = 0) : nx_(nx), nu_(nu), nq_(nq) {
    if (nx < 1 || nu < 1) throw std::invalid_argument("DynamicsModel needs nx >= 1 and nu >= 1");
    if (nq != 0 && 2 * nq != nx)
      throw std::invalid_argument("DynamicsModel: nq must be 0 or nx/2 (x = [q; v])");
  }
  virtual ~DynamicsModel() = default;

  int nx() const { return nx_; }
  int nu() const { return nu_; }
  int nq() const { return nq_; }
  virtual std::string name() const { return "DynamicsModel"; }

  virtual std::shared_ptr<DynamicsData> create_data() const {
    return std::make_shared<DynamicsData>(nx_, nu_);
  }

  /// @brief Compute data.xdot = f(x) + g(x) u.
  /// @param[in] x state, size nx
  /// @param[in] u control, size nu
  virtual void calc(DynamicsData& data, const RefV& x, const RefV& u) const = 0;

  /// @brief Compute data.xdot, data.fx (nx x nx) and data.fu (nx x nu) in one pass (the
  ///        integrators call only this for derivatives, so xdot must be filled too). Must be
  ///        valid whether or not calc() was called before with the same (x, u).
  virtual void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const = 0;

  /// @brief xdot = f(x) + g(x) u only, into a raw array: the rollout hot path of sampling-based
  ///        MPC (no derivatives, no side outputs such as M or h, no argument checks). The default
  ///        calls calc() and copies data.xdot; models override it with a cheaper forward-only
  ///        evaluation (BallbotDynamics: one generated function with an unrolled LDL^T solve).
  ///        Overrides must agree with calc() to rounding (tested to 1e-12 relative).
  /// @param[in] data scratch from this model's create_data() (overrides may leave it unused)
  /// @param[in] x state, nx doubles; @param[in] u control, nu doubles
  /// @param[out] xdot nx doubles (must not alias x or u)
  virtual void calc_xdot(DynamicsData& data, const double* x, const double* u,
                         double* xdot) const {
    calc(data, Eigen::Map<const Vec>(x, nx_), Eigen::Map<const Vec>(u, nu_));
    const double* src = data.xdot.data();
    for (int i = 0; i < nx_; ++i) xdot[i] = src[i];
  }

  /// @brief Drift and input matrix projected on a vector, without state derivatives (the value
  ///        of the Deep Value running cost, Eq. (14) of deep-value-mpc, in every rollout):
  ///          f = f(x) = xdot(x, 0) (size nx),  y = g(x)^T p (size nu).
  ///        Default: calc_diff(data, x, 0) (0 written into u_scratch), f = data.xdot,
  ///        y = data.fu^T p; allocates nothing. Models override it
  ///        when g(x)^T p is cheaper than the full Jacobians (BallbotDynamics: forward dynamics
  ///        at u = 0 and one more solve with the Cholesky factor of M, y = S (M^{-1} p_v)).
  ///        Overrides must agree with the default to rounding (tested to 1e-12 relative).
  /// @param[in,out] data scratch from this model's create_data() (overwritten)
  /// @param[in] x state, size nx; @param[in] p size nx
  /// @param[in,out] u_scratch size nu (overwritten)
  /// @param[out] f size nx; @param[out] y size nu (preallocated)
  virtual void calc_drift_input_projection(DynamicsData& data, const RefV& x, const RefV& p,
                                           Vec& u_scratch, Vec& f, Vec& y) const {
    u_scratch.setZero();
    calc_diff(data, x, u_scratch);
    f = data.xdot;
    y.noalias() = data.fu.transpose() * p;
  }

  /// @brief Derivatives of the input matrix g(x) contracted with vectors (used by the Deep
  ///        Value running cost, Eq. (14) of deep-value-mpc):
  ///          Gp(j, :) = p^T d g_j(x) / dx   (Gp = d(g(x)^T p)/dx at fixed p, nu x nx),
  ///          Gw = sum_j w_j d g_j(x) / dx   (Gw = d(g(x) w)/dx at fixed w, nx x nx),
  ///        g_j = column j of g. Precondition: calc_diff(at_zero, x, 0) ran last on at_zero
  ///        (it holds f_x(x) and g(x)); at_zero is not modified.
  ///        Default (exact for every control-affine model): d g_j / dx = fx(x, e_j) - fx(x, 0),
  ///        i.e. nu extra calc_diff calls on `scratch`. Models override it when the contraction
  ///        is cheaper (BallbotDynamics: one generated function of M(q) and S^T(q) for all inputs).
  /// @param[in] at_zero data after calc_diff(at_zero, x, 0)
  /// @param[in,out] scratch a second data object of this model (overwritten)
  /// @param[in] x state, size nx
  /// @param[in] p size nx
  /// @param[in] w size nu
  /// @param[in,out] u_scratch size nu (overwritten)
  /// @param[out] Gp nu x nx; @param[out] Gw nx x nx (both preallocated, overwritten)
  virtual void calc_input_jacobians(const DynamicsData& at_zero, DynamicsData& scratch, const RefV& x,
                                    const RefV& p, const RefV& w, Vec& u_scratch, Mat& Gp,
                                    Mat& Gw) const {
    Gw.setZero();
    for (int j = 0; j < nu_; ++j) {
      u_scratch.setZero();
      u_scratch(j) = 1.0;
      calc_diff(scratch, x, u_scratch);
      scratch.fx -= at_zero.fx;  // = d g_j / dx by control affinity
      Gp.row(j).noalias() = p.transpose() * scratch.fx;
      Gw += w(j) * scratch.fx;
    }
  }

 protected:
  int nx_, nu_, nq_;
};

using DynamicsModelPtr = std::shared_ptr<const DynamicsModel>;

}  // namespace dmpc
