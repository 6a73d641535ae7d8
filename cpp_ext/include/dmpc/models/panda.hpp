/// @file panda.hpp
/// @brief Franka Emika Panda rigid-body dynamics (pinocchio, loaded from a URDF) and an
///        end-effector position cost.
///
/// This header deliberately does NOT include pinocchio: the pinocchio model and data live
/// behind opaque pointers (PIMPL) defined in src/models/panda*.cpp, so translation units
/// that only use these classes (the Python bindings, solvers) compile fast. Only the
/// src/models/panda*.cpp files pay pinocchio's compile time.
///
/// State x = [q; v] (nq = nv = 7, x has size 14), control u = joint torques tau (size 7).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dmpc/cost.hpp"
#include "dmpc/dynamics.hpp"

namespace dmpc {

/// @brief Dynamics buffers of PandaDynamics: the base results plus a pinocchio::Data
///        (opaque here; one per thread, never shared).
struct PandaData : public DynamicsData {
  struct Impl;  ///< wraps pinocchio::Data; defined in src/models/panda.cpp
  PandaData(int nx, int nu, std::unique_ptr<Impl> impl);
  ~PandaData() override;
  std::unique_ptr<Impl> impl;
};

/// @brief Torque-controlled 7-DoF Panda: xdot = [v; a], a = ABA(q, v, u - b v).
///
/// a = M(q)^{-1} (u - b v - h(q, v)) is evaluated with pinocchio's Articulated-Body
/// Algorithm; M is the joint-space inertia, h the Coriolis, centrifugal and gravity torques,
/// b >= 0 an optional viscous joint damping (default 0). The model is control-affine:
/// g(x) = [0; M(q)^{-1}].
///
/// Jacobians (pinocchio::computeABADerivatives):
///   fx = [[0, I], [da/dq, da/dv - b M^{-1}]]  (14 x 14),   fu = [[0], [M^{-1}]]  (14 x 7),
/// where da/dq and da/dv are ABA's partial derivatives at tau = u - b v.
///
/// The model is immutable after construction and can be shared read-only across threads;
/// all scratch memory is in the PandaData from create_data().
class PandaDynamics : public DynamicsModel {
 public:
  struct Impl;  ///< wraps pinocchio::Model; defined in src/models/panda.cpp

  /// @param[in] urdf_path path of a URDF of a fixed-base arm with exactly 7 one-DoF joints
  ///                      (e.g. the project's urdf/panda.urdf with the fingers locked).
  ///                      Throws std::invalid_argument if the file is missing, does not
  ///                      parse, or does not have nq = nv = 7.
  /// @param[in] damping   viscous joint damping b [N m s / rad], >= 0 (default 0)
  explicit PandaDynamics(const std::string& urdf_path, double damping = 0.0);
  ~PandaDynamics() override;

  std::string name() const override { return "PandaDynamics"; }
  std::shared_ptr<DynamicsData> create_data() const override;

  /// @brief data.xdot = [v; ABA(q, v, u - b v)]. x size 14, u size 7. data must come from
  ///        this model's create_data().
  void calc(DynamicsData& data, const RefV& x, const RefV& u) const override;
  /// @brief data.fx (14 x 14), data.fu (14 x 7), and data.xdot as a by-product.
  void calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const override;

  // ---- helpers (each call allocates its own pinocchio::Data: for tests and setup) ----

  /// @brief Joint-space inertia matrix M(q), 7 x 7 (symmetric), q size 7.
  Mat mass_matrix(const RefV& q) const;
  /// @brief Generalized gravity torques g(q) (the torque that holds q at rest), size 7.
  Vec gravity(const RefV& q) const;
  /// @brief World position of frame `frame` at configuration q, size 3.
  Vec frame_position(const RefV& q, const std::string& frame) const;
  /// @brief Translation Jacobian d p_frame / d q (3 x 7), world-aligned axes.
  Mat frame_jacobian(const RefV& q, const std::string& frame) const;
  /// @brief Total mechanical energy E(x) = 0.5 v^T M(q) v + V(q) [J], x size 14. V is the
  ///        gravitational potential sum_i m_i g0 z_i with the base at zero height.
  double energy(const RefV& x) const;

  /// @brief True if the URDF defines a frame (link, joint or fixed frame) of that name.
  bool has_frame(const std::string& frame) const;
  /// @brief Names of all frames of the pinocchio model.
  std::vector<std::string> frame_names() const;
  /// @brief Names of the 7 joints in state order.
  std::vector<std::string> joint_names() const;
  Vec lower_position_limit() const;  ///< size 7 [rad]
  Vec upper_position_limit() const;  ///< size 7 [rad]
  Vec velocity_limit() const;        ///< size 7 [rad/s]
  Vec effort_limit() const;          ///< size 7 [N m]
  double damping() const { return damping_; }
  const std::string& urdf_path() const { return urdf_path_; }

  /// @brief Internal: the pinocchio model (for other pinocchio TUs such as the costs).
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
  std::string urdf_path_;
  double damping_;
};

/// @brief Cost buffers of FrameTranslationCost (holds a pinocchio::Data, opaque here).
struct FrameTranslationCostData : public CostData {
  struct Impl;
  FrameTranslationCostData(int nx, int nu, std::unique_ptr<Impl> impl);
  ~FrameTranslationCostData() override;
  std::unique_ptr<Impl> impl;
  Vec residual;  ///< r = p_frame(q) - p_ref, size 3
  Mat jacobian;  ///< J = d p_frame / d q, 3 x 7
};

/// @brief End-effector position cost l(x) = 0.5 w || p_frame(q) - p_ref ||^2.
///
/// Depends on q only (first nq entries of x). Derivatives, with r = p(q) - p_ref and
/// J = dp/dq (3 x nq, world-aligned):
///   lx = [w J^T r; 0],   lxx = [[w J^T J, 0], [0, 0]]  (Gauss-Newton),   lu, luu, lux = 0.
/// The Hessian drops the second-order term w sum_k r_k d2p_k/dq2, exactly as crocoddyl does
/// for its residual costs (ResidualModelFrameTranslation with a quadratic activation), so
/// lxx is positive semi-definite; lx is exact.
///
/// The reference p_ref can be changed with set_reference(); do not change it while a solver
/// is evaluating the cost in another thread.
class FrameTranslationCost : public CostModel {
 public:
  /// @param[in] model  the Panda dynamics (shared; provides the kinematics)
  /// @param[in] frame  frame name, e.g. "panda_hand_tcp"; must exist in the model
  /// @param[in] p_ref  reference position in the world frame, size 3
  /// @param[in] weight w >= 0
  FrameTranslationCost(std::shared_ptr<const PandaDynamics> model, const std::string& frame,
                       const RefV& p_ref, double weight);
  ~FrameTranslationCost() override;

  std::string name() const override { return "FrameTranslationCost"; }
  std::shared_ptr<CostData> create_data() const override;
  void calc(CostData& data, double t, const RefV& x, const RefV& u) const override;
  void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const override;

  /// @brief Replace p_ref (size 3, finite).
  void set_reference(const RefV& p_ref);
  const Vec& reference() const { return p_ref_; }
  double weight() const { return weight_; }
  const std::string& frame() const { return frame_; }
  const std::shared_ptr<const PandaDynamics>& model() const { return model_; }

 private:
  std::shared_ptr<const PandaDynamics> model_;
  std::string frame_;
  std::size_t frame_id_;
  Vec p_ref_;
  double weight_;
};

}  // namespace dmpc
