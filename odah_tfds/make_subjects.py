r"""Generate ODAH subjects, their motions and OpenSim ground truth (ODAH part 1), alone.

    python -m odah_tfds.make_subjects --num_subjects=2 --out=/tmp/odah_subjects
    python -m odah_tfds.make_subjects --num_subjects=1 --clips_per_subject=3 \
        --families=walking,squat,jumping --ik=both --out=/tmp/odah_check --plot

For every subject S it writes, under --out:
  S/S.osim              the project model scaled to S by OpenSim's ScaleTool (with the
                        set-up XML, the scale set and the static trial .trc beside it)
  S/<clip>.npz          the clip record (`odah_tfds.labels.clip_record`, the fields of an ODAH
                        example, plus `clip_extras`)
  S/<clip>.mot          IK coordinates (degrees, `inDegrees=yes`), for OpenSim
  S/<clip>.trc          the virtual markers from the mesh
  S/<clip>.png          (--plot) mesh with the IK-fitted skeleton, front and side
  summary.json          every number printed at the end
and prints a summary: subjects, clips written and rejected (with the reason), frames,
IK marker RMS (mean and max), frames above the 2 cm gate, coordinates outside their
limits, and seconds per stage. With --ik=both it also reports the JAX solver's
largest differences to OpenSim's IK on the same frames.

Runs offline with the free defaults (anny bodies, procedural motions, the project
model). Deterministic: the same --seed gives the same subjects and clips.

Licensed inputs, supplied by the user (never downloaded):

    python -m odah_tfds.make_subjects --body=smplx --smplx_dir=~/smplx --out=/tmp/odah_smplx
    python -m odah_tfds.make_subjects --body=smplx --smplx_dir=~/smplx \
        --amass_dir=~/amass --num_subjects=2 --out=/tmp/odah_amass

--body=smplx: SMPL-X bodies from SMPLX_{NEUTRAL,MALE,FEMALE}.npz in --smplx_dir (betas
sampled), driven by the procedural motions. --amass_dir (needs --body=smplx): motions
are windows of AMASS SMPL-X sequences (<dataset>/<subject>/<sequence>_stageii.npz)
resampled to --fps, posed natively; subject s takes the AMASS person (folder) that
`odah_tfds.amass_subjects.assign` gives it (all subjects in 'train') and that person's
own body (gender and betas of its first sequence). Missing or invalid files stop the run
with a message naming the expected path and where to register for the files.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import app
from absl import flags
import numpy as np

_NUM_SUBJECTS = flags.DEFINE_integer('num_subjects', 2, 'Subjects to generate.')
_OUT = flags.DEFINE_string('out', None, 'Output folder.', required=True)
_CLIPS = flags.DEFINE_integer('clips_per_subject', 2, 'Clips per subject.')
_FRAMES = flags.DEFINE_integer('frames', 64, 'Frames per clip.')
_MOTION_FRAMES = flags.DEFINE_integer(
    'motion_frames', 0, 'Sample each procedural motion this many frames long and take a '
    'random --frames window of it (0: motions are --frames long, as ODAH 1.x; odah/lab '
    '1.2.0 uses 360).')
_FPS = flags.DEFINE_float('fps', 60.0, 'Frame rate.')
_FAMILIES = flags.DEFINE_list('families', None, 'Motion families (default: the 13 of '
                               "ODAH 1; 'balance' must be named).")
_IK = flags.DEFINE_enum('ik', 'jax', ['jax', 'opensim', 'both'],
                        'IK solver: the batched JAX one, OpenSim, or both (compared).')
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed.')
_PLOT = flags.DEFINE_bool('plot', False, 'Write a PNG per clip (mesh + fitted skeleton).')
_OPENSIM_LOG = flags.DEFINE_enum('opensim_log', 'warn', ['info', 'warn', 'error'],
                                 "OpenSim's log level (its tools print every step at 'info').")
_BODY = flags.DEFINE_enum('body', 'anny', ['anny', 'smplx'],
                          'Body model: anny (free) or smplx (model files in --smplx_dir).')
_SMPLX_DIR = flags.DEFINE_string('smplx_dir', None,
                                 'Folder with SMPLX_{NEUTRAL,MALE,FEMALE}.npz (--body=smplx).')
_AMASS_DIR = flags.DEFINE_string('amass_dir', None,
                                 'AMASS SMPL-X folder (<dataset>/<subject>/*_stageii.npz): '
                                 'motions from AMASS instead of the procedural families '
                                 '(needs --body=smplx).')


def _make_body(body: str, smplx_dir):
  if body == 'anny':
    if smplx_dir is not None:
      raise ValueError('--smplx_dir is for --body=smplx')
    # Lazy: JAX, 3.4 s: not for --help.
    from odah_tfds.body.anny_body import AnnyBody  # pylint: disable=g-import-not-at-top
    return AnnyBody()
  if body != 'smplx':
    raise ValueError(f"body must be 'anny' or 'smplx', got {body!r}")
  # Lazy: JAX, 3.4 s: not for --help.
  from odah_tfds.body import smplx_body  # pylint: disable=g-import-not-at-top
  if smplx_dir is None:
    raise ValueError('--body=smplx needs --smplx_dir=DIR holding '
                     f'{", ".join(smplx_body.SMPLX_FILES.values())} (licensed: register at '
                     f'{smplx_body.SMPLX_REGISTRATION_URL}, download "SMPL-X v1.1 (NPZ+PKL)")')
  return smplx_body.SmplxBody(pathlib.Path(smplx_dir).expanduser())


def run(num_subjects: int, out: pathlib.Path, config, seed: int = 0, plot: bool = False,
        log=print, body: str = 'anny', smplx_dir=None, amass_dir=None) -> dict:
  """Generate `num_subjects` subjects into `out`; returns the summary dict.

  body: 'anny' or 'smplx' (model files in `smplx_dir`); amass_dir: an AMASS SMPL-X
  folder, whose sequences then replace the procedural families (body='smplx' only).
  Raises ValueError or `body.base.ManualFilesError` (missing / invalid files).
  """
  # Imported here so `--help` answers without loading torch, anny or JAX.
  # Lazy: JAX, 3.4 s: not for --help.
  from odah_tfds import amass_subjects  # pylint: disable=g-import-not-at-top
  from odah_tfds import labels  # pylint: disable=g-import-not-at-top  (JAX, 3.4 s: not for --help)
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top  (JAX, 3.4 s: not for --help)

  families = list(config.families or motions.ODAH_1_FAMILIES)
  unknown = sorted(set(families) - set(motions.FAMILIES))
  if unknown:
    raise ValueError(f'unknown motion families {unknown}; choose from {sorted(motions.FAMILIES)}')
  assignment = None
  if amass_dir is not None:
    if body != 'smplx':
      raise ValueError('--amass_dir poses SMPL-X bodies natively: it needs --body=smplx')
    # All subjects in one split: every AMASS person folder is available to them.
    assignment = amass_subjects.assign(pathlib.Path(amass_dir).expanduser(),
                                       (num_subjects, 0, 0), seed)
    if smplx_dir is not None:
      amass_subjects.check_files(assignment, pathlib.Path(smplx_dir).expanduser())
  body_model = _make_body(body, smplx_dir)
  out.mkdir(parents=True, exist_ok=True)
  start_all = time.perf_counter()
  written, rejected, rms_all, subject_rows, comparisons = [], [], [], [], []
  stage_seconds: dict[str, float] = {'scaling': 0.0}
  outside_total = flagged_total = frames_total = 0
  for s in range(num_subjects):
    rng = np.random.default_rng([seed, s])
    subject_id = f'S{s:03d}'
    sources, shape = families, None
    if assignment is not None:
      sources = assignment.sequences(s)
      shape = amass_subjects.subject_shape(sources[0])
    subject = labels.make_subject(body_model, subject_id, rng, out / subject_id, config,
                                  shape=shape)
    stage_seconds['scaling'] += subject.scaling.seconds
    subject_rows.append({'subject': subject_id, 'stature_m': subject.stature,
                         'mass_kg': subject.mass,
                         'static_marker_rms_cm': subject.scaling.marker_residual_rms * 100,
                         'seconds': subject.seconds})
    log(f'[{s + 1}/{num_subjects}] {subject_id}: stature {subject.stature:.3f} m, mass '
        f'{subject.mass:.1f} kg, scaling marker RMS '
        f'{subject.scaling.marker_residual_rms * 100:.2f} cm ({subject.seconds:.1f} s)')
    amass_root = assignment.root if assignment is not None else None
    for k, source in enumerate(labels.clip_sources(sources, rng, config.clips_per_subject)):
      clip_id = f'{subject_id}_{k:02d}_{labels.source_family(source, amass_root)}'
      try:
        clip = labels.make_source_clip(subject, clip_id, source, rng, config,
                                       amass_root=amass_root)
      except labels.ClipRejected as e:
        rejected.append(str(e))
        log(f'    rejected: {e}')
        continue
      paths = labels.write_clip_files(subject, clip, out / subject_id)
      if plot:
        # Lazy: matplotlib, 0.6 s: only with --plot.
        from odah_tfds import visualize  # pylint: disable=g-import-not-at-top
        visualize.plot_clip(clip, pathlib.Path(paths['npz']).with_suffix('.png'))
      for name, seconds in clip.timings.items():
        stage_seconds[name] = stage_seconds.get(name, 0.0) + seconds
      rms_all.append(clip.rms)
      frames_total += len(clip.rms)
      flagged_total += int(clip.flagged.sum())
      outside_total += clip.outside_limits
      written.append(clip_id)
      line = (f'    {clip_id}: {len(clip.rms)} frames, IK marker RMS mean '
              f'{clip.rms.mean() * 100:.2f} cm, max {clip.rms.max() * 100:.2f} cm, '
              f'{int(clip.flagged.sum())} frames > gate, {clip.outside_limits} values outside '
              'limits, ' + ', '.join(f'{n} {t:.1f} s' for n, t in clip.timings.items()))
      if assignment is not None:
        line += f" ({clip.motion.params['source']} from frame {clip.motion.params['start_frame']})"
      if clip.reference:
        comparisons.append({'clip': clip_id, **{k: v for k, v in clip.reference.items()
                                                 if not isinstance(v, np.ndarray)}})
        line += (f"; JAX vs OpenSim IK: max {clip.reference['max_rotation_difference_deg']:.3f}"
                 f" deg, RMS difference {clip.reference['rms_difference_m'] * 1000:.3f} mm")
      log(line)
  rms = np.concatenate(rms_all) if rms_all else np.zeros(0)
  summary = {
      'subjects': num_subjects, 'clips_written': len(written), 'clips_rejected': len(rejected),
      'rejections': rejected, 'frames': frames_total,
      'ik_marker_rms_mean_cm': float(rms.mean() * 100) if rms.size else None,
      'ik_marker_rms_max_cm': float(rms.max() * 100) if rms.size else None,
      'frames_above_gate': flagged_total, 'gate_cm': config.rms_gate_m * 100,
      'coordinate_values_outside_limits': outside_total,
      'stage_seconds': stage_seconds, 'total_seconds': time.perf_counter() - start_all,
      'subject_rows': subject_rows, 'jax_vs_opensim': comparisons,
      'ik': config.ik, 'seed': seed, 'body': body,
      'motions': 'amass' if assignment is not None else 'procedural',
  }
  (out / 'summary.json').write_text(json.dumps(summary, indent=2))
  log(f'\n{num_subjects} subjects, {len(written)} clips written, {len(rejected)} rejected, '
      f'{frames_total} frames in {summary["total_seconds"]:.1f} s')
  if rms.size:
    log(f'IK marker RMS: mean {rms.mean() * 100:.2f} cm, max {rms.max() * 100:.2f} cm; '
        f'{flagged_total} frames above {config.rms_gate_m * 100:.0f} cm; '
        f'{outside_total} coordinate values outside their limits')
  log('seconds per stage: ' + ', '.join(f'{k} {v:.1f}' for k, v in stage_seconds.items()))
  return summary


def main(argv):
  del argv
  import opensim  # pylint: disable=g-import-not-at-top  (OpenSim + JAX, 3.4 s: not for --help)
  from odah_tfds import labels  # pylint: disable=g-import-not-at-top  (JAX, 3.4 s: not for --help)
  # Lazy: JAX, 3.4 s: not for --help.
  from odah_tfds.body import base  # pylint: disable=g-import-not-at-top
  opensim.Logger.setLevelString(_OPENSIM_LOG.value)
  config = labels.LabelConfig(fps=_FPS.value, clip_frames=_FRAMES.value,
                              motion_frames=_MOTION_FRAMES.value or None,
                              clips_per_subject=_CLIPS.value,
                              families=tuple(_FAMILIES.value) if _FAMILIES.value else None,
                              ik=_IK.value)
  try:
    run(_NUM_SUBJECTS.value, pathlib.Path(_OUT.value), config, seed=_SEED.value,
        plot=_PLOT.value, body=_BODY.value, smplx_dir=_SMPLX_DIR.value,
        amass_dir=_AMASS_DIR.value)
  except (ValueError, base.ManualFilesError) as e:
    sys.exit(f'error: {e}')


if __name__ == '__main__':
  app.run(main)
