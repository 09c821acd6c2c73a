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


def _torch_uniform(bound: float):
  """U(-bound, bound) initialiser (PyTorch's default for Conv2d weights and biases)."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


class Conv2d(nn.Module):
  """Stride-1 'same' 2-D convolution in NHWC, laid out like a PyTorch Conv2d.

  kernel: (k, k, C_in // groups, features) (HWIO); bias: (features,). A depthwise
  conv (groups = C_in = features) thus has a (k, k, 1, C) kernel: as many
  numbers as PyTorch's (C, 1, k, k). Initialisation is PyTorch's default
  (kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for the weight, the same
  bound for the bias, fan_in = k*k*C_in/groups), which is what the official
  Restormer file itself uses. (Whether BANet's N(0, 0.02) re-init helper also
  reaches the Restormer is not established; the dossier does not say.)
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
    in_features = x.shape[-1]
    k = self.kernel_size
    if k < 1 or k % 2 == 0:
      raise ValueError(f'Conv2d {self.name}: kernel_size must be odd and >= 1, got {k}')
    if in_features % self.groups or self.features % self.groups:
      raise ValueError(f'Conv2d {self.name}: groups={self.groups} must divide both the '
                       f'input channels ({in_features}) and features ({self.features})')
    fan_in = k * k * (in_features // self.groups)
    init = _torch_uniform(1.0 / math.sqrt(fan_in))
    kernel = self.param('kernel', init, (k, k, in_features // self.groups, self.features),
                        self.param_dtype)
    x = x.astype(self.dtype)
    kernel = kernel.astype(self.dtype)
    if k == 1 and self.groups == 1:
      y = jnp.einsum('bhwi,io->bhwo', x, kernel[0, 0])  # pointwise: a plain matmul
    else:
      p = k // 2  # PyTorch padding=k//2 with zeros
      y = jax.lax.conv_general_dilated(
          x, kernel, window_strides=(1, 1), padding=((p, p), (p, p)),
          dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=self.groups)
    if self.use_bias:
      bias = self.param('bias', init, (self.features,), self.param_dtype)
      y = y + bias.astype(self.dtype)
    return y


class MDTA(nn.Module):
  """Multi-Dconv-head Transposed Attention (channel attention, Restormer).

  qkv = dwconv3x3(conv1x1(x)) (d -> 3d); q, k, v = its three channel thirds;
  channels split head-major (channel = head * (d/heads) + i); q and k are
  L2-normalised along the tokens (all H*W positions); per head
  attn = softmax_over_channels((q k^T) * temperature[head]) is (d/heads)^2;
  out = project_out(attn v). The Gram matrix, normalisation and softmax are
  computed in at least float32 whatever `dtype` is.
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
    conv = lambda f, k, g, name: Conv2d(f, k, g, self.bias, self.dtype, self.param_dtype,
                                        name=name)
    temperature = self.param('temperature', nn.initializers.ones, (self.num_heads,),
                             self.param_dtype)
    qkv = conv(3 * d, 1, 1, 'qkv')(x)
    qkv = conv(3 * d, 3, 3 * d, 'qkv_dwconv')(qkv)
    c = d // self.num_heads
    # (B, N, heads, c): channel index head * c + i, as rearrange 'b (head c) h w'.
    q, k, v = (t.reshape(b, h * w, self.num_heads, c) for t in jnp.split(qkv, 3, axis=-1))
    acc = jnp.promote_types(self.dtype, jnp.float32)
    q, k = q.astype(acc), k.astype(acc)
    q = q / jnp.maximum(jnp.linalg.norm(q, axis=1, keepdims=True), L2_NORM_EPS)
    k = k / jnp.maximum(jnp.linalg.norm(k, axis=1, keepdims=True), L2_NORM_EPS)
    logits = jnp.einsum('bnhc,bnhe->bhce', q, k) * temperature.astype(acc)[:, None, None]
    attn = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum('bhce,bnhe->bnhc', attn, v.astype(self.dtype)).reshape(b, h, w, d)
    return conv(d, 1, 1, 'project_out')(out)


class GDFN(nn.Module):
  """Gated-Dconv Feed-forward Network (Restormer).

  hidden = int(d * ffn_expansion_factor); conv1x1 d -> 2*hidden; depthwise 3x3;
  split into (x1, x2) channel halves; exact (erf) GELU(x1) * x2; conv1x1
  hidden -> d.
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
    conv = lambda f, k, g, name: Conv2d(f, k, g, self.bias, self.dtype, self.param_dtype,
                                        name=name)
    y = conv(2 * hidden, 1, 1, 'project_in')(x)
    y = conv(2 * hidden, 3, 2 * hidden, 'dwconv')(y)
    x1, x2 = jnp.split(y, 2, axis=-1)
    return conv(d, 1, 1, 'project_out')(jax.nn.gelu(x1, approximate=False) * x2)


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
      for i in range(n):
        h = TransformerBlock(heads, self.ffn_expansion_factor, self.bias, self.dtype,
                             self.param_dtype, name=f'{prefix}_{i}')(h)
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
