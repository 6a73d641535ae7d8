/// @file critic_kernels.cpp
/// @brief Vectorised CriticMLP kernels (see critic_kernels.hpp for the math and the layout).
#include "critic_kernels.hpp"

#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace dmpc::detail {

// ---------------------------------------------------------------- buffers
void AlignedBuffer::Free::operator()(double* p) const { std::free(p); }

AlignedBuffer::AlignedBuffer(std::size_t n) : n_(n) {
  const std::size_t bytes = ((n * sizeof(double) + 31) / 32) * 32 + 32;
  void* p = std::aligned_alloc(32, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  p_.reset(static_cast<double*>(p));
}

namespace {
int pad4(int n) { return (n + 3) / 4 * 4; }
}  // namespace

MlpWork::MlpWork(const MlpPack& P) : lam0(P.npad[0]), c(P.rows), e(P.rows), dc(P.rows),
      J(static_cast<std::size_t>(P.rows) * P.mp), E(static_cast<std::size_t>(P.rows) * P.mp),
      dJ(static_cast<std::size_t>(P.rows) * P.mp), dE(static_cast<std::size_t>(P.rows) * P.mp),
      ds1(P.rows),
      H(static_cast<std::size_t>(P.mp) * P.mp), K(static_cast<std::size_t>(P.mp) * P.mp), vz(P.mp) {
  for (int i = 0; i <= P.nh; ++i) h.emplace_back(P.npad[i]);
  for (int i = 0; i < P.nh; ++i) {
    for (auto* v : {&s1, &s2, &s3, &lam, &dlam}) v->emplace_back(P.npad[i + 1]);
  }
}

std::shared_ptr<const MlpPack> make_pack(const std::vector<const double*>& W,
                                         const std::vector<int>& rows, const std::vector<int>& cols,
                                         const std::vector<const double*>& b, const double* mean,
                                         const double* inv_std, double out_scale, double out_bias,
                                         int nx, int ng) {
  const int L = static_cast<int>(W.size());
  if (L < 2 || nx + 1 > 16) return nullptr;
  auto P = std::make_shared<MlpPack>();
  P->nx = nx;
  P->ng = ng;
  P->nz = nx + ng + 1;
  P->m = nx + 1;
  P->nv = (P->m + 3) / 4;
  P->mp = 4 * P->nv;
  P->nh = L - 1;
  P->itau = nx + ng;
  P->out_scale = out_scale;
  P->out_bias = out_bias;
  P->n.push_back(P->nz);
  for (int i = 0; i < P->nh; ++i) P->n.push_back(rows[i]);
  for (int v : P->n) P->npad.push_back(pad4(v));
  P->rows = 0;
  for (int i = 0; i < P->nh; ++i) {
    P->roff.push_back(P->rows);
    P->rows += P->n[i + 1];
  }
  for (int i = 0; i < P->nh; ++i) {
    const int r = rows[i], c = cols[i], rp = P->npad[i + 1], cp = P->npad[i];
    AlignedBuffer Wi(static_cast<std::size_t>(r) * cp), Wti(static_cast<std::size_t>(c) * rp), bi(rp);
    for (int rr = 0; rr < r; ++rr) {
      for (int cc = 0; cc < c; ++cc) {
        const double v = W[i][static_cast<std::size_t>(cc) * r + rr];  // column-major source
        Wi.data()[rr * cp + cc] = v;
        Wti.data()[cc * rp + rr] = v;
      }
      bi.data()[rr] = b[i][rr];
    }
    P->W.push_back(std::move(Wi));
    P->Wt.push_back(std::move(Wti));
    P->b.push_back(std::move(bi));
  }
  P->wout = AlignedBuffer(P->npad[P->nh]);
  for (int j = 0; j < P->n[P->nh]; ++j) P->wout.data()[j] = W[L - 1][j];  // 1 x n row
  P->bout = b[L - 1][0];
  P->mean = AlignedBuffer(P->nz);
  P->inv_std = AlignedBuffer(P->nz);
  for (int k = 0; k < P->nz; ++k) {
    P->mean.data()[k] = mean[k];
    P->inv_std.data()[k] = inv_std[k];
  }
  const int n1 = P->n[1];
  P->J0 = AlignedBuffer(static_cast<std::size_t>(n1) * P->mp);
  for (int r = 0; r < n1; ++r) {
    for (int k = 0; k < P->m; ++k) {
      const int idx = k < nx ? k : P->itau;
      P->J0.data()[r * P->mp + k] = W[0][static_cast<std::size_t>(idx) * n1 + r] * inv_std[idx];
    }
  }
  // Constants of the batched kernel.
  const int m = P->m, mp = P->mp;
  const double* J0 = P->J0.data();
  P->ntri = m * (m + 1) / 2;
  P->Q0 = AlignedBuffer(static_cast<std::size_t>(P->ntri) * n1);
  for (int k = 0, t = 0; k < m; ++k)
    for (int l = 0; l <= k; ++l, ++t)
      for (int j = 0; j < n1; ++j) P->Q0.data()[t * n1 + j] = J0[j * mp + k] * J0[j * mp + l];
  if (P->nh >= 2) {
    const int n2 = P->n[2];
    const double* W1 = P->W[1].data();
    const int ld = P->npad[1];
    P->P1 = AlignedBuffer(static_cast<std::size_t>(n2) * m * n1);
    for (int r = 0; r < n2; ++r)
      for (int k = 0; k < m; ++k)
        for (int j = 0; j < n1; ++j) P->P1.data()[(r * m + k) * n1 + j] = W1[r * ld + j] * J0[j * mp + k];
  }
  return P;
}

// ---------------------------------------------------------------- SIMD helpers
namespace {
typedef double v4d __attribute__((vector_size(32)));
typedef long long v4i __attribute__((vector_size(32)));
#define DMPC_AI inline __attribute__((always_inline))

DMPC_AI v4d bc(double s) { return v4d{s, s, s, s}; }
DMPC_AI v4d ld(const double* p) { return *reinterpret_cast<const v4d*>(p); }
DMPC_AI void st(double* p, v4d v) { *reinterpret_cast<v4d*>(p) = v; }
DMPC_AI double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/// tanh of 4 lanes: sign(x) E / (E + 2), E = expm1(2|x|) (2|x| clamped to 40, where tanh = 1
/// in double). expm1(y) = 2^n (expm1(r) + 1) - 1, y = n ln2 + r, |r| <= ln2 / 2 (Cody-Waite,
/// fdlibm's split of ln2), expm1(r) by its Taylor polynomial of degree 13 (truncation < 2e-17
/// relative). NaN propagates.
DMPC_AI v4d vtanh(v4d x) {
  const v4i sign = {LLONG_MIN, LLONG_MIN, LLONG_MIN, LLONG_MIN};
  const v4i xi = reinterpret_cast<v4i>(x);
  const v4i sgn = xi & sign;
  const v4d ax = reinterpret_cast<v4d>(xi & ~sign);
  v4d y = ax + ax;
  const v4i big = reinterpret_cast<v4i>(y > bc(40.0));
  y = reinterpret_cast<v4d>((reinterpret_cast<v4i>(bc(40.0)) & big) | (reinterpret_cast<v4i>(y) & ~big));
  const v4d magic = bc(6755399441055744.0);  // 1.5 * 2^52: adding it rounds to an integer
  const v4d t = y * bc(1.4426950408889634074) + magic;
  const v4d n = t - magic;
  v4d r = y - n * bc(6.93147180369123816490e-01);
  r = r - n * bc(1.90821492927058770002e-10);
  v4d q = bc(1.0 / 6227020800.0);                  // 1/13!
  q = q * r + bc(1.0 / 479001600.0);                // 1/12!
  q = q * r + bc(1.0 / 39916800.0);
  q = q * r + bc(1.0 / 3628800.0);
  q = q * r + bc(1.0 / 362880.0);
  q = q * r + bc(1.0 / 40320.0);
  q = q * r + bc(1.0 / 5040.0);
  q = q * r + bc(1.0 / 720.0);
  q = q * r + bc(1.0 / 120.0);
  q = q * r + bc(1.0 / 24.0);
  q = q * r + bc(1.0 / 6.0);
  q = q * r + bc(0.5);
  q = q * r + bc(1.0);
  const v4d p = q * r;  // expm1(r)
  const v4i ni = reinterpret_cast<v4i>(t) - reinterpret_cast<v4i>(magic);
  const v4i one023 = {1023, 1023, 1023, 1023};
  const v4d s = reinterpret_cast<v4d>((ni + one023) << 52);  // 2^n
  const v4d em = s * p + (s - bc(1.0));
  const v4d res = em / (em + bc(2.0));
  return reinterpret_cast<v4d>(reinterpret_cast<v4i>(res) | sgn);
}

// ---------------------------------------------------------------- kernels
/// Rows 4 KB .. 4 KB + 3 of the lower triangle of S = sum_{R in [R0, R1)} A_R B_R^T restricted to
/// the column vectors v <= KB (A, B: rows of 4 NV doubles): S(4 KB + a, 4 v + l) +=
/// A_R(4 KB + a) B_R(4 v + l). Compile-time trip counts keep the accumulators in registers.
/// ACC: add to S instead of overwriting it.
template <int NV, int KB, bool ACC>
DMPC_AI void sym_rows(const double* A, const double* B, int R0, int R1, double* S) {
  constexpr int MP = 4 * NV;
  v4d acc[4][KB + 1];
  for (int a = 0; a < 4; ++a)
    for (int v = 0; v <= KB; ++v) acc[a][v] = ACC ? ld(S + (4 * KB + a) * MP + 4 * v) : bc(0.0);
  for (int R = R0; R < R1; ++R) {
    const double* Ar = A + R * MP + 4 * KB;
    const double* Br = B + R * MP;
    v4d br[KB + 1];
    for (int v = 0; v <= KB; ++v) br[v] = ld(Br + 4 * v);
    for (int a = 0; a < 4; ++a) {
      const v4d e = bc(Ar[a]);
      for (int v = 0; v <= KB; ++v) acc[a][v] += e * br[v];
    }
  }
  for (int a = 0; a < 4; ++a)
    for (int v = 0; v <= KB; ++v) st(S + (4 * KB + a) * MP + 4 * v, acc[a][v]);
}

/// All row blocks of the lower triangle (see sym_rows).
template <int NV, bool ACC, int KB = 0>
DMPC_AI void sym_lower(const double* A, const double* B, int R0, int R1, double* S) {
  sym_rows<NV, KB, ACC>(A, B, R0, R1, S);
  if constexpr (KB + 1 < NV) sym_lower<NV, ACC, KB + 1>(A, B, R0, R1, S);
}

/// dJn = W diag(ds1) Jp (+ W diag(s1) dJp if SECOND), rows of 4 NV, nout x nin.
template <int NV, bool SECOND>
DMPC_AI void djac(const double* Wi, int np, int nin, int nout, const double* s1, const double* ds1,
                  const double* Jp, const double* dJp, double* dJn) {
  constexpr int MP = 4 * NV;
  int r = 0;
  for (; r + 2 <= nout; r += 2) {
    v4d acc[2][NV];
    for (int a = 0; a < 2; ++a)
      for (int v = 0; v < NV; ++v) acc[a][v] = bc(0.0);
    for (int j = 0; j < nin; ++j) {
      v4d jr[NV], djr[NV];
      for (int v = 0; v < NV; ++v) {
        jr[v] = ld(Jp + j * MP + 4 * v);
        if (SECOND) djr[v] = ld(dJp + j * MP + 4 * v);
      }
      for (int a = 0; a < 2; ++a) {
        const double wr = Wi[(r + a) * np + j];
        const v4d c1 = bc(wr * ds1[j]);
        if (SECOND) {
          const v4d c2 = bc(wr * s1[j]);
          for (int v = 0; v < NV; ++v) acc[a][v] += c1 * jr[v] + c2 * djr[v];
        } else {
          for (int v = 0; v < NV; ++v) acc[a][v] += c1 * jr[v];
        }
      }
    }
    for (int a = 0; a < 2; ++a)
      for (int v = 0; v < NV; ++v) st(dJn + (r + a) * MP + 4 * v, acc[a][v]);
  }
  for (; r < nout; ++r) {
    v4d acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = bc(0.0);
    for (int j = 0; j < nin; ++j) {
      const double wr = Wi[r * np + j];
      const v4d c1 = bc(wr * ds1[j]);
      for (int v = 0; v < NV; ++v) acc[v] += c1 * ld(Jp + j * MP + 4 * v);
      if (SECOND) {
        const v4d c2 = bc(wr * s1[j]);
        for (int v = 0; v < NV; ++v) acc[v] += c2 * ld(dJp + j * MP + 4 * v);
      }
    }
    for (int v = 0; v < NV; ++v) st(dJn + r * MP + 4 * v, acc[v]);
  }
}

template <int NV>
DMPC_AI void diff_impl(const MlpPack& P, MlpWork& w, bool grad, bool hessian) {
  constexpr int MP = 4 * NV;
  const int nh = P.nh;
  // Forward pass, vectorised over the output units (W^T rows).
  for (int i = 0; i < nh; ++i) {
    const int nin = P.n[i], np = P.npad[i + 1];
    const double* Wt = P.Wt[i].data();
    const double* hin = w.h[i].data();
    for (int r = 0; r < np; r += 4) {
      v4d acc = ld(P.b[i].data() + r);
      for (int j = 0; j < nin; ++j) acc += ld(Wt + j * np + r) * bc(hin[j]);
      const v4d th = vtanh(acc);
      const v4d s1 = bc(1.0) - th * th;
      const v4d s2 = bc(-2.0) * th * s1;
      st(w.h[i + 1].data() + r, th);
      st(w.s1[i].data() + r, s1);
      st(w.s2[i].data() + r, s2);
      st(w.s3[i].data() + r, bc(-2.0) * s1 * s1 - bc(2.0) * th * s2);
    }
  }
  {
    v4d acc = bc(0.0);
    for (int r = 0; r < P.npad[nh]; r += 4) acc += ld(P.wout.data() + r) * ld(w.h[nh].data() + r);
    w.y = hsum(acc) + P.bout;
  }
  if (!grad) return;
  // Reverse pass: lam[i] = dy/dh_{i+1}; c = lam_{i+1} tanh''.
  std::memcpy(w.lam[nh - 1].data(), P.wout.data(), sizeof(double) * P.npad[nh]);
  for (int i = nh - 1; i >= 0; --i) {
    const int nout = P.n[i + 1], np = P.npad[i];
    const double* Wi = P.W[i].data();
    const double* lam = w.lam[i].data();
    double* out = i > 0 ? w.lam[i - 1].data() : w.lam0.data();
    double* c = w.c.data() + P.roff[i];
    for (int j = 0; j < np; j += 4) st(out + j, bc(0.0));
    for (int r = 0; r < nout; ++r) {
      const v4d mu = bc(lam[r] * w.s1[i].data()[r]);
      c[r] = lam[r] * w.s2[i].data()[r];
      for (int j = 0; j < np; j += 4) st(out + j, ld(out + j) + ld(Wi + r * np + j) * mu);
    }
  }
  if (!hessian) return;
  // Forward Jacobians J_i = d a_i / d zeta (rows of MP), J_0 constant.
  double* J = w.J.data();
  std::memcpy(J, P.J0.data(), sizeof(double) * P.n[1] * MP);
  for (int i = 1; i < nh; ++i) {
    const int nin = P.n[i], nout = P.n[i + 1], np = P.npad[i];
    const double* Jp = J + P.roff[i - 1] * MP;
    double* Jn = J + P.roff[i] * MP;
    const double* Wi = P.W[i].data();
    const double* s1 = w.s1[i - 1].data();
    int r = 0;
    for (; r + 4 <= nout; r += 4) {
      v4d acc[4][NV];
      for (int a = 0; a < 4; ++a)
        for (int v = 0; v < NV; ++v) acc[a][v] = bc(0.0);
      for (int j = 0; j < nin; ++j) {
        v4d jr[NV];
        for (int v = 0; v < NV; ++v) jr[v] = ld(Jp + j * MP + 4 * v);
        for (int a = 0; a < 4; ++a) {
          const v4d coef = bc(Wi[(r + a) * np + j] * s1[j]);
          for (int v = 0; v < NV; ++v) acc[a][v] += coef * jr[v];
        }
      }
      for (int a = 0; a < 4; ++a)
        for (int v = 0; v < NV; ++v) st(Jn + (r + a) * MP + 4 * v, acc[a][v]);
    }
    for (; r < nout; ++r) {
      v4d acc[NV];
      for (int v = 0; v < NV; ++v) acc[v] = bc(0.0);
      for (int j = 0; j < nin; ++j) {
        const v4d coef = bc(Wi[r * np + j] * s1[j]);
        for (int v = 0; v < NV; ++v) acc[v] += coef * ld(Jp + j * MP + 4 * v);
      }
      for (int v = 0; v < NV; ++v) st(Jn + r * MP + 4 * v, acc[v]);
    }
  }
  // E = diag(c) J, then the lower triangle of H = sum_rows E_r^T J_r (blocks of 4 rows of H).
  double* E = w.E.data();
  const int rows = P.rows;
  for (int R = 0; R < rows; ++R) {
    const v4d cr = bc(w.c.data()[R]);
    for (int v = 0; v < NV; ++v) st(E + R * MP + 4 * v, cr * ld(J + R * MP + 4 * v));
  }
  sym_lower<NV, false>(E, J, 0, rows, w.H.data());
}

template <int NV>
DMPC_AI void third_impl(const MlpPack& P, MlpWork& w) {
  constexpr int MP = 4 * NV;
  const int nh = P.nh, rows = P.rows;
  const double* J = w.J.data();
  const double* E = w.E.data();
  double* dJ = w.dJ.data();
  double* dE = w.dE.data();
  double* e = w.e.data();
  v4d vz[NV];
  for (int v = 0; v < NV; ++v) vz[v] = ld(w.vz.data() + 4 * v);
  // e = J v (directional derivative of every pre-activation).
  for (int R = 0; R < rows; ++R) {
    v4d acc = bc(0.0);
    for (int v = 0; v < NV; ++v) acc += ld(J + R * MP + 4 * v) * vz[v];
    e[R] = hsum(acc);
  }
  // dJ_0 = 0; dJ_i = W_i [diag(s2 e) J_{i-1} + diag(s1) dJ_{i-1}].
  for (int R = 0; R < rows - P.n[nh]; ++R) {  // ds1 of the layers feeding another layer
    int i = 0;
    while (i + 1 < nh && R >= P.roff[i + 1]) ++i;
    w.ds1.data()[R] = w.s2[i].data()[R - P.roff[i]] * e[R];
  }
  std::memset(dJ, 0, sizeof(double) * P.n[1] * MP);
  for (int i = 1; i < nh; ++i) {
    const double* Jp = J + P.roff[i - 1] * MP;
    const double* dJp = dJ + P.roff[i - 1] * MP;
    const double* ds1 = w.ds1.data() + P.roff[i - 1];
    if (i == 1)
      djac<NV, false>(P.W[i].data(), P.npad[i], P.n[i], P.n[i + 1], w.s1[i - 1].data(), ds1, Jp, dJp,
                      dJ + P.roff[i] * MP);
    else
      djac<NV, true>(P.W[i].data(), P.npad[i], P.n[i], P.n[i + 1], w.s1[i - 1].data(), ds1, Jp, dJp,
                     dJ + P.roff[i] * MP);
  }
  // Reverse tangent: dlam[i] = d lam_{i+1}; dc = dlam s2 + lam s3 e; dE = c dJ + dc J.
  {
    double* dl = w.dlam[nh - 1].data();
    for (int j = 0; j < P.npad[nh]; ++j) dl[j] = 0.0;
  }
  for (int i = nh - 1; i >= 0; --i) {
    const int nout = P.n[i + 1], np = P.npad[i];
    const double* lam = w.lam[i].data();
    const double* dlam = w.dlam[i].data();
    const double* s1 = w.s1[i].data();
    const double* s2 = w.s2[i].data();
    const double* s3 = w.s3[i].data();
    const double* ei = e + P.roff[i];
    double* dci = w.dc.data() + P.roff[i];
    for (int r = 0; r < nout; ++r) dci[r] = dlam[r] * s2[r] + lam[r] * s3[r] * ei[r];
    if (i > 0) {
      double* out = w.dlam[i - 1].data();
      const double* Wi = P.W[i].data();
      for (int j = 0; j < np; j += 4) st(out + j, bc(0.0));
      for (int r = 0; r < nout; ++r) {
        const v4d dmu = bc(dlam[r] * s1[r] + lam[r] * s2[r] * ei[r]);
        for (int j = 0; j < np; j += 4) st(out + j, ld(out + j) + ld(Wi + r * np + j) * dmu);
      }
    }
  }
  for (int R = 0; R < rows; ++R) {
    const v4d cr = bc(w.c.data()[R]), dcr = bc(w.dc.data()[R]);
    for (int v = 0; v < NV; ++v)
      st(dE + R * MP + 4 * v, cr * ld(dJ + R * MP + 4 * v) + dcr * ld(J + R * MP + 4 * v));
  }
  // K = sum_rows (E_r dJ_r^T + dE_r J_r^T), lower triangle; layer 0 has dJ = 0.
  sym_lower<NV, false>(dE, J, 0, rows, w.K.data());
  sym_lower<NV, true>(E, dJ, P.n[1], rows, w.K.data());
}

// ---------------------------------------------------------------- batched kernel
typedef double v4du __attribute__((vector_size(32), aligned(8)));

/// Broadcast of p[0]. AVX: a shuffle of a (possibly unaligned) 4-double load, which GCC folds
/// into one load-only vbroadcastsd m64 (v4d{s, s, s, s} becomes vmovddup + vperm2f128, a second
/// micro-op on the FP pipes). Reads p[0 .. 3]: p must lie in an AlignedBuffer (32 bytes of
/// padding). Baseline ISA: the plain construct (the shuffle form is slow without AVX).
template <bool AVX>
DMPC_AI v4d bcm(const double* p) {
  if constexpr (AVX) {
    return __builtin_shuffle(*reinterpret_cast<const v4du*>(p), v4i{0, 0, 0, 0});
  } else {
    return bc(*p);
  }
}
// Every quantity of a block of 4 NG states is stored as NG consecutive v4d (lane = state):
// item i of an array lives at v[i * NG .. i * NG + NG - 1].

/// Y[o ys + g] = (BIAS ? bias[o] : 0) + sum_j coef[o ldc + j] X[j xs + g] for o < nout, g < NG:
/// a matrix of broadcast scalars times a vector of lanes, 8 / NG output rows at a time (>= 8
/// independent accumulators for the FMA latency).
template <int NG, bool BIAS, bool AVX>
DMPC_AI void bmatvec(const double* coef, int ldc, int nout, int nin, const double* bias, const v4d* X,
                     int xs, v4d* Y, int ys) {
  constexpr int OB = 8 / NG;
  int o = 0;
  for (; o + OB <= nout; o += OB) {
    v4d acc[OB][NG];
    for (int a = 0; a < OB; ++a)
      for (int g = 0; g < NG; ++g) acc[a][g] = BIAS ? bcm<AVX>(bias + o + a) : bc(0.0);
    const double* cr = coef + o * ldc;
    for (int j = 0; j < nin; ++j) {
      v4d x[NG];
      for (int g = 0; g < NG; ++g) x[g] = X[j * xs + g];
      for (int a = 0; a < OB; ++a) {
        const v4d c = bcm<AVX>(cr + a * ldc + j);
        for (int g = 0; g < NG; ++g) acc[a][g] += c * x[g];
      }
    }
    for (int a = 0; a < OB; ++a)
      for (int g = 0; g < NG; ++g) Y[(o + a) * ys + g] = acc[a][g];
  }
  for (; o < nout; ++o) {
    v4d acc[NG];
    for (int g = 0; g < NG; ++g) acc[g] = BIAS ? bcm<AVX>(bias + o) : bc(0.0);
    for (int j = 0; j < nin; ++j) {
      const v4d c = bcm<AVX>(coef + o * ldc + j);
      for (int g = 0; g < NG; ++g) acc[g] += c * X[j * xs + g];
    }
    for (int g = 0; g < NG; ++g) Y[o * ys + g] = acc[g];
  }
}

/// Lower triangle (and a few entries above it) of S = sum_{r < R} E_r J_r^T for one lane group
/// of a block stored with st v4d per item: entry (r, k) of E and J at [(r m + k) st] (readable
/// up to item (R - 1) m + HC + 3), S(k, l) at S[(k HC + l) st] for l <= k (rows k <= m written);
/// blocks of 2 rows k x 4 columns l (8 accumulators).
DMPC_AI void bsym(const v4d* E, const v4d* J, int R, int m, int HC, int st, v4d* S) {
  for (int k = 0; k < m; k += 2) {
    for (int l = 0; l <= k + 1 && l < m; l += 4) {
      v4d acc[2][4];
      for (int a = 0; a < 2; ++a)
        for (int c = 0; c < 4; ++c) acc[a][c] = bc(0.0);
      for (int r = 0; r < R; ++r) {
        const v4d* Er = E + (r * m + k) * st;
        const v4d* Jr = J + (r * m + l) * st;
        const v4d e0 = Er[0], e1 = Er[st];
        for (int c = 0; c < 4; ++c) {
          const v4d jv = Jr[c * st];
          acc[0][c] += e0 * jv;
          acc[1][c] += e1 * jv;
        }
      }
      for (int a = 0; a < 2; ++a)
        for (int c = 0; c < 4; ++c) S[((k + a) * HC + l + c) * st] = acc[a][c];
    }
  }
}

/// Scratch of the batched kernel for blocks of up to 8 states (all v4d, zero-initialised so that
/// the padded entries read by bsym are finite).
struct BatchWork {
  explicit BatchWork(const MlpPack& P) {
    const int m = P.m;
    HC = ((m + 1 + 3) / 4) * 4;
    int maxw = P.nz;
    for (int v : P.n) maxw = v > maxw ? v : maxw;
    const std::size_t G = 2;  // v4d per item (NG <= 2)
    const std::size_t rows1 = P.rows - P.n[1];
    auto buf = [](std::size_t n) { return AlignedBuffer(4 * n); };
    for (int i = 0; i <= P.nh; ++i) h.push_back(buf(G * P.n[i]));
    for (int i = 0; i < P.nh; ++i) {
      s1.push_back(buf(G * P.n[i + 1]));
      s2.push_back(buf(G * P.n[i + 1]));
    }
    a = buf(G * maxw);
    lamA = buf(G * maxw);
    lamB = buf(G * maxw);
    mu = buf(G * maxw);
    lam0 = buf(G * P.nz);
    c = buf(G * P.rows);
    y = buf(G);
    Hp = buf(G * P.ntri);
    // stacked rows of layers >= 1 (J, E, and J with s1 applied), padded past the last row
    J = buf(G * (rows1 * m + HC + 4));
    E = buf(G * (rows1 * m + HC + 4));
    D = buf(G * (rows1 * m + HC + 4));
    Hs = buf(G * (m + 1) * HC);
  }
  static v4d* V(AlignedBuffer& b) { return reinterpret_cast<v4d*>(b.data()); }
  int HC = 0;
  std::vector<AlignedBuffer> h, s1, s2;
  AlignedBuffer a, lamA, lamB, mu, lam0, c, y, Hp, J, E, D, Hs;
};

/// One block of 4 NG states; w.h[0] holds the normalised inputs. Fills w.y, w.lam0 (dy/dzn),
/// w.Hp (layer-0 Hessian term, packed lower triangle) and, when nh >= 2, w.Hs (layers >= 1).
template <int NG, bool AVX>
DMPC_AI void batch_block(const MlpPack& P, BatchWork& w) {
  const int nh = P.nh, m = P.m;
  // Forward pass.
  for (int i = 0; i < nh; ++i) {
    const int nout = P.n[i + 1];
    v4d* a = BatchWork::V(w.a);
    bmatvec<NG, true, AVX>(P.W[i].data(), P.npad[i], nout, P.n[i], P.b[i].data(), BatchWork::V(w.h[i]), NG, a, NG);
    v4d* h = BatchWork::V(w.h[i + 1]);
    v4d* s1 = BatchWork::V(w.s1[i]);
    v4d* s2 = BatchWork::V(w.s2[i]);
    for (int q = 0; q < nout * NG; ++q) {
      const v4d th = vtanh(a[q]);
      const v4d d1 = bc(1.0) - th * th;
      h[q] = th;
      s1[q] = d1;
      s2[q] = bc(-2.0) * th * d1;
    }
  }
  {
    const v4d* h = BatchWork::V(w.h[nh]);
    v4d acc[NG];
    for (int g = 0; g < NG; ++g) acc[g] = bc(P.bout);
    for (int r = 0; r < P.n[nh]; ++r) {
      const v4d c = bcm<AVX>(P.wout.data() + r);
      for (int g = 0; g < NG; ++g) acc[g] += c * h[r * NG + g];
    }
    for (int g = 0; g < NG; ++g) BatchWork::V(w.y)[g] = acc[g];
  }
  // Reverse pass: lam = dy/dh_{i+1}, mu = lam tanh', c_i = lam tanh'', dy/dh_i = W_i^T mu.
  v4d* c = BatchWork::V(w.c);
  v4d* mu = BatchWork::V(w.mu);
  v4d* lamA = BatchWork::V(w.lamA);
  v4d* lamB = BatchWork::V(w.lamB);
  for (int r = 0; r < P.n[nh]; ++r)
    for (int g = 0; g < NG; ++g) lamA[r * NG + g] = bc(P.wout.data()[r]);
  for (int i = nh - 1; i >= 0; --i) {
    const int nout = P.n[i + 1];
    const v4d* s1 = BatchWork::V(w.s1[i]);
    const v4d* s2 = BatchWork::V(w.s2[i]);
    v4d* ci = c + P.roff[i] * NG;
    for (int q = 0; q < nout * NG; ++q) {
      mu[q] = lamA[q] * s1[q];
      ci[q] = lamA[q] * s2[q];
    }
    v4d* out = i > 0 ? lamB : BatchWork::V(w.lam0);
    bmatvec<NG, false, AVX>(P.Wt[i].data(), P.npad[i + 1], P.n[i], nout, nullptr, mu, NG, out, NG);
    v4d* t = lamA;
    lamA = lamB;
    lamB = t;
  }
  // Layer-0 Hessian term: Hp(t) = sum_j Q0(t, j) c_0(j).
  bmatvec<NG, false, AVX>(P.Q0.data(), P.n[1], P.ntri, P.n[1], nullptr, c, NG, BatchWork::V(w.Hp), NG);
  if (nh < 2) return;
  // Jacobians of layers >= 1, rows stacked from layer 1 (row r of layer i at roff[i] - n[1] + r):
  // J_1 = P1 s1_0; J_{i+1} = W_{i+1} diag(s1_i) J_i.
  v4d* J = BatchWork::V(w.J);
  v4d* D = BatchWork::V(w.D);
  const int n1 = P.n[1];
  bmatvec<NG, false, AVX>(P.P1.data(), n1, P.n[2] * m, n1, nullptr, BatchWork::V(w.s1[0]), NG, J, NG);
  for (int i = 2; i < nh; ++i) {
    const int nin = P.n[i], nout = P.n[i + 1];
    const v4d* s1 = BatchWork::V(w.s1[i - 1]);
    const v4d* Jp = J + (P.roff[i - 1] - n1) * m * NG;
    v4d* Dp = D + (P.roff[i - 1] - n1) * m * NG;
    for (int j = 0; j < nin; ++j)
      for (int k = 0; k < m; ++k)
        for (int g = 0; g < NG; ++g) Dp[(j * m + k) * NG + g] = s1[j * NG + g] * Jp[(j * m + k) * NG + g];
    v4d* Jn = J + (P.roff[i] - n1) * m * NG;
    for (int k = 0; k < m; ++k)
      bmatvec<NG, false, AVX>(P.W[i].data(), P.npad[i], nout, nin, nullptr, Dp + k * NG, m * NG, Jn + k * NG, m * NG);
  }
  // E = diag(c) J over the rows of layers >= 1, then S = sum_r E_r J_r^T per lane group.
  const int R = P.rows - n1;
  v4d* E = BatchWork::V(w.E);
  const v4d* c1 = c + n1 * NG;
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < m; ++k)
      for (int g = 0; g < NG; ++g) E[(r * m + k) * NG + g] = c1[r * NG + g] * J[(r * m + k) * NG + g];
  for (int g = 0; g < NG; ++g) bsym(E + g, J + g, R, m, w.HC, NG, BatchWork::V(w.Hs) + g);
}

/// Arguments of kernel_diff_batch.
struct BatchArgs {
  long B;
  const double* X;
  long xs_b, xs_k;
  const double* taus;
  const double* goal;
  double *V, *Vtau, *Vx, *Vtaux, *Vxx;
};

/// Fill the normalised inputs of the block starting at state b0 (n states, lanes past n repeat
/// the last state), run it, and write the outputs of its n states.
template <int NG, bool AVX>
DMPC_AI void batch_run(const MlpPack& P, BatchWork& w, const BatchArgs& A, long b0, int n) {
  const int nx = P.nx, ng = P.ng, m = P.m, itau = P.itau;
  const double* mean = P.mean.data();
  const double* is = P.inv_std.data();
  v4d* zn = BatchWork::V(w.h[0]);
  for (int g = 0; g < NG; ++g) {
    long idx[4];
    for (int l = 0; l < 4; ++l) {
      const int q = 4 * g + l;
      idx[l] = b0 + (q < n ? q : n - 1);
    }
    for (int k = 0; k < nx; ++k) {
      v4d z;
      for (int l = 0; l < 4; ++l) z[l] = A.X[idx[l] * A.xs_b + k * A.xs_k];
      zn[k * NG + g] = (z - bc(mean[k])) * bc(is[k]);
    }
    for (int k = 0; k < ng; ++k) zn[(nx + k) * NG + g] = bc((A.goal[k] - mean[nx + k]) * is[nx + k]);
    v4d t;
    for (int l = 0; l < 4; ++l) t[l] = A.taus[idx[l]];
    zn[itau * NG + g] = (t - bc(mean[itau])) * bc(is[itau]);
  }
  batch_block<NG, AVX>(P, w);
  const double s = P.out_scale;
  const v4d* y = BatchWork::V(w.y);
  const v4d* lam0 = BatchWork::V(w.lam0);
  const v4d* Hp = BatchWork::V(w.Hp);
  const v4d* Hs = BatchWork::V(w.Hs);
  const bool deep = P.nh >= 2;
  const int HC = w.HC;
  for (int g = 0; g < NG; ++g) {
    const int nl = n - 4 * g < 4 ? n - 4 * g : 4;
    if (nl <= 0) break;
    // Scaled outputs of the group: gradient and the (x, tau) x x block of the Hessian.
    v4d gx[16], hrow[16];
    for (int k = 0; k < nx; ++k) gx[k] = bc(s * is[k]) * lam0[k * NG + g];
    const v4d gt = bc(s * is[itau]) * lam0[itau * NG + g];
    const v4d vv = bc(s) * y[g] + bc(P.out_bias);
    for (int l = 0; l < nl; ++l) {
      const long b = b0 + 4 * g + l;
      A.V[b] = vv[l];
      A.Vtau[b] = gt[l];
      for (int k = 0; k < nx; ++k) A.Vx[b * nx + k] = gx[k][l];
    }
    for (int k = 0; k < m; ++k) {
      const int t0 = k * (k + 1) / 2;
      const int lmax = k < nx ? k : nx - 1;  // row tau (k = nx): columns x only
      for (int c = 0; c <= lmax; ++c) {
        v4d hv = Hp[(t0 + c) * NG + g];
        if (deep) hv += Hs[(k * HC + c) * NG + g];
        hrow[c] = bc(s) * hv;
      }
      for (int l = 0; l < nl; ++l) {
        const long b = b0 + 4 * g + l;
        if (k < nx) {
          double* row = A.Vxx + b * nx * nx;
          for (int c = 0; c <= k; ++c) row[k * nx + c] = row[c * nx + k] = hrow[c][l];
        } else {
          for (int c = 0; c < nx; ++c) A.Vtaux[b * nx + c] = hrow[c][l];
        }
      }
    }
  }
  (void)m;
}

template <bool AVX>
DMPC_AI void batch_impl(const MlpPack& P, const BatchArgs& A) {
  BatchWork w(P);
  long b = 0;
  for (; b + 8 <= A.B; b += 8) batch_run<2, AVX>(P, w, A, b, 8);
  for (; b < A.B; b += 4) batch_run<1, AVX>(P, w, A, b, A.B - b < 4 ? static_cast<int>(A.B - b) : 4);
}

void batch_base(const MlpPack& P, const BatchArgs& A) { batch_impl<false>(P, A); }
__attribute__((target("avx2,fma"))) void batch_avx2(const MlpPack& P, const BatchArgs& A) {
  batch_impl<true>(P, A);
}

template <int NV>
void diff_base(const MlpPack& P, MlpWork& w, bool g, bool h) { diff_impl<NV>(P, w, g, h); }
template <int NV>
__attribute__((target("avx2,fma"))) void diff_avx2(const MlpPack& P, MlpWork& w, bool g, bool h) {
  diff_impl<NV>(P, w, g, h);
}
template <int NV>
void third_base(const MlpPack& P, MlpWork& w) { third_impl<NV>(P, w); }
template <int NV>
__attribute__((target("avx2,fma"))) void third_avx2(const MlpPack& P, MlpWork& w) {
  third_impl<NV>(P, w);
}

using DiffFn = void (*)(const MlpPack&, MlpWork&, bool, bool);
using ThirdFn = void (*)(const MlpPack&, MlpWork&);

/// AVX2 + FMA when the CPU has both and DMPC_CRITIC_BASELINE is not set to a non-empty value
/// other than "0" (the switch lets the tests run both variants).
bool use_avx2() {
  static const bool v = [] {
    const char* env = std::getenv("DMPC_CRITIC_BASELINE");
    if (env != nullptr && env[0] != '\0' && !(env[0] == '0' && env[1] == '\0')) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return v;
}

const DiffFn kDiffBase[4] = {diff_base<1>, diff_base<2>, diff_base<3>, diff_base<4>};
const DiffFn kDiffAvx2[4] = {diff_avx2<1>, diff_avx2<2>, diff_avx2<3>, diff_avx2<4>};
const ThirdFn kThirdBase[4] = {third_base<1>, third_base<2>, third_base<3>, third_base<4>};
const ThirdFn kThirdAvx2[4] = {third_avx2<1>, third_avx2<2>, third_avx2<3>, third_avx2<4>};
}  // namespace

void kernel_diff(const MlpPack& P, MlpWork& w, bool grad, bool hessian) {
  (use_avx2() ? kDiffAvx2 : kDiffBase)[P.nv - 1](P, w, grad, hessian);
}

void kernel_third(const MlpPack& P, MlpWork& w) {
  (use_avx2() ? kThirdAvx2 : kThirdBase)[P.nv - 1](P, w);
}

void kernel_diff_batch(const MlpPack& P, long B, const double* X, long xs_b, long xs_k,
                       const double* taus, const double* goal, double* V, double* Vtau, double* Vx,
                       double* Vtaux, double* Vxx) {
  if (B <= 0) return;
  const BatchArgs A{B, X, xs_b, xs_k, taus, goal, V, Vtau, Vx, Vtaux, Vxx};
  (use_avx2() ? batch_avx2 : batch_base)(P, A);
}

const char* kernel_isa() { return use_avx2() ? "avx2+fma" : "baseline"; }

}  // namespace dmpc::detail
