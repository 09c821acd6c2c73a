"""BANet's point head: weight-normalised layers mapping per-point features to one frame vector.

`Point2Osim` (official `Point2Osim3D`, dossier §2.4 step 6): every layer is a
weight-normalised 1x1 Conv1d in PyTorch, i.e. a dense layer applied per point:

  per point: C_in -> 512 -> 512 -> 32       (C_in = 3 + V * stacks * head = 1027)
  flatten:   (N points x 32) -> 16000       (channel-major, as PyTorch's reshape of (B, 32, N))
  global:    16000 -> 128 -> 128 -> 102
  ReLU after every layer except the very last one (so also after the 32-wide layer).

The flattening makes the head depend on the order of the points (the official design).
Paper-size parameter count: 2,884,620 (v, g and bias of six layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

Dtype = Any

# PyTorch's default Conv1d/Linear weight init, kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)).
# The official `_weights_init_fn` writes N(0, 0.02) into the derived `weight` tensor of
# weight-normed layers, which is recomputed from (g, v) on every forward, so the official
# effective initialisation is this one (with zero biases).
TORCH_DEFAULT_INIT = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def weight_norm_kernel(v: jax.Array, g: jax.Array) -> jax.Array:
  """Effective kernel g * v / ||v||, the norm over all input dims of each output unit.

  Args:
    v: (..., fan_in, features) direction parameter. g: (features,) magnitudes.

  Returns:
    Kernel with the shape of `v` whose column (output unit) norms are |g|.
  """
  norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(v.ndim - 1))))
  return v * (g / norm)


class WeightNormDense(nn.Module):
  """Dense layer with PyTorch `weight_norm(dim=0)` semantics on the last axis.

  Parameters: `v` (fan_in, features), `g` (features,), `bias` (features,); from a PyTorch
  `weight_norm(Conv1d(k=1))`: v = weight_v[:, :, 0].T, g = weight_g[:, 0, 0]. The kernel
  used is `weight_norm_kernel(v, g)` (computed in param_dtype, then cast to `dtype`).
  Initialisation: v ~ U(+-1/sqrt(fan_in)) (PyTorch's default), g = ||v|| per output unit
  so that the initial kernel equals v, bias 0 (see TORCH_DEFAULT_INIT).
  """

  features: int
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  v_init: Any = TORCH_DEFAULT_INIT

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fan_in = x.shape[-1]
    v = self.param("v", self.v_init, (fan_in, self.features), self.param_dtype)
    g = self.param("g", lambda _, shape, dtype: jnp.linalg.norm(v, axis=0).astype(dtype),
                   (self.features,), self.param_dtype)
    bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), self.param_dtype)
    kernel = weight_norm_kernel(v, g)
    x, kernel, bias = promote_dtype(x, kernel, bias, dtype=self.dtype)
    return jnp.einsum("...i,io->...o", x, kernel) + bias


class Point2Osim(nn.Module):
  """Per-point MLP, order-dependent flatten, global MLP -> raw frame vector.

  Call: features (B, N, C_in) -> (B, out_dim) in `dtype` (default float32 params/compute).
  N must equal `num_points` when that is set (the global layer's width depends on it).
  """

  point_widths: Sequence[int] = (512, 512, 32)
  global_widths: Sequence[int] = (128, 128)
  out_dim: int = 102
  num_points: int | None = None
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if x.ndim != 3:
      raise ValueError(f"Point2Osim expects per-point features (B, N, C), got shape {x.shape}")
    if self.num_points is not None and x.shape[1] != self.num_points:
      raise ValueError(f"Point2Osim was configured for num_points={self.num_points}, "
                       f"got {x.shape[1]} points")
    if not self.point_widths:
      raise ValueError("point_widths must name at least one per-point layer")
    dense = lambda n, name: WeightNormDense(n, dtype=self.dtype, param_dtype=self.param_dtype,
                                            name=name)
    layer = 0
    for width in self.point_widths:
      layer += 1
      x = nn.relu(dense(width, f"fc{layer}")(x))
    # PyTorch holds (B, C, N) and reshapes it to (B, C*N): channel-major flattening.
    x = jnp.swapaxes(x, 1, 2).reshape(x.shape[0], -1)
    for width in self.global_widths:
      layer += 1
      x = nn.relu(dense(width, f"fc{layer}")(x))
    return dense(self.out_dim, f"fc{layer + 1}")(x)
