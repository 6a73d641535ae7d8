/// @file learned.hpp
/// @brief Learned dynamics for model-based RL (lecture-model-based-rl, "global models"): a
///        control-affine tanh MLP with exact forward-mode Jacobians, and the mean of an ensemble
///        of dynamics models (bootstrap ensembles) with its disagreement.
///
/// Both keep the continuous-time, control-affine DynamicsModel contract (dynamics.hpp, Eq. (10)
/// of deep-value-mpc), so SLQ, MPPI, every integrator and the Deep Value running cost (Eq. (14):
/// g(x) and d g / dx) plan with them unchanged.
///
/// A general discrete-time (non-affine) network x_{t+1} = F(x_t, u_t) is NOT a DynamicsModel:
/// it would need an Integrator::Discrete (integrator.hpp, rollout.hpp, the Problem checks) and a
/// control_affine() flag that ValueRunningCost refuses. That is the documented extension point;
/// it is not built.
#pragma once

#include <string>
#include <vector>

#include "dmpc/dynamics.hpp"
#include "dmpc/mlp_ensemble_cost.hpp"  // Feature, FeatureKind

namespace dmpc {

/// @brief A tanh MLP with a vector output and per-output affine map, in the PyTorch layout:
///        zn = (z - input_mean) / input_std, h_{i+1} = tanh(W_i h_i + b_i),
///        y = output_scale .* (W_L h_L + b_L) + output_bias.
struct VectorTanhMlp {
  std::vector<Mat> weights;  ///< W_i, (n_{i+1} x n_i)
  std::vector<Vec> biases;   ///< b_i, size n_{i+1}
  Vec input_mean;            ///< size n_0
  Vec input_std;             ///< size n_0, > 0
  Vec output_scale;          ///< size n_out
  Vec output_bias;           ///< size n_out
};

/// @brief Buffers of ControlAffineMlpDynamics (one per thread): nothing is allocated in calc.
struct ControlAffineMlpData : public DynamicsData {
  ControlAffineMlpData(int nx, int nu, int nz, int nout, const std::vector<int>& widths);
  Vec z;                 ///< network input phi(x), size nz
  Mat dz;                ///< d zn / dx, nz x nx
  std::vector<Vec> h;    ///< layer activations (h[0] = zn)
  std::vector<Mat> J;    ///< d h_i / dx (forward mode)
  Vec y;                 ///< network output [a; vec_row(B)], size nl (1 + nu)
  Mat Jy;                ///< d y / dx, nout x nx
};

/// @brief ẋ = a_θ(φ(x)) + B_θ(φ(x)) u, a tanh MLP y = net(φ(x)) with y = [a; B row-major].
///
/// When nq > 0 (x = [q; v], nq = nv) only the accelerations are learned:
///   q̇ = v,  v̇ = a_θ(φ(x)) + B_θ(φ(x)) u   (nl = nv learned rows);
/// otherwise all nl = nx rows are learned. φ(x) is a list of features z_i = x[k], cos x[k] or
/// sin x[k] (as MlpEnsembleCost). The model is control-affine by construction: g(x) = fu =
/// [0; B_θ] does not depend on u.
///
/// calc_diff is exact (forward mode through the layers): with J_0 = diag(1 / input_std) dφ/dx,
/// J_{i+1} = diag(1 - h_{i+1}^2) W_i J_i, dy/dx = diag(output_scale) W_L J_L, and
/// d v̇ / dx = da/dx + Σ_j u_j dB_{:,j}/dx. calc_xdot is the forward pass only.
class ControlAffineMlpDynamics : public DynamicsModel {
 public:
  /// @param[in] nx state size; @param[in] nu control size
  /// @param[in] nq 0, or nx / 2 for x = [q; v] (then only v̇ is learned)
  /// @param[in] features φ(x), each index in [0, nx)
  /// @param[in] net input width |features|, output width nl (1 + nu)
  ControlAffineMlpDynamics(int nx, int nu, int nq, std::vector<Feature> features, VectorTanhMlp net);

  std::string name() const override { return "ControlAffineMlpDynamics"; }
  std::shared_ptr<DynamicsData> create_data() const override;
  void calc(DynamicsData& data, const RefV& x, const RefV& u) const override;
  void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const override;
  void calc_xdot(DynamicsData& data, const double* x, const double* u, double* xdot) const override;

  /// @brief Number of learned rows (nx - nq).
  int num_learned() const { return nl_; }
  const std::vector<Feature>& features() const { return features_; }
  const VectorTanhMlp& net() const { return net_; }

 private:
  /// Forward pass into d.h / d.y from the raw state (no derivatives).
  void forward(ControlAffineMlpData& d, const double* x) const;
  /// xdot from d.y, x and u.
  void assemble(const ControlAffineMlpData& d, const double* x, const double* u, double* xdot) const;

  std::vector<Feature> features_;
  VectorTanhMlp net_;
  int nl_, nz_, nout_;
  std::vector<int> widths_;  ///< hidden widths
};

/// @brief Buffers of EnsembleMeanDynamics: one DynamicsData per member.
struct EnsembleMeanData : public DynamicsData {
  EnsembleMeanData(int nx, int nu) : DynamicsData(nx, nu), tmp(Vec::Zero(nx)) {}
  std::vector<std::shared_ptr<DynamicsData>> members;
  Vec tmp;
};

/// @brief ẋ = (1/M) Σ_k ẋ_k(x, u): the mean of M dynamics models (a bootstrap ensemble), with
///        the exact mean Jacobians. The mean of control-affine models is control-affine, so SLQ
///        and the Deep Value running cost plan on it unchanged.
///
/// disagreement(x, u) is the ensemble's uncertainty signal: the per-row standard deviation of
/// the members' ẋ (population, 1/M), as planners and diagnostics read it.
class EnsembleMeanDynamics : public DynamicsModel {
 public:
  /// @param[in] members M >= 1 models with the same nx, nu and nq
  explicit EnsembleMeanDynamics(std::vector<DynamicsModelPtr> members);

  std::string name() const override { return "EnsembleMeanDynamics"; }
  std::shared_ptr<DynamicsData> create_data() const override;
  void calc(DynamicsData& data, const RefV& x, const RefV& u) const override;
  void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const override;
  void calc_xdot(DynamicsData& data, const double* x, const double* u, double* xdot) const override;

  /// @brief Per-row standard deviation over the members of ẋ_k(x, u), size nx (checks sizes).
  Vec disagreement(const RefV& x, const RefV& u) const;
  /// @brief ẋ_k(x, u) of every member, nx x M (checks sizes).
  Mat member_xdots(const RefV& x, const RefV& u) const;
  const std::vector<DynamicsModelPtr>& members() const { return members_; }
  int num_members() const { return static_cast<int>(members_.size()); }

 private:
  std::vector<DynamicsModelPtr> members_;
};

}  // namespace dmpc
