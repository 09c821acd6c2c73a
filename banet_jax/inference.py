"""A trained BANet on whole clips: restore a checkpoint, predict coordinates and scales.

    predictor = Predictor.restore('/tmp/banet_run')          # workdir or checkpoint folder
    out = predictor.predict_clip(clip)                        # clip: an ODAH example dict
    out['coordinates']   # (T, C) radians / metres (global translations 0)
    out['scales']        # (B, 3) one set per clip (mean over frames or chunks)

Every frame goes through the frame model once, in batches of `frame_batch` two-view frames
(the last batch padded with the clip's last frame, so one compiled shape serves every clip),
so memory does not grow with the clip's length beyond its inputs and outputs. Stage-1
checkpoints stop there; stage-2 checkpoints then run the temporal module on chunks of
`chunk_length` frames of those outputs (consecutive windows; the last window is aligned
with the clip's end, and a clip shorter than a chunk repeats its last frame), keeping each
frame's refined prediction from the first window that holds it. The result is what the
stage-2 network gives on each window as a whole (`BANetSequence.encode` / `refine`).

Raw two-view videos (not ODAH examples) go through `clip_from_frames`: full frames, person
masks and calibrated cameras -> the square crops and crop metadata BANet consumes. The
input format (`load_frames_npz`):
  images  (2, T, H, W, 3) uint8 RGB     masks (2, T, H, W) bool or {0, 1}
  K (2, 3, 3)  R (2, 3, 3)  t (2, 3)   world -> camera, metres (banet_jax.geometry)
  fps     scalar, frames per second
The world frame is OpenSim's ground as in ODAH: metres, y up, floor at y = 0. The predicted
pelvis orientation is relative to it, and models trained with `point_order='height'`
order their query points by world y.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax import checkpoints, released
from banet_jax import data
from banet_jax.crops import square_crop
from banet_jax.model.banet import BANet
from banet_jax.run_config import TrainConfig, check_run_model
from banet_jax.model.outputs import decode

INPUT_FEATURES = ('crops', 'masks', 'crop_meta', 'camera_K', 'camera_R', 'camera_t')


def chunk_windows(frames: int, length: int) -> list[int]:
  """Start frames of the windows that cover a clip: 0, L, 2L, ..., and T - L last."""
  if frames <= length:
    return [0]
  starts = list(range(0, frames - length + 1, length))
  if starts[-1] + length < frames:
    starts.append(frames - length)
  return starts


class Predictor:
  """A restored BANet (params on the default device) with jit-compiled apply functions."""

  def __init__(self, net: BANet, params, stage: int, seed: int = 0, frame_batch: int = 16):
    if stage not in (1, 2):
      raise ValueError(f'stage must be 1 or 2, got {stage}')
    self.net, self.params, self.stage = net, params, stage
    self.seed, self.frame_batch = seed, frame_batch
    self.step, self.train_config, self.release = None, None, None  # set by `restore`
    if frame_batch < 1:
      raise ValueError(f'frame_batch must be at least 1, got {frame_batch}')
    if stage == 1:
      self._encode = jax.jit(lambda p, *x: net.frame.apply({'params': p}, *x))
    else:
      self._encode = jax.jit(lambda p, *x: net.sequence.apply({'params': p}, *x,
                                                              method='encode'))
      self._refine = jax.jit(lambda p, x: net.sequence.apply({'params': p}, x,
                                                             method='refine'))

  @classmethod
  def restore(cls, path: str | pathlib.Path | None = None, **kwargs) -> Predictor:
    """From a training workdir (latest checkpoint), a `checkpoints/<step>` folder or a
    release folder (`banet_jax.released`); None, 'default' or a release name: a shipped
    model (`released.DEFAULT_MODEL` by default)."""
    path = released.resolve(path)
    if released.is_release(path):
      params, config_json, info = released.load_release(path)
      step = info['step']
    else:
      state, config_json, step = checkpoints.load(path)
      params, info = state['params'], None
    config = TrainConfig.from_json(config_json)
    net = BANet.create(config.model_config())
    check_run_model(config_json, net.layout.skeleton, f'the model in {path}')
    predictor = cls(net, params, config.stage, seed=config.seed, **kwargs)
    predictor.step, predictor.train_config, predictor.release = step, config, info
    return predictor

  @property
  def layout(self):
    return self.net.layout

  def _inputs(self, clip: dict, frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = self.net.config
    items = [data.frame_inputs(clip, f, image_size=c.image_size, num_points=c.num_points,
                               rng=np.random.default_rng((self.seed, f)),
                               point_order=c.point_order, appearance=c.appearance)
             for f in frames]
    return tuple(np.stack([x[k] for x in items]) for k in ('images', 'crop_pixels',
                                                           'query_points'))

  def warm_up(self) -> None:
    """Compiles what `predict_raw` runs (one frame batch; in stage 2 one chunk) on zero
    inputs, so that the first clip's time is all prediction."""
    jax.block_until_ready(self._encode(self.params,
                                       *self.net.example_inputs(batch=self.frame_batch)))
    if self.stage == 2:
      chunk = jnp.zeros((1, self.net.config.chunk_length, self.layout.out_dim), jnp.float32)
      jax.block_until_ready(self._refine(self.params, chunk))

  def encode_frames(self, clip: dict) -> np.ndarray:
    """(T, out_dim) raw frame-model outputs for every frame of a clip, `frame_batch`
    frames per call."""
    missing = [k for k in INPUT_FEATURES if k not in clip]
    if missing:
      raise ValueError(f'the clip lacks {missing} (see odah_tfds/schema.py)')
    num_frames = np.asarray(clip['crops']).shape[1]
    out = []
    for start in range(0, num_frames, self.frame_batch):
      frames = [min(f, num_frames - 1) for f in range(start, start + self.frame_batch)]
      raw = np.asarray(self._encode(self.params, *self._inputs(clip, frames)))
      out.append(raw[:num_frames - start])
    return np.concatenate(out)

  def predict_raw(self, clip: dict) -> np.ndarray:
    """(T, out_dim) raw network outputs for every frame of a clip."""
    per_frame = self.encode_frames(clip)
    if self.stage == 1:
      return per_frame
    num_frames, length = len(per_frame), self.net.config.chunk_length
    raw = np.zeros_like(per_frame)
    done = np.zeros(num_frames, bool)
    for start in chunk_windows(num_frames, length):
      frames = [min(f, num_frames - 1) for f in range(start, start + length)]
      window = np.asarray(self._refine(self.params, per_frame[frames][None]))[0]
      for k, f in enumerate(frames):
        if not done[f]:
          raw[f], done[f] = window[k], True
    return raw

  def predict_clip(self, clip: dict) -> dict[str, np.ndarray]:
    """{'coordinates' (T, C), 'scales' (B, 3) (mean over the clip), 'frame_scales'
    (T, B, 3)}, float64 numpy."""
    coords, scales = decode(self.layout, jnp.asarray(self.predict_raw(clip)))
    coords, scales = np.asarray(coords, np.float64), np.abs(np.asarray(scales, np.float64))
    return {'coordinates': coords, 'scales': scales.mean(axis=0), 'frame_scales': scales}


def load_frames_npz(path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """Reads and checks a two-view input file (format in the module docstring)."""
  with np.load(path) as f:
    values = {k: f[k] for k in f.files}
  missing = sorted({'images', 'masks', 'K', 'R', 't', 'fps'} - set(values))
  if missing:
    raise ValueError(f'{path}: missing arrays {missing}; expected images (2, T, H, W, 3) uint8, '
                     'masks (2, T, H, W), K (2, 3, 3), R (2, 3, 3), t (2, 3) and fps')
  images, masks = values['images'], values['masks']
  if images.ndim != 5 or images.shape[0] != 2 or images.shape[-1] != 3:
    raise ValueError(f'{path}: images must be (2, T, H, W, 3), got {images.shape}')
  if masks.shape != images.shape[:4]:
    raise ValueError(f'{path}: masks must be {images.shape[:4]}, got {masks.shape}')
  for key, shape in (('K', (2, 3, 3)), ('R', (2, 3, 3)), ('t', (2, 3))):
    if values[key].shape != shape:
      raise ValueError(f'{path}: {key} must be {shape}, got {values[key].shape}')
  return values


def clip_from_frames(frames: dict[str, np.ndarray], crop_size: int) -> dict[str, np.ndarray]:
  """Full two-view frames (`load_frames_npz`) -> crops, masks, crop_meta and cameras."""
  images, masks = frames['images'], np.asarray(frames['masks']) != 0
  views, num_frames = images.shape[:2]
  crops = np.zeros((views, num_frames, crop_size, crop_size, 3), np.uint8)
  crop_masks = np.zeros((views, num_frames, crop_size, crop_size), np.uint8)
  meta = np.zeros((views, num_frames, 3), np.float32)
  for v in range(views):
    for t in range(num_frames):
      if not masks[v, t].any():
        raise ValueError(f'view {v}, frame {t}: the person mask is empty')
      crops[v, t], crop_masks[v, t], meta[v, t] = square_crop(images[v, t], masks[v, t],
                                                              crop_size)
  return {'crops': crops, 'masks': crop_masks, 'crop_meta': meta,
          'camera_K': np.asarray(frames['K'], np.float32),
          'camera_R': np.asarray(frames['R'], np.float32),
          'camera_t': np.asarray(frames['t'], np.float32)}
