/// @file critic.cpp
/// @brief CriticModel base and the native CriticMLP evaluator (see critic.hpp for the math).
#include "dmpc/critic.hpp"

#include <algorithm>
#include <cmath>

#include "critic_kernels.hpp"

namespace dmpc {

// ---------------------------------------------------------------- CriticModel
CriticModel::CriticModel(int nx, int ng) : nx_(nx), ng_(ng), goal_(Vec::Zero(ng >= 0 ? ng : 0)) {
  if (nx < 1 || ng < 0) throw std::invalid_argument("CriticModel needs nx >= 1 and ng >= 0");
}

void CriticModel::set_goal(const RefV& g) {
  check_vector(g, ng_, "goal");
  goal_ = g;
}

void CriticModel::calc_third(CriticData&, double, const RefV&, const RefV&, double) const {
  throw std::logic_error(name() + " does not implement calc_third (provides_third() is false)");
}

// ---------------------------------------------------------------- CriticMLPData
CriticMLPData::CriticMLPData(int nx, const std::vector<int>& widths) : CriticData(nx) {
  const int L = static_cast<int>(widths.size());  // number of Linear layers
  const int m = nx + 1;
  zn = Vec::Zero(widths[0]);
  vn = Vec::Zero(widths[0]);
  for (int i = 0; i < L; ++i) {  // quantities attached to the input of layer i
    h.push_back(Vec::Zero(widths[i]));
    lam.push_back(Vec::Zero(widths[i]));
    dH.push_back(Mat::Zero(widths[i], m));
    dLam.push_back(Mat::Zero(widths[i], m));
    eH.push_back(Vec::Zero(widths[i]));
    eLam.push_back(Vec::Zero(widths[i]));
    edH.push_back(Mat::Zero(widths[i], m));
    edLam.push_back(Mat::Zero(widths[i], m));
  }
  for (int i = 0; i + 1 < L; ++i) {  // hidden layer i: n_{i+1} units
    const int n = widths[i + 1];
    for (auto* v : {&a, &s1, &s2, &s3, &mu, &ea, &eMu, &c1, &c2, &c3}) v->push_back(Vec::Zero(n));
    for (auto* M : {&dA, &dMu, &edA, &edMu}) M->push_back(Mat::Zero(n, m));
  }
}

// ---------------------------------------------------------------- CriticMLP
namespace {
/// A <- (A + A^T) / 2 without a temporary.
void symmetrize(Mat& A) {
  for (Eigen::Index c = 0; c < A.cols(); ++c)
    for (Eigen::Index r = c + 1; r < A.rows(); ++r) A(r, c) = A(c, r) = 0.5 * (A(r, c) + A(c, r));
}
std::string layer_name(const char* what, size_t i) {
  return std::string(what) + "[" + std::to_string(i) + "]";
}
}  // namespace

CriticMLP::CriticMLP(const std::vector<Mat>& weights, const std::vector<Vec>& biases,
                     const RefV& input_mean, const RefV& input_std, double output_scale,
                     double output_bias, int nx, int ng)
    : CriticModel(nx, ng), out_scale_(output_scale), out_bias_(output_bias) {
  nz_ = nx + ng + 1;
  if (weights.empty()) throw std::invalid_argument("CriticMLP: weights is empty (need >= 1 layer)");
  if (biases.size() != weights.size()) {
    std::ostringstream os;
    os << "CriticMLP: got " << weights.size() << " weight matrices but " << biases.size()
       << " bias vectors";
    throw std::invalid_argument(os.str());
  }
  int n_in = nz_;
  for (size_t i = 0; i < weights.size(); ++i) {
    const Mat& W = weights[i];
    const bool last = (i + 1 == weights.size());
    if (W.cols() != n_in || (last && W.rows() != 1) || W.rows() < 1) {
      std::ostringstream os;
      os << "CriticMLP: " << layer_name("weights", i) << " has shape (" << W.rows() << ", "
         << W.cols() << "), expected (" << (last ? "1" : "out") << ", " << n_in << ")"
         << (i == 0 ? " with in = nx + ng + 1" : "") << (last ? " (single output)" : "");
      throw std::invalid_argument(os.str());
    }
    check_finite(W, ("CriticMLP: " + layer_name("weights", i)).c_str());
    check_vector(biases[i], W.rows(), ("CriticMLP: " + layer_name("biases", i)).c_str());
    widths_.push_back(n_in);
    n_in = static_cast<int>(W.rows());
  }
  check_vector(input_mean, nz_, "CriticMLP: input_mean (nx + ng + 1)");
  check_vector(input_std, nz_, "CriticMLP: input_std (nx + ng + 1)");
  if ((input_std.array() <= 0.0).any())
    throw std::invalid_argument("CriticMLP: input_std must be > 0 in every entry");
  if (!std::isfinite(output_scale))
    throw std::invalid_argument("CriticMLP: output_scale is not finite");
  if (!std::isfinite(output_bias))
    throw std::invalid_argument("CriticMLP: output_bias is not finite");
  W_ = weights;
  b_ = biases;
  mean_ = input_mean;
  std_ = input_std;
  inv_std_ = input_std.cwiseInverse();
  std::vector<const double*> Wp, bp;
  std::vector<int> rows, cols;
  for (size_t i = 0; i < W_.size(); ++i) {
    Wp.push_back(W_[i].data());
    bp.push_back(b_[i].data());
    rows.push_back(static_cast<int>(W_[i].rows()));
    cols.push_back(static_cast<int>(W_[i].cols()));
  }
  pack_ = detail::make_pack(Wp, rows, cols, bp, mean_.data(), inv_std_.data(), out_scale_, out_bias_,
                            nx_, ng_);
}

std::shared_ptr<CriticData> CriticMLP::create_data() const {
  auto d = std::make_shared<CriticMLPData>(nx_, widths_);
  if (pack_) d->kw = std::make_shared<detail::MlpWork>(*pack_);
  return d;
}

void CriticMLP::kernel_input(CriticMLPData& d, double tau, const RefV& x) const {
  double* zn = d.kw->h[0].data();
  const double* mean = mean_.data();
  const double* is = inv_std_.data();
  for (int k = 0; k < nx_; ++k) zn[k] = (x(k) - mean[k]) * is[k];
  for (int k = 0; k < ng_; ++k) zn[nx_ + k] = (goal_(k) - mean[nx_ + k]) * is[nx_ + k];
  zn[nx_ + ng_] = (tau - mean[nx_ + ng_]) * is[nx_ + ng_];
}

void CriticMLP::kernel_outputs(CriticMLPData& d, bool grad, bool hessian) const {
  const detail::MlpWork& w = *d.kw;
  d.V = out_scale_ * w.y + out_bias_;
  if (!grad) return;
  const double* lam0 = w.lam0.data();
  const int itau = nx_ + ng_;
  for (int k = 0; k < nx_; ++k) d.Vx(k) = out_scale_ * lam0[k] * inv_std_(k);
  d.Vtau = out_scale_ * lam0[itau] * inv_std_(itau);
  if (!hessian) return;
  const int mp = pack_->mp;
  const double* H = w.H.data();  // lower triangle, row-major mp x mp
  for (int c = 0; c < nx_; ++c) {
    for (int r = c; r < nx_; ++r) d.Vxx(r, c) = d.Vxx(c, r) = out_scale_ * H[r * mp + c];
    d.Vtaux(c) = out_scale_ * H[nx_ * mp + c];
  }
}

CriticMLPData& CriticMLP::cast(CriticData& data) const {
  auto* d = data_cast<CriticMLPData>(&data);
  if (d == nullptr || static_cast<int>(d->h.size()) != n_layers() ||
      d->h[0].size() != widths_[0] || d->Vx.size() != nx_)
    throw std::invalid_argument("CriticMLP: data was not created by this model's create_data()");
  return *d;
}

void CriticMLP::forward(CriticMLPData& d, double tau, const RefV& x) const {
  const int L = n_layers();
  d.zn.head(nx_) = x;
  d.zn.segment(nx_, ng_) = goal_;
  d.zn(nx_ + ng_) = tau;
  d.zn = (d.zn - mean_).cwiseProduct(inv_std_);
  d.h[0] = d.zn;
  for (int i = 0; i + 1 < L; ++i) {
    d.a[i].noalias() = W_[i] * d.h[i];
    d.a[i] += b_[i];
    d.h[i + 1].array() = d.a[i].array().tanh();
    d.s1[i].array() = 1.0 - d.h[i + 1].array().square();
    d.s2[i].array() = -2.0 * d.h[i + 1].array() * d.s1[i].array();
  }
  d.V = out_scale_ * (W_[L - 1].row(0).dot(d.h[L - 1]) + b_[L - 1](0)) + out_bias_;
}

void CriticMLP::backward(CriticMLPData& d) const {
  const int L = n_layers();
  d.lam[L - 1] = W_[L - 1].row(0).transpose();
  for (int i = L - 2; i >= 0; --i) {
    d.mu[i] = d.lam[i + 1].cwiseProduct(d.s1[i]);
    d.lam[i].noalias() = W_[i].transpose() * d.mu[i];
  }
  // dV/dz = out_scale * lam_0 / std
  d.Vx = out_scale_ * d.lam[0].head(nx_).cwiseProduct(inv_std_.head(nx_));
  d.Vtau = out_scale_ * d.lam[0](nx_ + ng_) * inv_std_(nx_ + ng_);
}

void CriticMLP::calc(CriticData& data, double tau, const RefV& x) const {
  CriticMLPData& d = cast(data);
  if (fast(d)) {
    kernel_input(d, tau, x);
    detail::kernel_diff(*pack_, *d.kw, false, false);
    kernel_outputs(d, false, false);
    return;
  }
  forward(d, tau, x);
}

void CriticMLP::calc_grad(CriticData& data, double tau, const RefV& x) const {
  CriticMLPData& d = cast(data);
  if (fast(d)) {
    kernel_input(d, tau, x);
    detail::kernel_diff(*pack_, *d.kw, true, false);
    kernel_outputs(d, true, false);
    return;
  }
  forward(d, tau, x);
  backward(d);
}

void CriticMLP::calc_diff(CriticData& data, double tau, const RefV& x) const {
  CriticMLPData& d = cast(data);
  if (fast(d)) {
    kernel_input(d, tau, x);
    detail::kernel_diff(*pack_, *d.kw, true, true);
    kernel_outputs(d, true, true);
    return;
  }
  forward(d, tau, x);
  backward(d);
  const int L = n_layers();
  const int itau = nx_ + ng_;
  // Forward tangents along the directions (x_0..x_{nx-1}, tau): dH[0] = dzn/d(x, tau).
  d.dH[0].setZero();
  for (int k = 0; k < nx_; ++k) d.dH[0](k, k) = inv_std_(k);
  d.dH[0](itau, nx_) = inv_std_(itau);
  for (int i = 0; i + 1 < L; ++i) {
    if (i == 0) {  // sparse first layer: dA_0 column k = W_0 column idx_k / std
      for (int k = 0; k < nx_; ++k) d.dA[0].col(k) = W_[0].col(k) * inv_std_(k);
      d.dA[0].col(nx_) = W_[0].col(itau) * inv_std_(itau);
    } else {
      d.dA[i].noalias() = W_[i] * d.dH[i];
    }
    d.dH[i + 1].array() = d.dA[i].array().colwise() * d.s1[i].array();
  }
  // Reverse tangents: dMu_i = s1 * dLam_{i+1} + (lam_{i+1} s2) * dA_i, dLam_i = W_i^T dMu_i.
  d.dLam[L - 1].setZero();
  for (int i = L - 2; i >= 0; --i) {
    d.c1[i] = d.lam[i + 1].cwiseProduct(d.s2[i]);
    d.dMu[i].array() = d.dLam[i + 1].array().colwise() * d.s1[i].array() +
                       d.dA[i].array().colwise() * d.c1[i].array();
    d.dLam[i].noalias() = W_[i].transpose() * d.dMu[i];
  }
  // Rows of dLam_0 at (x, tau), scaled by 1/std, times out_scale.
  for (int c = 0; c < nx_; ++c) {
    for (int r = 0; r < nx_; ++r) d.Vxx(r, c) = out_scale_ * inv_std_(r) * d.dLam[0](r, c);
  }
  for (int r = 0; r < nx_; ++r) d.Vtaux(r) = out_scale_ * inv_std_(r) * d.dLam[0](r, nx_);
  // The Hessian is symmetric in exact arithmetic; make it so in floating point.
  symmetrize(d.Vxx);
}

void CriticMLP::calc_third(CriticData& data, double tau, const RefV& x, const RefV& vx,
                           double vtau) const {
  // Precondition: calc_diff(data, tau, x) ran last (forward/reverse values and tangents valid).
  (void)tau;
  (void)x;
  CriticMLPData& d = cast(data);
  if (fast(d)) {
    detail::MlpWork& w = *d.kw;
    double* vz = w.vz.data();
    for (int k = 0; k < pack_->mp; ++k) vz[k] = 0.0;
    for (int k = 0; k < nx_; ++k) vz[k] = vx(k);
    vz[nx_] = vtau;
    detail::kernel_third(*pack_, w);
    const int mp = pack_->mp;
    const double* K = w.K.data();
    for (int c = 0; c < nx_; ++c)
      for (int r = c; r < nx_; ++r) d.Kv(r, c) = d.Kv(c, r) = out_scale_ * K[r * mp + c];
    return;
  }
  const int L = n_layers();
  const int itau = nx_ + ng_;
  d.vn.setZero();
  d.vn.head(nx_) = vx.cwiseProduct(inv_std_.head(nx_));
  d.vn(itau) = vtau * inv_std_(itau);
  // delta of the forward pass and of the forward tangents along v.
  d.eH[0] = d.vn;
  d.edH[0].setZero();
  for (int i = 0; i + 1 < L; ++i) {
    d.ea[i].noalias() = W_[i] * d.eH[i];
    d.s3[i].array() = -2.0 * d.s1[i].array().square() - 2.0 * d.h[i + 1].array() * d.s2[i].array();
    d.eH[i + 1] = d.s1[i].cwiseProduct(d.ea[i]);
    if (i == 0) {
      d.edA[0].setZero();
    } else {
      d.edA[i].noalias() = W_[i] * d.edH[i];
    }
    d.c2[i] = d.s2[i].cwiseProduct(d.ea[i]);  // delta of s1
    d.edH[i + 1].array() = d.dA[i].array().colwise() * d.c2[i].array() +
                           d.edA[i].array().colwise() * d.s1[i].array();
  }
  // delta of the reverse pass and of the reverse tangents.
  d.eLam[L - 1].setZero();
  d.edLam[L - 1].setZero();
  for (int i = L - 2; i >= 0; --i) {
    // c1 = lam_{i+1} s2 (from calc_diff); c2 = s2 ea = delta s1;
    // c3 = delta(c1) = eLam_{i+1} s2 + lam_{i+1} s3 ea
    d.c3[i].array() = d.eLam[i + 1].array() * d.s2[i].array() +
                      d.lam[i + 1].array() * d.s3[i].array() * d.ea[i].array();
    d.eMu[i] = d.eLam[i + 1].cwiseProduct(d.s1[i]) + d.lam[i + 1].cwiseProduct(d.c2[i]);
    d.eLam[i].noalias() = W_[i].transpose() * d.eMu[i];
    d.edMu[i].array() = d.edLam[i + 1].array().colwise() * d.s1[i].array() +
                        d.dLam[i + 1].array().colwise() * d.c2[i].array() +
                        d.dA[i].array().colwise() * d.c3[i].array() +
                        d.edA[i].array().colwise() * d.c1[i].array();
    d.edLam[i].noalias() = W_[i].transpose() * d.edMu[i];
  }
  for (int c = 0; c < nx_; ++c) {
    for (int r = 0; r < nx_; ++r) d.Kv(r, c) = out_scale_ * inv_std_(r) * d.edLam[0](r, c);
  }
  symmetrize(d.Kv);
}

}  // namespace dmpc

namespace dmpc {

void CriticMLP::calc_diff_batch(const RefV& taus, const RefM& X, Vec& V, Vec& Vtau, Mat& Vx,
                                Mat& Vtaux, Mat& Vxx) const {
  const Eigen::Index B = taus.size();
  if (!pack_) {
    calc_diff_batch_reference(taus, X, V, Vtau, Vx, Vtaux, Vxx);
    return;
  }
  if (X.rows() != B || X.cols() != nx_)
    throw std::invalid_argument("CriticMLP.calc_diff_batch: X must be B x nx with B = len(taus)");
  V.resize(B);
  Vtau.resize(B);
  Vx.resize(nx_, B);
  Vtaux.resize(nx_, B);
  Vxx.resize(nx_, nx_ * B);
  calc_diff_batch(taus, X, V.data(), Vtau.data(), Vx.data(), Vtaux.data(), Vxx.data());
}

void CriticMLP::calc_diff_batch(const RefV& taus, const RefM& X, double* V, double* Vtau,
                                double* Vx, double* Vtaux, double* Vxx) const {
  const Eigen::Index B = taus.size();
  if (X.rows() != B || X.cols() != nx_)
    throw std::invalid_argument("CriticMLP.calc_diff_batch: X must be B x nx with B = len(taus)");
  if (!pack_) {
    Vec bV, bVtau;
    Mat bVx, bVtaux, bVxx;
    calc_diff_batch_reference(taus, X, bV, bVtau, bVx, bVtaux, bVxx);
    std::copy(bV.data(), bV.data() + B, V);
    std::copy(bVtau.data(), bVtau.data() + B, Vtau);
    std::copy(bVx.data(), bVx.data() + B * nx_, Vx);
    std::copy(bVtaux.data(), bVtaux.data() + B * nx_, Vtaux);
    std::copy(bVxx.data(), bVxx.data() + B * nx_ * nx_, Vxx);
    return;
  }
  detail::kernel_diff_batch(*pack_, static_cast<long>(B), X.data(), static_cast<long>(X.innerStride()),
                            static_cast<long>(X.outerStride()), taus.data(), goal_.data(), V, Vtau, Vx,
                            Vtaux, Vxx);
}

void CriticMLP::calc_diff_batch_reference(const RefV& taus, const RefM& X, Vec& V, Vec& Vtau,
                                          Mat& Vx, Mat& Vtaux, Mat& Vxx) const {
  const Eigen::Index B = taus.size();
  if (X.rows() != B || X.cols() != nx_)
    throw std::invalid_argument("CriticMLP.calc_diff_batch: X must be B x nx with B = len(taus)");
  const int L = n_layers();
  const int m = nx_ + 1;  // directions (x, tau)
  const int itau = nx_ + ng_;
  V.resize(B);
  Vtau.resize(B);
  Vx.resize(nx_, B);
  Vtaux.resize(nx_, B);
  Vxx.resize(nx_, nx_ * B);
  // Normalised inputs, one column per state.
  Mat Z(nz_, B);
  Z.topRows(nx_) = X.transpose();
  if (ng_ > 0) Z.middleRows(nx_, ng_) = goal_.replicate(1, B);
  Z.row(itau) = taus.transpose();
  Z = (Z.colwise() - mean_).array().colwise() * inv_std_.array();
  // Forward pass: H[i + 1] = tanh(W_i H[i] + b_i); S1 = tanh', C = tanh''.
  std::vector<Mat> H(L), S1(L > 1 ? L - 1 : 0), S2(L > 1 ? L - 1 : 0);
  H[0] = std::move(Z);
  for (int i = 0; i + 1 < L; ++i) {
    Mat A = W_[i] * H[i];
    A.colwise() += b_[i];
    H[i + 1] = A.array().tanh().matrix();
    S1[i] = (1.0 - H[i + 1].array().square()).matrix();
    S2[i] = (-2.0 * H[i + 1].array() * S1[i].array()).matrix();
  }
  V = (out_scale_ * ((W_[L - 1].row(0) * H[L - 1]).array() + b_[L - 1](0)) + out_bias_).transpose();
  // Reverse pass: lam_L = w_L, mu_i = lam_{i+1} * tanh', lam_i = W_i^T mu_i; c_i = lam_{i+1} tanh''.
  std::vector<Mat> Cc(L > 1 ? L - 1 : 0);
  Mat lam = W_[L - 1].row(0).transpose().replicate(1, B);
  for (int i = L - 2; i >= 0; --i) {
    Cc[i] = (lam.array() * S2[i].array()).matrix();
    const Mat mu = (lam.array() * S1[i].array()).matrix();
    lam.noalias() = W_[i].transpose() * mu;
  }
  Vx = out_scale_ * (lam.topRows(nx_).array().colwise() * inv_std_.head(nx_).array()).matrix();
  Vtau = (out_scale_ * inv_std_(itau)) * lam.row(itau).transpose();
  Vxx.setZero();
  if (L == 1) {  // affine critic: zero Hessian
    Vtaux.setZero();
    return;
  }
  // J_0 = d a_0 / d zeta (n_1 x m), the same for all states.
  const int n1 = static_cast<int>(W_[0].rows());
  Mat J0(n1, m);
  for (int k = 0; k < nx_; ++k) J0.col(k) = W_[0].col(k) * inv_std_(k);
  J0.col(nx_) = W_[0].col(itau) * inv_std_(itau);
  // Stacked Jacobians of all hidden pre-activations, per state: G_b = [J_0; J_1; ...] (rows),
  // built layer by layer as one product across the batch: J_{i+1} = W_{i+1} diag(s1_i) J_i.
  int rows_total = 0;
  std::vector<int> row0(L - 1);
  for (int i = 0; i + 1 < L; ++i) {
    row0[i] = rows_total;
    rows_total += static_cast<int>(W_[i].rows());
  }
  Mat G(rows_total, m * B);  // block b: columns b m .. b m + m - 1
  G.topRows(n1) = J0.replicate(1, B);
  for (int i = 0; i + 2 < L; ++i) {
    const int ni = static_cast<int>(W_[i].rows());
    Mat D(ni, m * B);  // diag(s1_i) J_i for every state
    for (Eigen::Index b = 0; b < B; ++b)
      D.middleCols(b * m, m) =
          G.block(row0[i], b * m, ni, m).array().colwise() * S1[i].col(b).array();
    G.middleRows(row0[i + 1], W_[i + 1].rows()).noalias() = W_[i + 1] * D;
  }
  // Hessian per state: sum over hidden rows r of c_r g_r g_r^T (lower triangle), then mirror.
  Vec c(rows_total);
  Mat T(rows_total, m), Hs(m, m);
  for (Eigen::Index b = 0; b < B; ++b) {
    for (int i = 0; i + 1 < L; ++i) c.segment(row0[i], W_[i].rows()) = Cc[i].col(b);
    const auto Gb = G.middleCols(b * m, m);
    T = Gb.array().colwise() * c.array();
    Hs.triangularView<Eigen::Lower>() = Gb.transpose() * T;
    auto Hb = Vxx.middleCols(b * nx_, nx_);
    for (int col = 0; col < nx_; ++col)
      for (int row = col; row < nx_; ++row) Hb(row, col) = Hb(col, row) = out_scale_ * Hs(row, col);
    Vtaux.col(b) = out_scale_ * Hs.row(nx_).head(nx_).transpose();
  }
}

}  // namespace dmpc
