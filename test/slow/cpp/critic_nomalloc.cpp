// Compiled by test/test_critic_nomalloc.py with -DEIGEN_RUNTIME_NO_MALLOC (asserts enabled):
// any Eigen heap allocation inside the guarded region aborts the program.
#include <iostream>

#include "dmpc/critic.hpp"
#include "dmpc/models/small.hpp"
#include "dmpc/value_costs.hpp"

using namespace dmpc;

int main() {
  double acc = 0.0;
  for (int which = 0; which < 2; ++which) {
    DynamicsModelPtr dyn;
    if (which == 0) dyn = std::make_shared<PointMass2D>(1.0, 0.2);
    else dyn = std::make_shared<PendulumDynamics>(1.0, 1.0, 0.1);
    const int nx = dyn->nx(), nu = dyn->nu(), ng = 2;
    std::vector<int> sz = {nx + ng + 1, 12, 12, 12, 1};
    std::vector<Mat> W;
    std::vector<Vec> b;
    for (size_t i = 0; i + 1 < sz.size(); ++i) {
      W.push_back(Mat::Random(sz[i + 1], sz[i]));
      b.push_back(Vec::Random(sz[i + 1]));
    }
    auto critic = std::make_shared<CriticMLP>(W, b, Vec::Zero(nx + ng + 1), Vec::Ones(nx + ng + 1),
                                              1.5, 0.1, nx, ng);
    ValueRunningCost run(critic, dyn, Mat::Identity(nu, nu), 3.0, false);
    ValueRunningCost run_fd(critic, dyn, Mat::Identity(nu, nu), 3.0, false,
                            ValueRunningCost::ThirdOrder::FiniteDifference);
    ValueTerminalCost term(critic, 3.0, nu);
    auto cd = critic->create_data();
    auto rd = run.create_data();
    auto rfd = run_fd.create_data();
    auto td = term.create_data();
    Vec x = Vec::Random(nx), u = Vec::Zero(nu), v = Vec::Random(nx);
    Eigen::internal::set_is_malloc_allowed(false);
    for (int k = 0; k < 3; ++k) {
      critic->calc(*cd, 1.0, x);
      critic->calc_grad(*cd, 1.0, x);
      critic->calc_diff(*cd, 1.0, x);
      critic->calc_third(*cd, 1.0, x, v, 1.0);
      run.calc(*rd, 0.5, x, u);
      run.calc_diff(*rd, 0.5, x, u);
      run_fd.calc_diff(*rfd, 0.5, x, u);
      term.calc(*td, 0.5, x, u);
      term.calc_diff(*td, 0.5, x, u);
      acc += rd->lxx(0, 0) + cd->Kv(1, 1) + td->value;
    }
    Eigen::internal::set_is_malloc_allowed(true);
  }
  std::cout << "OK " << acc << std::endl;
  return 0;
}
