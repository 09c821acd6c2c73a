r"""Do models read poses differently through other cameras? ODAH test clips re-rendered.

    .venv/bin/python benchmarks/rig_sensitivity.py --dataset=odah/lab:1.6.0 --rig=mounted \
        --models=lab15_s1=runs/lab15_tiny_rgb_8k_s1,lab16_s0=runs/lab16_tiny_rgb_8k_s0

Every clip of --split is generated again with the dataset config's own settings and seed,
only the camera rig distribution replaced by --rig (`odah_tfds/render/cameras.py` RIGS):
the same subjects, motions, windows and labels (checked: the coordinates must equal the
built clips'), other cameras and pixels. Each model predicts both versions; per model and
rig: coordinate MAE (deg, the evaluated rotational coordinates) and the mean signed error
of knee and hip flexion (deg; positive: more flexed than the truth). Also prints the
cameras' elevation above the body centre and distance, for both versions.

Why: on the Pose2Sim demo every camera pair with cam04 but one predicts knees and hips
10-30 deg more flexed than the other pairs (MODEL_CARD.md); its cameras are mounted high
and close, and rolled about their optical axes (cam04 by 26 deg), which `lab` rigs rarely
or never draw. `--rig=mounted` tests whether height and distance alone move the prediction
(they do not), `--rig=rolled` the roll (it does: benchmarks/README.md). Generation takes 1-3 min per subject on the 2-core CPU (8 test
subjects of `lab`); --cache keeps the clips for reruns.
"""

from __future__ import annotations

import dataclasses
import pathlib
import pickle
import sys
import time

from absl import app, flags, logging
import numpy as np

if __package__ in (None, ''):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

_DATASET = flags.DEFINE_string('dataset', 'odah/lab:1.6.0', 'Built ODAH dataset '
                               '(name:version); the code must build that version.')
_RIG = flags.DEFINE_string('rig', 'mounted', 'Rig distribution of the re-rendered clips.')
_MODELS = flags.DEFINE_list('models', [], 'NAME=CHECKPOINT entries.')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split whose clips are re-rendered.')
_MAX_SUBJECTS = flags.DEFINE_integer('max_subjects', 0, 'At most this many subjects (0: all).')
_CACHE = flags.DEFINE_string('cache', None, 'Pickle of the re-rendered clips: read if it '
                             'exists, else written.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory.')

FLEXION = ('knee_angle_r', 'knee_angle_l', 'hip_flexion_r', 'hip_flexion_l')
_KEYS = ('clip_id', 'crops', 'masks', 'crop_meta', 'camera_K', 'camera_R', 'camera_t',
         'coordinates', 'scales', 'points', 'markers', 'image_size')


def camera_geometry(clip) -> np.ndarray:
  """(views, 2): each camera's elevation above the clip's body centre (deg; the mean of
  its markers over the frames) and its distance to it (m). World y is up."""
  from banet_jax import geometry  # pylint: disable=g-import-not-at-top
  centre = np.asarray(clip['markers'], np.float64).mean(axis=(0, 1))
  out = []
  for r, t in zip(np.asarray(clip['camera_R'], np.float64), np.asarray(clip['camera_t'], np.float64)):
    d = np.asarray(geometry.camera_center(r, t)) - centre
    out.append((np.degrees(np.arctan2(d[1], np.hypot(d[0], d[2]))), np.linalg.norm(d)))
  return np.asarray(out)


def rerender(generation, rig: str, split: str, max_subjects: int) -> dict[str, dict]:
  """{clip id: clip arrays} of `split`, generated with a config's `generation` settings
  (`generate.GenerationConfig`) and `rig`."""
  from odah_tfds import generate  # pylint: disable=g-import-not-at-top
  generation = dataclasses.replace(generation, rig=rig)
  subjects = list(generation.subject_indices(split))[:max_subjects or None]
  clips = {}
  for n, subject in enumerate(subjects, 1):
    start = time.perf_counter()
    result = generate.generate_subject(generation, subject)
    for clip_id, example in result['examples']:
      clips[clip_id] = {k: example[k] for k in _KEYS}
    print(f'  subject {n}/{len(subjects)}: {len(result["examples"])} clips, '
          f'{time.perf_counter() - start:.0f} s', flush=True)
  return clips


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from banet_jax import data, evaluation  # pylint: disable=g-import-not-at-top
  from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  from odah_tfds.odah import odah_dataset_builder  # pylint: disable=g-import-not-at-top
  from benchmarks import _common  # pylint: disable=g-import-not-at-top
  print(_common.platform_info())
  if not _MODELS.value:
    raise app.UsageError('--models: give at least one NAME=CHECKPOINT')
  name, _, version = _DATASET.value.partition('/')[2].partition(':')
  configs = {c.name: c for c in odah_dataset_builder.Builder.BUILDER_CONFIGS}
  if name not in configs:
    raise app.UsageError(f'--dataset: unknown ODAH config {name!r}; choose from {sorted(configs)}')
  if version and str(configs[name].version) != version:
    raise app.UsageError(f'--dataset asks for {name} {version}, but this code builds '
                         f'{configs[name].version}: the re-rendered clips would not match')

  built_source = data.open_source(_DATASET.value, _SPLIT.value, _DATA_DIR.value)
  built = {evaluation.text(c['clip_id']): c
           for c in (built_source[i] for i in range(len(built_source)))}
  cache = pathlib.Path(_CACHE.value) if _CACHE.value else None
  if cache and cache.exists():
    with cache.open('rb') as f:
      other = pickle.load(f)
  else:
    print(f'generating {_SPLIT.value} of {name} with rig {_RIG.value!r}:')
    other = rerender(configs[name].generation, _RIG.value, _SPLIT.value, _MAX_SUBJECTS.value)
    if cache:  # written whole, then renamed: a crash leaves no half cache behind
      partial = cache.with_name(cache.name + '.partial')
      with partial.open('wb') as f:
        pickle.dump(other, f)
      partial.replace(cache)
  ids = [k for k in other if k in built]
  unequal = [k for k in ids if not np.array_equal(np.asarray(built[k]['coordinates']),
                                                  np.asarray(other[k]['coordinates']))]
  if not ids or unequal:
    raise SystemExit(f'error: the re-rendered clips do not match the built ones ({len(ids)} '
                     f'shared ids; labels differ in {unequal[:5]}): rebuild {_DATASET.value} '
                     'with this code, or name the version it builds')
  versions = {'as built': built, _RIG.value: other}
  for label, clips in versions.items():
    geo = np.concatenate([camera_geometry(clips[k]) for k in ids])
    print(f'{label:>10s} cameras: elevation above the body centre '
          f'{np.percentile(geo[:, 0], 5):.0f}..{np.percentile(geo[:, 0], 95):.0f} deg (median '
          f'{np.median(geo[:, 0]):.0f}), distance {np.percentile(geo[:, 1], 5):.1f}..'
          f'{np.percentile(geo[:, 1], 95):.1f} m (5-95 %)')
  print(f'\n{len(ids)} clips, labels equal in all\n')
  print('| model | rig | MAE (deg) | signed error (deg): ' + ' / '.join(FLEXION) + ' |')
  print('|---|---|---|---|')
  for entry in _MODELS.value:
    model, _, path = entry.partition('=')
    predictor = Predictor.restore(path)
    names = list(predictor.layout.skeleton.coordinate_names)
    rotational, _ = evaluation.evaluated_coordinates(predictor.layout)
    flexion = [names.index(c) for c in FLEXION]
    for label, clips in versions.items():
      mae, signed = [], []
      for k in ids:
        truth = np.asarray(clips[k]['coordinates'], np.float64)
        diff = predictor.predict_clip(dict(clips[k]))['coordinates'] - truth
        diff = np.degrees(evaluation.wrap_angle(diff))
        mae.append(np.abs(diff[:, rotational]).mean())
        signed.append(diff[:, flexion].mean(axis=0))
      print(f'| {model} | {label} | {np.mean(mae):.2f} | '
            + ' / '.join(f'{v:+.1f}' for v in np.mean(signed, axis=0)) + ' |', flush=True)


if __name__ == '__main__':
  app.run(main)
