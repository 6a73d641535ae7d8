/// @file critic.hpp
/// @brief Learned value function ("critic") V(tau, x; g) of Deep Value MPC (Eqs. (11)-(14) of
///        deep-value-mpc) and its native multilayer-perceptron evaluator.
///
/// Conventions (shared with the Python training / ONNX export side):
///  - tau is the TIME-TO-GO in seconds (not the absolute time). Costs that use absolute time t
///    compute tau = t_goal - t, so d/dt = -d/dtau.
///  - g is the goal (size ng >= 0), held by the model: set it with set_goal() BETWEEN solves.
///    Thread-safety: calc / calc_grad / calc_diff / calc_third are const and may run
///    concurrently on different CriticData objects; set_goal() must not be called while any
///    of them runs (i.e. never during a solve).
///  - Model/Data split: the model is shared read-only, every thread owns a CriticData from
///    create_data().
#pragma once

#include <string>
#include <vector>

#include "dmpc/common.hpp"

namespace dmpc {

namespace detail {
struct MlpPack;  // vectorised kernels (src/critic_kernels.hpp, private)
struct MlpWork;
}  // namespace detail

/// @brief Results of one critic evaluation (and, for derived critics, their scratch buffers).
struct CriticData {
  explicit CriticData(int nx)
      : V(0.0), Vx(Vec::Zero(nx)), Vxx(Mat::Zero(nx, nx)), Vtau(0.0), Vtaux(Vec::Zero(nx)),
        Kv(Mat::Zero(nx, nx)) {}
  virtual ~CriticData() = default;
  double V;     ///< V(tau, x)
  Vec Vx;       ///< dV/dx, size nx
  Mat Vxx;      ///< d2V/dx2, nx x nx (symmetric)
  double Vtau;  ///< dV/dtau (tau = time-to-go)
  Vec Vtaux;    ///< d2V/(dtau dx), size nx
  /// Third-derivative contraction (filled by calc_third):
  /// Kv(i, k) = d/dx_k [ sum_j d2V/(dx_i dx_j) vx_j + d2V/(dx_i dtau) vtau ], nx x nx.
  Mat Kv;
};

/// @brief Abstract critic V(tau, x; g). A Python subclass (e.g. ONNX Runtime backed) implements
///        the same interface through the pybind11 trampoline; solvers cannot tell them apart.
class CriticModel {
 public:
  /// @param[in] nx state dimension (>= 1)
  /// @param[in] ng goal dimension (>= 0)
  CriticModel(int nx, int ng);
  virtual ~CriticModel() = default;

  int nx() const { return nx_; }
  int ng() const { return ng_; }
  virtual std::string name() const { return "CriticModel"; }

  /// @brief Set the goal g (size ng, finite). Not thread-safe: call between solves only.
  void set_goal(const RefV& g);
  /// @brief Current goal, size ng (zeros until set_goal is called).
  const Vec& goal() const { return goal_; }

  virtual std::shared_ptr<CriticData> create_data() const {
    return std::make_shared<CriticData>(nx_);
  }

  /// @brief data.V = V(tau, x; goal()). x has size nx.
  virtual void calc(CriticData& data, double tau, const RefV& x) const = 0;
  /// @brief data.V, data.Vx, data.Vtau (first derivatives only). Default: calls calc_diff.
  virtual void calc_grad(CriticData& data, double tau, const RefV& x) const {
    calc_diff(data, tau, x);
  }
  /// @brief data.V, Vx, Vxx, Vtau, Vtaux at (tau, x).
  virtual void calc_diff(CriticData& data, double tau, const RefV& x) const = 0;

  /// @brief True if calc_third() is implemented (exact third-derivative contraction).
  virtual bool provides_third() const { return false; }
  /// @brief data.Kv = d/dx [Vxx vx + Vtaux vtau] (nx x nx), see CriticData::Kv.
  ///        Precondition: calc_diff(data, tau, x) was called last on this data with the same
  ///        (tau, x). Default: throws std::logic_error (check provides_third() first).
  /// @param[in] vx direction in x, size nx
  /// @param[in] vtau direction in tau
  virtual void calc_third(CriticData& data, double tau, const RefV& x, const RefV& vx,
                          double vtau) const;

 protected:
  int nx_, ng_;
  Vec goal_;
};

using CriticModelPtr = std::shared_ptr<const CriticModel>;

/// @brief Scratch buffers of CriticMLP (one per thread); all sized at creation so that calc,
///        calc_grad, calc_diff and calc_third do not allocate.
struct CriticMLPData : public CriticData {
  CriticMLPData(int nx, const std::vector<int>& widths);
  Vec zn;                 ///< normalised input (z - mean) / std, size nz
  std::vector<Vec> a;     ///< pre-activations of hidden layer i, size n_{i+1}
  std::vector<Vec> h;     ///< h[0] = zn, h[i+1] = tanh(a[i])
  std::vector<Vec> s1;    ///< tanh' = 1 - h^2
  std::vector<Vec> s2;    ///< tanh'' = -2 h tanh'
  std::vector<Vec> lam;   ///< lam[i] = dy/dh[i]
  std::vector<Vec> mu;    ///< mu[i] = dy/da[i]
  std::vector<Mat> dA;    ///< tangents of a[i] along the m = nx + 1 directions (x, tau)
  std::vector<Mat> dH;    ///< tangents of h[i]
  std::vector<Mat> dMu;   ///< tangents of mu[i]
  std::vector<Mat> dLam;  ///< tangents of lam[i]
  // second-level tangents along one direction v (calc_third)
  std::vector<Vec> ea, eMu, eLam, eH;  ///< delta of a, mu, lam, h
  std::vector<Mat> edA, edH, edMu, edLam;
  std::vector<Vec> s3;          ///< tanh''' = -2 tanh'^2 - 2 tanh tanh'' (calc_third only)
  std::vector<Vec> c1, c2, c3;  ///< per-hidden-layer scratch
  Vec vn;                       ///< normalised direction (calc_third), size nz
  /// Buffers of the vectorised kernels (null when the model has no kernel pack).
  std::shared_ptr<detail::MlpWork> kw;
  /// Use the Eigen forward-over-reverse reference implementation instead of the vectorised
  /// kernels (for cross-checks; per data object, so it is thread-safe).
  bool use_reference = false;
};

/// @brief Native MLP critic (PyTorch layout), with exact analytic derivatives.
///
/// z = [x; g; tau] (nz = nx + ng + 1), zn = (z - input_mean) / input_std,
/// h_0 = zn, h_{i+1} = tanh(W_i h_i + b_i) for the hidden layers, y = W_L h_L + b_L (1 output),
/// V = output_scale * y + output_bias. W_i is (out x in) as in torch.nn.Linear.
///
/// Derivatives (default: vectorised kernels, src/critic_kernels.hpp): forward and reverse
/// pass, the forward Jacobians J_i = d a_i / d zeta of every hidden pre-activation along the
/// m = nx + 1 directions zeta = (x, tau) (J_0 = W_0[:, (x, tau)] / std is a constant of the
/// model), the Hessian d2y/dzeta2 = sum_i J_i^T diag(lam_{i+1} tanh''(a_i)) J_i and, for
/// calc_third, its directional derivative along v; the directions are packed in 4-wide SIMD
/// vectors (AVX2+FMA variant chosen at run time, baseline-ISA variant otherwise) and tanh is
/// a vectorised expm1 formula. Used when the network has >= 1 hidden layer and nx <= 15.
/// Reference (CriticMLPData::use_reference = true, or when the kernels do not apply): forward
/// pass, reverse pass for dV/dz (lam, mu), and a forward-mode tangent of the forward and
/// reverse passes along (x, tau) (forward-over-reverse, Eigen); calc_third differentiates that
/// whole computation once more along v (tanh''' = -2 tanh'^2 - 2 tanh tanh'').
/// All buffers live in CriticMLPData: no heap allocation in calc / calc_grad / calc_diff /
/// calc_third (checked with EIGEN_RUNTIME_NO_MALLOC).
class CriticMLP : public CriticModel {
 public:
  /// @param[in] weights W_i, shapes (n_{i+1} x n_i), n_0 = nz, last layer has 1 row
  /// @param[in] biases b_i, sizes n_{i+1}
  /// @param[in] input_mean size nz
  /// @param[in] input_std size nz, all > 0
  /// @param[in] output_scale finite
  /// @param[in] output_bias finite
  /// @param[in] nx state dimension, ng goal dimension
  /// @throws std::invalid_argument naming the layer/field on inconsistent shapes, non-finite
  ///         values or input_std <= 0
  CriticMLP(const std::vector<Mat>& weights, const std::vector<Vec>& biases, const RefV& input_mean,
            const RefV& input_std, double output_scale, double output_bias, int nx, int ng);

  std::string name() const override { return "CriticMLP"; }
  std::shared_ptr<CriticData> create_data() const override;
  void calc(CriticData& data, double tau, const RefV& x) const override;
  void calc_grad(CriticData& data, double tau, const RefV& x) const override;
  void calc_diff(CriticData& data, double tau, const RefV& x) const override;
  bool provides_third() const override { return true; }
  void calc_third(CriticData& data, double tau, const RefV& x, const RefV& vx,
                  double vtau) const override;

  /// @brief Batched calc_diff for B states (same values as B calls of calc_diff, up to
  ///        rounding). The Hessian in (x, tau) is
  ///        d2y/dzeta2 = sum_i J_i^T diag(lam_{i+1} * tanh''(a_i)) J_i,  J_i = d a_i / d zeta,
  ///        with J_0 = W_0 (columns of x and tau) / std shared by all states, only the lower
  ///        triangle formed and mirrored. With the vectorised kernels the STATES are in the SIMD
  ///        lanes (detail::kernel_diff_batch: blocks of 8 states, weights broadcast, J_0 folded
  ///        into precomputed constants); otherwise (reference path) the forward and reverse
  ///        passes run as matrix-matrix products across the states. Allocates its scratch once
  ///        per call.
  /// @param[in] taus time-to-go, size B
  /// @param[in] X states, B x nx (one per row)
  /// @param[out] V size B; Vtau size B; Vx nx x B; Vtaux nx x B; Vxx nx x (nx B), block b
  ///             (columns b nx .. b nx + nx - 1) is the symmetric Hessian of state b.
  ///             Outputs are resized.
  void calc_diff_batch(const RefV& taus, const RefM& X, Vec& V, Vec& Vtau, Mat& Vx, Mat& Vtaux,
                       Mat& Vxx) const;
  /// @brief Same as the Mat overload, writing into caller memory laid out as row-major numpy
  ///        arrays V (B), Vtau (B), Vx (B, nx), Vtaux (B, nx), Vxx (B, nx, nx). With the
  ///        vectorised kernels: 4 states per SIMD vector, 8 per block (a partial last block
  ///        repeats its last state in the unused lanes; only valid states are written).
  void calc_diff_batch(const RefV& taus, const RefM& X, double* V, double* Vtau, double* Vx,
                       double* Vtaux, double* Vxx) const;
  /// @brief True if calc / calc_grad / calc_diff / calc_third use the vectorised kernels.
  bool vectorized() const { return pack_ != nullptr; }

  int n_layers() const { return static_cast<int>(W_.size()); }
  const std::vector<Mat>& weights() const { return W_; }
  const std::vector<Vec>& biases() const { return b_; }
  const Vec& input_mean() const { return mean_; }
  const Vec& input_std() const { return std_; }
  double output_scale() const { return out_scale_; }
  double output_bias() const { return out_bias_; }

 private:
  void forward(CriticMLPData& d, double tau, const RefV& x) const;  // fills zn, a, h, s1, s2
  void backward(CriticMLPData& d) const;                            // fills mu, lam, V, Vx, Vtau
  CriticMLPData& cast(CriticData& data) const;
  bool fast(const CriticMLPData& d) const { return pack_ && d.kw && !d.use_reference; }
  void kernel_input(CriticMLPData& d, double tau, const RefV& x) const;  // fills kw->h[0]
  void kernel_outputs(CriticMLPData& d, bool grad, bool hessian) const;  // V, Vx, ... from kw
  void calc_diff_batch_reference(const RefV& taus, const RefM& X, Vec& V, Vec& Vtau, Mat& Vx,
                                 Mat& Vtaux, Mat& Vxx) const;

  std::vector<Mat> W_;
  std::vector<Vec> b_;
  Vec mean_, std_, inv_std_;
  double out_scale_, out_bias_;
  std::vector<int> widths_;  // n_0 = nz, n_1, ..., n_L (hidden), not including the output
  int nz_;
  std::shared_ptr<const detail::MlpPack> pack_;  // null: kernels do not apply
};

}  // namespace dmpc
