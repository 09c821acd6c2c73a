"""ODAH examples for one subject: labels (part 1) + two-view rendering, TF-free.

`generate_subject(config, subject_index)` is the unit of work of a build: it samples the
subject (for AMASS motions: takes the body of its AMASS person, `amass_subjects`), scales
the project model to it, makes `clips_per_subject` clips (motion -> mesh -> virtual
markers -> IK), renders each clip from two calibrated views, and returns
the examples in the layout of `odah_tfds.schema`. The TFDS builder runs it in worker
processes (`odah_tfds.workers`), the only place where rendering may happen, because
TensorFlow and Mesa GL must not share a process.

Determinism: everything a subject gets is drawn from `numpy.random.default_rng((seed,
subject_index))`, so the same config gives identical examples in any order, on any
number of workers, and a re-run after an interruption regenerates the same subjects.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib
import tempfile
import time
from typing import Any

import numpy as np

import opensim

from banet_jax.skeleton import Skeleton
from banet_jax.skeleton.models import project_skeleton
from odah_tfds import amass_subjects
from odah_tfds import labels
from odah_tfds import motions
from odah_tfds import schema
from odah_tfds.body import anny_body
from odah_tfds.body import base as body_base
from odah_tfds.body import smplx_body
# odah_tfds.render is imported inside the functions that render, never here: the TFDS
# builder imports this module into a process that has TensorFlow, and TensorFlow and the
# renderer's Mesa GL crash in one process (odah_tfds/workers.py). Everything above is safe
# beside TensorFlow.

SPLITS = ('train', 'validation', 'test')
MOTION_SOURCES = ('procedural', 'amass')
# Names of `odah_tfds.render.cameras.RIGS` (the render package is imported only in the
# rendering workers: TensorFlow and Mesa GL must not share a process; a test keeps the two
# lists equal).
RIG_NAMES = ('default', 'lab', 'mounted', 'rolled')
# Clip draws per subject beyond `clips_per_subject`, to replace clips a quality gate drops.
EXTRA_CLIP_ATTEMPTS = 4
# Camera rigs tried per clip before the clip is dropped (a view without the person).
RIG_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
  """Everything that decides a build's examples (a TFDS BuilderConfig carries one).

  Attributes:
    subjects: subjects per split, in SPLITS order; subject indices are consecutive
      (train first), so no subject is in two splits.
    clips_per_subject: accepted clips per subject.
    clip_frames: T, frames per clip; fps: frame rate.
    motion_frames: None: each procedural motion is sampled at the clip's length (ODAH
      1.x); a number of frames: sampled that long, the clip being a random window of it
      (`labels.LabelConfig.motion_frames`: short clips otherwise show little beyond the
      start of a repetition).
    image_size: (width, height) of the rendered full images; crop_size: S.
    families: procedural motion families, drawn in this order from a random start per
      subject (a family listed twice is drawn twice as often); None: the 13 families of
      ODAH 1 (`motions.ODAH_1_FAMILIES`, not the newer 'balance'); motion='procedural'
      only.
    body: 'anny' (free default) or 'smplx' (SMPL-X files in `manual_dir/smplx`).
    motion: 'procedural' (the families above, retargeted onto the body) or 'amass'
      (AMASS SMPL-X sequences from `manual_dir/amass`, body='smplx' only; which
      subject gets which sequences and body: `odah_tfds.amass_subjects`).
    seed: base seed of every random draw.
    motion_blur_probability: chance that a clip is rendered with motion blur.
    rig: the camera rig distribution, a name of `odah_tfds.render.cameras.RIGS`
      ('default': BANet-like, 90 +- 15 degrees apart, the person filling the frame;
      'lab': real motion labs, 40-120 degrees apart, 2-8 m away, 0.5-3 m high;
      'mounted': 'lab' with the cameras 1.7-2.2 m high and 2.5-3.5 m away;
      'rolled': 'lab' with each camera rolled by up to 30 degrees).
    bare_torso_probability: chance that a subject wears no shirt (render.AppearanceConfig).
    uv_texture_probability: chance that a clip is rendered with a procedural UV texture
      (prints, folds, seams, skin regions, hair strands) instead of vertex colours
      (render.AppearanceConfig; body='anny' only). 0: configs draw nothing for it.
    extra_light_probability: chance that a clip gets a fill light and sometimes a point
      light besides the key light (render.AppearanceConfig). 0: nothing drawn for it.
  """

  subjects: tuple[int, int, int] = (4, 1, 1)
  clips_per_subject: int = 2
  clip_frames: int = 32
  motion_frames: int | None = None
  fps: float = 60.0
  image_size: tuple[int, int] = (128, 128)
  crop_size: int = 64
  families: tuple[str, ...] | None = None
  body: str = 'anny'
  seed: int = 0
  motion_blur_probability: float = 0.1
  motion: str = 'procedural'
  rig: str = 'default'
  bare_torso_probability: float = 0.0
  uv_texture_probability: float = 0.0
  extra_light_probability: float = 0.0

  def __post_init__(self):
    if self.rig not in RIG_NAMES:
      raise ValueError(f'rig must be one of {RIG_NAMES}, got {self.rig!r}')
    if len(self.subjects) != len(SPLITS) or min(self.subjects) < 0 or sum(self.subjects) < 1:
      raise ValueError(f'subjects must give {len(SPLITS)} counts >= 0 ({SPLITS}), '
                       f'got {self.subjects}')
    if self.clips_per_subject < 1 or self.clip_frames < 2 or self.crop_size < 8:
      raise ValueError('need clips_per_subject >= 1, clip_frames >= 2 and crop_size >= 8')
    if self.motion_frames is not None and self.motion_frames < self.clip_frames:
      raise ValueError(f'motion_frames ({self.motion_frames}) must be at least clip_frames '
                       f'({self.clip_frames})')
    if self.body not in ('anny', 'smplx'):
      raise ValueError(f"body must be 'anny' or 'smplx', got {self.body!r}")
    if self.motion not in MOTION_SOURCES:
      raise ValueError(f'motion must be one of {MOTION_SOURCES}, got {self.motion!r}')
    if self.motion == 'amass' and self.body != 'smplx':
      raise ValueError("motion='amass' poses SMPL-X natively: it needs body='smplx'")
    for name in ('bare_torso_probability', 'uv_texture_probability', 'extra_light_probability'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'{name} must lie in [0, 1], got {getattr(self, name)}')
    if self.uv_texture_probability > 0 and self.body != 'anny':
      raise ValueError("uv_texture_probability > 0 needs body='anny' (UV textures are "
                       "painted in anny's texture coordinates)")

  def subject_indices(self, split: str) -> range:
    """The subjects of a split."""
    if split not in SPLITS:
      raise ValueError(f'unknown split {split!r}; splits are {SPLITS}')
    start = sum(self.subjects[:SPLITS.index(split)])
    return range(start, start + self.subjects[SPLITS.index(split)])

  def dims(self) -> schema.Dims:
    skel = label_model()
    return schema.Dims(frames=self.clip_frames, crop_size=self.crop_size,
                       coordinates=len(skel.coordinate_names), bodies=len(skel.body_names),
                       joints=len(skel.joint_names), markers=len(skel.marker_names))


def label_model() -> Skeleton:
  """The OpenSim model ODAH's labels are in: the project model (`banet_fullbody.osim`).

  Every subject is scaled from it and every clip's IK runs on its scaled copy; the builder
  records its `identity()` in the dataset's metadata.
  """
  return project_skeleton()


def background_folder(manual_dir: pathlib.Path | None) -> str | None:
  """`manual_dir/backgrounds` when present; a clear error when it holds no image."""
  if manual_dir is None or not (manual_dir / 'backgrounds').is_dir():
    return None
  folder = manual_dir / 'backgrounds'
  images = [p for p in folder.iterdir() if p.suffix.lower() in ('.png', '.jpg', '.jpeg')]
  if not images:
    raise ValueError(f'{folder} holds no .png/.jpg/.jpeg image; add images or remove the '
                     'folder to use procedural backgrounds')
  return str(folder)


def check_manual_files(config: GenerationConfig, manual_dir: pathlib.Path | None,
                       manual_dir_name: str | None = None) -> None:
  """Checks, before anything is generated, the licensed files a config reads.

  body='smplx': `<manual_dir>/smplx/SMPLX_*.npz` (at least one; valid). motion='amass':
  `<manual_dir>/amass/**/*_stageii.npz`, enough AMASS subject folders for the splits,
  and the SMPL-X file of every gender the assigned sequences use.

  Args:
    config: the build's GenerationConfig.
    manual_dir: the manual directory, or None when it is missing or empty.
    manual_dir_name: where the manual directory was expected (for the message when
      `manual_dir` is None).

  Raises:
    body.base.ManualFilesError: the message names the expected path and where to
      register for the files.
  """
  if config.body != 'smplx':
    return
  if manual_dir is None:
    where = pathlib.Path(manual_dir_name or '<manual_dir>')
    needs = [(f'{where / "smplx"}/{{{",".join(smplx_body.SMPLX_FILES.values())}}} '
              f'(register at {smplx_body.SMPLX_REGISTRATION_URL}, "SMPL-X v1.1 (NPZ+PKL)")')]
    if config.motion == 'amass':
      needs.append(f'{where / "amass"}/<dataset>/<subject>/<sequence>_stageii.npz '
                   f'(register at {amass_subjects.AMASS_REGISTRATION_URL}, "SMPL-X N" or '
                   '"SMPL-X G" archives)')
    raise body_base.ManualFilesError(
        f'the manual directory {where} is missing or empty; this config reads licensed '
        'files that must be downloaded by hand: ' + '; '.join(needs) + '.')
  smplx_dir = pathlib.Path(manual_dir) / 'smplx'
  smplx_body.check_model_dir(smplx_dir)
  if config.motion == 'amass':
    assignment = _amass_assignment(config, str(manual_dir))
    amass_subjects.check_files(assignment, smplx_dir)


def num_workers(num_subjects: int) -> int:
  """Generation worker processes: $ODAH_WORKERS, else one per core, at most one per subject."""
  value = os.environ.get('ODAH_WORKERS')
  if value is not None:
    if not value.isdigit() or int(value) < 1:
      raise ValueError(f'ODAH_WORKERS must be a positive integer, got {value!r}')
    return int(value)
  return max(1, min(os.cpu_count() or 1, num_subjects))


def as_tfds_example(keyed_example):
  """(key, example) with text arrays as object arrays, the form TFDS encodes."""
  key, example = keyed_example
  return key, {k: (np.asarray(v, dtype=object) if isinstance(v, np.ndarray)
                   and v.dtype.kind == 'U' else v) for k, v in example.items()}


def subject_id(index: int) -> str:
  return f'S{index:04d}'


# Per-process resources, built on first use and reused by every later task of a worker:
# the body model (seconds to build), one renderer per image size (a GL context).
_RESOURCES: dict[Any, Any] = {}


def _body(config: GenerationConfig, manual_dir: str | None):
  key = ('body', config.body, manual_dir)
  if key not in _RESOURCES:
    if config.body == 'anny':
      _RESOURCES[key] = anny_body.AnnyBody()
    else:
      if manual_dir is None:
        raise ValueError("body='smplx' needs the TFDS manual_dir holding smplx/SMPLX_*.npz")
      _RESOURCES[key] = smplx_body.SmplxBody(pathlib.Path(manual_dir) / 'smplx')
  return _RESOURCES[key]


def _amass_assignment(config: GenerationConfig, manual_dir: str | None):
  """The build's `amass_subjects.AmassAssignment` (listed once per process)."""
  if manual_dir is None:
    raise ValueError("motion='amass' needs the TFDS manual_dir holding amass/")
  key = ('amass', manual_dir, config.subjects, config.seed)
  if key not in _RESOURCES:
    _RESOURCES[key] = amass_subjects.assign(pathlib.Path(manual_dir) / 'amass',
                                            config.subjects, config.seed)
  return _RESOURCES[key]


def _renderer(image_size: tuple[int, int]):
  key = ('renderer', tuple(image_size))
  if key not in _RESOURCES:
    from odah_tfds.render import renderer  # pylint: disable=g-import-not-at-top
    _RESOURCES[key] = renderer.Renderer(tuple(image_size))
  return _RESOURCES[key]


def _render(config: GenerationConfig, subject, clip, rng: np.random.Generator,
            background_dir: str | None) -> tuple[dict, dict]:
  """Both views of a clip; returns (render arrays, appearance record)."""
  from odah_tfds.render import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  from odah_tfds.render import clip as clip_lib  # pylint: disable=g-import-not-at-top

  from odah_tfds.render import cameras as cameras_lib  # pylint: disable=g-import-not-at-top

  render_config = clip_lib.RenderConfig(
      image_size=tuple(config.image_size), crop_size=config.crop_size,
      rig=cameras_lib.RIGS[config.rig],
      appearance=appearance_lib.AppearanceConfig(
          blur_probability=config.motion_blur_probability,
          bare_torso_probability=config.bare_torso_probability,
          uv_texture_probability=config.uv_texture_probability,
          extra_light_probability=config.extra_light_probability))
  joint_centers = clip.points[:, len(subject.scaling.scale_factors):]
  last_error = None
  for _ in range(RIG_ATTEMPTS):
    cams, look, rig = clip_lib.sample_clip_setup(rng, clip.frames.vertices, subject.body,
                                                 render_config, background_dir=background_dir)
    try:
      arrays = clip_lib.render_clip(_renderer(config.image_size), clip.frames.vertices,
                                    subject.body.faces, cams, look, config.crop_size,
                                    joint_centers)
    except clip_lib.EmptyMaskError as e:
      last_error = e
      continue
    return arrays, json.loads(look.to_json({'rig': rig}))
  raise clip_lib.EmptyMaskError(f'{clip.clip_id}: no camera rig out of {RIG_ATTEMPTS} saw the '
                                f'person in every frame ({last_error})')


def _example(config, record: dict, arrays: dict, appearance_json: str) -> dict:
  """The ODAH example: the clip's labels (`labels.clip_record`), its appearance and views."""
  example = dict(record, appearance_json=appearance_json)
  example.update({k: arrays[k] for k in ('crops', 'masks', 'crop_meta', 'image_size',
                                         'camera_K', 'camera_R', 'camera_t', 'joints_2d')})
  schema.check_example(example, config.dims())
  return example


def generate_subject(config: GenerationConfig, subject_index: int,
                     manual_dir: str | None = None,
                     background_dir: str | None = None) -> dict[str, Any]:
  """All examples of one subject.

  Args:
    config: the build's GenerationConfig.
    subject_index: the subject (see `GenerationConfig.subject_indices`).
    manual_dir: the TFDS manual directory (needed for body='smplx', motion='amass').
    background_dir: a folder of background images (None: procedural backgrounds).

  Returns:
    {'examples': [(clip_id, example dict)], 'rejected': [reason, ...],
     'frames': rendered frames per view, 'seconds': {stage: seconds}}.
  """
  from odah_tfds.render import clip as clip_lib  # pylint: disable=g-import-not-at-top

  opensim.Logger.setLevelString('error')
  start = time.perf_counter()
  rng = np.random.default_rng((config.seed, subject_index))
  body = _body(config, manual_dir)
  label_config = labels.LabelConfig(fps=config.fps, clip_frames=config.clip_frames,
                                    motion_frames=config.motion_frames,
                                    clips_per_subject=config.clips_per_subject,
                                    families=config.families, ik='jax')
  shape = None
  if config.motion == 'amass':
    # Sequences of the subject's AMASS person, and that person's body.
    assignment = _amass_assignment(config, manual_dir)
    sources = assignment.sequences(subject_index)
    shape = amass_subjects.subject_shape(sources[0])
  else:
    sources = list(config.families or motions.ODAH_1_FAMILIES)
  examples, rejected = [], []
  seconds = {'subject': 0.0, 'labels': 0.0, 'render': 0.0}
  with tempfile.TemporaryDirectory(prefix='odah_subject_') as tmp:
    sid = subject_id(subject_index)
    subject = labels.make_subject(body, sid, rng, pathlib.Path(tmp), label_config, shape=shape)
    seconds['subject'] = time.perf_counter() - start
    attempts = config.clips_per_subject + EXTRA_CLIP_ATTEMPTS
    amass_root = assignment.root if config.motion == 'amass' else None
    for k, source in enumerate(labels.clip_sources(sources, rng, attempts)):
      if len(examples) == config.clips_per_subject:
        break
      clip_id = f'{sid}_{k:02d}_{labels.source_family(source, amass_root)}'
      # One generator per clip attempt: a rejected clip does not shift later draws.
      clip_rng = np.random.default_rng((config.seed, subject_index, k))
      tick = time.perf_counter()
      try:
        clip = labels.make_source_clip(subject, clip_id, source, clip_rng, label_config,
                                       amass_root=amass_root)
      except labels.ClipRejected as e:
        rejected.append(str(e))
        logging.warning('ODAH: %s', e)
        continue
      finally:
        seconds['labels'] += time.perf_counter() - tick
      tick = time.perf_counter()
      try:
        arrays, look = _render(config, subject, clip, clip_rng, background_dir)
      except clip_lib.EmptyMaskError as e:
        rejected.append(str(e))
        logging.warning('ODAH: %s', e)
        continue
      finally:
        seconds['render'] += time.perf_counter() - tick
      examples.append((clip_id, _example(config, labels.clip_record(subject, clip), arrays,
                                         labels.json_text(look))))
  if len(examples) < config.clips_per_subject:
    logging.warning('ODAH: subject %s has %d of %d clips (%d rejected)', sid, len(examples),
                    config.clips_per_subject, len(rejected))
  return {'examples': examples, 'rejected': rejected,
          'frames': len(examples) * config.clip_frames, 'seconds': seconds}
