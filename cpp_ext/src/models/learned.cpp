/// @file learned.cpp
/// @brief ControlAffineMlpDynamics and EnsembleMeanDynamics (see models/learned.hpp).
#include "dmpc/models/learned.hpp"

#include <cmath>

namespace dmpc {

ControlAffineMlpData::ControlAffineMlpData(int nx, int nu, int nz, int nout, const std::vector<int>& widths)
    : DynamicsData(nx, nu), z(Vec::Zero(nz)), dz(Mat::Zero(nz, nx)), y(Vec::Zero(nout)), Jy(Mat::Zero(nout, nx)) {
  h.push_back(Vec::Zero(nz));
  J.push_back(Mat::Zero(nz, nx));
  for (int w : widths) {
    h.push_back(Vec::Zero(w));
    J.push_back(Mat::Zero(w, nx));
  }
}

ControlAffineMlpDynamics::ControlAffineMlpDynamics(int nx, int nu, int nq, std::vector<Feature> features,
                                                   VectorTanhMlp net)
    : DynamicsModel(nx, nu, nq), features_(std::move(features)), net_(std::move(net)) {
  nl_ = nx - nq;
  nz_ = static_cast<int>(features_.size());
  nout_ = nl_ * (1 + nu);
  if (nz_ < 1) throw std::invalid_argument("ControlAffineMlpDynamics: needs at least one feature");
  for (const auto& f : features_)
    if (f.index < 0 || f.index >= nx)
      throw std::invalid_argument("ControlAffineMlpDynamics: feature index " + std::to_string(f.index) +
                                  " outside [0, nx=" + std::to_string(nx) + ")");
  const auto& W = net_.weights;
  if (W.empty() || W.size() != net_.biases.size())
    throw std::invalid_argument("ControlAffineMlpDynamics: needs as many weights as biases (>= 1 layer)");
  int width = nz_;
  for (size_t i = 0; i < W.size(); ++i) {
    const std::string who = "ControlAffineMlpDynamics: weights[" + std::to_string(i) + "]";
    if (W[i].cols() != width)
      throw std::invalid_argument(who + " has " + std::to_string(W[i].cols()) + " columns, expected " +
                                  std::to_string(width));
    check_size(net_.biases[i], W[i].rows(), "ControlAffineMlpDynamics: biases[i]");
    check_finite(W[i], "ControlAffineMlpDynamics: weights[i]");
    check_finite(net_.biases[i], "ControlAffineMlpDynamics: biases[i]");
    width = static_cast<int>(W[i].rows());
    if (i + 1 < W.size()) widths_.push_back(width);
  }
  if (width != nout_)
    throw std::invalid_argument("ControlAffineMlpDynamics: the network has " + std::to_string(width) +
                                " outputs, expected nl (1 + nu) = " + std::to_string(nout_) +
                                " (nl = nx - nq learned rows: a and B row-major)");
  check_vector(net_.input_mean, nz_, "ControlAffineMlpDynamics: input_mean");
  check_vector(net_.input_std, nz_, "ControlAffineMlpDynamics: input_std");
  if (!(net_.input_std.array() > 0.0).all())
    throw std::invalid_argument("ControlAffineMlpDynamics: input_std must be > 0");
  check_vector(net_.output_scale, nout_, "ControlAffineMlpDynamics: output_scale");
  check_vector(net_.output_bias, nout_, "ControlAffineMlpDynamics: output_bias");
}

std::shared_ptr<DynamicsData> ControlAffineMlpDynamics::create_data() const {
  return std::make_shared<ControlAffineMlpData>(nx_, nu_, nz_, nout_, widths_);
}

void ControlAffineMlpDynamics::forward(ControlAffineMlpData& d, const double* x) const {
  Vec& z = d.h[0];
  for (int i = 0; i < nz_; ++i) {
    const Feature& f = features_[i];
    const double v = x[f.index];
    const double phi = f.kind == FeatureKind::Identity ? v : (f.kind == FeatureKind::Cos ? std::cos(v) : std::sin(v));
    z[i] = (phi - net_.input_mean[i]) / net_.input_std[i];
  }
  const size_t L = net_.weights.size();
  for (size_t i = 0; i + 1 < L; ++i) {
    Vec& out = d.h[i + 1];
    out.noalias() = net_.weights[i] * d.h[i];
    out += net_.biases[i];
    for (Eigen::Index k = 0; k < out.size(); ++k) out[k] = std::tanh(out[k]);
  }
  d.y.noalias() = net_.weights[L - 1] * d.h[L - 1];
  d.y += net_.biases[L - 1];
  d.y = d.y.cwiseProduct(net_.output_scale) + net_.output_bias;
}

void ControlAffineMlpDynamics::assemble(const ControlAffineMlpData& d, const double* x, const double* u,
                                        double* xdot) const {
  const int nq = nq_;
  for (int i = 0; i < nq; ++i) xdot[i] = x[nq + i];
  const double* y = d.y.data();
  for (int i = 0; i < nl_; ++i) {
    double acc = y[i];
    const double* Brow = y + nl_ + i * nu_;
    for (int j = 0; j < nu_; ++j) acc += Brow[j] * u[j];
    xdot[nq + i] = acc;
  }
}

void ControlAffineMlpDynamics::calc_xdot(DynamicsData& data, const double* x, const double* u, double* xdot) const {
  auto* d = data_cast<ControlAffineMlpData>(&data);
  if (d == nullptr) throw std::invalid_argument("ControlAffineMlpDynamics: data is not from this model's create_data()");
  forward(*d, x);
  assemble(*d, x, u, xdot);
}

void ControlAffineMlpDynamics::calc(DynamicsData& data, const RefV& x, const RefV& u) const {
  check_vector(x, nx_, "x");
  check_vector(u, nu_, "u");
  auto* d = data_cast<ControlAffineMlpData>(&data);
  if (d == nullptr) throw std::invalid_argument("ControlAffineMlpDynamics: data is not from this model's create_data()");
  const Vec xc = x, uc = u;  // contiguous copies (Ref may be strided)
  forward(*d, xc.data());
  assemble(*d, xc.data(), uc.data(), d->xdot.data());
}

void ControlAffineMlpDynamics::calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const {
  check_vector(x, nx_, "x");
  check_vector(u, nu_, "u");
  auto* d = data_cast<ControlAffineMlpData>(&data);
  if (d == nullptr) throw std::invalid_argument("ControlAffineMlpDynamics: data is not from this model's create_data()");
  const Vec xc = x, uc = u;
  forward(*d, xc.data());
  assemble(*d, xc.data(), uc.data(), d->xdot.data());
  // J_0 = d zn / dx: one nonzero per feature row
  Mat& J0 = d->J[0];
  J0.setZero();
  for (int i = 0; i < nz_; ++i) {
    const Feature& f = features_[i];
    const double v = xc[f.index];
    const double dphi = f.kind == FeatureKind::Identity ? 1.0 : (f.kind == FeatureKind::Cos ? -std::sin(v) : std::cos(v));
    J0(i, f.index) = dphi / net_.input_std[i];
  }
  const size_t L = net_.weights.size();
  for (size_t i = 0; i + 1 < L; ++i) {
    Mat& Jn = d->J[i + 1];
    Jn.noalias() = net_.weights[i] * d->J[i];
    const Vec& h = d->h[i + 1];
    for (Eigen::Index k = 0; k < h.size(); ++k) Jn.row(k) *= (1.0 - h[k] * h[k]);
  }
  d->Jy.noalias() = net_.weights[L - 1] * d->J[L - 1];
  for (int k = 0; k < nout_; ++k) d->Jy.row(k) *= net_.output_scale[k];
  d->fx.setZero();
  d->fu.setZero();
  const int nq = nq_;
  for (int i = 0; i < nq; ++i) d->fx(i, nq + i) = 1.0;
  for (int i = 0; i < nl_; ++i) {
    d->fx.row(nq + i) = d->Jy.row(i);
    for (int j = 0; j < nu_; ++j) {
      const int k = nl_ + i * nu_ + j;
      d->fx.row(nq + i) += uc[j] * d->Jy.row(k);
      d->fu(nq + i, j) = d->y[k];
    }
  }
}

EnsembleMeanDynamics::EnsembleMeanDynamics(std::vector<DynamicsModelPtr> members)
    : DynamicsModel(members.empty() || !members[0] ? 1 : members[0]->nx(),
                    members.empty() || !members[0] ? 1 : members[0]->nu(),
                    members.empty() || !members[0] ? 0 : members[0]->nq()),
      members_(std::move(members)) {
  if (members_.empty()) throw std::invalid_argument("EnsembleMeanDynamics: needs at least one member");
  for (size_t k = 0; k < members_.size(); ++k) {
    if (!members_[k]) throw std::invalid_argument("EnsembleMeanDynamics: member " + std::to_string(k) + " is None");
    if (members_[k]->nx() != nx_ || members_[k]->nu() != nu_ || members_[k]->nq() != nq_)
      throw std::invalid_argument("EnsembleMeanDynamics: member " + std::to_string(k) +
                                  " has (nx, nu, nq) different from member 0");
  }
}

std::shared_ptr<DynamicsData> EnsembleMeanDynamics::create_data() const {
  auto d = std::make_shared<EnsembleMeanData>(nx_, nu_);
  for (const auto& m : members_) d->members.push_back(m->create_data());
  return d;
}

void EnsembleMeanDynamics::calc(DynamicsData& data, const RefV& x, const RefV& u) const {
  auto* d = data_cast<EnsembleMeanData>(&data);
  if (d == nullptr) throw std::invalid_argument("EnsembleMeanDynamics: data is not from this model's create_data()");
  d->xdot.setZero();
  for (size_t k = 0; k < members_.size(); ++k) {
    members_[k]->calc(*d->members[k], x, u);
    d->xdot += d->members[k]->xdot;
  }
  d->xdot /= static_cast<double>(members_.size());
}

void EnsembleMeanDynamics::calc_diff(DynamicsData& data, const RefV& x, const RefV& u) const {
  auto* d = data_cast<EnsembleMeanData>(&data);
  if (d == nullptr) throw std::invalid_argument("EnsembleMeanDynamics: data is not from this model's create_data()");
  d->xdot.setZero();
  d->fx.setZero();
  d->fu.setZero();
  for (size_t k = 0; k < members_.size(); ++k) {
    members_[k]->calc_diff(*d->members[k], x, u);
    d->xdot += d->members[k]->xdot;
    d->fx += d->members[k]->fx;
    d->fu += d->members[k]->fu;
  }
  const double inv = 1.0 / static_cast<double>(members_.size());
  d->xdot *= inv;
  d->fx *= inv;
  d->fu *= inv;
}

void EnsembleMeanDynamics::calc_xdot(DynamicsData& data, const double* x, const double* u, double* xdot) const {
  auto* d = data_cast<EnsembleMeanData>(&data);
  if (d == nullptr) throw std::invalid_argument("EnsembleMeanDynamics: data is not from this model's create_data()");
  for (int i = 0; i < nx_; ++i) xdot[i] = 0.0;
  for (size_t k = 0; k < members_.size(); ++k) {
    members_[k]->calc_xdot(*d->members[k], x, u, d->tmp.data());
    for (int i = 0; i < nx_; ++i) xdot[i] += d->tmp[i];
  }
  const double inv = 1.0 / static_cast<double>(members_.size());
  for (int i = 0; i < nx_; ++i) xdot[i] *= inv;
}

Mat EnsembleMeanDynamics::member_xdots(const RefV& x, const RefV& u) const {
  check_vector(x, nx_, "x");
  check_vector(u, nu_, "u");
  Mat out(nx_, static_cast<Eigen::Index>(members_.size()));
  for (size_t k = 0; k < members_.size(); ++k) {
    auto d = members_[k]->create_data();
    members_[k]->calc(*d, x, u);
    out.col(static_cast<Eigen::Index>(k)) = d->xdot;
  }
  return out;
}

Vec EnsembleMeanDynamics::disagreement(const RefV& x, const RefV& u) const {
  const Mat X = member_xdots(x, u);
  const Vec mean = X.rowwise().mean();
  return ((X.colwise() - mean).array().square().rowwise().sum() / static_cast<double>(X.cols())).sqrt();
}

}  // namespace dmpc
