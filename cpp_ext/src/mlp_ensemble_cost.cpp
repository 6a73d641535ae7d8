/// @file mlp_ensemble_cost.cpp
/// @brief MlpEnsembleCost, HorizonSwitchCost, PendulumSwingUpCost (see mlp_ensemble_cost.hpp).
#include "dmpc/mlp_ensemble_cost.hpp"

#include <cmath>
#include <limits>

namespace dmpc {

namespace {
std::string at(int k, int j) { return "nets[" + std::to_string(k) + "][" + std::to_string(j) + "]"; }
}  // namespace

MlpEnsembleCostData::MlpEnsembleCostData(int nx, int nu, int nz, int max_width, int num_members)
    : CostData(nx, nu),
      z(Vec::Zero(nz)),
      h0(Vec::Zero(max_width)),
      h1(Vec::Zero(max_width)),
      members(Vec::Zero(num_members)),
      xp(Vec::Zero(nx)),
      up(Vec::Zero(nu)) {}

MlpEnsembleCost::MlpEnsembleCost(int nx, int nu, std::vector<Feature> features, bool use_action,
                                 const RefV& extra_inputs, std::vector<std::vector<TanhMlp>> nets,
                                 std::vector<Vec> coefficients, double kappa, double scale,
                                 double fd_step)
    : CostModel(nx, nu),
      features_(std::move(features)),
      use_action_(use_action),
      extra_(extra_inputs),
      nets_(std::move(nets)),
      coef_(std::move(coefficients)),
      kappa_(kappa),
      scale_(scale),
      fd_step_(fd_step) {
  if (features_.empty()) throw std::invalid_argument("MlpEnsembleCost: needs at least one feature");
  for (const auto& f : features_)
    if (f.index < 0 || f.index >= nx)
      throw std::invalid_argument("MlpEnsembleCost: feature index " + std::to_string(f.index) +
                                  " outside [0, nx=" + std::to_string(nx) + ")");
  check_finite(extra_, "extra_inputs");
  if (!(kappa_ >= 0.0) || !std::isfinite(kappa_)) throw std::invalid_argument("MlpEnsembleCost: kappa must be finite and >= 0");
  if (!std::isfinite(scale_)) throw std::invalid_argument("MlpEnsembleCost: scale must be finite");
  if (!(fd_step_ > 0.0)) throw std::invalid_argument("MlpEnsembleCost: fd_step must be > 0");
  if (nets_.empty()) throw std::invalid_argument("MlpEnsembleCost: needs at least one member");
  if (coef_.size() != nets_.size())
    throw std::invalid_argument("MlpEnsembleCost: coefficients has " + std::to_string(coef_.size()) +
                                " entries, expected one per member (" + std::to_string(nets_.size()) + ")");
  nz_ = static_cast<int>(features_.size()) + (use_action_ ? nu : 0) + static_cast<int>(extra_.size());
  max_width_ = nz_;
  for (size_t k = 0; k < nets_.size(); ++k) {
    if (nets_[k].empty()) throw std::invalid_argument("MlpEnsembleCost: member " + std::to_string(k) + " has no net");
    check_size(coef_[k], static_cast<Eigen::Index>(nets_[k].size()), "coefficients[k]");
    check_finite(coef_[k], "coefficients[k]");
    for (size_t j = 0; j < nets_[k].size(); ++j) {
      const TanhMlp& n = nets_[k][j];
      const std::string who = at(static_cast<int>(k), static_cast<int>(j));
      if (n.weights.empty() || n.weights.size() != n.biases.size())
        throw std::invalid_argument(who + ": needs as many weights as biases (>= 1 layer)");
      if (n.input_mean.size() != nz_ || n.input_std.size() != nz_)
        throw std::invalid_argument(who + ": input_mean/input_std must have size nz = " + std::to_string(nz_));
      if (!(n.input_std.array() > 0.0).all()) throw std::invalid_argument(who + ": input_std must be > 0");
      if (!std::isfinite(n.output_scale) || !std::isfinite(n.output_bias))
        throw std::invalid_argument(who + ": output_scale/output_bias must be finite");
      Eigen::Index width = nz_;
      for (size_t i = 0; i < n.weights.size(); ++i) {
        if (n.weights[i].cols() != width || n.biases[i].size() != n.weights[i].rows())
          throw std::invalid_argument(who + ": layer " + std::to_string(i) + " expects " +
                                      std::to_string(width) + " inputs and a bias of its row count");
        check_finite(n.weights[i], "weights");
        check_finite(n.biases[i], "biases");
        width = n.weights[i].rows();
        max_width_ = std::max<int>(max_width_, static_cast<int>(width));
      }
      if (width != 1) throw std::invalid_argument(who + ": the last layer must have 1 output");
    }
  }
}

std::shared_ptr<CostData> MlpEnsembleCost::create_data() const {
  return std::make_shared<MlpEnsembleCostData>(nx_, nu_, nz_, max_width_, num_members());
}

double MlpEnsembleCost::net_forward(const TanhMlp& net, MlpEnsembleCostData& d) const {
  // zn = (z - mean) / std in h0; then alternate h0 -> h1 -> h0 ...
  Eigen::Index w = nz_;
  d.h0.head(w).array() = (d.z.array() - net.input_mean.array()) / net.input_std.array();
  Vec* in = &d.h0;
  Vec* out = &d.h1;
  const size_t L = net.weights.size();
  for (size_t i = 0; i + 1 < L; ++i) {
    const Eigen::Index r = net.weights[i].rows();
    out->head(r).noalias() = net.weights[i] * in->head(w);
    out->head(r) += net.biases[i];
    out->head(r) = out->head(r).array().tanh().matrix();
    w = r;
    std::swap(in, out);
  }
  const double y = net.weights[L - 1].row(0).dot(in->head(w)) + net.biases[L - 1](0);
  return net.output_scale * y + net.output_bias;
}

double MlpEnsembleCost::evaluate(MlpEnsembleCostData& d, const RefV& x, const RefV& u) const {
  int i = 0;
  for (const auto& f : features_) {
    const double v = x[f.index];
    d.z[i++] = f.kind == FeatureKind::Identity ? v : (f.kind == FeatureKind::Cos ? std::cos(v) : std::sin(v));
  }
  if (use_action_)
    for (int j = 0; j < nu_; ++j) d.z[i++] = u[j];
  for (Eigen::Index j = 0; j < extra_.size(); ++j) d.z[i++] = extra_[j];
  const int K = num_members();
  for (int k = 0; k < K; ++k) {
    double v = 0.0;
    for (size_t j = 0; j < nets_[k].size(); ++j) v += coef_[k][j] * net_forward(nets_[k][j], d);
    d.members[k] = v;
  }
  double agg;
  if (kappa_ == 0.0 || K == 1) {
    agg = d.members.mean();
  } else {
    // soft-min: -(1/kappa) (logsumexp(-kappa V) - log K), shifted by the min for stability
    const double vmin = d.members.minCoeff();
    const double s = (-kappa_ * (d.members.array() - vmin)).exp().sum();
    agg = vmin - (std::log(s) - std::log(static_cast<double>(K))) / kappa_;
  }
  return scale_ * agg;
}

void MlpEnsembleCost::calc(CostData& data, double, const RefV& x, const RefV& u) const {
  auto& d = static_cast<MlpEnsembleCostData&>(data);
  d.value = evaluate(d, x, u);
}

void MlpEnsembleCost::calc_diff(CostData& data, double, const RefV& x, const RefV& u) const {
  auto& d = static_cast<MlpEnsembleCostData&>(data);
  // central differences on the stacked variable p = [x; u]
  const int n = nx_ + nu_;
  const double h = fd_step_;
  auto f = [&](int i, double di, int j, double dj) {
    d.xp = x;
    d.up = u;
    auto bump = [&](int idx, double delta) {
      if (idx < 0) return;
      if (idx < nx_) d.xp[idx] += delta; else d.up[idx - nx_] += delta;
    };
    bump(i, di);
    bump(j, dj);
    return evaluate(d, d.xp, d.up);
  };
  const double f0 = f(-1, 0, -1, 0);
  Vec g(n);
  Mat H(n, n);
  for (int i = 0; i < n; ++i) {
    const double fp = f(i, h, -1, 0), fm = f(i, -h, -1, 0);
    g[i] = (fp - fm) / (2 * h);
    H(i, i) = (fp - 2 * f0 + fm) / (h * h);
  }
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) {
      const double v = (f(i, h, j, h) - f(i, h, j, -h) - f(i, -h, j, h) + f(i, -h, j, -h)) / (4 * h * h);
      H(i, j) = v;
      H(j, i) = v;
    }
  d.value = f0;
  d.lx = g.head(nx_);
  d.lu = g.tail(nu_);
  d.lxx = H.topLeftCorner(nx_, nx_);
  d.luu = H.bottomRightCorner(nu_, nu_);
  d.lux = H.bottomLeftCorner(nu_, nx_);
}

Vec MlpEnsembleCost::member_values(const RefV& x, const RefV& u) const {
  check_size(x, nx_, "x");
  check_size(u, nu_, "u");
  auto data = create_data();
  auto& d = static_cast<MlpEnsembleCostData&>(*data);
  evaluate(d, x, u);
  return d.members;
}

// ---------------------------------------------------------------------------------------------
HorizonSwitchCost::HorizonSwitchCost(CostModelPtr stage, CostModelPtr last, double t_switch)
    : CostModel(stage ? stage->nx() : 1, stage ? stage->nu() : 0),
      stage_(std::move(stage)),
      last_(std::move(last)),
      t_switch_(t_switch) {
  if (!stage_ || !last_) throw std::invalid_argument("HorizonSwitchCost: stage and last costs are required");
  if (last_->nx() != nx_ || last_->nu() != nu_)
    throw std::invalid_argument("HorizonSwitchCost: last cost must have nx = " + std::to_string(nx_) +
                                " and nu = " + std::to_string(nu_));
  if (!std::isfinite(t_switch_)) throw std::invalid_argument("HorizonSwitchCost: t_switch must be finite");
}

std::shared_ptr<CostData> HorizonSwitchCost::create_data() const {
  auto d = std::make_shared<HorizonSwitchCostData>(nx_, nu_);
  d->stage = stage_->create_data();
  d->last = last_->create_data();
  return d;
}

void HorizonSwitchCost::calc(CostData& data, double t, const RefV& x, const RefV& u) const {
  auto& d = static_cast<HorizonSwitchCostData&>(data);
  if (t < t_switch_) {
    stage_->calc(*d.stage, t, x, u);
    d.value = d.stage->value;
  } else {
    last_->calc(*d.last, t, x, u);
    d.value = d.last->value;
  }
}

void HorizonSwitchCost::calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const {
  auto& d = static_cast<HorizonSwitchCostData&>(data);
  CostData& src = t < t_switch_ ? *d.stage : *d.last;
  (t < t_switch_ ? stage_ : last_)->calc_diff(src, t, x, u);
  d.value = src.value;
  d.lx = src.lx;
  d.lu = src.lu;
  d.lxx = src.lxx;
  d.luu = src.luu;
  d.lux = src.lux;
}

// ---------------------------------------------------------------------------------------------
PendulumSwingUpCost::PendulumSwingUpCost(int nu, double w_rate, double scale)
    : CostModel(2, nu), w_rate_(w_rate), scale_(scale) {
  if (!std::isfinite(w_rate) || !std::isfinite(scale))
    throw std::invalid_argument("PendulumSwingUpCost: w_rate and scale must be finite");
}

namespace {
double wrap_angle(double a) {
  const double two_pi = 2.0 * M_PI;
  double w = std::fmod(a + M_PI, two_pi);
  if (w < 0) w += two_pi;
  return w - M_PI;
}
}  // namespace

void PendulumSwingUpCost::calc(CostData& d, double, const RefV& x, const RefV&) const {
  const double th = wrap_angle(x[0]);
  d.value = scale_ * (th * th + w_rate_ * x[1] * x[1]);
}

void PendulumSwingUpCost::calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const {
  calc(d, t, x, u);
  const double th = wrap_angle(x[0]);
  d.lx.setZero();
  d.lx[0] = 2.0 * scale_ * th;
  d.lx[1] = 2.0 * scale_ * w_rate_ * x[1];
  d.lxx.setZero();
  d.lxx(0, 0) = 2.0 * scale_;
  d.lxx(1, 1) = 2.0 * scale_ * w_rate_;
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
}

}  // namespace dmpc
