/// @file cost.hpp
/// @brief Pluggable cost interface l(t, x, u) with analytic first and second derivatives.
///
/// Running costs and terminal costs share this interface; a terminal cost is evaluated with
/// u = 0 and its lu, luu, lux are ignored. Time t is absolute (seconds), so that goal- and
/// time-conditioned costs (the learned value of Eq. (13)-(14)) can compute a time-to-go.
#pragma once

#include <string>
#include <vector>

#include "dmpc/common.hpp"

namespace dmpc {

/// @brief Results of one cost evaluation.
struct CostData {
  CostData(int nx, int nu)
      : value(0.0),
        lx(Vec::Zero(nx)),
        lu(Vec::Zero(nu)),
        lxx(Mat::Zero(nx, nx)),
        luu(Mat::Zero(nu, nu)),
        lux(Mat::Zero(nu, nx)) {}
  virtual ~CostData() = default;
  double value;  ///< l(t, x, u)
  Vec lx;        ///< dl/dx, size nx
  Vec lu;        ///< dl/du, size nu
  Mat lxx;       ///< d2l/dx2, nx x nx (exact, or Gauss-Newton where a model says so)
  Mat luu;       ///< d2l/du2, nu x nu
  Mat lux;       ///< d2l/du dx, nu x nx
};

/// @brief Abstract cost model.
class CostModel {
 public:
  CostModel(int nx, int nu) : nx_(nx), nu_(nu) {
    if (nx < 1 || nu < 0) throw std::invalid_argument("CostModel needs nx >= 1 and nu >= 0");
  }
  virtual ~CostModel() = default;
  int nx() const { return nx_; }
  int nu() const { return nu_; }
  virtual std::string name() const { return "CostModel"; }

  virtual std::shared_ptr<CostData> create_data() const {
    return std::make_shared<CostData>(nx_, nu_);
  }
  /// @brief data.value = l(t, x, u). x has size nx, u size nu.
  virtual void calc(CostData& data, double t, const RefV& x, const RefV& u) const = 0;
  /// @brief Fill value and all derivatives at (t, x, u).
  virtual void calc_diff(CostData& data, double t, const RefV& x, const RefV& u) const = 0;

 protected:
  int nx_, nu_;
};

using CostModelPtr = std::shared_ptr<const CostModel>;

}  // namespace dmpc
