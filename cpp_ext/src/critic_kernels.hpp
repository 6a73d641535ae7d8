/// @file critic_kernels.hpp
/// @brief Private (not installed) vectorised kernels of CriticMLP: forward/reverse pass,
///        Hessian and third-derivative contraction of a tanh MLP for ONE state, with the
///        derivative directions zeta = (x, tau) packed in 4-wide SIMD vectors.
///
/// Math (same symbols as critic.hpp; hidden layer i maps h_i (n_i) to h_{i+1} (n_{i+1})):
///   a_i = W_i h_i + b_i, h_{i+1} = tanh(a_i), s1_i = tanh'(a_i), s2_i = tanh'', s3_i = tanh''',
///   lam_{nh} = w_out, mu_i = lam_{i+1} s1_i, lam_i = W_i^T mu_i  (reverse pass, dy/dh_i),
///   J_0 = d a_0 / d zeta = W_0[:, (x, tau)] diag(1/std) (constant, precomputed),
///   J_{i+1} = W_{i+1} diag(s1_i) J_i,                       (forward Jacobians, n_{i+1} x m)
///   d2y/dzeta2 = sum_i J_i^T diag(c_i) J_i,  c_i = lam_{i+1} s2_i,
/// and along a direction v (e_i = J_i v, the directional derivative of a_i):
///   dJ_{i+1} = W_{i+1} [diag(s2_i e_i) J_i + diag(s1_i) dJ_i],  dJ_0 = 0,
///   dmu_i = dlam_{i+1} s1_i + lam_{i+1} s2_i e_i, dlam_i = W_i^T dmu_i, dlam_{nh} = 0,
///   dc_i = dlam_{i+1} s2_i + lam_{i+1} s3_i e_i,
///   K(v) = d/dv [d2y/dzeta2] = sum_i sum_r (E_r dJ_r^T + dE_r J_r^T),  E = c J, dE = c dJ + dc J
/// (lower triangle formed; the third-derivative tensor is symmetric, so K(v)_{kl} equals
/// d/dzeta_l of (Hessian v)_k, the CriticData::Kv contraction).
///
/// Two compiled variants of every kernel: AVX2+FMA (function-level target attribute, chosen at
/// run time when the CPU supports both) and the baseline ISA; no Eigen types inside, so the
/// Eigen ABI of the rest of the library is untouched. tanh is evaluated by a vectorised
/// expm1 (Cody-Waite reduction, degree-13 polynomial): tanh(x) = sign(x) E / (E + 2),
/// E = expm1(2|x|), accurate to a few ulp.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace dmpc::detail {

/// @brief 32-byte aligned zero-initialised double buffer.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t n);
  double* data() { return p_.get(); }
  const double* data() const { return p_.get(); }
  std::size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(double* p) const;
  };
  std::unique_ptr<double[], Free> p_;
  std::size_t n_ = 0;
};

/// @brief Packed, zero-padded copy of a CriticMLP's parameters (immutable after construction).
struct MlpPack {
  int nx = 0, ng = 0, nz = 0;
  int m = 0;    ///< derivative directions nx + 1 (x, tau)
  int nv = 0;   ///< 4-wide vectors per direction row (ceil(m / 4)), 1..4 supported
  int mp = 0;   ///< 4 nv
  int nh = 0;   ///< hidden layers
  std::vector<int> n;     ///< n[0] = nz, n[i + 1] = width of hidden layer i
  std::vector<int> npad;  ///< n rounded up to a multiple of 4
  std::vector<int> roff;  ///< row offset of hidden layer i in the stacked rows (J, E, c)
  int rows = 0;           ///< sum of hidden widths
  std::vector<AlignedBuffer> W;   ///< W[i]: n[i+1] x npad[i], row-major (zero padded)
  std::vector<AlignedBuffer> Wt;  ///< W[i]^T: n[i] x npad[i+1], row-major (zero padded)
  std::vector<AlignedBuffer> b;   ///< b[i]: npad[i+1]
  AlignedBuffer wout;             ///< output weights, npad[nh]
  double bout = 0.0, out_scale = 1.0, out_bias = 0.0;
  AlignedBuffer mean, inv_std;    ///< size nz
  AlignedBuffer J0;               ///< n[1] x mp row-major, column k: W_0[:, idx_k] / std[idx_k]
  int itau = 0;                   ///< index of tau in z (nx + ng)
  // Constants of the batched (states-in-lanes) kernel, see kernel_diff_batch:
  int ntri = 0;     ///< m (m + 1) / 2, entries of the lower triangle of d2y/dzeta2 (packed by rows)
  AlignedBuffer Q0; ///< ntri x n[1]: Q0(t(k, l), j) = J0(j, k) J0(j, l)  (layer-0 Hessian term)
  AlignedBuffer P1; ///< (n[2] m) x n[1] (nh >= 2): P1(r m + k, j) = W_1(r, j) J0(j, k)  (J_1 = P1 s1_0)
};

/// @brief Per-thread buffers of the kernels (sized once from an MlpPack).
struct MlpWork {
  explicit MlpWork(const MlpPack& P);
  std::vector<AlignedBuffer> h;     ///< h[0] = zn (npad[0]), h[i + 1] (npad[i+1])
  std::vector<AlignedBuffer> s1, s2, s3, lam, dlam;  ///< per hidden layer, npad[i+1]
  AlignedBuffer lam0;               ///< dy/dzn, npad[0]
  AlignedBuffer c, e, dc;           ///< stacked rows
  AlignedBuffer J, E, dJ, dE;       ///< rows x mp
  AlignedBuffer ds1;                ///< s2 e (derivative of tanh' along v), stacked rows
  AlignedBuffer H, K;               ///< mp x mp (lower triangle valid)
  AlignedBuffer vz;                 ///< direction, mp
  double y = 0.0;                   ///< network output before the output affine map
};

/// @brief Build the pack; returns nullptr when the kernels do not apply (no hidden layer or
///        nx + 1 > 16), in which case the caller uses its Eigen reference path.
/// @param[in] W_colmajor data of the weight matrices W_i (column-major, rows[i] x cols[i]),
///            the last one 1 x n_L; b bias data; mean, inv_std size nx + ng + 1
std::shared_ptr<const MlpPack> make_pack(const std::vector<const double*>& W_colmajor,
                                         const std::vector<int>& rows, const std::vector<int>& cols,
                                         const std::vector<const double*>& b, const double* mean,
                                         const double* inv_std, double out_scale, double out_bias,
                                         int nx, int ng);

/// @brief Forward and reverse pass at normalised input w.h[0] (already filled): w.y, w.lam0,
///        and (when hessian) the Jacobians J, E = c J and the Hessian d2y/dzeta2 in w.H.
void kernel_diff(const MlpPack& P, MlpWork& w, bool grad, bool hessian);
/// @brief Third-derivative contraction K(v) into w.K, v = w.vz (zeta space, padded with 0).
///        Precondition: kernel_diff(P, w, true, true) ran last on w.
void kernel_third(const MlpPack& P, MlpWork& w);
/// @brief V, dV/d(x, tau) and d2V/d(x, tau)2 of B states with the STATES in the SIMD lanes
///        (4 per vector, blocks of 8 or 4 states; a partial last block repeats its last state):
///        weights, biases and the constant first-layer Jacobian J_0 are broadcast scalars shared
///        by all lanes. Same math as kernel_diff, with the J_0 products folded into constants:
///        J_1 = P1 s1_0 (one multiply-add per entry) and the layer-0 Hessian term
///        J_0^T diag(c_0) J_0 = Q0 c_0; the rows of layers >= 1 add sum_r E_r J_r^T, E = c J.
///        Outputs are the CriticMLP quantities (output affine map and 1/std applied), row-major:
/// @param[in] B number of states
/// @param[in] X state b, entry k at X[b * xs_b + k * xs_k]
/// @param[in] taus time-to-go, B
/// @param[in] goal size ng (raw, normalised inside)
/// @param[out] V B; Vtau B; Vx B x nx; Vtaux B x nx; Vxx B x nx x nx (symmetric, both triangles)
void kernel_diff_batch(const MlpPack& P, long B, const double* X, long xs_b, long xs_k,
                       const double* taus, const double* goal, double* V, double* Vtau, double* Vx,
                       double* Vtaux, double* Vxx);
/// @brief "avx2+fma" or "baseline": the variant the kernels dispatch to on this CPU.
const char* kernel_isa();

}  // namespace dmpc::detail
