/// @file rollout.hpp
/// @brief Value-only discrete steps for sampling-based MPC rollouts: x_next = Phi(x, u, dt) with
///        the schemes of integrator.hpp, through DynamicsModel::calc_xdot (no Jacobians, no
///        dynamic-size temporaries, nothing allocated per step).
///
/// The arithmetic is written in the same order as integrate() (integrator.hpp), so a model whose
/// calc_xdot computes xdot exactly like calc() gives bitwise the same x_next; the Ballbot's
/// forward-only function agrees with calc() to rounding (~1e-15 relative).
#pragma once

#include <memory>

#include "dmpc/dynamics.hpp"
#include "dmpc/integrator.hpp"

namespace dmpc {

/// @brief Scratch of integrate_forward (one per worker thread).
struct ForwardStepData {
  explicit ForwardStepData(const DynamicsModel& model);
  std::shared_ptr<DynamicsData> data;  ///< handed to calc_xdot
  Vec k0, k1, k2, k3;                  ///< stage derivatives, size nx
  Vec xs;                              ///< stage evaluation point, size nx
};

/// @brief x_next = Phi(x, u, dt) (Euler, semi-implicit Euler x = [q; v]: v+ = v + dt a,
///        q+ = q + dt v+, or classical RK4; zero-order hold on u).
/// @param[in] model dynamics (nx, nu); semi-implicit Euler needs nq > 0 (std::invalid_argument)
/// @param[in] x state, nx doubles; @param[in] u control, nu doubles
/// @param[out] x_next nx doubles; may alias x (element i is read before it is written)
void integrate_forward(const DynamicsModel& model, Integrator integrator, double dt,
                       ForwardStepData& data, const double* x, const double* u, double* x_next);

}  // namespace dmpc
