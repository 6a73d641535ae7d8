#include "dmpc/costs.hpp"

#include <cmath>

namespace dmpc {

// ---------------- QuadraticCost ----------------
QuadraticCost::QuadraticCost(const RefM& Q, const RefM& R, const RefV& x_ref, const RefV& u_ref)
    : CostModel(static_cast<int>(Q.rows()), static_cast<int>(R.rows())) {
  check_shape(Q, Q.rows(), Q.rows(), "Q");
  check_shape(R, R.rows(), R.rows(), "R");
  check_finite(Q, "Q");
  check_finite(R, "R");
  Q_ = 0.5 * (Q + Q.transpose());
  R_ = 0.5 * (R + R.transpose());
  q_diagonal_ = Q_.isDiagonal(0.0);
  r_diagonal_ = R_.isDiagonal(0.0);
  set_reference(x_ref, u_ref);
}

void QuadraticCost::set_reference(const RefV& x_ref, const RefV& u_ref) {
  check_vector(x_ref, nx_, "x_ref");
  check_vector(u_ref, nu_, "u_ref");
  x_ref_ = x_ref;
  u_ref_ = u_ref;
}

namespace {
/// 1/2 (x - r)' Q (x - r) for a diagonal Q: sum_j d_j (Q_jj d_j), the same products and sums
/// as half_quadratic_form (whose off-diagonal terms are exact zeros) for finite x.
double half_diagonal_form(const Mat& Q, const RefV& x, const Vec& r) {
  const Eigen::Index n = Q.rows();
  double v = 0.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double dj = x(j) - r(j);
    v += dj * (Q(j, j) * dj);
  }
  return 0.5 * v;
}

/// 1/2 (x - r)' Q (x - r) for a symmetric Q, without temporaries (no heap allocation).
double half_quadratic_form(const Mat& Q, const RefV& x, const Vec& r) {
  const Eigen::Index n = Q.rows();
  double v = 0.0;
  for (Eigen::Index j = 0; j < n; ++j) {
    const double dj = x(j) - r(j);
    if (dj == 0.0) continue;
    double s = 0.0;
    for (Eigen::Index i = 0; i < n; ++i) s += Q(i, j) * (x(i) - r(i));
    v += dj * s;
  }
  return 0.5 * v;
}
}  // namespace

void QuadraticCost::calc(CostData& d, double, const RefV& x, const RefV& u) const {
  double v = q_diagonal_ ? half_diagonal_form(Q_, x, x_ref_) : half_quadratic_form(Q_, x, x_ref_);
  if (nu_ > 0)
    v += r_diagonal_ ? half_diagonal_form(R_, u, u_ref_) : half_quadratic_form(R_, u, u_ref_);
  d.value = v;
}

void QuadraticCost::calc_diff(CostData& d, double, const RefV& x, const RefV& u) const {
  // lx = Q (x - x_ref) as two products into the destination (no temporary vector).
  d.lx.noalias() = Q_ * x;
  d.lx.noalias() -= Q_ * x_ref_;
  d.lxx = Q_;
  d.value = 0.5 * (x - x_ref_).dot(d.lx);
  if (nu_ > 0) {
    d.lu.noalias() = R_ * u;
    d.lu.noalias() -= R_ * u_ref_;
    d.luu = R_;
    d.value += 0.5 * (u - u_ref_).dot(d.lu);
  }
  d.lux.setZero();
}

// ---------------- UprightCost ----------------
UprightCost::UprightCost(int nx, int nu, int pitch_index, int roll_index, int pitch_rate_index,
                         int roll_rate_index, double w_tilt, double w_rate)
    : CostModel(nx, nu),
      ip_(pitch_index),
      ir_(roll_index),
      ipr_(pitch_rate_index),
      irr_(roll_rate_index),
      w_tilt_(w_tilt),
      w_rate_(w_rate) {
  for (int i : {ip_, ir_, ipr_, irr_})
    if (i < 0 || i >= nx) throw std::invalid_argument("UprightCost: index out of range [0, nx)");
  if (!(w_tilt >= 0) || !(w_rate >= 0)) throw std::invalid_argument("UprightCost: weights must be >= 0");
}

void UprightCost::calc(CostData& d, double, const RefV& x, const RefV&) const {
  d.value = w_tilt_ * (1.0 - std::cos(x[ip_]) * std::cos(x[ir_])) +
            0.5 * w_rate_ * (x[ipr_] * x[ipr_] + x[irr_] * x[irr_]);
}

void UprightCost::calc_diff(CostData& d, double t, const RefV& x, const RefV& u) const {
  calc(d, t, x, u);
  const double cp = std::cos(x[ip_]), sp = std::sin(x[ip_]);
  const double cr = std::cos(x[ir_]), sr = std::sin(x[ir_]);
  d.lx.setZero();
  d.lxx.setZero();
  d.lx[ip_] = w_tilt_ * sp * cr;
  d.lx[ir_] = w_tilt_ * cp * sr;
  d.lx[ipr_] += w_rate_ * x[ipr_];
  d.lx[irr_] += w_rate_ * x[irr_];
  d.lxx(ip_, ip_) = w_tilt_ * cp * cr;
  d.lxx(ir_, ir_) = w_tilt_ * cp * cr;
  d.lxx(ip_, ir_) = -w_tilt_ * sp * sr;
  d.lxx(ir_, ip_) = -w_tilt_ * sp * sr;
  d.lxx(ipr_, ipr_) += w_rate_;
  d.lxx(irr_, irr_) += w_rate_;
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
}

// ---------------- WallPenalty ----------------
namespace {
struct SegmentDistance {
  double dist;      ///< distance from p to the segment's centre line
  double nx, ny;    ///< unit vector from the closest point to p
  bool end_cap;     ///< closest point is an end point (curved part of the capsule)
};

SegmentDistance segment_distance(const Wall& w, double px, double py) {
  const double ex = w.bx - w.ax, ey = w.by - w.ay;
  const double len2 = ex * ex + ey * ey;
  double s = len2 > 0 ? ((px - w.ax) * ex + (py - w.ay) * ey) / len2 : 0.0;
  bool cap = false;
  if (s <= 0.0) {
    s = 0.0;
    cap = true;
  } else if (s >= 1.0) {
    s = 1.0;
    cap = true;
  }
  const double cx = w.ax + s * ex, cy = w.ay + s * ey;
  const double dx = px - cx, dy = py - cy;
  const double r = std::hypot(dx, dy);
  SegmentDistance out{r, 0.0, 0.0, cap};
  if (r > 1e-12) {
    out.nx = dx / r;
    out.ny = dy / r;
  } else if (len2 > 0) {  // on the centre line: pick the left normal
    const double l = std::sqrt(len2);
    out.nx = -ey / l;
    out.ny = ex / l;
  }
  return out;
}

double softplus(double beta, double s) {
  const double z = beta * s;
  return (z > 30.0 ? z : std::log1p(std::exp(z))) / beta;
}
double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
}  // namespace

WallPenalty::WallPenalty(int nx, int nu, int ix, int iy, std::vector<Wall> walls, double d_safe,
                         double weight, double beta)
    : CostModel(nx, nu), ix_(ix), iy_(iy), walls_(std::move(walls)), d_safe_(d_safe), weight_(weight), beta_(beta) {
  if (ix < 0 || ix >= nx || iy < 0 || iy >= nx || ix == iy)
    throw std::invalid_argument("WallPenalty: ix, iy must be distinct indices in [0, nx)");
  if (!(weight >= 0) || !(beta > 0) || !std::isfinite(d_safe))
    throw std::invalid_argument("WallPenalty: need weight >= 0, beta > 0, finite d_safe");
  for (const auto& w : walls_)
    if (!std::isfinite(w.ax + w.ay + w.bx + w.by + w.half_thickness) || w.half_thickness < 0)
      throw std::invalid_argument("WallPenalty: wall coordinates must be finite, half_thickness >= 0");
}

double WallPenalty::clearance(double px, double py) const {
  double best = std::numeric_limits<double>::infinity();
  for (const auto& w : walls_) best = std::min(best, segment_distance(w, px, py).dist - w.half_thickness);
  return best;
}

void WallPenalty::calc(CostData& d, double, const RefV& x, const RefV&) const {
  double v = 0.0;
  for (const auto& w : walls_) {
    const double dist = segment_distance(w, x[ix_], x[iy_]).dist - w.half_thickness;
    const double sp = softplus(beta_, d_safe_ - dist);
    v += sp * sp;
  }
  d.value = weight_ * v;
}

void WallPenalty::calc_diff(CostData& d, double, const RefV& x, const RefV&) const {
  d.value = 0.0;
  d.lx.setZero();
  d.lxx.setZero();
  d.lu.setZero();
  d.luu.setZero();
  d.lux.setZero();
  for (const auto& w : walls_) {
    const SegmentDistance sd = segment_distance(w, x[ix_], x[iy_]);
    const double s = d_safe_ - (sd.dist - w.half_thickness);
    const double sp = softplus(beta_, s);
    const double sig = sigmoid(beta_ * s);
    // p(dist) = w sp(s)^2, s = d_safe - dist: dp/ddist = -2 w sp sig, d2p/ddist2 = 2 w (sig^2 + sp beta sig (1 - sig))
    const double dp = -2.0 * weight_ * sp * sig;
    const double ddp = 2.0 * weight_ * (sig * sig + sp * beta_ * sig * (1.0 - sig));
    d.value += weight_ * sp * sp;
    d.lx[ix_] += dp * sd.nx;
    d.lx[iy_] += dp * sd.ny;
    d.lxx(ix_, ix_) += ddp * sd.nx * sd.nx;
    d.lxx(ix_, iy_) += ddp * sd.nx * sd.ny;
    d.lxx(iy_, ix_) += ddp * sd.nx * sd.ny;
    d.lxx(iy_, iy_) += ddp * sd.ny * sd.ny;
    if (sd.end_cap && sd.dist > 1e-9) {  // Hessian of |p - c|: (I - n n^T) / r
      const double k = dp / sd.dist;
      d.lxx(ix_, ix_) += k * (1.0 - sd.nx * sd.nx);
      d.lxx(ix_, iy_) += -k * sd.nx * sd.ny;
      d.lxx(iy_, ix_) += -k * sd.nx * sd.ny;
      d.lxx(iy_, iy_) += k * (1.0 - sd.ny * sd.ny);
    }
  }
}

// ---------------- SumCost ----------------
SumCost::SumCost(int nx, int nu) : CostModel(nx, nu) {}

void SumCost::add(const std::string& name, CostModelPtr cost, double weight) {
  if (!cost) throw std::invalid_argument("SumCost.add: cost is None");
  if (cost->nx() != nx_ || cost->nu() != nu_)
    throw std::invalid_argument("SumCost.add: term '" + name + "' has (nx, nu) = (" +
                                std::to_string(cost->nx()) + ", " + std::to_string(cost->nu()) +
                                "), expected (" + std::to_string(nx_) + ", " + std::to_string(nu_) + ")");
  if (!std::isfinite(weight)) throw std::invalid_argument("SumCost.add: weight must be finite");
  terms_.push_back({name, std::move(cost), weight});
}

void SumCost::set_weight(const std::string& name, double weight) {
  if (!std::isfinite(weight)) throw std::invalid_argument("SumCost.set_weight: weight must be finite");
  for (auto& t : terms_) {
    if (t.name == name) {
      t.weight = weight;
      return;
    }
  }
  throw std::invalid_argument("SumCost.set_weight: no term named '" + name + "'");
}

double SumCost::weight(const std::string& name) const {
  for (const auto& t : terms_)
    if (t.name == name) return t.weight;
  throw std::invalid_argument("SumCost.weight: no term named '" + name + "'");
}

std::shared_ptr<CostData> SumCost::create_data() const {
  auto d = std::make_shared<SumCostData>(nx_, nu_);
  for (const auto& t : terms_) d->terms.push_back(t.cost->create_data());
  return d;
}

void SumCost::calc(CostData& data, double t, const RefV& x, const RefV& u) const {
  auto& d = static_cast<SumCostData&>(data);
  d.value = 0.0;
  for (size_t i = 0; i < terms_.size(); ++i) {
    terms_[i].cost->calc(*d.terms[i], t, x, u);
    d.value += terms_[i].weight * d.terms[i]->value;
  }
}

void SumCost::calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const {
  auto& d = static_cast<SumCostData&>(data);
  d.value = 0.0;
  if (terms_.empty()) {
    d.lx.setZero();
    d.lu.setZero();
    d.lxx.setZero();
    d.luu.setZero();
    d.lux.setZero();
    return;
  }
  // The first term is assigned (scaled) instead of zeroing and accumulating.
  for (size_t i = 0; i < terms_.size(); ++i) {
    const auto& td = *d.terms[i];
    terms_[i].cost->calc_diff(*d.terms[i], t, x, u);
    const double w = terms_[i].weight;
    if (i == 0) {
      d.value = w * td.value;
      d.lx = w * td.lx;
      d.lxx = w * td.lxx;
      if (nu_ > 0) {
        d.lu = w * td.lu;
        d.luu = w * td.luu;
        d.lux = w * td.lux;
      }
      continue;
    }
    d.value += w * td.value;
    d.lx += w * td.lx;
    d.lxx += w * td.lxx;
    if (nu_ > 0) {
      d.lu += w * td.lu;
      d.luu += w * td.luu;
      d.lux += w * td.lux;
    }
  }
}

}  // namespace dmpc
