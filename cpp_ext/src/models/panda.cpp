/// @file panda.cpp
/// @brief PandaDynamics and FrameTranslationCost: the only translation unit that includes
///        pinocchio (its URDF parser alone costs about 80 s of compile time).
#include "dmpc/models/panda.hpp"

#include <pinocchio/algorithm/aba-derivatives.hpp>
#include <pinocchio/algorithm/aba.hpp>
#include <pinocchio/algorithm/crba.hpp>
#include <pinocchio/algorithm/energy.hpp>
#include <pinocchio/algorithm/frames.hpp>
#include <pinocchio/algorithm/jacobian.hpp>
#include <pinocchio/algorithm/kinematics.hpp>
#include <pinocchio/algorithm/rnea.hpp>
#include <pinocchio/multibody/data.hpp>
#include <pinocchio/multibody/model.hpp>
#include <pinocchio/parsers/urdf.hpp>

#include <fstream>
#include <sstream>

namespace dmpc {

namespace {
constexpr int kNq = 7;
constexpr int kNx = 2 * kNq;
}  // namespace

// ------------------------------------------------------------------------------------------
// Opaque parts
// ------------------------------------------------------------------------------------------

struct PandaDynamics::Impl {
  pinocchio::Model model;
};

struct PandaData::Impl {
  explicit Impl(const pinocchio::Model& model) : data(model), tau(Vec::Zero(model.nv)) {}
  pinocchio::Data data;
  Vec tau;  ///< effective joint torque u - b v
};

struct FrameTranslationCostData::Impl {
  explicit Impl(const pinocchio::Model& model) : data(model), J6(Mat::Zero(6, model.nv)) {}
  pinocchio::Data data;
  Mat J6;  ///< 6 x nv frame Jacobian (LOCAL_WORLD_ALIGNED)
};

PandaData::PandaData(int nx, int nu, std::unique_ptr<Impl> impl_in)
    : DynamicsData(nx, nu), impl(std::move(impl_in)) {}
PandaData::~PandaData() = default;

FrameTranslationCostData::FrameTranslationCostData(int nx, int nu, std::unique_ptr<Impl> impl_in)
    : CostData(nx, nu),
      impl(std::move(impl_in)),
      residual(Vec::Zero(3)),
      jacobian(Mat::Zero(3, kNq)) {}
FrameTranslationCostData::~FrameTranslationCostData() = default;

// ------------------------------------------------------------------------------------------
// PandaDynamics
// ------------------------------------------------------------------------------------------

namespace {

std::shared_ptr<const PandaDynamics::Impl> load_urdf(const std::string& path) {
  {
    std::ifstream f(path);
    if (!f.good())
      throw std::invalid_argument("PandaDynamics: URDF file '" + path +
                                  "' does not exist or cannot be read");
  }
  auto impl = std::make_shared<PandaDynamics::Impl>();
  try {
    pinocchio::urdf::buildModel(path, impl->model);
  } catch (const std::exception& e) {
    throw std::invalid_argument("PandaDynamics: cannot parse URDF '" + path + "': " + e.what());
  }
  const auto& m = impl->model;
  if (m.nq != kNq || m.nv != kNq) {
    std::ostringstream os;
    os << "PandaDynamics: URDF '" << path << "' has nq = " << m.nq << ", nv = " << m.nv
       << ", expected a fixed-base arm with nq = nv = 7 (7 revolute joints; lock the fingers, "
          "e.g. the project's urdf/panda.urdf)";
    throw std::invalid_argument(os.str());
  }
  return impl;
}

PandaData& as_panda_data(DynamicsData& d) {
  auto* pd = dynamic_cast<PandaData*>(&d);
  if (pd == nullptr)
    throw std::invalid_argument(
        "PandaDynamics: data was not created by PandaDynamics.create_data()");
  return *pd;
}

FrameTranslationCostData& as_frame_cost_data(CostData& d) {
  auto* pd = dynamic_cast<FrameTranslationCostData*>(&d);
  if (pd == nullptr)
    throw std::invalid_argument(
        "FrameTranslationCost: data was not created by FrameTranslationCost.create_data()");
  return *pd;
}

pinocchio::FrameIndex find_frame(const pinocchio::Model& model, const std::string& frame) {
  if (!model.existFrame(frame)) {
    std::ostringstream os;
    os << "frame '" << frame << "' not found in the Panda model; available frames:";
    for (const auto& f : model.frames) os << " " << f.name;
    throw std::invalid_argument(os.str());
  }
  return model.getFrameId(frame);
}

}  // namespace

PandaDynamics::PandaDynamics(const std::string& urdf_path, double damping)
    : DynamicsModel(kNx, kNq, kNq), impl_(load_urdf(urdf_path)), urdf_path_(urdf_path),
      damping_(damping) {
  if (!(damping >= 0.0) || !std::isfinite(damping))
    throw std::invalid_argument("PandaDynamics: damping must be finite and >= 0");
}

PandaDynamics::~PandaDynamics() = default;

std::shared_ptr<DynamicsData> PandaDynamics::create_data() const {
  return std::make_shared<PandaData>(nx_, nu_, std::make_unique<PandaData::Impl>(impl_->model));
}

void PandaDynamics::calc(DynamicsData& data, const RefV& x, const RefV& u) const {
  PandaData& d = as_panda_data(data);
  const auto q = x.head(kNq);
  const auto v = x.tail(kNq);
  d.impl->tau.noalias() = u - damping_ * v;
  pinocchio::aba(impl_->model, d.impl->data, q, v, d.impl->tau);
  d.xdot.head(kNq) = v;
  d.xdot.tail(kNq) = d.impl->data.ddq;
}

void PandaDynamics::calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const {
  PandaData& d = as_panda_data(data);
  pinocchio::Data& pd = d.impl->data;
  const auto q = x.head(kNq);
  const auto v = x.tail(kNq);
  d.impl->tau.noalias() = u - damping_ * v;
  // Fills pd.ddq (the acceleration), pd.ddq_dq, pd.ddq_dv and the full symmetric pd.Minv.
  pinocchio::computeABADerivatives(impl_->model, pd, q, v, d.impl->tau, pd.ddq_dq, pd.ddq_dv,
                                   pd.Minv);
  d.xdot.head(kNq) = v;
  d.xdot.tail(kNq) = pd.ddq;

  d.fx.setZero();
  d.fx.topRightCorner(kNq, kNq).setIdentity();
  d.fx.bottomLeftCorner(kNq, kNq) = pd.ddq_dq;
  d.fx.bottomRightCorner(kNq, kNq) = pd.ddq_dv;
  if (damping_ != 0.0) d.fx.bottomRightCorner(kNq, kNq) -= damping_ * pd.Minv;

  d.fu.topRows(kNq).setZero();
  d.fu.bottomRows(kNq) = pd.Minv;
}

Mat PandaDynamics::mass_matrix(const RefV& q) const {
  check_vector(q, kNq, "q");
  pinocchio::Data d(impl_->model);
  pinocchio::crba(impl_->model, d, q);
  d.M.triangularView<Eigen::StrictlyLower>() = d.M.transpose().triangularView<Eigen::StrictlyLower>();
  return d.M;
}

Vec PandaDynamics::gravity(const RefV& q) const {
  check_vector(q, kNq, "q");
  pinocchio::Data d(impl_->model);
  return pinocchio::computeGeneralizedGravity(impl_->model, d, q);
}

Vec PandaDynamics::frame_position(const RefV& q, const std::string& frame) const {
  check_vector(q, kNq, "q");
  const auto id = find_frame(impl_->model, frame);
  pinocchio::Data d(impl_->model);
  pinocchio::forwardKinematics(impl_->model, d, q);
  return pinocchio::updateFramePlacement(impl_->model, d, id).translation();
}

Mat PandaDynamics::frame_jacobian(const RefV& q, const std::string& frame) const {
  check_vector(q, kNq, "q");
  const auto id = find_frame(impl_->model, frame);
  pinocchio::Data d(impl_->model);
  Mat J = Mat::Zero(6, kNq);
  pinocchio::computeFrameJacobian(impl_->model, d, q, id, pinocchio::LOCAL_WORLD_ALIGNED, J);
  return J.topRows(3);
}

double PandaDynamics::energy(const RefV& x) const {
  check_vector(x, kNx, "x");
  pinocchio::Data d(impl_->model);
  const double kinetic = pinocchio::computeKineticEnergy(impl_->model, d, x.head(kNq), x.tail(kNq));
  const double potential = pinocchio::computePotentialEnergy(impl_->model, d, x.head(kNq));
  return kinetic + potential;
}

bool PandaDynamics::has_frame(const std::string& frame) const {
  return impl_->model.existFrame(frame);
}

std::vector<std::string> PandaDynamics::frame_names() const {
  std::vector<std::string> names;
  for (const auto& f : impl_->model.frames) names.push_back(f.name);
  return names;
}

std::vector<std::string> PandaDynamics::joint_names() const {
  // names[0] is pinocchio's "universe".
  return std::vector<std::string>(impl_->model.names.begin() + 1, impl_->model.names.end());
}

Vec PandaDynamics::lower_position_limit() const { return impl_->model.lowerPositionLimit; }
Vec PandaDynamics::upper_position_limit() const { return impl_->model.upperPositionLimit; }
Vec PandaDynamics::velocity_limit() const { return impl_->model.velocityLimit; }
Vec PandaDynamics::effort_limit() const { return impl_->model.effortLimit; }

// ------------------------------------------------------------------------------------------
// FrameTranslationCost
// ------------------------------------------------------------------------------------------

FrameTranslationCost::FrameTranslationCost(std::shared_ptr<const PandaDynamics> model,
                                           const std::string& frame, const RefV& p_ref,
                                           double weight)
    : CostModel(kNx, kNq), model_(std::move(model)), frame_(frame), frame_id_(0),
      p_ref_(Vec::Zero(3)), weight_(weight) {
  if (!model_) throw std::invalid_argument("FrameTranslationCost: model is null");
  frame_id_ = find_frame(model_->impl().model, frame);
  check_vector(p_ref, 3, "p_ref");
  p_ref_ = p_ref;
  if (!(weight >= 0.0) || !std::isfinite(weight))
    throw std::invalid_argument("FrameTranslationCost: weight must be finite and >= 0");
}

FrameTranslationCost::~FrameTranslationCost() = default;

std::shared_ptr<CostData> FrameTranslationCost::create_data() const {
  return std::make_shared<FrameTranslationCostData>(
      nx_, nu_, std::make_unique<FrameTranslationCostData::Impl>(model_->impl().model));
}

void FrameTranslationCost::set_reference(const RefV& p_ref) {
  check_vector(p_ref, 3, "p_ref");
  p_ref_ = p_ref;
}

void FrameTranslationCost::calc(CostData& data, double /*t*/, const RefV& x,
                                const RefV& /*u*/) const {
  FrameTranslationCostData& d = as_frame_cost_data(data);
  const pinocchio::Model& m = model_->impl().model;
  pinocchio::forwardKinematics(m, d.impl->data, x.head(kNq));
  d.residual = pinocchio::updateFramePlacement(m, d.impl->data, frame_id_).translation() - p_ref_;
  d.value = 0.5 * weight_ * d.residual.squaredNorm();
}

void FrameTranslationCost::calc_diff(CostData& data, double /*t*/, const RefV& x,
                                     const RefV& /*u*/) const {
  FrameTranslationCostData& d = as_frame_cost_data(data);
  const pinocchio::Model& m = model_->impl().model;
  pinocchio::Data& pd = d.impl->data;
  // computeJointJacobians also runs forward kinematics (pd.oMi), so the frame placement and
  // the Jacobian below are consistent.
  pinocchio::computeJointJacobians(m, pd, x.head(kNq));
  d.residual = pinocchio::updateFramePlacement(m, pd, frame_id_).translation() - p_ref_;
  d.impl->J6.setZero();
  pinocchio::getFrameJacobian(m, pd, frame_id_, pinocchio::LOCAL_WORLD_ALIGNED, d.impl->J6);
  d.jacobian = d.impl->J6.topRows(3);

  d.value = 0.5 * weight_ * d.residual.squaredNorm();
  d.lx.setZero();
  d.lx.head(kNq).noalias() = weight_ * d.jacobian.transpose() * d.residual;
  d.lxx.setZero();
  d.lxx.topLeftCorner(kNq, kNq).noalias() = weight_ * d.jacobian.transpose() * d.jacobian;
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
}

}  // namespace dmpc
