"""ODAH clips -> BANet batches: sources, the per-example transform, grain pipelines.

Sources. A source is any random-access sequence of ODAH examples (dicts following
`odah_tfds.schema`, one clip of T frames and two views each):
  * `open_source('odah/<config>', split, data_dir)`: the TFDS dataset, read with
    `tfds` random access (`ArrayRecordDataSource`; the dataset must be built with
    `--file_format=array_record`). No TensorFlow is imported.
  * `open_source('synthetic', ...)`: `banet_jax.synthetic.SyntheticClips` (no files).
  * any Python sequence of example dicts (tests).
Every clip of a source must have the same number of frames T (ODAH: fixed per config), and
its labels must be in the network's OpenSim model: `ClipReader` compares the model the
dataset records (`source_model`) with the network's and refuses another one.

Items. Stage 1 trains on FRAMES: item k is frame k % T of clip k // T. Stage 2 trains on
CHUNKS of `chunk_length` L frames: for each clip, non-overlapping windows starting at
offsets 0 and L // 2 (the official `ChunkedGenerator`; evaluation uses offset 0 only).

Transform (host side, numpy; per frame, as the official loader):
  1. crops and masks resized to the model's `image_size` if the dataset's crop size
     differs (bilinear / nearest; the crop meta follows exactly, pixel centres kept);
     training batches of a run with `augment` other than 'none' then degrade every
     view like a real capture (`banet_jax.augment`: segmenter-like masks, exposure,
     noise, blur, JPEG), from their own generator `(seed, epoch, item, frame, 7)`;
  2. RGB / 255, normalised with the ImageNet mean and std, then zero outside the mask
     (a model with `appearance='silhouette'`: 1 on the mask, 0 outside, colours unread);
  3. `num_points` query points in the two-view visual hull
     (`banet_jax.model.sampling.sample_visual_hull_points`), centred by their mean, in
     the model's `point_order` (random as drawn, or sorted by world height).
The sampler's generator is `np.random.default_rng((seed, epoch, item, frame))`, so a
resumed run sees exactly the data it would have seen.

Batches are dicts of numpy arrays; stage 1 (B two-view frames, V views, S image size,
N query points, C coordinates, Bo bodies, P skeleton points):
  images (B, V, S, S, 3) float32    crop_pixels (B, V, N, 2) float32
  query_points (B, N, 3) float32    coordinates (B, C) float32
  scales (B, Bo, 3) float32         points (B, P, 3) float32 (world, metres)
Stage 2 adds a time axis after B: (B, L, ...); `scales` is repeated over L.

Pipelines (`train_batches`, `eval_batches`) are grain `MapDataset`s: a global shuffle
per epoch (seeded, reshuffled every epoch), batches of the global batch size with the
epoch remainder dropped, each process loading its own slice of every global batch, and
`make_iterator` for thread prefetching and a checkpointable iterator state.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import threading
from collections.abc import Sequence

import grain
import numpy as np
from PIL import Image

from banet_jax import augment as augment_lib
from banet_jax.model.outputs import OutputLayout
from banet_jax.model.sampling import APPEARANCES, POINT_ORDERS, sample_visual_hull_points
from banet_jax.skeleton import Skeleton, check_same_model
from banet_jax.synthetic import SyntheticClips

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)

# The example features the pipeline reads.
READ_FEATURES = ('crops', 'masks', 'crop_meta', 'camera_K', 'camera_R', 'camera_t',
                 'coordinates', 'scales', 'points')
# Synthetic clips of every split differ (seed offset per split).
_SYNTHETIC_SPLIT_SEEDS = {'train': 0, 'validation': 1, 'test': 2}


class DatasetNotFoundError(FileNotFoundError):
  """The requested TFDS dataset is not built (or not in a random-access format)."""


# ----------------------------------------------------------------------------- sources


def default_data_dir() -> str:
  """TFDS's default data directory ($TFDS_DATA_DIR or ~/tensorflow_datasets)."""
  return os.path.expanduser(os.environ.get('TFDS_DATA_DIR', '~/tensorflow_datasets'))


def _version_key(path: pathlib.Path):
  try:
    return tuple(int(p) for p in path.name.split('.'))
  except ValueError:
    return (-1,)


def open_tfds_source(dataset: str, split: str, data_dir: str | None = None):
  """Random access to a built TFDS dataset `name/config[:version]` (array_record files).

  Reads the prepared files directly (`tfds.builder_from_directory`), so the builder code
  (and TensorFlow) is not needed. Without `:version` the newest version directory is
  used; `odah/lab:1.1.0` reads that version (TFDS's own spelling).

  Raises:
    DatasetNotFoundError: the dataset is not built in `data_dir`, or only as TFRecords.
    ValueError: a malformed name or an unknown split.
  """
  full, _, version = dataset.partition(':')
  if full.count('/') != 1 or (_ and not version):
    raise ValueError("TFDS datasets are named 'name/config' or 'name/config:version' (e.g. "
                     f"'odah/tiny', 'odah/lab:1.1.0'), got {dataset!r}")
  name, config = full.split('/')
  data_dir = data_dir or default_data_dir()
  build = f'tfds build {name} --config={config} --file_format=array_record'
  root = pathlib.Path(data_dir) / name / config
  versions = sorted((p for p in root.glob('*') if (p / 'dataset_info.json').is_file()),
                    key=_version_key) if root.is_dir() else []
  if version:
    built = [p.name for p in versions]
    versions = [p for p in versions if p.name == version]
    if built and not versions:
      raise DatasetNotFoundError(f'dataset {dataset}: version {version} is not in {root} '
                                 f'(built: {", ".join(built)})')
  if not versions:
    raise DatasetNotFoundError(
        f'dataset {dataset} not found in {data_dir}: build it with `{build}` from the '
        'checkout root (elsewhere add --imports=odah_tfds.odah)')
  folder = versions[-1]
  # Shards are named '<name>-<split>.<format>-NNNNN-of-NNNNN'.
  formats = collections.defaultdict(set)
  for shard in folder.glob(f'{name}-*'):
    split_name, _, rest = shard.name[len(name) + 1:].partition('.')
    formats[split_name].add(rest.split('-')[0])
  if split not in formats:
    raise ValueError(f'dataset {dataset} in {folder} has no split {split!r}; it has '
                     f'{sorted(formats)}')
  if 'array_record' not in formats[split]:
    raise DatasetNotFoundError(
        f'dataset {dataset} in {folder} holds only {"/".join(sorted(formats[split]))} files for '
        f'split {split!r}; random access (tfds.data_source) needs array_record: rebuild it '
        f'with `{build}`')
  # Lazy: tensorflow_datasets: TF's side, only for TFDS sources.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(str(folder))
  return builder.as_data_source(split=split)


def open_source(dataset: str, split: str, data_dir: str | None = None, *,
                layout: OutputLayout | None = None, synthetic_clips: int = 8,
                synthetic_frames: int = 16, synthetic_crop_size: int = 64) -> Sequence:
  """'synthetic' -> `SyntheticClips` (layout and synthetic_* used), else a TFDS dataset."""
  if dataset == 'synthetic':
    if layout is None:
      raise ValueError("the 'synthetic' dataset needs the model's output layout")
    if split not in _SYNTHETIC_SPLIT_SEEDS:
      raise ValueError(f'synthetic splits are {sorted(_SYNTHETIC_SPLIT_SEEDS)}, got {split!r}')
    return SyntheticClips(layout, synthetic_clips, synthetic_frames, synthetic_crop_size,
                          seed=_SYNTHETIC_SPLIT_SEEDS[split])
  return open_tfds_source(dataset, split, data_dir)


class ClipReader:
  """Reads and checks the features the pipeline needs, with an LRU cache of clips.

  A tfds example decodes (decompresses) the whole clip, so stage-1 frame reads keep the
  last `cache_size` clips. Thread-safe.
  """

  def __init__(self, source: Sequence, layout: OutputLayout, cache_size: int = 16):
    if len(source) == 0:
      raise ValueError('the data source is empty')
    self.source, self._layout = source, layout
    self._cache: collections.OrderedDict[int, dict] = collections.OrderedDict()
    self._cache_size = max(int(cache_size), 1)
    self._lock = threading.Lock()
    check_source_model(source, layout.skeleton)
    first = self.clip(0)
    self.num_views, self.frames = first['crops'].shape[:2]
    self.crop_size = first['crops'].shape[2]

  def __len__(self) -> int:
    return len(self.source)

  def clip(self, index: int) -> dict:
    """The READ_FEATURES of example `index` as numpy arrays (checked)."""
    with self._lock:
      if index in self._cache:
        self._cache.move_to_end(index)
        return self._cache[index]
    example = self.source[index]
    missing = [k for k in READ_FEATURES if k not in example]
    if missing:
      raise ValueError(f'example {index} lacks features {missing} (see odah_tfds/schema.py)')
    clip = {k: np.asarray(example[k]) for k in READ_FEATURES}
    self._check(index, clip)
    with self._lock:
      self._cache[index] = clip
      while len(self._cache) > self._cache_size:
        self._cache.popitem(last=False)
    return clip

  def _check(self, index: int, clip: dict) -> None:
    skel = self._layout.skeleton
    if clip['crops'].ndim != 5:
      raise ValueError(f'example {index}: crops must be (views, frames, S, S, 3), got '
                       f'{clip["crops"].shape}')
    v, t, s = clip['crops'].shape[:3]
    expected = {
        'crops': ((v, t, s, s, 3), np.uint8), 'masks': ((v, t, s, s), None),
        'crop_meta': ((v, t, 3), None), 'camera_K': ((v, 3, 3), None),
        'camera_R': ((v, 3, 3), None), 'camera_t': ((v, 3), None),
        'coordinates': ((t, skel.num_coordinates), None), 'scales': ((skel.num_bodies, 3), None),
        'points': ((t, self._layout.num_points, 3), None)}
    for name, (shape, dtype) in expected.items():
      arr = clip[name]
      if arr.shape != shape or (dtype is not None and arr.dtype != dtype):
        raise ValueError(f'example {index}: {name} is {arr.dtype} {arr.shape}, expected '
                         f'{np.dtype(dtype or arr.dtype)} {shape} (crops {clip["crops"].shape}, '
                         f'model {skel.model_name!r})')
    if hasattr(self, 'frames') and (t, s, v) != (self.frames, self.crop_size, self.num_views):
      raise ValueError(f'example {index} has {t} frames, {s}px crops and {v} views; example 0 '
                       f'has {self.frames}, {self.crop_size}px, {self.num_views}: every clip of '
                       'a source must have the same sizes')


def source_model(source: Sequence) -> tuple[dict | None, str]:
  """(what a source records of the OpenSim model its labels are in, a description of it).

  A TFDS dataset built since the builder records it (`metadata.json`, 'osim': a
  `Skeleton.identity()` with the file's sha256) gives that; an older build gives the
  coordinate and body names of its first example; a source that holds neither (synthetic
  clips, made from the network's own layout; test sequences) gives None.
  """
  info = getattr(source, 'dataset_info', None)
  what = (f'dataset {info.full_name}' if info is not None else f'source {type(source).__name__}')
  if info is not None and info.metadata and 'osim' in info.metadata:
    return dict(info.metadata['osim']), what
  example = source[0] if len(source) else {}
  if isinstance(example, dict) and 'coordinate_names' in example and 'body_names' in example:
    names = lambda key: [n.decode() if isinstance(n, bytes) else str(n) for n in example[key]]
    return ({'coordinate_names': names('coordinate_names'), 'body_names': names('body_names')},
            what)
  return None, what


def check_source_model(source: Sequence, skel: Skeleton) -> None:
  """Raises `ModelMismatchError` when `source`'s labels are in another model than `skel`."""
  recorded, what = source_model(source)
  if recorded is not None:
    check_same_model(recorded, skel, what)


# ----------------------------------------------------------------------- the transform


def resize_views(crops: np.ndarray, masks: np.ndarray, crop_meta: np.ndarray, size: int):
  """Resizes (V, S, S, 3) uint8 crops (bilinear) and (V, S, S) masks (nearest) to `size`.

  Returns the new crops, masks and (V, 3) crop meta. With integer pixel coordinates at
  pixel centres, new pixel x sits at old pixel r (x + 1/2) - 1/2 (r = S / size), so
  `full = crop * scale' + offset'` with scale' = r scale and offset' = offset + (r - 1)
  scale / 2: the meta stays exact.
  """
  s = crops.shape[1]
  if s == size:
    return crops, masks, crop_meta
  r = s / size
  new_crops = np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.BILINEAR))
                        for c in crops])
  new_masks = np.stack([np.asarray(Image.fromarray((m != 0).astype(np.uint8)).resize(
      (size, size), Image.NEAREST)) for m in masks])
  meta = np.asarray(crop_meta, np.float64).copy()
  meta[:, :2] += (r - 1) * meta[:, 2:3] / 2
  meta[:, 2] *= r
  return new_crops, new_masks, meta


def normalize_images(crops: np.ndarray, masks: np.ndarray, appearance: str = 'rgb'
                     ) -> np.ndarray:
  """(..., S, S, 3) uint8, (..., S, S) masks -> (..., S, S, 3) float32, 0 off-mask.

  appearance 'rgb': ImageNet-normalised colours; 'silhouette': 1.0 on the mask in all
  three channels (the colours are not read).
  """
  on = (masks != 0)[..., None]
  if appearance == 'silhouette':
    return np.broadcast_to(on, (*on.shape[:-1], 3)).astype(np.float32)
  if appearance != 'rgb':
    raise ValueError(f'appearance must be one of {list(APPEARANCES)}, got {appearance!r}')
  images = (crops.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
  return images * on


def frame_inputs(clip: dict, frame: int, *, image_size: int, num_points: int,
                 rng: np.random.Generator, ray_step: float = 0.05,
                 point_order: str = 'random',
                 degradation: augment_lib.Degradation | None = None,
                 degradation_rng: np.random.Generator | None = None,
                 appearance: str = 'rgb') -> dict:
  """The model inputs of one two-view frame (numpy, unbatched, float32): images
  (V, S, S, 3), crop_pixels (V, N, 2), query_points (N, 3). Needs only the clip's
  crops, masks, crop_meta and cameras (also used for inference). `point_order`:
  'random' (as drawn) or 'height' (sorted by world y, lowest first; draws no randomness).
  `degradation` (training only): every view degraded at the model's size, drawing from
  `degradation_rng`; the query points then come from the degraded masks, as they do from
  a segmenter's on real video. `appearance`: the model's (`normalize_images`)."""
  crops, masks, meta = resize_views(clip['crops'][:, frame], clip['masks'][:, frame],
                                    clip['crop_meta'][:, frame], image_size)
  if degradation is not None:  # (the identity degradation returns its inputs, drawing nothing)
    if degradation_rng is None:
      raise ValueError('frame_inputs: a degradation needs its degradation_rng')
    views = [augment_lib.degrade_view(c, m, degradation_rng, degradation)
             for c, m in zip(crops, masks)]
    crops = np.stack([v[0] for v in views])
    masks = np.stack([v[1] for v in views])
  cameras = list(zip(clip['camera_K'], clip['camera_R'], clip['camera_t']))
  hull = sample_visual_hull_points(masks, cameras, meta, num_points, rng, ray_step)
  points, crop_pixels = hull.points_world, hull.crop_pixels
  if point_order == 'height':
    order = np.argsort(points[:, 1], kind='stable')
    points, crop_pixels = points[order], crop_pixels[:, order]
  elif point_order not in POINT_ORDERS:
    raise ValueError(f'point_order must be one of {list(POINT_ORDERS)}, got {point_order!r}')
  query = points - points.mean(axis=0)
  return {'images': normalize_images(crops, masks, appearance),
          'crop_pixels': np.asarray(crop_pixels, np.float32),
          'query_points': query.astype(np.float32)}


def frame_example(clip: dict, frame: int, *, image_size: int, num_points: int,
                  rng: np.random.Generator, ray_step: float = 0.05,
                  point_order: str = 'random',
                  degradation: augment_lib.Degradation | None = None,
                  degradation_rng: np.random.Generator | None = None,
                  appearance: str = 'rgb') -> dict:
  """One two-view frame of a clip -> the model's inputs and targets (numpy, unbatched).

  Returns images (V, S, S, 3), crop_pixels (V, N, 2), query_points (N, 3),
  coordinates (C,), scales (Bo, 3), points (P, 3); all float32. `degradation`: see
  `frame_inputs`.
  """
  example = frame_inputs(clip, frame, image_size=image_size, num_points=num_points, rng=rng,
                         ray_step=ray_step, point_order=point_order, degradation=degradation,
                         degradation_rng=degradation_rng, appearance=appearance)
  example.update(coordinates=clip['coordinates'][frame].astype(np.float32),
                 scales=clip['scales'].astype(np.float32),
                 points=clip['points'][frame].astype(np.float32))
  return example


def chunk_starts(frames: int, chunk_length: int, offsets=None) -> list[int]:
  """Start frames of the chunks of one clip: full windows at offsets {0, L // 2}."""
  if chunk_length < 1:
    raise ValueError(f'chunk_length must be >= 1, got {chunk_length}')
  offsets = (0, chunk_length // 2) if offsets is None else offsets
  return sorted({s for o in offsets for s in range(o, frames - chunk_length + 1, chunk_length)})


# ------------------------------------------------------------------------- pipelines


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """What the pipeline needs to know (see module docstring)."""

  stage: int  # 1: frames, 2: chunks
  batch_size: int  # global batch (frames in stage 1, chunks in stage 2)
  image_size: int
  num_points: int
  chunk_length: int
  seed: int = 0
  ray_step: float = 0.05
  clip_cache: int = 16
  point_order: str = 'random'  # the model's (BANetConfig.point_order)
  appearance: str = 'rgb'  # the model's (BANetConfig.appearance)
  augment: str = 'none'  # training batches only: a name of banet_jax.augment.PRESETS

  def __post_init__(self):
    if self.augment not in augment_lib.PRESETS:
      raise ValueError(f'augment must be one of {sorted(augment_lib.PRESETS)}, '
                       f'got {self.augment!r}')
    if self.appearance not in APPEARANCES:
      raise ValueError(f'appearance must be one of {list(APPEARANCES)}, '
                       f'got {self.appearance!r}')
    if self.stage not in (1, 2):
      raise ValueError(f'stage must be 1 or 2, got {self.stage}')
    if self.batch_size < 1 or self.image_size < 8 or self.num_points < 1:
      raise ValueError(f'bad pipeline sizes: {self}')
    if not 0 <= self.seed < 2**32:
      raise ValueError(f'seed must be in [0, 2**32), got {self.seed}')


class _Loader:
  """Maps a global batch of (position, item) pairs to this process's slice of examples."""

  def __init__(self, reader: ClipReader, config: PipelineConfig, starts: list[int],
               epoch_size: int, process_index: int, process_count: int,
               degradation: augment_lib.Degradation | None = None):
    self.reader, self.config, self.starts = reader, config, starts
    self.degradation = degradation
    self.epoch_size = epoch_size
    local = config.batch_size // process_count
    self.rows = slice(process_index * local, (process_index + 1) * local)

  def item(self, item: int) -> tuple[int, int]:
    """(clip, first frame) of an item."""
    if self.config.stage == 1:
      return divmod(int(item), self.reader.frames)
    clip, k = divmod(int(item), len(self.starts))
    return clip, self.starts[k]

  def example(self, position: int, item: int) -> dict:
    c = self.config
    epoch = int(position) // self.epoch_size
    clip_index, start = self.item(item)
    clip = self.reader.clip(clip_index)
    frames = 1 if c.stage == 1 else c.chunk_length
    out = []
    for f in range(frames):
      rng = np.random.default_rng((c.seed, epoch, int(item), f))
      degradation_rng = (None if self.degradation is None else np.random.default_rng(
          (c.seed, epoch, int(item), f, augment_lib.AUGMENT_STREAM)))
      try:
        out.append(frame_example(clip, start + f, image_size=c.image_size,
                                 num_points=c.num_points, rng=rng, ray_step=c.ray_step,
                                 point_order=c.point_order, degradation=self.degradation,
                                 degradation_rng=degradation_rng, appearance=c.appearance))
      except ValueError as e:
        raise ValueError(f'clip {clip_index}, frame {start + f}: {e}') from e
    if c.stage == 1:
      return out[0]
    return {k: np.stack([o[k] for o in out]) for k in out[0]}

  def __call__(self, pairs: np.ndarray) -> dict:
    """pairs (G, 2) int64 rows (position, item) -> this process's batch."""
    rows = [self.example(p, i) for p, i in pairs[self.rows]]
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def _items(reader: ClipReader, config: PipelineConfig, starts: list[int]) -> int:
  if config.stage == 1:
    return len(reader) * reader.frames
  if not starts:
    raise ValueError(f'clips have {reader.frames} frames, fewer than chunk_length '
                     f'{config.chunk_length}: no chunk fits')
  return len(reader) * len(starts)


def _check_processes(config: PipelineConfig, process_index: int, process_count: int):
  if config.batch_size % process_count:
    raise ValueError(f'global batch {config.batch_size} is not divisible by the '
                     f'{process_count} processes')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index {process_index} not in [0, {process_count})')


def train_batches(source: Sequence, layout: OutputLayout, config: PipelineConfig, *,
                  process_index: int = 0, process_count: int = 1):
  """Infinite, shuffled training batches (grain MapDataset; index k = k-th batch).

  Returns (dataset, info): info holds 'items' (frames or chunks per epoch),
  'steps_per_epoch', 'clips' and 'frames_per_clip'.
  """
  _check_processes(config, process_index, process_count)
  reader = ClipReader(source, layout, config.clip_cache)
  starts = chunk_starts(reader.frames, config.chunk_length) if config.stage == 2 else []
  n = _items(reader, config, starts)
  if n < config.batch_size:
    raise ValueError(f'an epoch has {n} {"frames" if config.stage == 1 else "chunks"}, '
                     f'fewer than the global batch {config.batch_size}')
  degradation = augment_lib.PRESETS[config.augment]
  loader = _Loader(reader, config, starts, n, process_index, process_count,
                   None if degradation.is_identity else degradation)
  # Grain's shuffle reseeds every epoch; map_with_index sees the global position
  # (epoch * n + k), from which the loader derives the epoch.
  ds = (grain.MapDataset.range(n).shuffle(seed=config.seed)
        .map_with_index(lambda position, item: np.array([position, item], np.int64))
        .batch(config.batch_size, drop_remainder=True).repeat().map(loader))
  info = {'items': n, 'steps_per_epoch': n // config.batch_size, 'clips': len(reader),
          'frames_per_clip': reader.frames}
  return ds, info


def eval_batches(source: Sequence, layout: OutputLayout, config: PipelineConfig, *,
                 process_index: int = 0, process_count: int = 1):
  """One pass, in order, remainder dropped; chunks at offset 0 only (as the official test).

  The query points are drawn with `config.seed` and epoch 0, so every evaluation sees the
  same inputs. Returns a grain MapDataset (possibly empty).
  """
  _check_processes(config, process_index, process_count)
  reader = ClipReader(source, layout, config.clip_cache)
  starts = chunk_starts(reader.frames, config.chunk_length, (0,)) if config.stage == 2 else []
  n = _items(reader, config, starts)
  # Positions = items, and a huge epoch size keeps the derived epoch at 0.
  loader = _Loader(reader, config, starts, np.iinfo(np.int64).max, process_index, process_count)
  return (grain.MapDataset.range(n)
          .map_with_index(lambda position, item: np.array([position, item], np.int64))
          .batch(config.batch_size, drop_remainder=True).map(loader))


def make_iterator(dataset, threads: int = 2, prefetch: int = 4):
  """A grain iterator with `threads` reader threads; `get_state()` / `set_state()`."""
  options = grain.ReadOptions(num_threads=max(threads, 0), prefetch_buffer_size=max(prefetch, 0))
  return iter(dataset.to_iter_dataset(options))
