/// @file slq.hpp
/// @brief SLQ (sequential linear-quadratic, a DDP-family method; the actor of deep-value-mpc,
///        Sec. 6 "Actor Implementation") on a discretised Problem.
///
/// One iteration:
///  1. roll out the current affine feedback policy u_k = u_ff_k + K_k (x_k - x_nom_k) from x0
///     with the problem's integrator (RK4 by default) -> nominal (x, u) and cost;
///  2. LQ approximation at every node (exact Jacobians of the discrete map, cost gradients and
///     Hessians), threaded over nodes;
///  3. Riccati backward pass (the shared step of lq.hpp) with Levenberg-Marquardt
///     regularisation mu I on Q_uu (mu grows on a failed Cholesky or a failed line search,
///     shrinks after success);
///  4. feedforward line search alpha in {1, 1/2, ...}: accept when the actual decrease is at least
///     armijo * the decrease predicted by the LQ model.
/// Convergence when the predicted decrease, or the relative cost change of an accepted step,
/// falls below tolerance. A diverged rollout or a failed line search reports a status and keeps
/// the last good policy.
#pragma once

#include <Eigen/Cholesky>
#include <string>
#include <vector>

#include "dmpc/cost.hpp"
#include "dmpc/integrator.hpp"
#include "dmpc/lq.hpp"
#include "dmpc/policy.hpp"
#include "dmpc/problem.hpp"
#include "dmpc/thread_pool.hpp"

namespace dmpc {

struct SlqSettings {
  int max_iterations = 50;          ///< iterations per solve() (1 = real-time iteration)
  double tol_expected = 1e-9;       ///< stop when predicted decrease < tol_expected (1 + |J|)
  double tol_relative = 1e-9;       ///< stop when an accepted step changes J by < tol_relative |J|
  double mu_init = 1e-8;            ///< initial Levenberg-Marquardt regularisation on Q_uu
  double mu_min = 1e-10;            ///< below this mu is set to 0
  double mu_max = 1e10;             ///< give up above this
  double mu_factor = 10.0;          ///< multiplicative change of mu
  int max_line_search = 10;         ///< alpha = 1, 1/2, ..., 2^{1 - max_line_search}
  double armijo = 1e-4;             ///< sufficient-decrease factor
  int num_threads = 1;              ///< threads for the LQ approximation
  Interpolation interpolation = Interpolation::Linear;  ///< of the returned policy
  void validate() const;
};

enum class SlqStatus { NotSolved, Converged, MaxIterations, LineSearchFailed, Diverged };
std::string to_string(SlqStatus status);

struct SlqResult {
  SlqStatus status = SlqStatus::NotSolved;
  int iterations = 0;
  double initial_cost = 0.0;        ///< cost of the first rollout of this solve
  double cost = 0.0;                ///< cost of the returned policy's nominal trajectory
  double expected_decrease = 0.0;   ///< last predicted decrease (alpha = 1)
  double mu = 0.0;                  ///< regularisation at exit
  double solve_time = 0.0;          ///< seconds
  double time_rollout = 0.0;        ///< seconds in rollouts (initial + line search)
  double time_lq = 0.0;             ///< seconds in the LQ approximation
  double time_backward = 0.0;       ///< seconds in Riccati backward passes
  std::vector<double> cost_history; ///< cost after each iteration
  std::string message;
};

class SlqSolver {
 public:
  SlqSolver(ProblemPtr problem, SlqSettings settings = SlqSettings());

  /// @brief Optimise from x0 at time t0, starting from the current policy (warm start) or zero
  ///        controls. Throws std::invalid_argument for a wrong-sized or non-finite x0.
  SlqResult solve(const RefV& x0, double t0 = 0.0);

  /// @brief Replace the initial guess by open-loop controls U (N x nu) (gains set to zero).
  void set_controls(const RefM& U);
  /// @brief Replace the initial guess by an affine feedback policy (e.g. an LQR stabiliser for an
  ///        unstable system, so that the first rollout does not fall). Shapes are validated.
  void set_policy(const Policy& policy);
  /// @brief Shift the current policy in time so that node 0 lies at t_new0 (MPC warm start).
  void shift(double t_new0);
  /// @brief Forget the policy (next solve starts from zero controls).
  void reset();

  const Policy& policy() const { return policy_; }
  const Mat& states() const { return policy_.x_nom; }      ///< (N+1) x nx
  const Mat& controls() const { return policy_.u_ff; }     ///< N x nu
  const SlqResult& last_result() const { return result_; }
  const SlqSettings& settings() const { return settings_; }
  void set_settings(const SlqSettings& s);
  const Problem& problem() const { return *problem_; }

  /// @brief Total cost of the open-loop controls U (N x nu) from x0 (uses the same integrator).
  double evaluate(const RefV& x0, const RefM& U, double t0 = 0.0);

 private:
  struct Node {
    explicit Node(const Problem& p);
    StepData step;
    std::shared_ptr<CostData> cost;
  };

  double rollout(const Policy& pol, const RefV& x0, double t0, double alpha, Mat& X, Mat& U);
  double stage_cost(int k, double t, const RefV& x, const RefV& u, CostData& cd) const;
  double terminal_cost(double t, const RefV& x, CostData& cd) const;
  void lq_approximation(double t0);
  bool backward_pass(double mu, double& dV1, double& dV2);

  ProblemPtr problem_;
  SlqSettings settings_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<Node> nodes_;
  std::shared_ptr<CostData> terminal_data_;
  std::shared_ptr<CostData> scratch_cost_;
  StepData scratch_step_;
  // nominal trajectory of the current iteration
  Mat X_, U_;
  Mat X_trial_, U_trial_;
  // LQ model: discrete dynamics Jacobians and (discounted, dt-scaled) cost derivatives
  std::vector<Vec> lx_, lu_;
  std::vector<Mat> lxx_, luu_, lux_;
  Vec lxN_;
  Mat lxxN_;
  // backward pass: value expansion and the workspace of the shared Riccati step (lq.hpp)
  Vec Vx_;
  Mat Vxx_;
  RiccatiWorkspace riccati_;
  // backward pass results
  std::vector<Vec> kff_;
  std::vector<Mat> Kfb_;
  Policy policy_;
  Policy candidate_;
  SlqResult result_;
  double mu_;
};

}  // namespace dmpc
