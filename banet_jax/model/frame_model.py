"""BANet's per-frame network (stage 1): two views + query points -> raw 102-vector.

  images (B, V, S, S, 3) --shared HGFilter (views stacked into the batch)--> num_stacks maps
  --HGHeads--> num_stacks maps of head_channels at S/2 resolution per view
  --bilinear sampling at each point's projection (px / S * 2 - 1, align_corners=True)-->
  per point [xyz_centered (3) | view 0: stacks 1..K | view 1: stacks 1..K]
  (3 + V * K * head_channels = 1027 channels for the paper) --Point2Osim--> (B, out_dim).

The grid coordinate px / S * 2 - 1 only depends on the relative position in the crop, so
it addresses the half-resolution maps directly (as the official code does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from banet_jax.model.hourglass import HGFilter, HGHeads
from banet_jax.model.point_head import Point2Osim
from banet_jax.model.sampling import crop_pixels_to_grid, grid_sample_bilinear

Dtype = Any


def _check_query_shapes(batch_views, crop_pixels_shape, points_shape) -> None:
  """Clear errors for query inputs that do not fit the (B, V) of the images/features."""
  b, v = batch_views
  if len(crop_pixels_shape) != 4 or crop_pixels_shape[:2] != (b, v) or crop_pixels_shape[-1] != 2:
    raise ValueError(
        f"crop_pixels must be (B, V, N, 2) = ({b}, {v}, N, 2), got {crop_pixels_shape}")
  n = crop_pixels_shape[2]
  if tuple(points_shape) != (b, n, 3):
    raise ValueError(
        f"points_centered must be (B, N, 3) = ({b}, {n}, 3), got {tuple(points_shape)}")


class FrameModel(nn.Module):
  """Stage-1 BANet network. Defaults are the paper sizes.

  Attributes:
    num_stacks, depth, width, stem_widths, norm_groups, keep_unused_norm_params:
      the `HGFilter` configuration (see banet_jax/model/hourglass.py).
    head_channels: channels of each `HGHeads` output.
    point_widths, global_widths, out_dim: the `Point2Osim` configuration.
    num_points: N, number of query points per frame (fixed: the head flattens them).
    remat: recompute the encoder's residual blocks in the backward pass instead of keeping
      their activations (`hourglass.conv_block_class`); the same parameters and outputs.
    dtype: computation dtype (e.g. jnp.bfloat16); the output is always float32.
    param_dtype: parameter dtype.
  """

  num_stacks: int = 4
  depth: int = 2
  width: int = 256
  stem_widths: tuple[int, int] = (64, 128)
  norm_groups: int = 32
  keep_unused_norm_params: bool = True
  head_channels: int = 128
  point_widths: Sequence[int] = (512, 512, 32)
  global_widths: Sequence[int] = (128, 128)
  out_dim: int = 102
  num_points: int = 500
  remat: bool = False
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  def setup(self):
    common = {"dtype": self.dtype, "param_dtype": self.param_dtype}
    self.image_filter = HGFilter(
        num_stacks=self.num_stacks, depth=self.depth, width=self.width,
        stem_widths=tuple(self.stem_widths), norm_groups=self.norm_groups,
        keep_unused_norm_params=self.keep_unused_norm_params, remat=self.remat, **common)
    self.heads = HGHeads(head_channels=self.head_channels, **common)
    self.point2osim = Point2Osim(
        point_widths=tuple(self.point_widths), global_widths=tuple(self.global_widths),
        out_dim=self.out_dim, num_points=self.num_points, **common)

  def encode(self, images: jax.Array) -> jax.Array:
    """Per-view pixel-aligned feature maps.

    Args:
      images: (B, V, S, S, 3) normalised crops.

    Returns:
      (B, V, S/2, S/2, num_stacks * head_channels) in `dtype`, channels ordered stack-major
      (stack 1's head channels first), i.e. the order in which they enter the point head.
    """
    if images.ndim != 5 or images.shape[2] != images.shape[3]:
      raise ValueError(f"images must be (B, V, S, S, C) square crops, got shape {images.shape}")
    b, v = images.shape[:2]
    x = images.reshape((b * v,) + images.shape[2:]).astype(self.dtype)
    maps = self.heads(self.image_filter(x))
    feats = jnp.concatenate(maps, axis=-1)
    return feats.reshape((b, v) + feats.shape[1:])

  def query(self, features: jax.Array, crop_pixels: jax.Array, points_centered: jax.Array,
            crop_size: int) -> jax.Array:
    """Samples `features` at the points' projections and runs the point head.

    Args:
      features: (B, V, h, w, F) from `encode`.
      crop_pixels: (B, V, N, 2) crop pixel coordinates (x, y) of the points in each view.
      points_centered: (B, N, 3) points in metres, centred by their mean.
      crop_size: S, the crop side in pixels (the image size, not the feature size).

    Returns:
      (B, out_dim) float32 raw frame vector.
    """
    _check_query_shapes(features.shape[:2], crop_pixels.shape, points_centered.shape)
    v = features.shape[1]
    grid = crop_pixels_to_grid(crop_pixels.astype(jnp.float32), crop_size)
    per_view = [grid_sample_bilinear(features[:, i], grid[:, i]) for i in range(v)]
    x = jnp.concatenate([points_centered.astype(features.dtype)] + per_view, axis=-1)
    return self.point2osim(x).astype(jnp.float32)

  def __call__(self, images: jax.Array, crop_pixels: jax.Array,
               points_centered: jax.Array) -> jax.Array:
    """(B, V, S, S, 3), (B, V, N, 2), (B, N, 3) -> raw (B, out_dim) float32."""
    if images.ndim != 5 or images.shape[2] != images.shape[3]:
      raise ValueError(f"images must be (B, V, S, S, C) square crops, got shape {images.shape}")
    _check_query_shapes(images.shape[:2], crop_pixels.shape, points_centered.shape)
    if crop_pixels.shape[2] != self.num_points:
      raise ValueError(f"FrameModel was configured for num_points={self.num_points}, "
                       f"got {crop_pixels.shape[2]} points")
    return self.query(self.encode(images), crop_pixels, points_centered,
                      crop_size=images.shape[2])
