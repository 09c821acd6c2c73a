"""BANet's frame encoder: the PIFu/LVD stacked-hourglass filter (`HGFilter`) and `HGHeads`.

Flax linen, NHWC. Behaviour follows the official network (dossier §2.3):

  stem:  conv 7x7 stride 2 pad 3 (bias) -> GroupNorm -> ReLU -> ConvBlock(s0 -> s1)
         -> ConvBlock(s1 -> s1) -> ConvBlock(s1 -> width); no further downsampling, so
         the features have half the input resolution (128x128 for 256x256 crops);
  stack i: HourGlass -> ConvBlock -> conv1x1 (bias) -> GroupNorm -> ReLU -> ll
           out_i = conv1x1(ll) (bias, no tanh);   between stacks
           previous = previous + bl(ll) + al(out_i)   (1x1 convs with bias);
  all stack outputs are returned.
`HGHeads` maps each stack output with its own 1x1 conv (bias) to `head_channels`.

Submodule and parameter names mirror the PyTorch module names (conv1, bn1, conv2..4,
m{i}/b1_2, top_m_{i}, conv_last{i}, bn_end{i}, l{i}, bl{i}, al{i}, head1..) so that
PyTorch checkpoints (the LVD encoder) can be mapped one to one.

Parameter count. With the paper sizes the official HGFilter has 14,420,864 parameters.
The architecture proper has 16,640 fewer: the PIFu `ConvBlock` always constructs its
fourth GroupNorm (`bn4`, the norm of the 1x1 projection residual), also when in == out
and there is no projection, so PyTorch registers (and checkpoints hold) 2*in unused
parameters in each such block: 32 blocks of 256 channels in the hourglasses/top blocks
plus the 128-channel stem ConvBlock(128 -> 128) = 32*512 + 256 = 16,640.
`keep_unused_norm_params=True` (default) creates these parameters too (never used in
the forward pass, gradient exactly zero) so that the count and the parameter tree match
the official model; set it to False to drop them.

Initialisation follows the official `_weights_init_fn` (which runs before the LVD weights
would be loaded): conv kernels N(0, 0.02), conv biases 0; GroupNorm scale 1, bias 0
(PyTorch defaults). The LVD-pretrained encoder is not available here.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any

CONV_INIT = nn.initializers.normal(stddev=0.02)
GN_EPSILON = 1e-5  # PyTorch GroupNorm default (flax's default is 1e-6)

# PyTorch's bicubic interpolation uses Keys' cubic convolution kernel with a = -0.75.
_CUBIC_A = -0.75


def _cubic_weights(t: np.ndarray) -> np.ndarray:
  """(..., 4) weights of taps at offsets -1, 0, 1, 2 for fractional positions t in [0, 1)."""
  a = _CUBIC_A

  def near(x):  # |x| <= 1
    return ((a + 2) * x - (a + 3)) * x * x + 1

  def far(x):  # 1 < |x| < 2
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

  return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_align_corners_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """Source indices and weights of 1-D bicubic resizing with align_corners=True.

  Output sample o sits at source position o * (n_in - 1) / (n_out - 1) (0 when
  n_out == 1), so the first and last samples coincide with the input's. Each output is
  a weighted sum of 4 inputs around floor(position); indices are clamped to the border
  (PyTorch's `upsample_bicubic2d` border handling).

  Returns:
    idx: (n_out, 4) int source indices; w: (n_out, 4) float64 weights (rows sum to 1).
  """
  # Multiply before dividing so that the last position is exactly n_in - 1 (exact corners).
  pos = np.arange(n_out, dtype=np.float64) * (n_in - 1) / max(n_out - 1, 1)
  base = np.floor(pos)
  idx = np.clip(base.astype(np.int64)[:, None] + np.arange(-1, 3)[None, :], 0, n_in - 1)
  return idx, _cubic_weights(pos - base)


def resize_bicubic_align_corners(x: jax.Array, out_h: int, out_w: int) -> jax.Array:
  """Bicubic resize of NHWC maps with PyTorch `align_corners=True` semantics.

  `jax.image.resize` uses half-pixel centres, which differ from the official
  `F.interpolate(..., mode='bicubic', align_corners=True)`; this implements the latter
  as two separable 4-tap passes (H, then W). Computed in float32 (at least) and cast back.

  Args:
    x: (B, H, W, C). out_h, out_w: output size.

  Returns:
    (B, out_h, out_w, C) in the dtype of `x`.
  """
  acc = jnp.promote_types(x.dtype, jnp.float32)
  y = x.astype(acc)
  for axis, n_out in ((1, out_h), (2, out_w)):
    idx, w = bicubic_align_corners_taps(y.shape[axis], n_out)
    shape = [1] * y.ndim
    shape[axis] = n_out
    y = sum(jnp.take(y, idx[:, k], axis=axis) * jnp.asarray(w[:, k].reshape(shape), acc)
            for k in range(4))
  return y.astype(x.dtype)


class GroupNorm(nn.Module):
  """GroupNorm over NHWC maps, PyTorch semantics (biased variance, eps 1e-5), per-channel
  `scale` and `bias` parameters as `flax.linen.GroupNorm` names them.

  Call: x (B, H, W, C) -> (B, H, W, C) in `dtype`; statistics in at least float32.

  Same result as `nn.GroupNorm(num_groups, epsilon=GN_EPSILON)` (both use
  var = E[x^2] - E[x]^2), computed for speed on CPU: the per-channel sums over H*W are
  taken first, as row reductions of the (B, H*W, C) view, and only the (B, C) sums are
  grouped, where flax reduces the (B, H, W, G, C/G) view over three axes at once. At
  the paper's (2, 128, 128, 256) this halves the norm's forward and backward time on
  the 2-core CPU (benchmarks/README.md, `frame_profile.py`).
  """

  num_groups: int = 32
  epsilon: float = GN_EPSILON
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    if c % self.num_groups:
      raise ValueError(f"GroupNorm: {c} channels are not divisible by {self.num_groups} groups")
    scale = self.param("scale", nn.initializers.ones, (c,), self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros, (c,), self.param_dtype)
    acc = jnp.promote_types(x.dtype, jnp.float32)
    flat = x.reshape(b, h * w, c).astype(acc)
    per_group = c // self.num_groups
    count = h * w * per_group
    mean = jnp.einsum("bnc->bc", flat).reshape(b, self.num_groups, per_group).sum(-1) / count
    mean_sq = (jnp.einsum("bnc,bnc->bc", flat, flat)
               .reshape(b, self.num_groups, per_group).sum(-1) / count)
    var = jnp.maximum(mean_sq - mean * mean, 0.0)
    inv = jnp.repeat(jax.lax.rsqrt(var + self.epsilon), per_group, axis=1)  # (B, C)
    mul = inv * scale.astype(acc)
    add = bias.astype(acc) - jnp.repeat(mean, per_group, axis=1) * mul
    return (x.astype(acc) * mul[:, None, None, :] + add[:, None, None, :]).astype(self.dtype)


class Conv1x1(nn.Module):
  """A 1x1 convolution over NHWC maps written as one matmul of the (B*H*W, C_in) rows.

  Parameters as `nn.Conv(features, (1, 1))` names and shapes them (`kernel` (1, 1, C_in,
  features), `bias` (features,)), so checkpoints and the PyTorch mapping are unchanged.
  Why: inside the paper encoder XLA:CPU ran these convolutions (60 of the forward's 412
  GFLOP) at 16-30 GFLOP/s, the 3x3 ones at about 80-160; as a dot they run at the
  matmul rate (benchmarks/README.md, `frame_profile.py`).

  Call: x (B, H, W, C_in) -> (B, H, W, features) in `dtype`.
  """

  features: int
  use_bias: bool = True
  kernel_init: Any = CONV_INIT
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c_in = x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (1, 1, c_in, self.features),
                        self.param_dtype)
    y = jnp.dot(x.reshape(-1, c_in).astype(self.dtype), kernel[0, 0].astype(self.dtype))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,),
                         self.param_dtype).astype(self.dtype)
    return y.reshape(x.shape[:-1] + (self.features,))


def _group_norm(groups: int, dtype: Dtype, param_dtype: Dtype, name: str) -> GroupNorm:
  return GroupNorm(num_groups=groups, dtype=dtype, param_dtype=param_dtype, name=name)


def _check_groups(channels: int, groups: int, where: str) -> None:
  if channels % groups:
    raise ValueError(f"{where}: {channels} channels are not divisible by norm_groups={groups}")


class ConvBlock(nn.Module):
  """PIFu pre-activation residual block, in_ch -> `features` channels (same resolution).

  out = concat(o1, o2, o3) + residual with o1 = conv3x3(relu(gn(x))) (features/2),
  o2 = conv3x3(relu(gn(o1))) (features/4), o3 = conv3x3(relu(gn(o2))) (features/4); the
  residual is x, or conv1x1(relu(gn(x))) when in_ch != features. No conv has a bias.
  """

  features: int
  norm_groups: int = 32
  keep_unused_norm_params: bool = True
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    in_ch = x.shape[-1]
    half, quarter = self.features // 2, self.features // 4
    if self.features % 4:
      raise ValueError(f"ConvBlock features must be divisible by 4, got {self.features}")
    for c in (in_ch, half, quarter):
      _check_groups(c, self.norm_groups, f"ConvBlock({in_ch} -> {self.features})")
    conv = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)),
                             use_bias=False, kernel_init=CONV_INIT, dtype=self.dtype,
                             param_dtype=self.param_dtype)
    gn = functools.partial(_group_norm, self.norm_groups, self.dtype, self.param_dtype)
    out1 = conv(half, name="conv1")(nn.relu(gn("bn1")(x)))
    out2 = conv(quarter, name="conv2")(nn.relu(gn("bn2")(out1)))
    out3 = conv(quarter, name="conv3")(nn.relu(gn("bn3")(out2)))
    out = jnp.concatenate([out1, out2, out3], axis=-1)
    if in_ch != self.features:
      residual = Conv1x1(self.features, use_bias=False, dtype=self.dtype,
                         param_dtype=self.param_dtype,
                         name="downsample_conv")(nn.relu(gn("bn4")(x)))
    else:
      residual = x
      if self.keep_unused_norm_params and self.is_initializing():
        # PyTorch registers bn4 even without a projection (see the module docstring):
        # create its parameters, never use them.
        gn("bn4")(x)
    return out + residual.astype(out.dtype)


def conv_block_class(remat: bool) -> type[nn.Module]:
  """`ConvBlock`, or (remat) `nn.remat(ConvBlock)`: the same parameters and outputs, but the
  backward pass keeps only each block's input and recomputes the block's inside (its
  GroupNorms, ReLUs and three convolutions), trading one more forward of the blocks for
  memory. On XLA:CPU it saved none (benchmarks/README.md, `banet_step.py --remat`)."""
  return _REMAT_CONV_BLOCK if remat else ConvBlock


class HourGlass(nn.Module):
  """Recursive hourglass of `depth` levels at constant width `features`.

  level(x) = b1(x) + up2(b3(inner(b2(avgpool2(x))))) where inner is the next level, or
  the extra block b2_plus at the last level, and up2 is bicubic x2 (align_corners=True).
  The input's height and width must be divisible by 2**depth.
  """

  depth: int = 2
  features: int = 256
  norm_groups: int = 32
  keep_unused_norm_params: bool = True
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.depth < 1:
      raise ValueError(f"HourGlass depth must be >= 1, got {self.depth}")
    h, w = x.shape[1:3]
    if h % 2**self.depth or w % 2**self.depth:
      raise ValueError(f"HourGlass of depth {self.depth} needs a height and width divisible by "
                       f"{2**self.depth}; got feature maps of {h}x{w}")
    block = functools.partial(conv_block_class(self.remat), features=self.features,
                              norm_groups=self.norm_groups,
                              keep_unused_norm_params=self.keep_unused_norm_params,
                              dtype=self.dtype, param_dtype=self.param_dtype)

    def level(lvl: int, inp: jax.Array) -> jax.Array:
      up1 = block(name=f"b1_{lvl}")(inp)
      low = nn.avg_pool(inp, (2, 2), strides=(2, 2))
      low = block(name=f"b2_{lvl}")(low)
      low = level(lvl - 1, low) if lvl > 1 else block(name=f"b2_plus_{lvl}")(low)
      low = block(name=f"b3_{lvl}")(low)
      return up1 + resize_bicubic_align_corners(low, inp.shape[1], inp.shape[2])

    return level(self.depth, x)


_REMAT_CONV_BLOCK = nn.remat(ConvBlock)


class HGFilter(nn.Module):
  """Stacked-hourglass image encoder ('no_down' PIFu/LVD variant); see the module docstring.

  Paper sizes: num_stacks=4, depth=2, width=256, stem_widths=(64, 128), norm_groups=32.

  Call: images (B, S, S', C_in) float (normalised) -> tuple of `num_stacks` maps
  (B, ceil(S/2), ceil(S'/2), width) in `dtype`. ceil(S/2) must be divisible by 2**depth.
  """

  num_stacks: int = 4
  depth: int = 2
  width: int = 256
  stem_widths: tuple[int, int] = (64, 128)
  norm_groups: int = 32
  keep_unused_norm_params: bool = True
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, ...]:
    if images.ndim != 4:
      raise ValueError(f"HGFilter expects NHWC images (B, H, W, C), got shape {images.shape}")
    if self.num_stacks < 1:
      raise ValueError(f"num_stacks must be >= 1, got {self.num_stacks}")
    s0, s1 = self.stem_widths
    _check_groups(s0, self.norm_groups, "HGFilter stem")
    _check_groups(self.width, self.norm_groups, "HGFilter width")
    common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
    block = functools.partial(conv_block_class(self.remat), norm_groups=self.norm_groups,
                              keep_unused_norm_params=self.keep_unused_norm_params, **common)
    conv1x1 = functools.partial(Conv1x1, **common)
    gn = functools.partial(_group_norm, self.norm_groups, self.dtype, self.param_dtype)

    x = nn.Conv(s0, (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)), use_bias=True,
                kernel_init=CONV_INIT, name="conv1", **common)(images)
    x = nn.relu(gn("bn1")(x))
    x = block(s1, name="conv2")(x)
    x = block(s1, name="conv3")(x)
    previous = block(self.width, name="conv4")(x)

    outputs = []
    for i in range(self.num_stacks):
      hg = HourGlass(depth=self.depth, features=self.width, norm_groups=self.norm_groups,
                     keep_unused_norm_params=self.keep_unused_norm_params, remat=self.remat,
                     name=f"m{i}", **common)(previous)
      ll = block(self.width, name=f"top_m_{i}")(hg)
      ll = nn.relu(gn(f"bn_end{i}")(conv1x1(self.width, name=f"conv_last{i}")(ll)))
      out = conv1x1(self.width, name=f"l{i}")(ll)
      outputs.append(out)
      if i < self.num_stacks - 1:
        previous = (previous + conv1x1(self.width, name=f"bl{i}")(ll)
                    + conv1x1(self.width, name=f"al{i}")(out))
    return tuple(outputs)


class HGHeads(nn.Module):
  """One 1x1 conv (with bias) per stack output: width -> `head_channels` (paper 128).

  Call: a sequence of (B, H, W, width) maps -> tuple of (B, H, W, head_channels).
  Initialisation N(0, 0.02) / zero bias, as the official `_weights_init_fn`.
  """

  head_channels: int = 128
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, stack_outputs: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
    return tuple(
        Conv1x1(self.head_channels, dtype=self.dtype, param_dtype=self.param_dtype,
                name=f"head{i + 1}")(f)
        for i, f in enumerate(stack_outputs))
