"""BANet: two calibrated views -> OpenSim coordinates and body scales.

Two models, as in the official code:

* `BANetFrame` (stage 1, per frame): shared stacked-hourglass encoder over both
  views -> per-stack 1x1 heads -> pixel-aligned features of the query points
  (sampled inside the two-view visual hull) -> point-to-OpenSim MLP -> one raw
  vector per frame (102 numbers for the project model).
* `BANetSequence` (stage 2, per chunk of frames): the frame model on every frame,
  then the Restormer-style transformer over the (parameters x frames) grid, and
  one set of body scales per chunk (a learned weighted sum over frames,
  official `to_one_scales`).

Raw vectors are decoded by `banet_jax.model.outputs.decode`; `predict` does it
and runs the skeleton layer for the 3-D points. Sizes come from a
`BANetConfig`; `PRESETS` holds `paper` (the official sizes), `tiny` (same
structure, small, for CPU tests) and `mid` (128-pixel crops, for real footage on a CPU).

Inputs, per frame (B batch, V=2 views, S crop size, N query points):
  images        (B, V, S, S, 3) float, ImageNet-normalised, zero outside the mask
  crop_pixels   (B, V, N, 2)    float, each point's projection in crop pixels
  points        (B, N, 3)       float, the query points in metres, centred by
                                their mean (official: mm / 1000)
For `BANetSequence` every array has a time axis after the batch: (B, T, ...).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from banet_jax.model.frame_model import FrameModel
from banet_jax.model.outputs import OutputLayout, decode, output_layout, skeleton_points
from banet_jax.model.restormer import TemporalRestormer
from banet_jax.model.sampling import APPEARANCES, POINT_ORDERS
from banet_jax.skeleton import Skeleton
from banet_jax.skeleton.models import load_model, model_path

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class BANetConfig:
  """Every size of the network. Defaults are the official ones (`paper`)."""

  image_size: int = 256
  num_views: int = 2
  # Stacked-hourglass encoder.
  num_stacks: int = 4
  hourglass_depth: int = 2
  hourglass_width: int = 256
  stem_widths: tuple[int, int] = (64, 128)
  norm_groups: int = 32
  head_channels: int = 128
  # The official PIFu blocks create a GroupNorm they never use (16,640 parameters at
  # paper size, counted in the official 17.44 M). Off: no dead weights; on: the tree
  # matches a PyTorch checkpoint one to one.
  keep_unused_norm_params: bool = False
  # Query points and the point-to-OpenSim head.
  num_points: int = 500
  # Order of the query points, which the head's flatten makes matter (dossier 2.4):
  # 'random' (official): a fresh random order every frame, so every slot of the global
  # layer sees any body part; 'height': sorted by world height (y, the OpenSim ground's
  # up axis), so a slot sees roughly the same part (feet first, head last) in every frame.
  point_order: str = 'random'
  # What the encoder sees of the person: 'rgb' (official): the masked colour crops;
  # 'silhouette': the masks only (1 on the person in all three channels, 0 elsewhere), so
  # nothing of the rendered appearance (skin, clothes, lighting) can differ from a real
  # person's; an ablation of issue 15 (MODEL_CARD.md). Part of the network's contract:
  # prediction feeds a model what it was trained on.
  appearance: str = 'rgb'
  point_widths: tuple[int, ...] = (512, 512, 32)
  global_widths: tuple[int, ...] = (128, 128)
  # Spatio-temporal module.
  chunk_length: int = 64
  temporal_dim: int = 48
  temporal_blocks: tuple[int, int, int] = (4, 6, 6)
  temporal_heads: tuple[int, int, int] = (1, 2, 4)
  ffn_expansion_factor: float = 2.66
  # The OpenSim model the outputs refer to (None: the project's full-body model).
  model_path: str | None = None
  # Computation dtype; parameters stay float32. 'bfloat16' is for GPU/TPU.
  compute_dtype: str = 'float32'
  # Rematerialise the encoder's residual blocks in the backward pass: meant to trade one
  # more forward of them for memory, for GPUs; on the 2-core CPU XLA kept the same
  # temporary buffers with it (benchmarks/README.md, `banet_step.py --remat`). Like
  # compute_dtype, a way to compute, not part of the network: checkpoints move freely
  # between the two settings.
  remat: bool = False

  def __post_init__(self):
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f'compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, '
                       f'got {self.compute_dtype!r}')
    if self.point_order not in POINT_ORDERS:
      raise ValueError(f'point_order must be one of {list(POINT_ORDERS)}, '
                       f'got {self.point_order!r}')
    if self.appearance not in APPEARANCES:
      raise ValueError(f'appearance must be one of {list(APPEARANCES)}, '
                       f'got {self.appearance!r}')
    if self.chunk_length % 8:
      raise ValueError(f'chunk_length must be a multiple of 8 (time is pixel-'
                       f'unshuffled by 2 then 4), got {self.chunk_length}')

  @property
  def dtype(self):
    return COMPUTE_DTYPES[self.compute_dtype]

  @property
  def skeleton_path(self) -> str:
    return str(model_path(self.model_path))

  def replace(self, **changes) -> BANetConfig:
    return dataclasses.replace(self, **changes)


PRESETS: dict[str, BANetConfig] = {
    # Official sizes: frame model ~17.44 M parameters, with the temporal module ~31.8 M.
    'paper': BANetConfig(),
    # Same structure, small: 64x64 crops, 2 stacks of width 32, 64 points, 16-frame
    # chunks. Runs a training step in well under a second on a laptop CPU.
    'tiny': BANetConfig(image_size=64, num_stacks=2, hourglass_depth=2, hourglass_width=32,
                        stem_widths=(16, 32), norm_groups=8, head_channels=16,
                        num_points=64, point_widths=(64, 64, 8), global_widths=(64, 64),
                        chunk_length=16, temporal_dim=8, temporal_blocks=(1, 1, 1),
                        temporal_heads=(1, 1, 2)),
    # Between the two, for real footage on a CPU budget: 128x128 crops (BlazePose masks of
    # a person 2-8 m away keep hands and feet at this size; at 64 px a forearm is 3-4 px
    # wide), 2 stacks of width 64, 128 points, 32-frame chunks. Trains on odah/lab on a
    # 2-core CPU in about two hours (launch/flags/mid_cpu*.flags).
    'mid': BANetConfig(image_size=128, num_stacks=2, hourglass_depth=2, hourglass_width=64,
                       stem_widths=(32, 64), norm_groups=16, head_channels=32,
                       num_points=128, point_widths=(128, 128, 16), global_widths=(128, 128),
                       chunk_length=32, temporal_dim=16, temporal_blocks=(1, 2, 2),
                       temporal_heads=(1, 2, 4)),
}


def get_config(preset: str = 'paper', **overrides: Any) -> BANetConfig:
  """A preset, with fields overridden by keyword."""
  if preset not in PRESETS:
    raise ValueError(f'unknown preset {preset!r}; choose one of {sorted(PRESETS)}')
  return PRESETS[preset].replace(**overrides)


def layout_for(path: str | None) -> OutputLayout:
  """The output layout of a model file (None: the project model), once per model content."""
  return _layout_of(load_model(path))


@functools.lru_cache(maxsize=16)
def _layout_of(skel: Skeleton) -> OutputLayout:
  return output_layout(skel)


def _frame_model(config: BANetConfig, out_dim: int, name: str | None = None) -> FrameModel:
  return FrameModel(
      num_stacks=config.num_stacks, depth=config.hourglass_depth,
      width=config.hourglass_width, stem_widths=config.stem_widths,
      norm_groups=config.norm_groups, head_channels=config.head_channels,
      keep_unused_norm_params=config.keep_unused_norm_params, point_widths=config.point_widths, global_widths=config.global_widths,
      num_points=config.num_points, out_dim=out_dim, remat=config.remat,
      dtype=config.dtype, param_dtype=jnp.float32, name=name)


class BANetFrame(nn.Module):
  """Stage 1: one raw output vector per two-view frame."""

  config: BANetConfig
  out_dim: int

  @nn.compact
  def __call__(self, images, crop_pixels, points):
    """(B, V, S, S, 3), (B, V, N, 2), (B, N, 3) -> raw (B, out_dim) float32."""
    raw = _frame_model(self.config, self.out_dim, name='frame')(images, crop_pixels, points)
    return raw.astype(jnp.float32)


class BANetSequence(nn.Module):
  """Stage 2: frame model per frame, temporal refinement, one scale set per chunk.

  Parameters are {'frame': <BANetFrame's 'frame' tree>, 'temporal': ...,
  'to_one_scales': ...}, so stage-1 weights drop into 'frame' unchanged.

  `__call__` runs both parts on whole chunks (training). Inference on long clips calls
  them apart (`banet_jax.inference.Predictor`): `method='encode'` on any batch of frames,
  so each frame is encoded once and in batches of bounded size, then `method='refine'` on
  each chunk's per-frame outputs; the result is `__call__`'s.
  """

  config: BANetConfig
  out_dim: int
  num_predicted: int

  def setup(self):
    c = self.config
    self.frame = _frame_model(c, self.out_dim)
    self.temporal = TemporalRestormer(
        dim=c.temporal_dim, num_blocks=c.temporal_blocks, heads=c.temporal_heads,
        ffn_expansion_factor=c.ffn_expansion_factor, bias=True, dtype=c.dtype,
        param_dtype=jnp.float32)
    # Official `to_one_scales`: Conv1d(frames -> 1, kernel 1) over the scale entries,
    # i.e. a learned weighted sum over the chunk's frames plus a bias.
    self.to_one_scales = nn.Dense(1)

  def encode(self, images, crop_pixels, points):
    """The frame model alone: (F, V, S, S, 3), (F, V, N, 2), (F, N, 3) -> raw (F, out_dim)
    float32, for any number F of frames."""
    return self.frame(images, crop_pixels, points).astype(jnp.float32)

  def refine(self, per_frame):
    """Raw (B, T, out_dim) per-frame outputs of whole chunks (T = chunk_length) -> raw
    (B, T, out_dim) float32 after the temporal module, the scale entries replaced by the
    chunk's single set (repeated over T)."""
    if per_frame.shape[1] != self.config.chunk_length:
      raise ValueError(f'expected chunks of {self.config.chunk_length} frames, got '
                       f'{per_frame.shape[1]} (per-frame outputs {per_frame.shape})')
    refined = self.temporal(per_frame).astype(jnp.float32)
    scales = refined[..., self.num_predicted:]  # (B, T, 3 * bodies)
    one = self.to_one_scales(jnp.swapaxes(scales, 1, 2))  # (B, 3Bo, 1)
    one = jnp.broadcast_to(jnp.swapaxes(one, 1, 2), scales.shape)
    return jnp.concatenate([refined[..., :self.num_predicted], one], axis=-1)

  def __call__(self, images, crop_pixels, points):
    """(B, T, V, S, S, 3), (B, T, V, N, 2), (B, T, N, 3) -> (per_frame, refined).

    Both outputs are raw (B, T, out_dim) float32: `per_frame` from the frame
    model alone, `refined` after the temporal module with the scale entries
    replaced by the chunk's single set (repeated over T).
    """
    batch, frames = images.shape[:2]
    if frames != self.config.chunk_length:
      raise ValueError(f'expected chunks of {self.config.chunk_length} frames, got '
                       f'{frames} (images {images.shape})')
    flat = lambda x: x.reshape((batch * frames,) + x.shape[2:])
    per_frame = self.encode(flat(images), flat(crop_pixels), flat(points))
    per_frame = per_frame.reshape(batch, frames, self.out_dim)
    return per_frame, self.refine(per_frame)


@dataclasses.dataclass(frozen=True)
class BANet:
  """A configured network and the skeleton its outputs refer to.

      net = BANet.create(get_config('tiny'))
      variables = net.init_frame(jax.random.key(0))
      raw = net.frame.apply(variables, images, crop_pixels, points)
      pred = net.predict(raw)   # coordinates (B, 39), scales (B, 22, 3), points (B, 44, 3)
  """

  config: BANetConfig
  layout: OutputLayout
  frame: BANetFrame
  sequence: BANetSequence

  @classmethod
  def create(cls, config: BANetConfig) -> BANet:
    layout = layout_for(config.skeleton_path)
    return cls(config=config, layout=layout,
               frame=BANetFrame(config, layout.out_dim),
               sequence=BANetSequence(config, layout.out_dim, layout.num_predicted))

  def example_inputs(self, batch: int = 1, frames: int | None = None):
    """Zero inputs of the right shapes (for init and shape inference)."""
    c = self.config
    lead = (batch,) if frames is None else (batch, frames)
    return (jnp.zeros(lead + (c.num_views, c.image_size, c.image_size, 3), jnp.float32),
            jnp.zeros(lead + (c.num_views, c.num_points, 2), jnp.float32),
            jnp.zeros(lead + (c.num_points, 3), jnp.float32))

  def init_frame(self, rng: jax.Array):
    """Stage-1 variables {'params': ...}."""
    return self.frame.init(rng, *self.example_inputs())

  def init_sequence(self, rng: jax.Array):
    """Stage-2 variables {'params': {'frame', 'temporal', 'to_one_scales'}}."""
    return self.sequence.init(rng, *self.example_inputs(frames=self.config.chunk_length))

  def predict(self, raw) -> dict[str, jax.Array]:
    """Raw (..., out_dim) -> {'coordinates' (..., C), 'scales' (..., Bo, 3),
    'points' (..., Bo + J, 3)} (points root at the origin of a zero global
    translation, metres)."""
    coords, scales = decode(self.layout, raw)
    return {'coordinates': coords, 'scales': scales,
            'points': skeleton_points(self.layout, coords, scales)}


def parameter_summary(net: BANet) -> list[tuple[str, int]]:
  """(module path, parameter count) rows, then the two totals; shapes only
  (`jax.eval_shape`), so the paper-size network costs nothing."""
  count = lambda tree: sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))
  params = jax.eval_shape(net.init_sequence, jax.random.key(0))['params']
  rows = [(f'frame/{name}', count(sub)) for name, sub in params['frame'].items()]
  rows.append(('frame model total (stage 1)', count(params['frame'])))
  rows += [(name, count(sub)) for name, sub in params.items() if name != 'frame']
  rows.append(('spatio-temporal model total (stage 2)', count(params)))
  return rows
