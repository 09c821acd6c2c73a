"""BANet's spatio-temporal module: a Restormer U-Net over (parameter x time).

Stage 2 of BANet stacks the per-frame 102-vectors of a 64-frame chunk into a
1-channel "image" with height = parameter index and width = time, and refines
it with a 3-level Restormer (Zamir et al. 2022) whose down/up-sampling acts on
the time axis only. Convolutions therefore mix neighbouring parameters and
neighbouring frames; the channel ("transposed") attention of every block sees
all (parameter, frame) positions at once.

Differences from the image Restormer, as in the official BANet code: resampling
is a 3x3 conv that keeps the channel count followed by a 1-D pixel
(un)shuffle along time (factors 2 then 4, so level 3 has 8*dim channels); there
is no refinement stage in the forward pass and no global residual.

Layout: arrays inside are NHWC = (batch, parameter, time, channel). Parameter
and sub-module names follow the official PyTorch module names (patch_embed,
encoder_level1_0, down1_2, ..., fusion; norm1/attn/norm2/ffn; qkv, qkv_dwconv,
project_out, temperature; project_in, dwconv) so a state-dict converter is a
renaming plus an OIHW -> HWIO kernel transpose and a (heads, 1, 1) -> (heads,)
temperature reshape.

Formulation (for speed on CPU; same parameters and, up to float rounding, same
outputs and gradients as the direct lax/autodiff transcription, which
tests/test_restormer.py keeps as a reference): depthwise convs are shifted
multiply-adds with a written-out backward pass (`depthwise_conv`), 1x1 convs matmuls
whose backward pass feeds the output gradient only to matmuls (`pointwise_conv`), the
conv1x1 -> depthwise pairs run per q/k/v (or GELU/gate) channel group instead of being
sliced afterwards, the attention's L2 normalisation is folded into the (c x c) logits
and its output projection into one (d x d) matrix per batch element (`MDTA`), and the
GELU gate has a written-out backward pass (`gelu_gate`). See
benchmarks/restormer_speed.py and benchmarks/README.md for the timings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
Dtype = Any

# Restormer's own LayerNorm epsilon (added to the biased variance).
LAYER_NORM_EPS = 1e-5
# torch.nn.functional.normalize's default: x / max(||x||, eps).
L2_NORM_EPS = 1e-12


def pixel_unshuffle_time(x: Array, factor: int) -> Array:
  """Moves groups of `factor` consecutive time steps into channels.

  Args:
    x: (B, H, W, C), W (time) divisible by `factor`.
    factor: r >= 1.

  Returns:
    (B, H, W // r, r * C) with, factor-major,
      y[b, h, w, j * C + c] = x[b, h, w * r + j, c],  0 <= j < r, 0 <= c < C.

  Spatially this is torch.nn.PixelUnshuffle restricted to the width axis, but
  the channel order is the official BANet PixelUnshuffle1D one (time offset j
  outer, source channel c inner), not torch's 2-D order (c outer: c * r + j).
  The order only matters when porting the weights of the following conv.
  """
  b, h, w, c = x.shape
  if factor < 1 or w % factor:
    raise ValueError(f'pixel_unshuffle_time: time length {w} must be divisible by the '
                     f'factor {factor} (>= 1); input shape {x.shape} (B, H, W, C)')
  # (B, H, W/r, r, C): flattening the last two axes puts j outer, c inner.
  return x.reshape(b, h, w // factor, factor * c)


def pixel_shuffle_time(x: Array, factor: int) -> Array:
  """Inverse of `pixel_unshuffle_time`: channels back into time steps.

  Args:
    x: (B, H, W, C), C divisible by `factor`.
    factor: r >= 1.

  Returns:
    (B, H, W * r, C // r) with y[b, h, w * r + j, c] = x[b, h, w, j * (C // r) + c].
  """
  b, h, w, c = x.shape
  if factor < 1 or c % factor:
    raise ValueError(f'pixel_shuffle_time: channel count {c} must be divisible by the '
                     f'factor {factor} (>= 1); input shape {x.shape} (B, H, W, C)')
  return x.reshape(b, h, w * factor, c // factor)


def _pad_hw(x: Array, p: int) -> Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def _depthwise_taps(xp: Array, kernel: Array) -> Array:
  """sum_{i,j} xp[:, i:i+H, j:j+W] * kernel[i, j] for the zero-padded xp (B, H+k-1,
  W+k-1, C) and kernel (k, k, C): one loop over the output."""
  k = kernel.shape[0]
  h, w = xp.shape[1] - k + 1, xp.shape[2] - k + 1
  y = None
  for i in range(k):
    for j in range(k):
      term = xp[:, i:i + h, j:j + w] * kernel[i, j]
      y = term if y is None else y + term
  return y


def _depthwise_sum(x: Array, kernel: Array) -> Array:
  """Stride-1 'same' depthwise cross-correlation (PyTorch's Conv2d(groups=C) without
  bias) as k*k shifted multiply-adds of the zero-padded input. x: (B, H, W, C);
  kernel: (k, k, C)."""
  return _depthwise_taps(_pad_hw(x, kernel.shape[0] // 2), kernel)


def _shift(x: Array, di: int, dj: int) -> Array:
  """y[:, h, w] = x[:, h + di, w + dj], zero where that falls outside x."""
  _, h, w, _ = x.shape
  src = x[:, max(di, 0):h + min(di, 0), max(dj, 0):w + min(dj, 0)]
  return jnp.pad(src, ((0, 0), (max(-di, 0), max(di, 0)), (max(-dj, 0), max(dj, 0)), (0, 0)))


def _depthwise_shifted(x: Array, kernel: Array) -> Array:
  """`_depthwise_sum` with each term shifted and zero-filled on its own, no padded copy
  of x. Faster for the input gradient, whose only consumers are matmuls; in the forward
  pass, where the result has several elementwise consumers, XLA:CPU then recomputes or
  materialises the shifted terms for each of them (1.7x slower overall)."""
  k = kernel.shape[0]
  p = k // 2
  y = x * kernel[p, p]
  for i in range(k):
    for j in range(k):
      if (i, j) != (p, p):
        y = y + _shift(x * kernel[i, j], i - p, j - p)
  return y


def _fold_size(h: int) -> int:
  """Rows per group in `_depthwise_kernel_grad`: about h / 6 (at most 32 for tall
  inputs, so the unrolled sums stay short), preferably a divisor of h (no padding)."""
  lo = -(-h // max(6, -(-h // 32)))
  return next((f for f in range(lo, min(h, 2 * lo) + 1) if h % f == 0), lo)


def _depthwise_kernel_grad(xp: Array, g: Array, k: int, acc_dtype) -> Array:
  """dL/dkernel of the depthwise conv: d[i, j, c] = sum_{b,h,w} xp[b, h+i, w+j, c] g[b, h, w, c].

  xp is the zero-padded input (B, H+k-1, W+k-1, C), g the output cotangent (B, H, W, C).
  Autodiff of the shifted sum gives k*k `sum(slice(xp) * g)` reductions, for which
  XLA:CPU first copies each shifted slice. Here the rows are taken in blocks of f
  (`_fold_size`) and, for each tap, the f rows of a block are added up as f strided
  slices: one elementwise pass over xp and g per tap with no copies, leaving (k*k, B,
  H/f, W, C) partial sums to reduce.
  """
  _, h, w, c = g.shape
  f = _fold_size(h)
  hp = -(-h // f) * f  # rows padded with zeros to whole blocks (none when f divides H)
  xp = jnp.pad(xp.astype(acc_dtype), ((0, 0), (0, hp - h), (0, 0), (0, 0)))
  g = jnp.pad(g.astype(acc_dtype), ((0, 0), (0, hp - h), (0, 0), (0, 0)))
  taps = []
  for i in range(k):
    for j in range(k):
      acc = None
      for r in range(f):
        term = xp[:, i + r:i + r + hp:f, j:j + w] * g[:, r:hp:f]
        acc = term if acc is None else acc + term
      taps.append(acc)
  return jnp.stack(taps).sum(axis=(1, 2, 3)).reshape(k, k, c)


@jax.custom_vjp
def depthwise_conv(x: Array, kernel: Array) -> Array:
  """Stride-1 'same' (zero-padded) depthwise conv in NHWC: y[..., c] = x[..., c] (*) kernel[..., c].

  Args:
    x: (B, H, W, C).
    kernel: (k, k, C), k odd; cross-correlation as PyTorch's Conv2d(C, C, k,
      padding=k // 2, groups=C) and lax.conv_general_dilated(feature_group_count=C).

  Returns:
    (B, H, W, C) in the dtype of x * kernel.

  Equal to the lax convolution up to float rounding (same terms, another summation
  order), but 10-40x faster on CPU, where XLA's grouped convolution and, above all, its
  kernel gradient are slow (at the paper size lax took 0.1-0.3 s per forward and up
  to 7 s per backward of one such conv). The backward pass is written out too: the
  input gradient is the same shifted sum with the flipped kernel (`_depthwise_shifted`),
  the kernel gradient `_depthwise_kernel_grad`; the padded input is kept from the
  forward pass.
  """
  return _depthwise_sum(x, kernel)


def _depthwise_fwd(x, kernel):
  xp = _pad_hw(x, kernel.shape[0] // 2)
  return _depthwise_taps(xp, kernel), (xp, kernel)


def _depthwise_bwd(res, g):
  xp, kernel = res
  k = kernel.shape[0]
  dx = _depthwise_shifted(g, kernel[::-1, ::-1]).astype(xp.dtype)
  acc = jnp.promote_types(jnp.promote_types(xp.dtype, g.dtype), jnp.float32)
  dk = _depthwise_kernel_grad(xp, g, k, acc).astype(kernel.dtype)
  return dx, dk


depthwise_conv.defvjp(_depthwise_fwd, _depthwise_bwd)


@jax.custom_vjp
def pointwise_conv(x2: Array, kernel: Array, bias: Array | None) -> Array:
  """A 1x1 conv on flattened positions: x2 (N, C_in) @ kernel (C_in, C_out) [+ bias].

  The backward pass is written out so that the output gradient g feeds nothing but
  matmuls: dx = g W^T, dW = x^T g and the bias gradient as the matrix-vector product
  1^T g (instead of autodiff's column sum). XLA:CPU duplicates a cheap elementwise
  producer into every fusible consumer (a transposing copy for dW, a sum for the bias);
  in the residual stream that producer is the chain of LayerNorm-backward terms of all
  blocks above, so each block recomputed the chain from the top of its level (quadratic
  in the blocks, about a third of the backward pass at the paper size). A matmul
  consumer makes XLA materialise g once.
  """
  y = jnp.dot(x2, kernel)
  return y if bias is None else y + bias


def _pointwise_fwd(x2, kernel, bias):
  return pointwise_conv(x2, kernel, bias), (x2, kernel, bias)


def _pointwise_bwd(res, g):
  x2, kernel, bias = res
  dx = jnp.dot(g, kernel.T).astype(x2.dtype)
  dk = jnp.dot(x2.T, g).astype(kernel.dtype)
  db = None if bias is None else jnp.dot(jnp.ones((g.shape[0],), g.dtype), g).astype(bias.dtype)
  return dx, dk, db


pointwise_conv.defvjp(_pointwise_fwd, _pointwise_bwd)


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@jax.custom_vjp
def gelu_gate(x1: Array, x2: Array) -> Array:
  """GDFN's gate: gelu(x1) * x2 with the exact gelu(x) = x/2 (1 + erf(x / sqrt 2)).

  The function of torch.nn.functional.gelu and jax.nn.gelu(approximate=False) (which
  evaluates it through erfc; erf is the cheaper of the two in XLA:CPU and agrees to
  float rounding). The backward pass is written out: one elementwise pass per input,
  instead of autodiff's erfc/exp terms evaluated in the forward pass and kept for the
  backward one.
  """
  return _gelu(x1) * x2


def _gelu_cdf(x1):
  return 0.5 + 0.5 * jax.lax.erf(x1 * jnp.asarray(_SQRT_HALF, x1.dtype))


def _gelu(x1):
  return x1 * _gelu_cdf(x1)


def _gelu_gate_fwd(x1, x2):
  return gelu_gate(x1, x2), (x1, x2)


def _gelu_gate_bwd(res, g):
  x1, x2 = res
  cdf = _gelu_cdf(x1)
  pdf = jnp.exp(-0.5 * x1 * x1) * jnp.asarray(_INV_SQRT_2PI, x1.dtype)
  return g * x2 * (cdf + x1 * pdf), g * (x1 * cdf)


gelu_gate.defvjp(_gelu_gate_fwd, _gelu_gate_bwd)


@jax.custom_vjp
def batched_linear(v: Array, m: Array, bias: Array) -> Array:
  """v (B, N, C_in) @ m (B, C_in, C_out) + bias (C_out,), one matrix per batch element.

  The backward pass mirrors `pointwise_conv`'s: the bias gradient is a matrix-vector
  product, so that the output gradient feeds only dots (see there).
  """
  return jnp.einsum('bni,bio->bno', v, m) + bias


def _batched_linear_fwd(v, m, bias):
  return batched_linear(v, m, bias), (v, m, bias)


def _batched_linear_bwd(res, g):
  v, m, bias = res
  dv = jnp.einsum('bno,bio->bni', g, m).astype(v.dtype)
  dm = jnp.einsum('bni,bno->bio', v, g).astype(m.dtype)
  g2 = g.reshape(-1, g.shape[-1])
  db = jnp.dot(jnp.ones((g2.shape[0],), g.dtype), g2).astype(bias.dtype)
  return dv, dm, db


batched_linear.defvjp(_batched_linear_fwd, _batched_linear_bwd)


def _torch_uniform(bound: float):
  """U(-bound, bound) initialiser (PyTorch's default for Conv2d weights and biases)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _conv_params(module: nn.Module, in_features: int, features: int, k: int, groups: int,
                 use_bias: bool, param_dtype: Dtype) -> tuple[Array, Array | None]:
  """Creates `module`'s 'kernel' (k, k, in/groups, features) and 'bias' (features,) (or
  None) with PyTorch's default initialisation; see `Conv2d`."""
  if k < 1 or k % 2 == 0:
    raise ValueError(f'Conv2d {module.name}: kernel_size must be odd and >= 1, got {k}')
  if in_features % groups or features % groups:
    raise ValueError(f'Conv2d {module.name}: groups={groups} must divide both the '
                     f'input channels ({in_features}) and features ({features})')
  init = _torch_uniform(1.0 / math.sqrt(k * k * (in_features // groups)))
  kernel = module.param('kernel', init, (k, k, in_features // groups, features), param_dtype)
  bias = module.param('bias', init, (features,), param_dtype) if use_bias else None
  return kernel, bias


class Conv2d(nn.Module):
  """Stride-1 'same' 2-D convolution in NHWC, laid out like a PyTorch Conv2d.

  kernel: (k, k, C_in // groups, features) (HWIO); bias: (features,). A depthwise
  conv (groups = C_in = features) thus has a (k, k, 1, C) kernel: as many
  numbers as PyTorch's (C, 1, k, k). Initialisation is PyTorch's default
  (kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for the weight, the same
  bound for the bias, fan_in = k*k*C_in/groups), which is what the official
  Restormer file itself uses. (Whether BANet's N(0, 0.02) re-init helper also
  reaches the Restormer is not established; the dossier does not say.)

  Pointwise convs are matmuls (`pointwise_conv`), depthwise ones shifted multiply-adds
  (`depthwise_conv`); other groupings go to lax.conv_general_dilated.
  """
  features: int
  kernel_size: int = 1
  groups: int = 1
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """x: (B, H, W, C_in) -> (B, H, W, features) in `dtype`."""
    in_features, k = x.shape[-1], self.kernel_size
    kernel, bias = _conv_params(self, in_features, self.features, k, self.groups,
                                self.use_bias, self.param_dtype)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    bias = None if bias is None else bias.astype(self.dtype)
    if k == 1 and self.groups == 1:
      y = pointwise_conv(x.reshape(-1, in_features), kernel[0, 0], bias)
      return y.reshape(x.shape[:-1] + (self.features,))
    if self.groups == in_features == self.features:
      y = depthwise_conv(x, kernel[:, :, 0, :])  # shifted multiply-adds, not lax.conv
    else:
      p = k // 2  # PyTorch padding=k//2 with zeros
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1), padding=((p, p), (p, p)),
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=self.groups)
    return y if bias is None else y + bias


class ConvParams(nn.Module):
  """The parameters of a `Conv2d(features, kernel_size, groups, use_bias)` applied to
  `in_features` channels (same names, shapes and initialisation), returned as (kernel,
  bias or None) in `dtype` instead of applied, for callers that split or fold the
  conv."""
  in_features: int
  features: int
  kernel_size: int = 1
  groups: int = 1
  use_bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self) -> tuple[Array, Array | None]:
    kernel, bias = _conv_params(self, self.in_features, self.features, self.kernel_size,
                                self.groups, self.use_bias, self.param_dtype)
    return kernel.astype(self.dtype), None if bias is None else bias.astype(self.dtype)


def _pointwise_depthwise(x: Array, pw: tuple[Array, Array | None],
                         dw: tuple[Array, Array | None], groups: int) -> list[Array]:
  """depthwise3x3(conv1x1(x)) computed as `groups` independent equal channel groups.

  x: (B, H, W, C_in); pw: ((1, 1, C_in, C), bias); dw: ((k, k, 1, C), bias). Returns the
  `groups` (B, H, W, C / groups) slices of the result, each from its own matmul and
  depthwise conv (both act on output channels independently, so this is the same
  computation). Slicing one (.., C) result instead costs a copy per slice and, in the
  backward pass, a padded re-assembly of the C-channel gradient that XLA:CPU runs
  several times slower than the matmuls it feeds.
  """
  b, h, w, c_in = x.shape
  (pw_kernel, pw_bias), (dw_kernel, dw_bias) = pw, dw
  size = pw_kernel.shape[-1] // groups
  x2 = x.reshape(-1, c_in)
  outs = []
  for i in range(groups):
    sl = slice(i * size, (i + 1) * size)
    u = pointwise_conv(x2, pw_kernel[0, 0, :, sl], None if pw_bias is None else pw_bias[sl])
    y = depthwise_conv(u.reshape(b, h, w, size), dw_kernel[:, :, 0, sl])
    outs.append(y if dw_bias is None else y + dw_bias[sl])
  return outs


class MDTA(nn.Module):
  """Multi-Dconv-head Transposed Attention (channel attention, Restormer).

  qkv = dwconv3x3(conv1x1(x)) (d -> 3d); q, k, v = its three channel thirds;
  channels split head-major (channel = head * (d/heads) + i); q and k are
  L2-normalised along the tokens (all H*W positions); per head
  attn = softmax_over_channels((q k^T) * temperature[head]) is (d/heads)^2;
  out = project_out(attn v). The Gram matrix, normalisation and softmax are
  computed in at least float32 whatever `dtype` is.

  Computed as: q, k, v each from its own slice of the qkv / qkv_dwconv weights;
  logits = (q^T k) / (|q| |k|) (the normalisation applied to the c x c Gram matrix,
  not to the N x c q and k); out = v @ (blockdiag(attn)^T W_out) + b_out, i.e. the
  attention and the output projection folded into one d x d matrix per batch element.
  """
  num_heads: int
  bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """x: (B, H, W, d) -> (B, H, W, d)."""
    b, h, w, d = x.shape
    if d % self.num_heads:
      raise ValueError(f'MDTA {self.name}: {d} channels are not divisible by '
                       f'num_heads={self.num_heads}')
    params = lambda f, k, g, name, cin=d: ConvParams(cin, f, k, g, self.bias, self.dtype,
                                                    self.param_dtype, name=name)()
    temperature = self.param('temperature', nn.initializers.ones, (self.num_heads,),
                             self.param_dtype)
    x = x.astype(self.dtype)
    q, k, v = (t.reshape(b, h * w, d) for t in _pointwise_depthwise(
        x, params(3 * d, 1, 1, 'qkv'), params(3 * d, 3, 3 * d, 'qkv_dwconv', 3 * d), 3))
    heads, c = self.num_heads, d // self.num_heads
    acc = jnp.promote_types(self.dtype, jnp.float32)
    q, k = q.astype(acc), k.astype(acc)
    # L2 normalisation over the tokens, folded into the (c x c) logits instead of
    # dividing (and re-reading) the (N x d) q and k: <q/|q|, k/|k|> = <q, k> / (|q||k|).
    inv_norm = lambda t: 1.0 / jnp.maximum(jnp.sqrt(jnp.sum(t * t, axis=1)), L2_NORM_EPS)
    inv_q = inv_norm(q).reshape(b, heads, c, 1)
    inv_k = inv_norm(k).reshape(b, heads, 1, c)
    gram = jnp.einsum('bnhc,bnhe->bhce', q.reshape(b, -1, heads, c), k.reshape(b, -1, heads, c))
    logits = gram * inv_q * inv_k * temperature.astype(acc)[:, None, None]
    attn = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    # out = project_out(attn v) = v @ M + bias with M = blockdiag(attn)^T @ W_out, a
    # (d x d) matrix per batch element (c*d*d multiply-adds): no (N x d) attn v, and
    # no transposes of v.
    w_out, b_out = params(d, 1, 1, 'project_out')
    m = jnp.einsum('bhie,hio->bheo', attn, w_out[0, 0].reshape(heads, c, d)).reshape(b, d, d)
    if b_out is None:
      b_out = jnp.zeros((d,), self.dtype)
    return batched_linear(v, m, b_out).reshape(b, h, w, d)


class GDFN(nn.Module):
  """Gated-Dconv Feed-forward Network (Restormer).

  hidden = int(d * ffn_expansion_factor); conv1x1 d -> 2*hidden; depthwise 3x3;
  split into (x1, x2) channel halves; exact (erf) GELU(x1) * x2; conv1x1
  hidden -> d. (x1 and x2 are computed from their own halves of the project_in and
  dwconv weights, see `_pointwise_depthwise`.)
  """
  ffn_expansion_factor: float = 2.66
  bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """x: (B, H, W, d) -> (B, H, W, d)."""
    d = x.shape[-1]
    hidden = int(d * self.ffn_expansion_factor)  # truncation, as the official int()
    params = lambda f, k, g, name, cin=d: ConvParams(cin, f, k, g, self.bias, self.dtype,
                                                    self.param_dtype, name=name)()
    x1, x2 = _pointwise_depthwise(x.astype(self.dtype), params(2 * hidden, 1, 1, 'project_in'),
                                  params(2 * hidden, 3, 2 * hidden, 'dwconv', 2 * hidden), 2)
    return Conv2d(d, 1, 1, self.bias, self.dtype, self.param_dtype,
                  name='project_out')(gelu_gate(x1, x2))


class TransformerBlock(nn.Module):
  """Pre-norm Restormer block: x += MDTA(LN(x)); x += GDFN(LN(x)).

  LN is Restormer's 'WithBias' LayerNorm over channels at each position
  (biased variance, eps 1e-5; statistics in float32).
  """
  num_heads: int
  ffn_expansion_factor: float = 2.66
  bias: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """x: (B, H, W, d) -> (B, H, W, d) in `dtype`."""
    norm = lambda name: nn.LayerNorm(epsilon=LAYER_NORM_EPS, use_fast_variance=False,
                                     dtype=self.dtype, param_dtype=self.param_dtype,
                                     name=name)
    x = x.astype(self.dtype)
    x = x + MDTA(self.num_heads, self.bias, self.dtype, self.param_dtype,
                 name='attn')(norm('norm1')(x))
    x = x + GDFN(self.ffn_expansion_factor, self.bias, self.dtype, self.param_dtype,
                 name='ffn')(norm('norm2')(x))
    return x


class TemporalRestormer(nn.Module):
  """BANet stage-2 refiner: (B, T, P) per-frame parameter vectors -> (B, T, P).

  Treated as a 1-channel image of height P and width T. With the defaults
  (dim 48, time_factors (2, 4)):
    patch_embed conv3x3 1->48 (no bias) -> 4 blocks @48 (1 head)
    down1_2: conv3x3 48->48 (no bias) + unshuffle(2) -> T/2, 96 ch -> 6 blocks (2 heads)
    down2_3: conv3x3 96->96 (no bias) + unshuffle(4) -> T/8, 384 ch -> 6 blocks (4 heads)
    up3_2: conv3x3 384->384 (no bias) + shuffle(4) -> 96 ch; concat enc2 -> 192;
      reduce_chan_level2 conv1x1 192->96 (bias) -> 6 blocks @96 (2 heads)
    up2_1: conv3x3 96->96 (no bias) + shuffle(2) -> 48 ch; concat enc1 -> 96
      -> 4 blocks @96 (1 head)
    fusion: conv3x3 96->1 (bias). No refinement blocks, no global residual.

  Parameter count at the defaults: 14,397,541, equal to the official
  Restormer(dim=48, num_blocks=[4,6,6], heads=[1,2,4], bias=True) minus its
  refinement block (119,659; built but never called there, so not built here).
  What makes the count exact: patch_embed and the four resampling convs have no
  bias (hard-coded bias=False upstream); every conv inside the blocks, the
  1x1 reduce conv and the fusion conv have biases (bias=True); depthwise kernels
  hold k*k numbers per channel; temperature is one scalar per head; each
  LayerNorm has a scale and a bias.

  Attributes:
    dim: channels at level 1.
    num_blocks: transformer blocks at levels (1, 2, 3); decoder levels 2 and 1
      reuse num_blocks[1] and num_blocks[0].
    heads: attention heads at levels (1, 2, 3), reused by the decoder levels.
    ffn_expansion_factor: GDFN hidden = int(d * factor) (2.66 -> 127/255/1021).
    bias: biases of the convs inside the blocks, reduce_chan_level2 and fusion.
    time_factors: (r1, r2) time down-sampling factors; T must be divisible by
      r1 * r2. Level-2 channels dim*r1, level-3 dim*r1*r2.
    dtype: computation dtype (e.g. jnp.bfloat16); also the output dtype.
    param_dtype: parameter dtype.
  """
  dim: int = 48
  num_blocks: Sequence[int] = (4, 6, 6)
  heads: Sequence[int] = (1, 2, 4)
  ffn_expansion_factor: float = 2.66
  bias: bool = True
  time_factors: Sequence[int] = (2, 4)
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def _check(self, x: Array) -> None:
    if len(self.num_blocks) != 3 or len(self.heads) != 3 or len(self.time_factors) != 2:
      raise ValueError('TemporalRestormer: num_blocks and heads need 3 entries and '
                       f'time_factors 2; got num_blocks={self.num_blocks}, '
                       f'heads={self.heads}, time_factors={self.time_factors}')
    if x.ndim != 3:
      raise ValueError(f'TemporalRestormer expects x of shape (B, T, P); got {x.shape}')
    r1, r2 = self.time_factors
    if r1 < 1 or r2 < 1 or x.shape[1] % (r1 * r2):
      raise ValueError(f'TemporalRestormer: the number of frames T={x.shape[1]} must be '
                       f'divisible by time_factors {tuple(self.time_factors)} product '
                       f'{r1 * r2}; x has shape {x.shape} (B, T, P)')
    for name, width, nh in (('level 1', self.dim, self.heads[0]),
                            ('level 2', self.dim * r1, self.heads[1]),
                            ('level 3', self.dim * r1 * r2, self.heads[2]),
                            ('decoder level 1', 2 * self.dim, self.heads[0])):
      if nh < 1 or width % nh:
        raise ValueError(f'TemporalRestormer: {name} has {width} channels, not divisible '
                         f'by its {nh} heads (dim={self.dim}, heads={self.heads})')

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """Refines a chunk.

    Args:
      x: (B, T, P) per-frame parameter vectors (any float dtype).

    Returns:
      (B, T, P) in `dtype`.
    """
    self._check(x)
    r1, r2 = self.time_factors
    d1, d2, d3 = self.dim, self.dim * r1, self.dim * r1 * r2
    conv = lambda f, k, bias, name: Conv2d(f, k, 1, bias, self.dtype, self.param_dtype,
                                           name=name)

    def blocks(h, heads, n, prefix):
      block = lambda name=None: TransformerBlock(
          heads, self.ffn_expansion_factor, self.bias, self.dtype, self.param_dtype, name=name)
      for i in range(n):
        h = block(f'{prefix}_{i}')(h)
      return h

    img = jnp.swapaxes(x, 1, 2)[..., None]  # (B, P, T, 1): H = parameter, W = time
    enc1 = conv(d1, 3, False, 'patch_embed')(img)
    enc1 = blocks(enc1, self.heads[0], self.num_blocks[0], 'encoder_level1')
    enc2 = pixel_unshuffle_time(conv(d1, 3, False, 'down1_2')(enc1), r1)  # d1 * r1 = d2
    enc2 = blocks(enc2, self.heads[1], self.num_blocks[1], 'encoder_level2')
    enc3 = pixel_unshuffle_time(conv(d2, 3, False, 'down2_3')(enc2), r2)  # d2 * r2 = d3
    enc3 = blocks(enc3, self.heads[2], self.num_blocks[2], 'encoder_level3')
    dec2 = pixel_shuffle_time(conv(d3, 3, False, 'up3_2')(enc3), r2)  # d3 / r2 = d2
    dec2 = conv(d2, 1, self.bias, 'reduce_chan_level2')(
        jnp.concatenate([dec2, enc2.astype(dec2.dtype)], axis=-1))
    dec2 = blocks(dec2, self.heads[1], self.num_blocks[1], 'decoder_level2')
    dec1 = pixel_shuffle_time(conv(d2, 3, False, 'up2_1')(dec2), r1)  # d2 / r1 = d1
    # No 1x1 reduction at level 1: the decoder runs at 2 * dim.
    dec1 = jnp.concatenate([dec1, enc1.astype(dec1.dtype)], axis=-1)
    dec1 = blocks(dec1, self.heads[0], self.num_blocks[0], 'decoder_level1')
    out = conv(1, 3, self.bias, 'fusion')(dec1)  # (B, P, T, 1)
    return jnp.swapaxes(out[..., 0], 1, 2)
