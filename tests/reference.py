"""NumPy float64 implementations written from the equations in the docstrings.

They share no code with jaxrnn: each cell is written out gate by gate.
"""

import numpy as np


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def np_params(params):
  return type(params)(*(None if p is None else np.asarray(p, np.float64)
                        for p in params))


def _bias(b, n):
  return np.zeros(n) if b is None else b


def gate_preactivations(p, x, h, hidden, num_gates):
  """``k -> x W_i[:, k] + b_i[k] + h W_h[:, k] + b_h[k]`` for gate block k."""
  b_i, b_h = _bias(p.b_i, num_gates * hidden), _bias(p.b_h, num_gates * hidden)
  block = lambda k: slice(k * hidden, (k + 1) * hidden)
  return lambda k: (x @ p.w_i[:, block(k)] + b_i[block(k)]
                    + h @ p.w_h[:, block(k)] + b_h[block(k)])


def simple_rnn(p, state, x, activation="tanh"):
  (h,) = state
  H = p.w_h.shape[0]
  a = x @ p.w_i + _bias(p.b_i, H) + h @ p.w_h + _bias(p.b_h, H)
  h = np.tanh(a) if activation == "tanh" else np.maximum(a, 0.0)
  return (h,), h


def lstm(p, state, x):
  h, c = state
  gate = gate_preactivations(p, x, h, p.w_i.shape[1] // 4, 4)
  i, f, g, o = sigmoid(gate(0)), sigmoid(gate(1)), np.tanh(gate(2)), sigmoid(gate(3))
  c = f * c + i * g
  h = o * np.tanh(c)
  return (h, c), h


def peephole_lstm(p, state, x):
  h, c = state
  gate = gate_preactivations(p, x, h, p.w_h.shape[0], 4)
  i = sigmoid(gate(0) + p.p_i * c)
  f = sigmoid(gate(1) + p.p_f * c)
  c_new = f * c + i * np.tanh(gate(2))
  o = sigmoid(gate(3) + p.p_o * c_new)
  h = o * np.tanh(c_new)
  return (h, c_new), h


def cifg_lstm(p, state, x):
  h, c = state
  gate = gate_preactivations(p, x, h, p.w_h.shape[0], 3)
  f, g, o = sigmoid(gate(0)), np.tanh(gate(1)), sigmoid(gate(2))
  c = f * c + (1.0 - f) * g
  h = o * np.tanh(c)
  return (h, c), h


def gru(p, state, x, reset_after=True):
  (h,) = state
  H = p.w_h.shape[0]
  b_i, b_h = _bias(p.b_i, 3 * H), _bias(p.b_h, 3 * H)
  xg = lambda k: x @ p.w_i[:, k * H:(k + 1) * H] + b_i[k * H:(k + 1) * H]
  W = lambda k: p.w_h[:, k * H:(k + 1) * H]
  bh = lambda k: b_h[k * H:(k + 1) * H]
  r = sigmoid(xg(0) + h @ W(0) + bh(0))
  z = sigmoid(xg(1) + h @ W(1) + bh(1))
  if reset_after:  # cuDNN / PyTorch
    n = np.tanh(xg(2) + r * (h @ W(2) + bh(2)))
  else:  # Cho et al. 2014
    n = np.tanh(xg(2) + (r * h) @ W(2) + bh(2))
  h = (1.0 - z) * n + z * h
  return (h,), h


def projected_lstm(p, state, x):
  """The LSTM, then ``h' = (o * tanh(c')) W_p``; ``h`` has size ``proj_size``."""
  (h, c), _ = lstm(p, state, x)
  h = h @ p.w_p
  return (h, c), h


# ---------------------------------------------------- linear recurrences
def g(x):
  """Feng et al. (2024)'s positive candidate map, for the log-space form."""
  return np.where(x >= 0, x + 0.5, sigmoid(x))


def min_gru(p, state, x, log_space=False):
  """Feng et al. (2024), minGRU."""
  (h,) = state
  H = p.w_i.shape[1] // 2
  z = sigmoid(x @ p.w_i[:, :H] + p.b_i[:H])
  candidate = x @ p.w_i[:, H:] + p.b_i[H:]
  candidate = g(candidate) if log_space else candidate
  h = (1 - z) * h + z * candidate
  return (h,), h


def min_lstm(p, state, x, log_space=False):
  """Feng et al. (2024), minLSTM, with the normalised gates."""
  (h,) = state
  H = p.w_i.shape[1] // 3
  f = sigmoid(x @ p.w_i[:, :H] + p.b_i[:H])
  i = sigmoid(x @ p.w_i[:, H:2 * H] + p.b_i[H:2 * H])
  candidate = x @ p.w_i[:, 2 * H:] + p.b_i[2 * H:]
  candidate = g(candidate) if log_space else candidate
  h = f / (f + i) * h + i / (f + i) * candidate
  return (h,), h


def lru(p, state, u):
  """Orvieto et al. (2023), in complex arithmetic."""
  re, im = state
  s = re + 1j * im
  lam = np.exp(-np.exp(p.nu_log) + 1j * np.exp(p.theta_log))
  B = p.b_re + 1j * p.b_im
  C = p.c_re + 1j * p.c_im
  s = lam * s + np.exp(p.gamma_log) * (u @ B)
  y = (s @ C).real + p.d * u
  return (s.real, s.imag), y


def rg_lru(p, state, x, c=8.0):
  """De et al. (2024), the RG-LRU."""
  (h,) = state
  if p.w_i.ndim == 2:
    H = p.w_i.shape[1] // 2
    w_a, w_x = p.w_i[:, :H], p.w_i[:, H:]
  else:  # the diagonal blocks of heads of d channels, a columns first
    n, d = p.w_i.shape[:2]
    H = n * d
    w_a, w_x = np.zeros((H, H)), np.zeros((H, H))
    for k in range(n):
      w_a[k * d:(k + 1) * d, k * d:(k + 1) * d] = p.w_i[k, :, :d]
      w_x[k * d:(k + 1) * d, k * d:(k + 1) * d] = p.w_i[k, :, d:]
  r = sigmoid(x @ w_a + p.b_i[:H])
  i = sigmoid(x @ w_x + p.b_i[H:])
  a = np.exp(-c * r * np.log1p(np.exp(p.a_param)))
  h = a * h + np.sqrt(1 - a ** 2) * (i * x)
  return (h,), h


def slstm(p, state, x, forget_gate="sigmoid"):
  """Beck et al. (2024), sLSTM, stabilised (their equations 15-17), with the
  recurrent weights applied head by head."""
  h, c, n, m = state
  K, d = p.w_h.shape[:2]
  H = K * d
  rec = np.zeros(h.shape[:-1] + (4 * H,))
  for k in range(K):
    head = h[..., k * d:(k + 1) * d] @ p.w_h[k]  # (..., 4d), gates i, f, z, o
    for g in range(4):
      rec[..., g * H + k * d:g * H + (k + 1) * d] = head[..., g * d:(g + 1) * d]
  pre = x @ p.w_i + p.b + rec
  i_t, f_t, z_t, o_t = (pre[..., g * H:(g + 1) * H] for g in range(4))
  log_f = np.log(sigmoid(f_t)) if forget_gate == "sigmoid" else f_t
  m_new = np.maximum(log_f + m, i_t)
  i = np.exp(i_t - m_new)
  f = np.exp(log_f + m - m_new)
  c = f * c + i * np.tanh(z_t)
  n = f * n + i
  h = sigmoid(o_t) * c / n
  return (h, c, n, m_new), h


def mgu(p, state, x, reset_after=True):
  """Zhou et al. (2016)'s minimal gated unit, in Flax's form."""
  (h,) = state
  H = p.w_h.shape[0]
  b_i, b_h = _bias(p.b_i, 2 * H), _bias(p.b_h, 2 * H)
  f = sigmoid(x @ p.w_i[:, :H] + b_i[:H] + h @ p.w_h[:, :H] + b_h[:H])
  if reset_after:
    n = np.tanh(x @ p.w_i[:, H:] + b_i[H:] + f * (h @ p.w_h[:, H:] + b_h[H:]))
  else:
    n = np.tanh(x @ p.w_i[:, H:] + b_i[H:] + (f * h) @ p.w_h[:, H:] + b_h[H:])
  h = (1 - f) * n + f * h
  return (h,), h


def correlate_same(x, w):
  """``x`` ``(N, *spatial, C_in)`` cross-correlated with ``w`` ``(*kernel,
  C_in, C_out)``, stride 1, zero padding ``(k - 1) // 2`` before and
  ``k // 2`` after each spatial axis: a loop over the kernel's offsets."""
  kernel = w.shape[:-2]
  spatial = x.shape[1:-1]
  pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kernel] + [(0, 0)]
  xp = np.pad(x, pads)
  out = np.zeros(x.shape[:-1] + (w.shape[-1],))
  for offset in np.ndindex(*kernel):
    window = xp[(slice(None),) + tuple(slice(o, o + s) for o, s in zip(offset, spatial))]
    out += window @ w[offset]
  return out


def conv_lstm(p, state, x):
  """Shi et al. (2015), eq. (3) without peepholes; gates i, f, g, o."""
  h, c = state
  hidden = p.w_h.shape[-2]
  z = (correlate_same(x, p.w_i) + _bias(p.b_i, 4 * hidden)
       + correlate_same(h, p.w_h) + _bias(p.b_h, 4 * hidden))
  zi, zf, zg, zo = np.split(z, 4, axis=-1)
  c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
  h = sigmoid(zo) * np.tanh(c)
  return (h, c), h


def layer_norm(z, gain, shift=0.0, eps=1e-5):
  mu = z.mean(-1, keepdims=True)
  var = ((z - mu) ** 2).mean(-1, keepdims=True)
  return gain * (z - mu) / np.sqrt(var + eps) + shift


def ln_lstm(p, state, x):
  """Ba et al. (2016): LN of x W_i and h W_h separately, and of c' before tanh."""
  h, c = state
  z = layer_norm(x @ p.w_i, p.g_i) + layer_norm(h @ p.w_h, p.g_h) + p.b
  zi, zf, zg, zo = np.split(z, 4, axis=-1)
  c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
  h = sigmoid(zo) * np.tanh(layer_norm(c, p.g_c, p.b_c))
  return (h, c), h


def ln_gru(p, state, x):
  (h,) = state
  xr, xz, xn = np.split(layer_norm(x @ p.w_i, p.g_i) + p.b, 3, axis=-1)
  hr, hz, hn = np.split(layer_norm(h @ p.w_h, p.g_h), 3, axis=-1)
  r, z = sigmoid(xr + hr), sigmoid(xz + hz)
  n = np.tanh(xn + r * (hn + p.b_hn))
  h = (1 - z) * n + z * h
  return (h,), h


# ------------------------------------------------- matrix-state cells (heads)
def _heads(a, heads):
  return a.reshape(a.shape[:-1] + (heads, a.shape[-1] // heads))


def _l2(a, eps=1e-6):
  return a / np.sqrt(np.sum(a * a, axis=-1, keepdims=True) + eps)


def gla(p, state, x, heads, decay="gated", feature_map="identity"):
  """Yang et al. (2024), eq. for GLA: S_t = diag(α_t) S_{t-1} + k_tᵀ v_t,
  o_t = q_t S_t (S is d_k × d_v), α = σ(x W1 W2 + b)^(1/16); RetNet's
  γ_h = 1 − 2^(−5−h); linear attention α = 1, φ = elu + 1."""
  (S,) = state
  phi = (lambda a: np.where(a > 0, a + 1, np.exp(a))) if feature_map == "elu" else (
      lambda a: a)
  q, k, v = (_heads(phi(x @ p.w_q), heads), _heads(phi(x @ p.w_k), heads),
             _heads(x @ p.w_v, heads))
  q = q / np.sqrt(q.shape[-1])
  if decay == "gated":
    alpha = _heads(sigmoid((x @ p.w_a1) @ p.w_a2 + p.b_a) ** (1 / 16), heads)
  elif decay == "fixed":
    alpha = np.broadcast_to((1 - 2.0 ** (-5 - np.arange(heads)))[:, None], q.shape)
  else:
    alpha = np.ones(q.shape)
  S = alpha[..., :, None] * S + k[..., :, None] * v[..., None, :]
  o = np.einsum("...k,...kv->...v", q, S)
  return (S,), o.reshape(o.shape[:-2] + (-1,))


def mlstm(p, state, x, heads):
  """Beck et al. (2024), eq. 19-27, *unstabilised*: C_t = f C + i v kᵀ
  (d_v × d_k), n_t = f n + i k, h = o ⊙ C q / max(|nᵀ q|, 1), with
  i = exp(ĩ), f = σ(f̃), k = x W_k / sqrt(d_k). ``state`` is (C, n)."""
  C, n = state
  q, k, v = (_heads(x @ p.w_q, heads), _heads(x @ p.w_k, heads),
             _heads(x @ p.w_v, heads))
  k = k / np.sqrt(k.shape[-1])
  i = np.exp(x @ p.w_i + p.b_i)[..., None]
  f = sigmoid(x @ p.w_f + p.b_f)[..., None]
  C = f[..., None] * C + i[..., None] * v[..., :, None] * k[..., None, :]
  n = f * n + i * k
  h = np.einsum("...vk,...k->...v", C, q) / np.maximum(
      np.abs(np.sum(n * q, axis=-1)), 1.0)[..., None]
  o = sigmoid(x @ p.w_o + p.b_o)
  return (C, n), o * h.reshape(h.shape[:-2] + (-1,))


def delta_net(p, state, x, heads, gated=False, negative_eigenvalues=False):
  """Yang et al. (2024, 2025), value-major as the papers write it:
  S_t = S_{t-1} α_t (I − β_t k_t k_tᵀ) + β_t v_t k_tᵀ, o_t = S_t q_t, with
  L2-normalised q (over sqrt(d_k)) and k; α = 1 for DeltaNet, else
  exp(−exp(a) softplus(x w_a + b_a))."""
  (S,) = state  # (..., heads, d_v, d_k)
  q = _l2(_heads(x @ p.w_q, heads))
  q = q / np.sqrt(q.shape[-1])
  k = _l2(_heads(x @ p.w_k, heads))
  v = _heads(x @ p.w_v, heads)
  beta = sigmoid(x @ p.w_beta + p.b_beta) * (2 if negative_eigenvalues else 1)
  alpha = np.ones(beta.shape)
  if gated:
    alpha = np.exp(-np.exp(p.a_log) * np.log1p(np.exp(x @ p.w_a + p.b_a)))
  eye = np.eye(k.shape[-1])
  transition = alpha[..., None, None] * (
      eye - beta[..., None, None] * k[..., :, None] * k[..., None, :])
  S = S @ transition + beta[..., None, None] * v[..., :, None] * k[..., None, :]
  o = np.einsum("...vk,...k->...v", S, q)
  return (S,), o.reshape(o.shape[:-2] + (-1,))


def s6(p, state, x):
  """Gu & Dao (2023), Algorithm 2 with the reference scan's discretisation:
  h = exp(Δ A) h + Δ B x, y = C h + D x, A = −exp(a_log)."""
  (h,) = state
  R, N = p.w_dt.shape[0], p.a_log.shape[1]
  proj = x @ p.w_x
  dt = np.log1p(np.exp(proj[..., :R] @ p.w_dt + p.b_dt))
  B, C = proj[..., R:R + N], proj[..., R + N:]
  h = np.exp(dt[..., None] * -np.exp(p.a_log)) * h + (dt * x)[..., None] * B[..., None, :]
  return (h,), np.einsum("...dn,...n->...d", h, C) + p.d * x
