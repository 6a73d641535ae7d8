/// @file integrator.hpp
/// @brief Discretisation of continuous dynamics over one step of length dt, with the exact
///        Jacobians of the discrete map (chain rule through the integrator stages).
///
/// The control is held constant over the step (zero-order hold).
#pragma once

#include <array>
#include <string>

#include "dmpc/dynamics.hpp"

namespace dmpc {

/// @brief Integration scheme.
///  - Euler: x+ = x + dt f(x, u).
///  - SemiImplicitEuler: for x = [q; v] (model nq > 0): v+ = v + dt a(x, u), q+ = q + dt v+
///    (crocoddyl's IntegratedActionModelEuler).
///  - RK4: classical fourth-order Runge-Kutta.
enum class Integrator { Euler, SemiImplicitEuler, RK4 };

Integrator integrator_from_string(const std::string& name);
std::string to_string(Integrator integrator);

/// @brief Buffers for one discrete step (one per node or per worker thread).
struct StepData {
  explicit StepData(const DynamicsModel& model);
  std::array<std::shared_ptr<DynamicsData>, 4> stage;  ///< dynamics data per RK stage (one shared object: stages run in sequence)
  std::array<Vec, 4> k;                                ///< stage derivatives
  std::array<Mat, 4> kx, ku;                           ///< stage derivative Jacobians
  Vec xs;                                              ///< stage evaluation point
  Mat Ixs;                                             ///< d xs / d x scratch
  Vec x_next;                                          ///< x(t + dt), size nx
  Mat Fx;                                              ///< d x_next / d x, nx x nx
  Mat Fu;                                              ///< d x_next / d u, nx x nu
};

/// @brief x_next = Phi(x, u, dt).
/// @param[in] x state, size nx; @param[in] u control, size nu
void integrate(const DynamicsModel& model, Integrator integrator, double dt, StepData& data,
               const RefV& x, const RefV& u);

/// @brief x_next and its Jacobians Fx (nx x nx), Fu (nx x nu).
void integrate_diff(const DynamicsModel& model, Integrator integrator, double dt, StepData& data,
                    const RefV& x, const RefV& u);

}  // namespace dmpc
