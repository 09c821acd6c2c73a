"""Input pipeline (banet_jax/data.py) and synthetic examples (banet_jax/synthetic.py)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from banet_jax import data
from banet_jax import geometry
from banet_jax.model.banet import BANet, get_config
from banet_jax.skeleton import ModelMismatchError
from banet_jax.synthetic import SyntheticClips
from odah_tfds import schema

REPO = pathlib.Path(__file__).resolve().parents[1]
S, T, N = 32, 16, 16  # crop size, frames per clip, query points


@pytest.fixture(scope='module')
def net():
  return BANet.create(get_config('tiny', image_size=S, num_points=N, chunk_length=8))


@pytest.fixture(scope='module')
def clips(net):
  """Two geometrically consistent clips, generated once."""
  source = SyntheticClips(net.layout, 2, T, S, seed=0)
  return [source[0], source[1]]


def _config(stage=1, **kw):
  return data.PipelineConfig(stage=stage, **{**dict(batch_size=4, image_size=S, num_points=N,
                                                    chunk_length=8, seed=3), **kw})


def _take(ds, count, start=0):
  it = data.make_iterator(ds, threads=2, prefetch=2)
  if start:
    it.set_state({'next_index': start})
  return [next(it) for _ in range(count)]


def _equal(a: dict, b: dict) -> bool:
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_synthetic_examples_follow_the_schema(clips):
  schema.check_example(clips[0], schema.Dims(frames=T, crop_size=S))
  masks = clips[0]['masks']
  assert 0.05 < masks.mean() < 0.6  # a figure, not an empty or full crop
  # The labels agree with the images: joint centres project onto the masks.
  k, r, t, meta = (clips[0][n] for n in ('camera_K', 'camera_R', 'camera_t', 'crop_meta'))
  joints = clips[0]['points'][:, 22:]
  for view in range(2):
    px = geometry.full_to_crop(geometry.project(joints, k[view], r[view], t[view]),
                               meta[view][:, None])
    ij = np.clip(np.round(px).astype(int), 0, S - 1)
    hits = masks[view][np.arange(T)[:, None], ij[..., 1], ij[..., 0]]
    assert hits.mean() > 0.95


def test_frame_batches_have_the_model_shapes(net, clips):
  ds, info = data.train_batches(clips, net.layout, _config())
  assert info == {'items': 2 * T, 'steps_per_epoch': 2 * T // 4, 'clips': 2, 'frames_per_clip': T}
  batch = ds[0]
  images, pixels, points = net.example_inputs(batch=4)
  expect = {'images': images.shape, 'crop_pixels': pixels.shape, 'query_points': points.shape,
            'coordinates': (4, 39), 'scales': (4, 22, 3), 'points': (4, 44, 3)}
  assert {k: v.shape for k, v in batch.items()} == expect
  assert all(v.dtype == np.float32 for v in batch.values())
  np.testing.assert_allclose(batch['query_points'].mean(axis=1), 0, atol=1e-5)  # centred


def test_chunk_batches_use_offsets_0_and_half(net, clips):
  assert data.chunk_starts(T, 8) == [0, 4, 8]
  assert data.chunk_starts(128, 64) == [0, 32, 64]
  assert data.chunk_starts(64, 64) == [0] and data.chunk_starts(63, 64) == []
  assert data.chunk_starts(128, 64, offsets=(0,)) == [0, 64]
  ds, info = data.train_batches(clips, net.layout, _config(stage=2, batch_size=2))
  assert info['items'] == 2 * 3
  batch = ds[0]
  images, pixels, points = net.example_inputs(batch=2, frames=8)
  assert batch['images'].shape == images.shape and batch['crop_pixels'].shape == pixels.shape
  assert batch['query_points'].shape == points.shape
  assert batch['coordinates'].shape == (2, 8, 39) and batch['scales'].shape == (2, 8, 22, 3)
  # Every chunk is 8 consecutive frames of one clip, starting at 0, 4 or 8.
  for chunk in batch['coordinates']:
    found = [(c, s) for c in range(2) for s in (0, 4, 8)
             if np.array_equal(chunk, clips[c]['coordinates'][s:s + 8])]
    assert len(found) == 1
  with pytest.raises(ValueError, match='no chunk fits'):
    data.train_batches(clips, net.layout, _config(stage=2, chunk_length=24))


def test_every_epoch_covers_each_frame_once_in_a_new_order(net, clips):
  ds, info = data.train_batches(clips, net.layout, _config())
  steps = info['steps_per_epoch']
  frames = {tuple(row) for c in clips for row in np.round(c['coordinates'], 6)}
  orders = []
  for epoch in range(2):
    rows = np.concatenate([ds[epoch * steps + k]['coordinates'] for k in range(steps)])
    keys = [tuple(row) for row in np.round(rows, 6)]
    assert sorted(keys) == sorted(frames)  # every frame exactly once
    orders.append(keys)
  assert orders[0] != orders[1]


def test_same_seed_same_batches_other_seed_other_batches(net, clips):
  first = _take(data.train_batches(clips, net.layout, _config())[0], 3)
  again = _take(data.train_batches(clips, net.layout, _config())[0], 3)
  other = _take(data.train_batches(clips, net.layout, _config(seed=4))[0], 3)
  assert all(_equal(a, b) for a, b in zip(first, again, strict=True))
  assert not _equal(first[0], other[0])


def test_real_augmentation_degrades_training_views_only_and_deterministically(net, clips):
  plain = _take(data.train_batches(clips, net.layout, _config())[0], 2)
  real = _take(data.train_batches(clips, net.layout, _config(augment='real'))[0], 2)
  again = _take(data.train_batches(clips, net.layout, _config(augment='real'))[0], 2)
  assert all(_equal(a, b) for a, b in zip(real, again, strict=True))
  for p, r in zip(plain, real, strict=True):
    assert not np.array_equal(p['images'], r['images'])
    for key in ('coordinates', 'scales', 'points'):  # the targets are untouched
      np.testing.assert_array_equal(p[key], r[key])
  # Validation batches never degrade.
  config = _config(augment='real')
  a = data.eval_batches(clips, net.layout, config)[0]
  b = data.eval_batches(clips, net.layout, _config())[0]
  assert _equal(a, b)


def test_iterator_state_resumes_the_same_batches(net, clips):
  ds, info = data.train_batches(clips, net.layout, _config())
  it = data.make_iterator(ds, threads=2, prefetch=4)
  for _ in range(info['steps_per_epoch'] - 1):  # stop just before an epoch boundary
    next(it)
  state = json.loads(json.dumps(it.get_state()))  # as stored in a checkpoint
  expected = [next(it) for _ in range(3)]
  resumed = data.make_iterator(ds, threads=1, prefetch=0)
  resumed.set_state(state)
  assert all(_equal(a, b) for a, b in zip(expected, [next(resumed) for _ in range(3)],
                                          strict=True))


def test_background_is_zeroed_and_foreground_normalised(clips):
  clip = clips[0]
  out = data.frame_example(clip, 5, image_size=S, num_points=N, rng=np.random.default_rng(0))
  mask = clip['masks'][:, 5] != 0
  crops = clip['crops'][:, 5]
  assert np.any(crops[~mask] > 0)  # the synthetic background is not black...
  assert np.all(out['images'][~mask] == 0)  # ...but the network sees zeros there
  expected = (crops[mask] / 255.0 - data.IMAGENET_MEAN) / data.IMAGENET_STD
  np.testing.assert_allclose(out['images'][mask], expected, rtol=1e-5, atol=1e-6)
  # The query points project onto the masks (nearest crop pixel).
  ij = np.round(out['crop_pixels']).astype(int)
  for view in range(2):
    assert np.all(mask[view][ij[view, :, 1], ij[view, :, 0]])


def test_height_point_order_sorts_the_same_points(net, clips):
  clip = clips[0]
  drawn = data.frame_inputs(clip, 3, image_size=S, num_points=N, rng=np.random.default_rng(4))
  tall = data.frame_inputs(clip, 3, image_size=S, num_points=N, rng=np.random.default_rng(4),
                           point_order='height')
  np.testing.assert_array_equal(tall['images'], drawn['images'])
  # Same points (same draws), reordered lowest first, pixels permuted with them.
  order = np.argsort(drawn['query_points'][:, 1], kind='stable')
  np.testing.assert_allclose(tall['query_points'], drawn['query_points'][order], atol=1e-6)
  np.testing.assert_array_equal(tall['crop_pixels'], drawn['crop_pixels'][:, order])
  assert np.all(np.diff(tall['query_points'][:, 1]) >= 0)
  assert not np.all(np.diff(drawn['query_points'][:, 1]) >= 0)  # the official order is not
  with pytest.raises(ValueError, match='point_order'):
    data.frame_inputs(clip, 3, image_size=S, num_points=N, rng=np.random.default_rng(4),
                      point_order='sorted')
  # The pipeline follows the model's order.
  batch = data.train_batches(clips, net.layout, _config(point_order='height'))[0][0]
  assert np.all(np.diff(batch['query_points'][..., 1], axis=-1) >= 0)


def test_silhouette_appearance_reads_only_the_masks(net, clips):
  """A model with appearance='silhouette' sees 1 on the mask and 0 off it in all three
  channels, whatever the colours; the query points are those an RGB model gets."""
  clip = clips[0]
  rgb = data.frame_inputs(clip, 2, image_size=S, num_points=N, rng=np.random.default_rng(1))
  sil = data.frame_inputs(clip, 2, image_size=S, num_points=N, rng=np.random.default_rng(1),
                          appearance='silhouette')
  mask = (clip['masks'][:, 2] != 0).astype(np.float32)
  assert sil['images'].shape == rgb['images'].shape and sil['images'].dtype == np.float32
  np.testing.assert_array_equal(sil['images'], np.repeat(mask[..., None], 3, axis=-1))
  np.testing.assert_array_equal(sil['query_points'], rgb['query_points'])
  np.testing.assert_array_equal(sil['crop_pixels'], rgb['crop_pixels'])
  recoloured = dict(clip, crops=255 - clip['crops'])
  again = data.frame_inputs(recoloured, 2, image_size=S, num_points=N,
                            rng=np.random.default_rng(1), appearance='silhouette')
  np.testing.assert_array_equal(again['images'], sil['images'])
  with pytest.raises(ValueError, match='appearance'):
    data.frame_inputs(clip, 2, image_size=S, num_points=N, rng=np.random.default_rng(1),
                      appearance='grey')
  with pytest.raises(ValueError, match='appearance'):
    _config(appearance='mask')
  # The pipeline follows the model's appearance.
  batch = data.train_batches(clips, net.layout, _config(appearance='silhouette'))[0][0]
  assert set(np.unique(batch['images'])) <= {0.0, 1.0}


def test_resizing_keeps_the_crop_geometry(clips):
  clip = clips[0]
  crops, masks, meta = clip['crops'][:, 0], clip['masks'][:, 0], clip['crop_meta'][:, 0]
  small_crops, small_masks, small_meta = data.resize_views(crops, masks, meta, 24)
  assert small_crops.shape == (2, 24, 24, 3) and small_crops.dtype == np.uint8
  assert small_masks.shape == (2, 24, 24)
  # Pixel centres: a point at old crop pixel p sits at new pixel (p + 1/2) / r - 1/2.
  full = np.array([[100.0, 200.0], [257.5, 31.25]])
  for view in range(2):
    old = geometry.full_to_crop(full, meta[view].astype(np.float64))
    new = geometry.full_to_crop(full, small_meta[view])
    np.testing.assert_allclose(new, (old + 0.5) / (S / 24) - 0.5, rtol=1e-6)
  out = data.frame_example(clip, 0, image_size=24, num_points=N, rng=np.random.default_rng(1))
  assert out['images'].shape == (2, 24, 24, 3)
  ij = np.clip(np.round(out['crop_pixels']).astype(int), 0, 23)
  for view in range(2):  # points still land on the (resized) person
    assert small_masks[view][ij[view, :, 1], ij[view, :, 0]].mean() > 0.9


def test_process_slices_partition_the_global_batch(net, clips):
  whole = data.train_batches(clips, net.layout, _config())[0][2]
  parts = [data.train_batches(clips, net.layout, _config(), process_index=p,
                              process_count=2)[0][2] for p in range(2)]
  for key, value in whole.items():
    np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), value)
  with pytest.raises(ValueError, match='not divisible by the 3 processes'):
    data.train_batches(clips, net.layout, _config(), process_index=0, process_count=3)


def test_eval_batches_are_fixed_and_in_order(net, clips):
  ds = data.eval_batches(clips, net.layout, _config(batch_size=5))
  assert len(ds) == 2 * T // 5  # remainder dropped
  np.testing.assert_array_equal(ds[0]['coordinates'], clips[0]['coordinates'][:5])
  assert _equal(ds[1], data.eval_batches(clips, net.layout, _config(batch_size=5))[1])
  chunks = data.eval_batches(clips, net.layout, _config(stage=2, batch_size=1))
  assert len(chunks) == 2 * 2  # offset 0 only: frames 0-7 and 8-15 of each clip


def test_clips_that_do_not_fit_are_rejected(net, clips):
  short = dict(clips[1], coordinates=clips[1]['coordinates'][:, :30])
  with pytest.raises(ValueError, match=r'example 1: coordinates is float32 \(16, 30\)'):
    data.ClipReader([clips[0], short], net.layout).clip(1)
  cut = {k: (v[:, :8] if k in ('crops', 'masks', 'crop_meta') else v[:8] if k in (
      'coordinates', 'points') else v) for k, v in clips[1].items()}
  with pytest.raises(ValueError, match='every clip of a source must have the same sizes'):
    data.ClipReader([clips[0], cut], net.layout).clip(1)
  with pytest.raises(ValueError, match=r"lacks features \['masks'\]"):
    data.ClipReader([{k: v for k, v in clips[0].items() if k != 'masks'}], net.layout)
  with pytest.raises(ValueError, match='fewer than the global batch'):
    data.train_batches(clips, net.layout, _config(batch_size=64))


class _RecordedSource(list):
  """A list of examples with a TFDS-like `dataset_info` whose metadata records a model."""

  def __init__(self, examples, osim):
    super().__init__(examples)
    self.dataset_info = types.SimpleNamespace(full_name='odah/fake/1.0.0',
                                              metadata={'osim': osim})


def test_sources_labelled_with_another_model_are_refused(net, clips, tmp_path):
  skel = net.layout.skeleton
  # A dataset that records the network's model (its file's sha256) is read.
  assert data.ClipReader(_RecordedSource(clips, skel.identity()), net.layout).frames == T
  # Same names, other file content: only the recorded sha256 can tell.
  edited = dict(skel.identity(), sha256='0' * 64)
  with pytest.raises(ModelMismatchError, match=r'dataset odah/fake/1.0.0 was made with the '
                     r'OpenSim model banet_fullbody.osim \(sha256 000000000000\).*same names, '
                     r'other file content'):
    data.ClipReader(_RecordedSource(clips, edited), net.layout)
  # A build without the record (before it existed): the names of its first example.
  text = pathlib.Path(skel.source).read_text().replace('hip_flexion_r', 'hip_flex_r')
  (tmp_path / 'renamed.osim').write_text(text)
  other = BANet.create(get_config('tiny', image_size=S, num_points=N,
                                  model_path=str(tmp_path / 'renamed.osim')))
  with pytest.raises(ModelMismatchError, match=r"records by names only.*renamed.osim.*"
                     r"coordinate_names differ \('hip_flexion_r' vs 'hip_flex_r'\)"):
    data.ClipReader(clips, other.layout)


def test_missing_or_tfrecord_only_dataset_errors(tmp_path):
  with pytest.raises(data.DatasetNotFoundError) as error:
    data.open_source('odah/tiny', 'train', str(tmp_path))
  assert str(error.value) == (
      f'dataset odah/tiny not found in {tmp_path}: build it with '
      '`tfds build odah --config=tiny --file_format=array_record` from the checkout root '
      '(elsewhere add --imports=odah_tfds.odah)')
  version = tmp_path / 'odah' / 'tiny' / '1.0.0'
  version.mkdir(parents=True)
  (version / 'dataset_info.json').write_text('{}')
  (version / 'odah-train.tfrecord-00000-of-00001').write_bytes(b'')
  with pytest.raises(data.DatasetNotFoundError,
                     match=r'holds only tfrecord files .*--file_format=array_record'):
    data.open_source('odah/tiny', 'train', str(tmp_path))
  with pytest.raises(ValueError, match=r"has no split 'validation'; it has \['train'\]"):
    data.open_source('odah/tiny', 'validation', str(tmp_path))
  with pytest.raises(ValueError, match="named 'name/config'"):
    data.open_source('odah', 'train', str(tmp_path))
  # A version is read when named (TFDS's spelling), newest otherwise.
  newer = tmp_path / 'odah' / 'tiny' / '1.2.0'
  newer.mkdir()
  (newer / 'dataset_info.json').write_text('{}')
  (newer / 'odah-test.array_record-00000-of-00001').write_bytes(b'')
  with pytest.raises(ValueError, match=r"1.2.0 has no split 'train'; it has \['test'\]"):
    data.open_source('odah/tiny', 'train', str(tmp_path))
  with pytest.raises(data.DatasetNotFoundError, match='holds only tfrecord'):
    data.open_source('odah/tiny:1.0.0', 'train', str(tmp_path))
  with pytest.raises(data.DatasetNotFoundError,
                     match=r'version 1.1.0 is not in .* \(built: 1.0.0, 1.2.0\)'):
    data.open_source('odah/tiny:1.1.0', 'train', str(tmp_path))
  with pytest.raises(ValueError, match="name/config:version"):
    data.open_source('odah/tiny:', 'train', str(tmp_path))


_TFDS_SCRIPT = """
import sys
import types
import numpy as np
import tensorflow_datasets as tfds
from banet_jax import data
from banet_jax.model.banet import BANet, get_config
from banet_jax.skeleton import ModelMismatchError
from banet_jax.synthetic import SyntheticClips
from odah_tfds import generate, schema
from odah_tfds.odah import odah_dataset_builder

net = BANet.create(get_config('tiny', image_size=32, num_points=16))
clips = list(SyntheticClips(net.layout, 2, 16, 32, seed=0))
features = odah_dataset_builder.features(schema.Dims(frames=16, crop_size=32))  # as built
tfds.dataset_builders.store_as_tfds_dataset(
    name='odah', version='1.0.0', config='tiny', features=features,
    split_datasets={'train': [generate.as_tfds_example((str(i), c)) for i, c in enumerate(clips)]},
    data_dir=sys.argv[1], file_format='array_record')
source = data.open_source('odah/tiny', 'train', sys.argv[1])
config = data.PipelineConfig(stage=1, batch_size=4, image_size=32, num_points=16, chunk_length=8)
from_tfds = data.train_batches(source, net.layout, config)[0][3]
from_memory = data.train_batches(clips, net.layout, config)[0][3]
assert len(source) == 2
assert all(np.array_equal(from_tfds[k], from_memory[k]) for k in from_memory)
print('same batches')
"""


@pytest.mark.slow
def test_reads_a_tfds_array_record_dataset(tmp_path):
  """A real TFDS dataset (array_record; features as the ODAH builder declares them) gives
  the batches of the same examples held in memory. In a subprocess: TensorFlow must not
  enter the pytest process (it segfaults with the Mesa GL of the rendering tests)."""
  result = subprocess.run([sys.executable, '-c', _TFDS_SCRIPT, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'same batches' in result.stdout
