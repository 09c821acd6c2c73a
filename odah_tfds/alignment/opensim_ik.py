"""Inverse kinematics with OpenSim's own solver: the reference path of the alignment.

    result = run_ik(scaled_model_path, marker_names, positions, fps=60.0)
    result.coordinates   # (T, C) rad / m, the model's coordinate order
    result.marker_errors # (T, M) m, distance of each model marker to its target

OpenSim's `InverseKinematicsSolver` (what the `InverseKinematicsTool` runs inside)
is driven through the API, frame by frame, as the tool does: the first frame is
assembled from the model's default pose, then every frame is tracked starting
from the previous solution. Each frame minimises

    sum_i w_i || x_i(q) - x_i^exp ||^2

over the free coordinates, with coupler constraints enforced exactly
(constraint weight infinity), locked coordinates held, and clamped coordinates
kept in range. Using the solver directly (rather than the tool) keeps the
markers in memory and gives the per-marker errors of every frame.

With `out_dir`, the run is also written as OpenSim's tools would: the marker
trajectories (`<name>_markers.trc`), the coordinates (`<name>_ik.mot`, degrees
for rotational coordinates, like the tool's output), the marker errors
(`<name>_ik_marker_errors.sto`) and an InverseKinematicsTool set-up
(`<name>_ik_setup.xml`) that re-runs the same IK in the GUI or with
`opensim-cmd run-tool`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Mapping, Sequence

import numpy as np
import opensim as osim

from banet_jax import opensim_io
from banet_jax.skeleton import load_osim
from odah_tfds.alignment import marker_setup

# The solver's convergence accuracy. The IK tool's default, 1e-5, leaves weakly
# constrained distal coordinates far from the optimum of the objective once the
# markers are noisy (5 mm noise: mtp up to ~17 deg, wrist and pro_sup ~4 deg off);
# 1e-7 brings every coordinate within ~0.2 deg of it, at ~5-8x the time per frame.
DEFAULT_ACCURACY = 1e-7


@dataclasses.dataclass(frozen=True)
class IKResult:
  """Inverse kinematics of one marker trajectory.

  Attributes:
    coordinates: (T, C) float64, radians / metres, in `coordinate_names` order
      (the model's coordinate order = `Skeleton.coordinate_names`).
    coordinate_names: (C,).
    marker_names: (M,) the markers given, in the given order.
    marker_errors: (T, M) float64 metres: distance between each model marker and
      its target (NaN for markers the model lacks or missing targets).
    rms: (T,) RMS over the markers with an error (what the IK tool reports).
    max: (T,) the largest marker error per frame.
    times: (T,) seconds.
    seconds: wall time of the solve (excluding model loading and file output).
    files: {'trc', 'mot', 'errors', 'setup'}: paths written when `out_dir` was
      given, else empty.
  """

  coordinates: np.ndarray
  coordinate_names: tuple[str, ...]
  marker_names: tuple[str, ...]
  marker_errors: np.ndarray
  rms: np.ndarray
  max: np.ndarray
  times: np.ndarray
  seconds: float
  files: dict[str, str]


def _marker_table(osim, times: np.ndarray, names: Sequence[str], positions: np.ndarray,
                  fps: float):
  flat = osim.TimeSeriesTable([float(t) for t in times],
                              osim.Matrix.createFromMat(positions.reshape(len(times), -1)),
                              [f'{n}_{k}' for n in names for k in (1, 2, 3)])
  table = flat.packVec3()
  table.addTableMetaDataString('Units', 'm')
  table.addTableMetaDataString('DataRate', f'{fps:.6g}')
  return table


def run_ik(model_path: str | os.PathLike, marker_names: Sequence[str], positions, fps: float,
           weights: Mapping[str, float] | Sequence[float] | np.ndarray | None = None,
           out_dir: str | os.PathLike | None = None, *, name: str = 'trial',
           accuracy: float = DEFAULT_ACCURACY, start_time: float = 0.0,
           init=None) -> IKResult:
  """OpenSim inverse kinematics of marker trajectories.

  Args:
    model_path: the (scaled) .osim model.
    marker_names: (M,) names of the markers in `positions`; names the model does
      not have are ignored (their errors are NaN).
    positions: (T, M, 3) float, metres, in the model's ground frame; NaN marks a
      missing marker in a frame.
    fps: frame rate (Hz); frame k is at time start_time + k / fps.
    weights: marker weights: None (the project convention of
      `marker_setup.ik_weights`; 1 for names it does not know), a {name: weight}
      mapping or an (M,) array.
      Zero-weight markers do not influence the solution.
    out_dir: if given, write the .trc, .mot, marker-error .sto and IK set-up.
    name: file prefix in out_dir.
    accuracy: the solver's convergence accuracy.
    start_time: time of the first frame (s).
    init: optional (C,) coordinates (rad / m, the model's coordinate order) the
      first frame starts from instead of the model's default pose (OpenSim
      assembles the first frame from the pose it is given, so a far-off start can
      end in a local minimum); locked coordinates keep their value.

  Returns:
    IKResult.
  """
  model_path = os.path.abspath(os.fspath(model_path))
  if not os.path.isfile(model_path):
    raise FileNotFoundError(f'{model_path}: no such OpenSim model')
  names = [str(n) for n in marker_names]
  positions = np.asarray(positions, np.float64)
  if positions.ndim != 3 or positions.shape[1:] != (len(names), 3):
    raise ValueError(f'positions must have shape (T, {len(names)}, 3) for {len(names)} '
                     f'marker names, got {positions.shape}')
  if positions.shape[0] < 1:
    raise ValueError('positions holds no frames')
  if np.any(np.isinf(positions)):
    raise ValueError('positions holds infinite values (use NaN for missing markers)')
  if not (fps > 0 and math.isfinite(fps)):
    raise ValueError(f'fps must be a positive number, got {fps}')
  if not accuracy > 0:
    raise ValueError(f'accuracy must be > 0, got {accuracy}')
  if weights is None:  # the project convention; markers of other models get 1
    weights = marker_setup.ik_weights(names, default=1.0)
  weight_array = marker_setup.ik_weight_array(names, weights)
  num_frames = positions.shape[0]
  times = opensim_io.uniform_times(num_frames, fps, start_time)

  model = osim.Model(model_path)
  if init is not None:
    _set_default_pose(model, init)
  state = model.initSystem()
  model_markers = {model.getMarkerSet().get(i).getName()
                   for i in range(model.getMarkerSet().getSize())}
  used = [i for i, n in enumerate(names) if n in model_markers]
  if len(used) < 3:
    raise ValueError(f'{model_path}: only {len(used)} of the given markers are in the model '
                     f'(given: {names[:10]}...)')
  coord_set = model.getCoordinateSet()
  coord_names = tuple(coord_set.get(i).getName() for i in range(coord_set.getSize()))

  table = _marker_table(osim, times, [names[i] for i in used], positions[:, used], fps)
  weight_set = osim.SetMarkerWeights()
  for i in used:
    weight_set.cloneAndAppend(osim.MarkerWeight(names[i], float(weight_array[i])))
  markers_ref = osim.MarkersReference(table, weight_set)
  coordinate_refs = osim.SimTKArrayCoordinateReference()
  solver = osim.InverseKinematicsSolver(model, markers_ref, coordinate_refs, math.inf)
  solver.setAccuracy(float(accuracy))

  coordinates = np.zeros((num_frames, len(coord_names)))
  errors = np.full((num_frames, len(names)), np.nan)
  column = {n: k for k, n in enumerate(names)}
  start = time.perf_counter()
  state.setTime(float(times[0]))
  solver.assemble(state)
  order = None
  frame_errors = osim.SimTKArrayDouble()
  for f in range(num_frames):
    state.setTime(float(times[f]))
    solver.track(state)
    coordinates[f] = [coord_set.get(k).getValue(state) for k in range(len(coord_names))]
    solver.computeCurrentMarkerErrors(frame_errors)
    if order is None:  # the solver's marker order is fixed for the run
      order = [column[solver.getMarkerNameForIndex(k)] for k in range(solver.getNumMarkersInUse())]
    errors[f, order] = [frame_errors.getElt(k) for k in range(len(order))]
  seconds = time.perf_counter() - start
  # Targets missing in a frame have no error (OpenSim reports 0 for them).
  errors[np.isnan(positions).any(-1)] = np.nan
  with np.errstate(invalid='ignore'):
    rms = np.sqrt(np.nanmean(errors ** 2, axis=1))
    max_error = np.nanmax(errors, axis=1)

  files = {}
  if out_dir is not None:
    files = _write_outputs(osim, pathlib.Path(out_dir), name, model_path, times, names,
                           positions, weight_array, coord_names, coordinates, errors, rms,
                           max_error, accuracy)
  return IKResult(coordinates=coordinates, coordinate_names=coord_names,
                  marker_names=tuple(names), marker_errors=errors, rms=rms, max=max_error,
                  times=times, seconds=seconds, files=files)


def _set_default_pose(model, init) -> None:
  """Makes `init` (C,) the model's default pose (the IK's first starting point)."""
  coordinates = model.updCoordinateSet()
  init = np.asarray(init, np.float64)
  if init.shape != (coordinates.getSize(),):
    raise ValueError(f'init must have shape ({coordinates.getSize()},) (one value per model '
                     f'coordinate), got {init.shape}')
  if not np.all(np.isfinite(init)):
    raise ValueError('init must be finite')
  for k in range(coordinates.getSize()):
    coordinate = coordinates.get(k)
    if not coordinate.getDefaultLocked():
      coordinate.setDefaultValue(float(init[k]))


def _write_outputs(osim, out: pathlib.Path, name: str, model_path: str, times, names,
                   positions, weight_array, coord_names, coordinates, errors, rms, max_error,
                   accuracy) -> dict[str, str]:
  """Writes the run as OpenSim's IK tool would (see the module docstring)."""
  out.mkdir(parents=True, exist_ok=True)
  files = {'trc': out / f'{name}_markers.trc', 'mot': out / f'{name}_ik.mot',
           'errors': out / f'{name}_ik_marker_errors.sto', 'setup': out / f'{name}_ik_setup.xml'}
  opensim_io.write_trc(files['trc'], times, names, positions)
  skel = load_osim(model_path)
  rotational = dict(zip(skel.coordinate_names, skel.rotational))
  opensim_io.write_mot(files['mot'], times, coord_names, coordinates, in_degrees=True,
                       rotational_mask=[bool(rotational.get(c, False)) for c in coord_names],
                       name='Coordinates')
  with np.errstate(invalid='ignore'):
    total = np.nansum(weight_array * errors ** 2, axis=1)
  opensim_io.write_mot(files['errors'], times,
                       ['total_squared_error', 'marker_error_RMS', 'marker_error_max']
                       + list(names),
                       np.column_stack([total, rms, max_error, errors]), in_degrees=False,
                       name='Model Marker Errors from IK')

  tool = osim.InverseKinematicsTool()
  tool.setName(name)
  tool.set_model_file(model_path)
  tool.set_marker_file(files['trc'].name)
  tool.set_output_motion_file(files['mot'].name)
  tool.set_results_directory('.')
  tool.set_accuracy(float(accuracy))
  tool.set_constraint_weight(math.inf)
  tool.setStartTime(float(times[0]))
  tool.setEndTime(float(times[-1]))
  tool.set_report_errors(True)
  tasks = tool.getIKTaskSet()
  for marker, weight in zip(names, weight_array):
    task = osim.IKMarkerTask()
    task.setName(marker)
    task.setApply(bool(weight > 0))
    task.setWeight(float(weight))
    tasks.cloneAndAppend(task)
  tool.printToXML(str(files['setup']))
  return {k: str(v) for k, v in files.items()}
