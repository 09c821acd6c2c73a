"""The `odah` TFDS builder: two-view synthetic video clips with OpenSim ground truth.

    tfds build odah_tfds/odah --config=tiny                  # from a checkout
    tfds build odah --imports=odah_tfds.odah --config=tiny   # once banet-jax is installed
    tfds build odah_tfds/odah --config=tiny --file_format=array_record   # for tfds.data_source

Each example is one clip (see `odah_tfds/schema.py` and this folder's README.md). The
examples of a subject are generated together in TF-free worker processes
(`odah_tfds.workers`): TensorFlow, which this module imports, and the Mesa GL renderer
must never share a process. Workers: `$ODAH_WORKERS` (default: one per CPU core, at most
one per subject). The large config (`paper`) generates through Apache Beam (`ODAH_BEAM=1`
makes the others use it too):

    tfds build odah_tfds/odah --config=paper \
        --beam_pipeline_options="runner=DirectRunner,direct_num_workers=8,direct_running_mode=multi_processing"
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import time

import numpy as np
import tensorflow_datasets as tfds

from odah_tfds import beam_generation
from odah_tfds import generate
from odah_tfds import schema
from odah_tfds import workers

_DESCRIPTION = """ODAH: synthetic two-view video clips of human bodies (anny by default,
SMPL-X from user files) moving with procedural motions (or AMASS), labelled with OpenSim
coordinates, body-segment scale factors and BANet's 44 points, obtained by OpenSim
scaling and inverse kinematics of virtual markers on the mesh (Lin et al., arXiv
2402.13172). Rendered with pyrender from two calibrated, roughly orthogonal views."""

MANUAL_INSTRUCTIONS = """Optional for the anny configs (tiny, small, small_uv, lab, paper, smoke);
required by smplx and smplx_amass. Put under the manual directory (default
~/tensorflow_datasets/downloads/manual/, or --manual_dir):
  backgrounds/   your own background images (.png/.jpg/.jpeg); other files are skipped
                 with a warning. Without it, backgrounds are procedural.
  smplx/         SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz (configs smplx,
                 smplx_amass). Licensed: register at https://smpl-x.is.tue.mpg.de,
                 download "SMPL-X v1.1 (NPZ+PKL)" and copy its .npz files here.
  amass/         <dataset>/<subject>/<sequence>_stageii.npz (config smplx_amass).
                 Licensed: register at https://amass.is.tue.mpg.de, download the
                 "SMPL-X N" (or "SMPL-X G") archives of the datasets you want and
                 extract them here.
Nothing licensed is ever downloaded by this builder; a config whose files are missing
stops before writing anything, naming the file it expected."""


@dataclasses.dataclass
class OdahConfig(tfds.core.BuilderConfig):
  """A BuilderConfig carrying the generation settings (see generate.GenerationConfig)."""

  generation: generate.GenerationConfig = generate.GenerationConfig()
  use_beam: bool = False
  needs_manual_files: bool = False


def _config(name, description, use_beam=False, needs_manual_files=False, version=None,
            release_notes=None, **generation):
  """A config; `version` / `release_notes` where it moved on from the builder's VERSION."""
  return OdahConfig(name=name, description=description, use_beam=use_beam,
                    needs_manual_files=needs_manual_files, version=version,
                    release_notes=release_notes,
                    generation=generate.GenerationConfig(**generation))


# odah/lab's families: the 13 of ODAH 1, then `turning` and `kneeling` (1.3.0), with a
# single-leg balance clip before every three, so that each subject's four clips
# (consecutive entries of this cycle from a random start) include exactly one; three of
# the five are `balance_reach` (1.4.0: the trunk leaning and the pelvis listing, which
# `balance` keeps upright), two the upright `balance`.
BALANCE_FAMILIES = ('balance', 'balance_reach')
LAB_FAMILIES = ('balance', 'walking', 'running', 'squat', 'balance_reach', 'sit_to_stand',
                'lunge', 'jumping_jacks', 'balance', 'arm_flexion', 'arm_abduction',
                'reaching', 'balance_reach', 'trunk_flexion', 'trunk_rotation', 'stepping',
                'balance_reach', 'jumping', 'turning', 'kneeling')

# odah/lab's motions are sampled 6 s long (360 frames at 60 fps: one to two repetitions of
# the slow families) and each clip is a random 32-frame window of one
# (`generate.GenerationConfig.motion_frames`). One length for all, so the motion programs
# compile once per build.
LAB_MOTION_FRAMES = 360
LAB_RELEASE_NOTES = {
    '1.1.0': 'First release of `lab`: lab camera rigs, single-leg balance, bare torsos, '
             '128-px crops (54 subjects, 216 clips of 32 frames).',
    '1.2.0': 'Each clip is a random 32-frame window of a 6-s motion instead of the first 32 '
             'frames of a motion sampled 32 frames long, which showed little beyond the '
             'start of a repetition (1.1.0 trunk_flexion clips: at most 4 deg of lumbar '
             'flexion and 2.8 deg of side bend, for 20-50 and 16-24 deg sampled). The '
             'other distributions are unchanged; the random draws after the first window '
             'differ.',
    '1.3.0': 'Two more families that labs record and the others miss: `turning` (step '
             'turns in place, 90-330 deg) and `kneeling` (down to half-kneeling, hold, up), '
             'in the family cycle after `jumping` (LAB_FAMILIES: 20 entries, one `balance` in '
             'every four). Sizes and other distributions unchanged.',
    '1.4.0': 'Three of the five single-leg balance entries of the family cycle are the new '
             '`balance_reach` (reach tests: the trunk leaning forward 0-45 deg, the pelvis '
             'listing -5..28 deg, the free leg mostly reaching back), which covers the poses '
             'of the real capture that 1.3.0 lacks (its upright `balance` leans the trunk '
             '0-4 deg). Sizes and other distributions unchanged.',
    '1.5.0': '`balance_reach` clips hold one hand on the hip (elbow 70-110 deg) with the '
             'other arm out in 30 % of them (either side), for the real capture\'s bent right '
             'elbow (63 deg from the nearest 1.4.0 frame; its frames show that arm raised, '
             'not on the hip); arms out 45 %, hands on '
             'both hips 10 %, forward 15 %. The other motion parameters are 1.4.0\'s; the '
             '32-frame window drawn after them moves, so every `balance_reach` clip differs '
             'and the other families\' clips are byte-equal.',
    '1.6.0': '`balance_reach` clips hold one arm out with the elbow bent 60-120 deg and the '
             'humerus turned out 10-70 deg (the forearm forward to up) with the other arm out '
             'in 30 % of them (either side): the real capture\'s right arm, raised and bent '
             'while the trunk leans (its four-camera reference: abduction 50-63, elbow '
             '60-106, turned out 20-37; 48 deg off with the 1.5.0 model). Arms out 35 %, '
             'both hands on the hips 10 %, forward 10 %, one hand on the hip 15 %. As in '
             '1.5.0, only `balance_reach` clips differ (their windows move too); the other '
             'families\' clips are 1.5.0\'s byte for byte (checked on the test split).',
}

PAPER_RELEASE_NOTES = {
    '1.1.0': 'Paper-like scale with the default (BANet-like) rigs and the 13 ODAH 1 families; '
             'each motion sampled 64 frames long.',
    '1.2.0': "`lab`'s distributions at paper scale, for the GPU recipe on the sim-to-real data "
             '(launch/flags/paper_stage1.flags): lab rigs, LAB_FAMILIES, 30 % bare torsos, '
             'random 64-frame windows of 6-s motions.',
    '1.3.0': "`lab`'s 1.3.0 families (`turning` and `kneeling` added).",
    '1.4.0': "`lab`'s 1.4.0 families (`balance_reach` in three of the five balance entries).",
    '1.5.0': "`lab`'s 1.5.0 arms (`balance_reach`: one hand on the hip, the other arm out).",
    '1.6.0': "`lab`'s 1.6.0 arms (`balance_reach`: one arm out and bent, the forearm up).",
}

CONFIGS = [
    _config('tiny', 'Default. 6 subjects (4/1/1), 2 clips of 32 frames each, 128x128 images, '
            '64x64 crops. Builds on a 2-core CPU in a few minutes.',
            subjects=(4, 1, 1), clips_per_subject=2, clip_frames=32, image_size=(128, 128),
            crop_size=64),
    _config('small', '80 subjects (64/8/8), 4 clips of 32 frames each, 192x192 images, 64x64 '
            'crops: enough for the tiny BANet to learn something on a CPU (the README main '
            'job). Many short clips: with few long ones the network memorises them.',
            subjects=(64, 8, 8), clips_per_subject=4, clip_frames=32, image_size=(192, 192),
            crop_size=64),
    _config('small_uv', 'The ablation "UV textures alone over small": `small`\'s settings '
            '(same seed, so the same subjects, motions, cameras, garment colours, backgrounds '
            'and key lights) with 80 % of the clips rendered with procedural UV textures '
            '(skin regions, garment prints, folds, seams and hems, shoe soles, hair strands: '
            'render/textures.py) and 80 % with an extra fill light (half of them also a point '
            'light).',
            subjects=(64, 8, 8), clips_per_subject=4, clip_frames=32, image_size=(192, 192),
            crop_size=64, uv_texture_probability=0.8, extra_light_probability=0.8),
    _config('lab', 'The sim-to-real data: 54 subjects (40/6/8), 4 clips of 32 frames, '
            'with real-lab camera rigs (pairs 40-120 deg apart, 2-8 m away, 0.5-3 m high: '
            'render/cameras.py RIGS), single-leg balance in about a quarter of the clips '
            '(at least one of each subject\'s four), 30 % bare torsos, 256x256 images and 128x128 '
            'crops (the `mid` BANet preset). Each clip is a random 32-frame window of a '
            '6-s motion (1.2.0); turning and kneeling are among the families (1.3.0); '
            'three in five balance clips lean the trunk and list the pelvis (1.4.0), '
            'some with one hand on the hip and the other arm out (1.5.0) or one arm raised '
            'and bent (1.6.0).',
            version='1.6.0', release_notes=LAB_RELEASE_NOTES,
            subjects=(40, 6, 8), clips_per_subject=4, clip_frames=32, motion_frames=LAB_MOTION_FRAMES,
            image_size=(256, 256), crop_size=128, rig='lab', bare_torso_probability=0.3,
            families=LAB_FAMILIES),
    _config('paper', 'Paper-like scale with the distributions of `lab` (1.6.0): 440 subjects '
            '(400/20/20), 8 clips of 64 frames at 60 fps (random windows of 6-s motions), '
            'lab camera rigs, single-leg balance, 30 % bare torsos, 512x512 images, 256x256 '
            'crops (the `paper` BANet preset). Generates through Apache Beam.',
            version='1.6.0', release_notes=PAPER_RELEASE_NOTES,
            use_beam=True, subjects=(400, 20, 20), clips_per_subject=8, clip_frames=64,
            motion_frames=LAB_MOTION_FRAMES, image_size=(512, 512), crop_size=256, rig='lab',
            bare_torso_probability=0.3, families=LAB_FAMILIES),
    _config('smoke', 'Seconds-scale build for tests and CI: 3 subjects (1/1/1), 1 clip of 8 '
            'frames, 64x64 images, 32x32 crops.',
            subjects=(1, 1, 1), clips_per_subject=1, clip_frames=8, image_size=(64, 64),
            crop_size=32, families=('squat', 'arm_flexion', 'walking')),
    _config('smplx', 'SMPL-X bodies (your model files in manual_dir/smplx/, betas sampled) '
            'with the procedural motions; sizes of `small`: 80 subjects (64/8/8), 4 clips of '
            '32 frames, 192x192 images, 64x64 crops.',
            needs_manual_files=True, body='smplx', subjects=(64, 8, 8), clips_per_subject=4,
            clip_frames=32, image_size=(192, 192), crop_size=64),
    _config('smplx_amass', 'SMPL-X bodies driven by AMASS (your SMPL-X files in '
            'manual_dir/smplx/, AMASS SMPL-X sequences in manual_dir/amass/), resampled to '
            '60 fps; each subject is an AMASS person with its own body, and no AMASS person '
            'is in two splits. Sizes of `small`: 80 subjects (64/8/8), 4 clips of 32 frames, '
            '192x192 images, 64x64 crops.',
            needs_manual_files=True, body='smplx', motion='amass', subjects=(64, 8, 8),
            clips_per_subject=4, clip_frames=32, image_size=(192, 192), crop_size=64),
]


def _tf_dtype(name: str):
  # Lazy: TensorFlow never beside the GL renderer; importing the builder stays TF-free
  # (e.g. tests that render read its CONFIGS).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {'float32': tf.float32, 'uint8': tf.uint8, 'int32': tf.int32, 'bool': tf.bool,
          'str': tf.string}[name]


def features(dims: schema.Dims) -> tfds.features.FeaturesDict:
  """`tfds.features` of `odah_tfds.schema` for one config's sizes."""
  out = {}
  for name, shape in schema.shapes(dims).items():
    feature = schema.FEATURES[name]
    if feature.dtype == 'str' and not shape:
      out[name] = tfds.features.Text(doc=feature.doc)
    elif feature.dtype != 'str' and not shape:
      out[name] = tfds.features.Scalar(dtype=_tf_dtype(feature.dtype), doc=feature.doc)
    else:
      encoding = tfds.features.Encoding.ZLIB if feature.compress else tfds.features.Encoding.NONE
      out[name] = tfds.features.Tensor(shape=shape, dtype=_tf_dtype(feature.dtype),
                                       encoding=encoding, doc=feature.doc)
  return tfds.features.FeaturesDict(out)


def _manual_dir(dl_manager) -> pathlib.Path | None:
  """The manual directory, or None when the user has none (it is optional for anny)."""
  try:
    return pathlib.Path(dl_manager.manual_dir)
  except AssertionError:  # TFDS: not enabled, missing or empty
    return None


def _expected_manual_dir(dl_manager) -> str:
  """Where TFDS looked for the manual directory (for error messages)."""
  path = getattr(dl_manager, '_manual_dir', None)  # TFDS keeps it even when missing
  return str(path) if path else '~/tensorflow_datasets/downloads/manual'


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for odah."""

  VERSION = tfds.core.Version('1.1.0')
  RELEASE_NOTES = {
      '1.0.0': 'First release: anny bodies, procedural motions, pyrender views.',
      '1.1.0': '`small`, `smplx` and `smplx_amass` are 80 subjects (64/8/8) x 4 clips of 32 '
               'frames (were 40 subjects x 4 clips of 64 frames): the same number of frames, '
               'twice the clips and subjects.',
  }
  BUILDER_CONFIGS = CONFIGS
  DEFAULT_BUILDER_CONFIG_NAME = 'tiny'
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_INSTRUCTIONS

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=_DESCRIPTION,
        features=features(self.builder_config.generation.dims()),
        supervised_keys=None,
        homepage='https://arxiv.org/abs/2402.13172',
        # The OpenSim model the labels are in (`metadata.json`): readers refuse a network
        # of another model (banet_jax.data.ClipReader, `Skeleton.identity()`).
        metadata=tfds.core.MetadataDict(osim=generate.label_model().identity()),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config = self.builder_config
    manual = _manual_dir(dl_manager)
    if config.needs_manual_files:
      # Before any example or shard: a clear error naming the expected files.
      try:
        generate.check_manual_files(config.generation, manual,
                                    manual_dir_name=_expected_manual_dir(dl_manager))
      except (FileNotFoundError, ValueError) as e:
        raise type(e)(f'odah/{config.name}: {e}\n\n{MANUAL_INSTRUCTIONS}') from e
    backgrounds = generate.background_folder(manual)
    self._summary = {'start': time.perf_counter(), 'clips': 0, 'frames': 0, 'rejected': 0}
    self._workers = None
    splits = [s for s in generate.SPLITS if config.generation.subject_indices(s)]
    self._splits_left = len(splits)
    return {split: self._generate_examples(split, None if manual is None else str(manual),
                                           backgrounds)
            for split in splits}

  def _generate_examples(self, split: str, manual: str | None, backgrounds: str | None):
    generation = self.builder_config.generation
    indices = list(generation.subject_indices(split))
    if self.builder_config.use_beam or os.environ.get('ODAH_BEAM') == '1':
      # Lazy: apache_beam, 1.7 s: only for Beam builds.
      import apache_beam as beam  # pylint: disable=g-import-not-at-top
      return (beam.Create(indices)
              | beam.FlatMap(beam_generation.generate_subject_examples, config=generation,
                             manual=manual, backgrounds=backgrounds))
    return self._generate_locally(split, indices, manual, backgrounds)

  def _pool(self) -> workers.WorkerPool:
    """One pool for the whole build: workers keep their body model, GL context and
    compiled IK programs from split to split."""
    if self._workers is None:
      biggest = max(self.builder_config.generation.subjects)
      self._workers = workers.WorkerPool(generate.num_workers(biggest))
    return self._workers

  def _generate_locally(self, split, indices, manual, backgrounds):
    start, clips, frames, rejected = time.perf_counter(), 0, 0, 0
    tasks = [(self.builder_config.generation, i, manual, backgrounds) for i in indices]
    try:
      for done, result in enumerate(
          self._pool().map(generate.generate_subject, tasks), 1):
        clips += len(result['examples'])
        frames += result['frames']
        rejected += len(result['rejected'])
        logging.info('odah %s: subject %d/%d, %d clips (%d rejected), %.0f s elapsed', split,
                     done, len(indices), len(result['examples']), len(result['rejected']),
                     time.perf_counter() - start)
        yield from map(generate.as_tfds_example, result['examples'])
    except BaseException:
      self._close_pool()
      raise
    self._splits_left -= 1
    if not self._splits_left:
      self._close_pool()
    seconds = time.perf_counter() - start
    summary = self._summary
    summary.update(clips=summary['clips'] + clips, frames=summary['frames'] + frames,
                   rejected=summary['rejected'] + rejected)
    total = time.perf_counter() - summary['start']
    message = (f'odah/{self.builder_config.name} {split}: {clips} clips, {frames} frames x 2 '
               f'views, {rejected} clips rejected, {seconds:.0f} s ({frames / seconds:.2f} '
               f'frames/s). Build so far: {summary["clips"]} clips, {summary["frames"]} '
               f'frames in {total:.0f} s ({summary["frames"] / total:.2f} frames/s)')
    logging.info(message)
    print(message, flush=True)

  def _close_pool(self) -> None:
    if self._workers is not None:
      self._workers.close()
      self._workers = None

  def _process_pipeline_result(self, pipeline_result) -> None:
    counters = pipeline_result.metrics().query()['counters']
    totals = {c.key.metric.name: c.committed for c in counters if c.key.metric.namespace == 'odah'}
    print(f'odah/{self.builder_config.name} (Beam): {totals}', flush=True)
