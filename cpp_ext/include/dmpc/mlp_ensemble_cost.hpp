/// @file mlp_ensemble_cost.hpp
/// @brief Native learned terminal values for MPPI: an ensemble of small tanh MLPs with an
///        optimistic soft-min aggregate (POLO Eqs. (5)-(6)), usable both as a state value
///        V(x) (POLO) and as an action value Q(x, u) (MPQ), plus a horizon switch that puts
///        Q(s_{H-1}, a_{H-1}) in place of the last running cost (MPQ Eq. (16)).
///
/// Evaluated inside the C++ rollouts (no GIL, no Python per sample): the alternative, a Python
/// CostModel subclass calling torch, serialises the rollout threads on the GIL (see
/// benchmarks/polo_terminal_value.py for the measured ratio).
#pragma once

#include <string>
#include <vector>

#include "dmpc/cost.hpp"

namespace dmpc {

/// @brief Input feature of the network: z_i = x[index] (Identity), cos(x[index]), sin(x[index]).
enum class FeatureKind { Identity, Cos, Sin };

struct Feature {
  FeatureKind kind;
  int index;
};

/// @brief Forward-only tanh MLP in the PyTorch / NormalizedMLP layout (critics/networks.py):
///        zn = (z - mean) / std, h_{i+1} = tanh(W_i h_i + b_i), y = W_L h_L + b_L (1 output),
///        out = output_scale * y + output_bias.
struct TanhMlp {
  std::vector<Mat> weights;  ///< W_i, (n_{i+1} x n_i); the last has 1 row
  std::vector<Vec> biases;   ///< b_i, size n_{i+1}
  Vec input_mean;            ///< size n_0
  Vec input_std;             ///< size n_0, > 0
  double output_scale = 1.0;
  double output_bias = 0.0;
};

/// @brief Buffers of MlpEnsembleCost (one per thread): no allocation in calc.
struct MlpEnsembleCostData : public CostData {
  MlpEnsembleCostData(int nx, int nu, int nz, int max_width, int num_members);
  Vec z;        ///< network input, size nz
  Vec h0, h1;   ///< ping-pong layer buffers, size max_width
  Vec members;  ///< member values V_k, size K
  Vec xp, up;   ///< perturbed copies for the finite-difference derivatives
};

/// @brief Soft-min ensemble of MLP sums as a cost l(t, x, u).
///
///   z = [phi(x); u (if use_action); extra_inputs],  phi_i(x) per Feature,
///   V_k = sum_j c_kj * net_kj(z)     (member k = trainable net + beta * frozen prior: Eq. (5)),
///   l = scale * ( -(1/kappa) (logsumexp_k(-kappa V_k) - log K) )   (kappa > 0; optimism for
///       costs is a soft-MIN, POLO Eq. (6) with the sign flipped),  l = scale * mean_k V_k for
///       kappa = 0. K = 1 gives a plain (action-)value network.
/// calc_diff uses central finite differences of calc (step fd_step) for lx, lu, lxx, luu, lux:
/// MPPI only calls calc; the derivatives exist so the cost also plugs into derivative-based
/// solvers, at FD accuracy (about 1e-6 relative).
class MlpEnsembleCost : public CostModel {
 public:
  /// @param[in] nx state size, @param[in] nu control size of the cost (0 for a terminal value)
  /// @param[in] features phi(x), each index in [0, nx)
  /// @param[in] use_action append u (size nu) to the input
  /// @param[in] extra_inputs constant inputs appended last (e.g. time-to-go 0), size ne
  /// @param[in] nets nets[k][j]: net j of member k, input width n_0 = |features| + nu*use_action + ne
  /// @param[in] coefficients coefficients[k] (size nets[k].size()), c_kj
  /// @param[in] kappa optimism temperature >= 0
  /// @param[in] scale output multiplier (e.g. 1/dt to turn a per-step Q into a running cost)
  /// @param[in] fd_step finite-difference step of calc_diff (> 0)
  MlpEnsembleCost(int nx, int nu, std::vector<Feature> features, bool use_action,
                  const RefV& extra_inputs, std::vector<std::vector<TanhMlp>> nets,
                  std::vector<Vec> coefficients, double kappa, double scale, double fd_step = 1e-5);

  std::string name() const override { return "MlpEnsembleCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;

  /// @brief Member values V_k (size K) at (x, u), without the scale (for tests/diagnostics).
  Vec member_values(const RefV& x, const RefV& u) const;
  int num_members() const { return static_cast<int>(nets_.size()); }
  int input_size() const { return nz_; }
  double kappa() const { return kappa_; }
  double scale() const { return scale_; }

 private:
  double evaluate(MlpEnsembleCostData& d, const RefV& x, const RefV& u) const;
  double net_forward(const TanhMlp& net, MlpEnsembleCostData& d) const;

  std::vector<Feature> features_;
  bool use_action_;
  Vec extra_;
  std::vector<std::vector<TanhMlp>> nets_;
  std::vector<Vec> coef_;
  double kappa_, scale_, fd_step_;
  int nz_, max_width_;
};

/// @brief l(t, x, u) = stage(t, x, u) for t < t_switch, last(t, x, u) for t >= t_switch.
///
/// MppiSolver calls the running cost at t = t0 + k dt; with t0 = 0 and t_switch = (H - 1) dt -
/// dt/2 the last step k = H - 1 uses `last`, which makes the path cost of MPQ Eq. (16):
///   sum_{t<H-1} gamma^t c(s_t, a_t) + gamma^{H-1} Q(s_{H-1}, a_{H-1})
/// (with `last` = Q / dt, since the solver multiplies running costs by dt).
class HorizonSwitchCost : public CostModel {
 public:
  HorizonSwitchCost(CostModelPtr stage, CostModelPtr last, double t_switch);
  std::string name() const override { return "HorizonSwitchCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;
  double t_switch() const { return t_switch_; }

 private:
  CostModelPtr stage_, last_;
  double t_switch_;
};

/// @brief Data of HorizonSwitchCost: one CostData per branch.
struct HorizonSwitchCostData : public CostData {
  HorizonSwitchCostData(int nx, int nu) : CostData(nx, nu) {}
  std::shared_ptr<CostData> stage, last;
};

}  // namespace dmpc

namespace dmpc {

/// @brief Pendulum swing-up cost of MPQ Table 3, l = scale * (wrap(theta)^2 + w_rate theta_dot^2),
///        wrap(theta) in [-pi, pi) (theta = 0 upright), for x = [theta, theta_dot] (nx = 2).
///        Derivatives are analytic (wrap' = 1 away from the cut at theta = pi, where l is
///        continuous but not differentiable).
class PendulumSwingUpCost : public CostModel {
 public:
  /// @param[in] nu control size (the cost ignores u)
  /// @param[in] w_rate weight on theta_dot^2 (0.1 in MPQ), @param[in] scale output multiplier
  PendulumSwingUpCost(int nu, double w_rate, double scale);
  std::string name() const override { return "PendulumSwingUpCost"; }
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;

 private:
  double w_rate_, scale_;
};

}  // namespace dmpc
