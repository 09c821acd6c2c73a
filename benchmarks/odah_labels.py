r"""Cost of the ODAH labels: OpenSim scaling, OpenSim IK and the batched JAX IK.

COMMAND:
  python benchmarks/odah_labels.py                              # defaults below
  python benchmarks/odah_labels.py --frames=256 --opensim_frames=64 --noise_mm=5
  python benchmarks/odah_labels.py --batches=64,256 --dtype=float32 --subjects=3

What it does (all on the project model, no body mesh):
1. Subjects: per-body scale factors drawn around 1 (+-12 %, shared within femur/patella,
   talus/calcn/toes, ulna/radius), static markers by the JAX skeleton layer's forward
   kinematics in the default pose, then `opensim_scaling.scale_model` (OpenSim ScaleTool,
   two passes, see its docstring). Reported: seconds per subject (median), the largest
   relative error of the recovered factors.
2. A motion on the first subject's scaled model: `--frames` frames at 60 fps of smooth
   random joint motion inside the coordinate ranges while walking forward and turning,
   markers by forward kinematics plus Gaussian noise of `--noise_mm` per axis.
3. OpenSim IK (`opensim_ik.run_ik`, InverseKinematicsSolver tracking frame by frame,
   single thread) on the first `--opensim_frames` frames, once per `--accuracies`.
4. JAX IK (`jax_ik.solve_ik`, batched Levenberg-Marquardt from per-frame segment
   registration, no warm start) on the same frames: compile time of the first call, then
   the steady-state seconds per frame at every batch size of `--batches` (median of
   `--repeats` runs, results blocked on); then `keyframe_stride=--keyframe_stride` at the
   largest batch (every k-th frame from scratch, the rest from the nearest keyframe), and
   with `--sequential` the lax.scan warm-started variant. Compile times exclude the
   solve of the first call.

The table: per method, seconds per frame and frames/s (JAX batched: over all `--frames`
frames), and on the frames OpenSim solves: the residual (mean and max of the per-frame
marker RMS, mm) and the largest deviation over the rotational coordinates (deg) from the
optimum (a JAX solve with tol 1e-14); last, the speed-up of JAX over the OpenSim row
named by `--reference_accuracy` (whose residuals equal JAX's to a few um, so it is a
speed-up at equal residual).

Body posing (mesh backends producing the virtual markers) is not part of this
benchmark: the lead times it separately; there is no `--with_body` hook.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

def _define_flags() -> dict[str, flags.FlagHolder]:
  """The command-line flags. Defined only when this file runs as a script: the tests
  import several benchmarks into one process, and absl refuses a flag name twice
  (`skeleton_fk` also has --batches, --repeats, --dtype, --platform)."""
  return dict(
      frames=flags.DEFINE_integer('frames', 256, 'Frames of the test motion (60 fps).'),
      opensim_frames=flags.DEFINE_integer('opensim_frames', 64,
                                          'Leading frames also solved by OpenSim IK.'),
      accuracies=flags.DEFINE_list('accuracies', ['1e-5', '1e-7'],
                                   'OpenSim IK accuracies (1e-5: the IK tool default; 1e-7: '
                                   'opensim_ik.DEFAULT_ACCURACY).'),
      reference_accuracy=flags.DEFINE_string(
          'reference_accuracy', '1e-7', 'OpenSim row the JAX speed-up is computed against.'),
      batches=flags.DEFINE_list('batches', ['64', '256'], 'JAX batch sizes (frames per call).'),
      repeats=flags.DEFINE_integer('repeats', 3, 'Timed JAX runs per batch size (median).'),
      dtype=flags.DEFINE_enum('dtype', 'float64', ['float32', 'float64'], 'JAX dtype.'),
      sequential=flags.DEFINE_bool('sequential', True, 'Also time the sequential JAX variant.'),
      keyframe_stride=flags.DEFINE_integer('keyframe_stride', 8,
                                           'Also time solve_ik(keyframe_stride=...) at the '
                                           'largest batch (0: no).'),
      subjects=flags.DEFINE_integer('subjects', 3, 'Subjects scaled by OpenSim.'),
      noise_mm=flags.DEFINE_float('noise_mm', 5.0, 'Marker noise (standard deviation, mm).'),
      seed=flags.DEFINE_integer('seed', 0, 'Random seed.'),
      platform=flags.DEFINE_string('platform', None, 'JAX platform (cpu, gpu, ...).'),
  )


@dataclasses.dataclass
class Row:
  method: str
  setting: str
  frames: int
  compile_s: float | None
  seconds_per_frame: float
  rms_mean_mm: float
  rms_max_mm: float
  max_dev_deg: float | None


def _subject_scales(skel, rng) -> np.ndarray:
  scales = np.repeat(rng.uniform(0.88, 1.12, (skel.num_bodies, 1)), 3, axis=1)
  for group in (('femur', 'patella'), ('talus', 'calcn', 'toes'), ('ulna', 'radius')):
    for side in ('r', 'l'):
      for other in group[1:]:
        scales[skel.body_index(f'{other}_{side}')] = scales[skel.body_index(f'{group[0]}_{side}')]
  # One measurement (hip to shoulder centres) scales the pelvis and torso heights: a
  # subject with different factors there could not be recovered.
  scales[skel.body_index('torso')] = scales[skel.body_index('pelvis')]
  return scales


def _motion(skel, num_frames: int, rng) -> np.ndarray:
  """(T, C) smooth random motion inside the ranges, walking forward while turning."""
  from banet_jax.skeleton import apply_couplers  # pylint: disable=g-import-not-at-top
  t = np.arange(num_frames)[:, None] / 60.0
  lo, hi = skel.coordinate_ranges[:, 0], skel.coordinate_ranges[:, 1]
  centre = np.clip(skel.default_coordinates + rng.uniform(-0.4, 0.4, skel.num_coordinates),
                   lo + 0.5, hi - 0.5)
  q = centre + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0, skel.num_coordinates) * t
                            + rng.uniform(0, 2 * np.pi, skel.num_coordinates))
  q = np.clip(q, lo, hi)
  q[:, skel.translational] = skel.default_coordinates[skel.translational]
  q[:, skel.coordinate_index('pelvis_rotation')] = 0.6 * t[:, 0]
  q[:, skel.coordinate_index('pelvis_tx')] = 1.2 * t[:, 0]
  q[:, skel.locked] = skel.default_coordinates[skel.locked]
  return np.asarray(apply_couplers(skel, q))


def _wrapped_deg(a) -> np.ndarray:
  return np.degrees(np.abs(np.angle(np.exp(1j * np.asarray(a)))))


def run(num_frames: int = 256, opensim_frames: int = 64, accuracies: Sequence[float] = (1e-5, 1e-7),
        reference_accuracy: float = 1e-7, batches: Sequence[int] = (64, 256), repeats: int = 3,
        dtype: str = 'float64', sequential: bool = True, subjects: int = 3,
        noise_mm: float = 5.0, seed: int = 0, keyframe_stride: int = 8,
        verbose: bool = True) -> str:
  """Runs the benchmark and returns (and prints) the report."""
  import jax  # pylint: disable=g-import-not-at-top
  import opensim as osim  # pylint: disable=g-import-not-at-top
  from banet_jax.skeleton import forward_kinematics, load_osim  # pylint: disable=g-import-not-at-top
  from banet_jax.skeleton.models import DEFAULT_MODEL_PATH  # pylint: disable=g-import-not-at-top
  # pylint: disable=g-import-not-at-top
  from banet_jax.skeleton import ik as jax_ik
  from odah_tfds.alignment import marker_setup, opensim_ik, opensim_scaling

  say = print if verbose else (lambda *a, **k: None)
  osim.Logger.setLevelString('error')
  info = _common.platform_info(dtype, with_load=True)
  say(info)
  rng = np.random.default_rng(seed)
  generic = load_osim(DEFAULT_MODEL_PATH)
  work = tempfile.mkdtemp(prefix='odah_labels_')

  # 1. Scaling.
  scale_seconds, scale_errors, scaled_path = [], [], None
  for s in range(max(1, subjects)):
    scales = _subject_scales(generic, rng)
    static = np.asarray(forward_kinematics(generic, generic.default_coordinates, scales).markers)
    start = time.perf_counter()
    result = opensim_scaling.scale_model(dict(zip(generic.marker_names, static)),
                                         DEFAULT_MODEL_PATH, os.path.join(work, f's{s}'),
                                         subject_mass=75.0, name=f's{s}')
    scale_seconds.append(time.perf_counter() - start)
    scale_errors.append(float(np.abs(result.scale_factors / scales - 1).max()))
    scaled_path = scaled_path or result.scaled_model_path
  say(f'scaling: {statistics.median(scale_seconds):.2f} s per subject (median of '
      f'{len(scale_seconds)}; ScaleTool x2 + static IK), max factor error '
      f'{max(scale_errors):.1e}', flush=True)

  # 2. The motion.
  skel = load_osim(scaled_path)
  q_true = _motion(skel, num_frames, rng)
  markers = np.asarray(forward_kinematics(skel, q_true).markers, np.float64)
  markers = markers + rng.normal(0.0, noise_mm * 1e-3, markers.shape)
  weights = marker_setup.ik_weight_array(skel.marker_names)
  n_os = min(opensim_frames, num_frames)

  # 4 (before 3: its optimum is the reference for the coordinate deviations). JAX IK.
  rows, batched = [], []
  with jax.enable_x64(dtype == 'float64'):
    target = markers.astype(dtype)
    variants = [(batch, 0) for batch in batches]
    if keyframe_stride > 1:
      variants.append((max(batches), keyframe_stride))
    for batch, stride in variants:
      chunks = [target[i:i + batch] for i in range(0, num_frames - batch + 1, batch)] or [
          np.resize(target, (batch,) + target.shape[1:])]
      solve = functools.partial(jax_ik.solve_ik, skel, marker_weights=weights,
                                keyframe_stride=stride)
      start = time.perf_counter()
      solve(chunks[0]).coordinates.block_until_ready()
      compile_s = time.perf_counter() - start
      per_frame = []
      for _ in range(max(1, repeats)):
        start = time.perf_counter()
        sols = [solve(c) for c in chunks]
        for sol in sols:
          sol.coordinates.block_until_ready()
        per_frame.append((time.perf_counter() - start) / sum(len(c) for c in chunks))
      compile_s -= statistics.median(per_frame) * batch  # the first call also solved
      # Residuals and coordinates on the frames OpenSim also solves.
      rms = np.concatenate([np.asarray(sol.rms, np.float64) for sol in sols])[:n_os]
      coords = np.concatenate([np.asarray(sol.coordinates, np.float64) for sol in sols])[:n_os]
      name = 'jax batched' if not stride else f'jax keyframes every {stride}'
      batched.append((coords, Row(name, f'{dtype}, T={batch}', len(rms), compile_s,
                                  statistics.median(per_frame), 1e3 * rms.mean(),
                                  1e3 * rms.max(), None)))
    # The optimum on the OpenSim frames: the tightest batched solve of them.
    optimum = np.asarray(jax_ik.solve_ik(skel, target[:n_os], weights, tol=1e-14,
                                         iters=200).coordinates, np.float64)
    for coords, row in batched:
      row.max_dev_deg = float(_wrapped_deg(coords - optimum)[:, skel.rotational].max())
      rows.append(row)
    if sequential:
      start = time.perf_counter()
      sol = jax_ik.solve_ik(skel, target[:n_os], weights, sequential=True)
      sol.coordinates.block_until_ready()
      compile_s = time.perf_counter() - start
      start = time.perf_counter()
      sol = jax_ik.solve_ik(skel, target[:n_os], weights, sequential=True)
      sol.coordinates.block_until_ready()
      seconds = time.perf_counter() - start
      rms = np.asarray(sol.rms, np.float64)
      dev = _wrapped_deg(np.asarray(sol.coordinates, np.float64) - optimum)[:, skel.rotational]
      rows.append(Row('jax sequential', f'{dtype}, T={n_os}', n_os, compile_s - seconds,
                      seconds / n_os, 1e3 * rms.mean(), 1e3 * rms.max(), float(dev.max())))

  # 3. OpenSim IK.
  reference_seconds, opensim_rows = None, []
  for accuracy in accuracies:
    result = opensim_ik.run_ik(scaled_path, skel.marker_names, markers[:n_os], fps=60.0,
                               accuracy=accuracy)
    dev = _wrapped_deg(result.coordinates - optimum)[:, skel.rotational]
    opensim_rows.append(Row('opensim IK', f'accuracy {accuracy:g}', n_os, None,
                            result.seconds / n_os, 1e3 * result.rms.mean(),
                            1e3 * result.rms.max(), float(dev.max())))
    if accuracy == reference_accuracy:
      reference_seconds = result.seconds / n_os
    say(f'opensim accuracy {accuracy:g}: {result.seconds / n_os * 1e3:.1f} ms/frame', flush=True)
  rows = opensim_rows + rows

  table = _markdown(rows, reference_seconds, reference_accuracy)
  header = (f'{info}\nmotion: {num_frames} frames, noise {noise_mm:g} mm; OpenSim on the first '
            f'{n_os}; scaling {statistics.median(scale_seconds):.2f} s per subject '
            f'(max factor error {max(scale_errors):.1e})')
  say('')
  say(table)
  return header + '\n\n' + table


def _markdown(rows: Sequence[Row], reference_seconds, reference_accuracy) -> str:
  head = ['method', 'setting', 'frames', 'compile s', 's/frame', 'frames/s', 'RMS mean mm',
          'RMS max mm', 'max dq vs JAX optimum (deg)',
          f'speed-up vs OpenSim {reference_accuracy:g}']
  lines = ['| ' + ' | '.join(head) + ' |',
           '|' + '|'.join(['---'] * 2 + ['---:'] * (len(head) - 2)) + '|']
  for r in rows:
    speedup = ('' if reference_seconds is None or r.method == 'opensim IK'
               else f'{reference_seconds / r.seconds_per_frame:,.0f}x')
    lines.append('| ' + ' | '.join([
        r.method, r.setting, str(r.frames), '' if r.compile_s is None else f'{r.compile_s:.1f}',
        f'{r.seconds_per_frame:.2e}', f'{1 / r.seconds_per_frame:,.0f}', f'{r.rms_mean_mm:.3f}',
        f'{r.rms_max_mm:.3f}', '' if r.max_dev_deg is None else f'{r.max_dev_deg:.3f}',
        speedup]) + ' |')
  return '\n'.join(lines)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  f = {name: holder.value for name, holder in _FLAGS.items()}
  if f['platform']:
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update('jax_platforms', f['platform'])
  run(f['frames'], f['opensim_frames'], [float(a) for a in f['accuracies']],
      float(f['reference_accuracy']), [int(b) for b in f['batches']], f['repeats'], f['dtype'],
      f['sequential'], f['subjects'], f['noise_mm'], f['seed'], f['keyframe_stride'])


if __name__ == '__main__':
  _FLAGS = _define_flags()
  app.run(main)
