"""OpenSim motion files: marker trajectories (`.trc`) and coordinates (`.mot`/`.sto`).

Reading and writing go through the `opensim` package's own table classes
(`TimeSeriesTable`, `TimeSeriesTableVec3`, `TRCFileAdapter`, `STOFileAdapter`), so
every file written here is one that OpenSim and its tools (ScaleTool,
InverseKinematicsTool, AnalyzeTool, the GUI) read, and every file they write is
readable here. OpenSim's logging is left to the caller
(`opensim.Logger.setLevelString('error')` silences the tools' progress output). The
skeleton layer (`banet_jax.skeleton`) never needs `opensim`; this module does.

Units:
* Arrays handed to and returned by this module are SI: metres for marker
  positions and translational coordinates, radians for rotational coordinates.
* A `.trc` stores its unit in the `Units` header field ('m' or 'mm'); positions
  are converted on writing and reading.
* A `.mot`/`.sto` with `inDegrees=yes` holds degrees for the ROTATIONAL
  coordinates only (OpenSim's `Coordinate::MotionType` Rotational) and metres
  for translational ones; coupled coordinates (e.g. Rajagopal's
  `knee_angle_*_beta`) are left in radians, exactly as OpenSim converts them
  (`SimbodyEngine::convertRadiansToDegrees`). Which columns are rotational is
  not stored in the file: it comes from the model (see `read_mot`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import opensim as osim

from banet_jax.skeleton.models import load_model

_TRC_UNITS = {'m': 1.0, 'mm': 1e-3, 'cm': 1e-2}
_PACK_SUFFIXES = ('_1', '_2', '_3')


def _check_times(times, num_rows: int, what: str) -> np.ndarray:
  times = np.asarray(times, np.float64)
  if times.ndim != 1 or times.shape[0] != num_rows:
    raise ValueError(f'{what}: times must have shape ({num_rows},), got {times.shape}')
  if not np.all(np.isfinite(times)):
    raise ValueError(f'{what}: times must be finite')
  if num_rows > 1 and np.any(np.diff(times) <= 0):
    raise ValueError(f'{what}: times must be strictly increasing')
  return times


def _check_names(names, count: int, what: str) -> list[str]:
  names = [str(n) for n in names]
  if len(names) != count:
    raise ValueError(f'{what}: {len(names)} names for {count} columns')
  if len(set(names)) != len(names):
    dup = sorted({n for n in names if names.count(n) > 1})
    raise ValueError(f'{what}: duplicate names {dup}')
  for n in names:
    if not n or any(c.isspace() for c in n):
      raise ValueError(f'{what}: name {n!r} is empty or holds whitespace, which the '
                       'tab-separated OpenSim formats cannot store')
  return names


# ---- .trc ---------------------------------------------------------------------

def write_trc(path: str | os.PathLike, times, marker_names: Sequence[str], positions,
              units: str = 'm') -> str:
  """Writes marker trajectories as an OpenSim `.trc` file.

  Args:
    path: output file (its folder must exist).
    times: (T,) seconds, strictly increasing.
    marker_names: (M,) marker names (no whitespace).
    positions: (T, M, 3) marker positions in METRES (NaN = missing marker).
    units: unit written to the file, 'm' or 'mm' (positions are converted).

  Returns:
    The path written, as a string.
  """
  if units not in ('m', 'mm'):
    raise ValueError(f"write_trc: units must be 'm' or 'mm', got {units!r}")
  positions = np.asarray(positions, np.float64)
  if positions.ndim != 3 or positions.shape[2] != 3:
    raise ValueError(f'write_trc: positions must have shape (T, M, 3), got {positions.shape}')
  num_frames, num_markers, _ = positions.shape
  if num_frames < 1 or num_markers < 1:
    raise ValueError(f'write_trc: need at least one frame and one marker, got {positions.shape}')
  times = _check_times(times, num_frames, 'write_trc')
  names = _check_names(marker_names, num_markers, 'write_trc')
  values = positions / _TRC_UNITS[units]
  flat = osim.TimeSeriesTable(
      [float(t) for t in times], osim.Matrix.createFromMat(values.reshape(num_frames, -1)),
      [n + s for n in names for s in _PACK_SUFFIXES])
  table = flat.packVec3()
  rate = 1.0 / float(np.median(np.diff(times))) if num_frames > 1 else 1.0
  rate_text = f'{rate:.6g}'
  for key, value in (('DataRate', rate_text), ('CameraRate', rate_text),
                     ('NumFrames', str(num_frames)), ('NumMarkers', str(num_markers)),
                     ('Units', units), ('OrigDataRate', rate_text),
                     ('OrigDataStartFrame', '1'), ('OrigNumFrames', str(num_frames))):
    table.addTableMetaDataString(key, value)
  path = os.fspath(path)
  osim.TRCFileAdapter.write(table, path)
  return path


def read_trc(path: str | os.PathLike) -> tuple[np.ndarray, list[str], np.ndarray]:
  """Reads an OpenSim `.trc` file.

  Returns:
    times (T,) seconds, marker names (M,), positions (T, M, 3) in METRES
    (converted from the file's `Units`; missing markers are NaN).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such .trc file')
  table = osim.TimeSeriesTableVec3(path)
  units = table.getTableMetaDataString('Units').strip() if table.hasTableMetaDataKey(
      'Units') else 'm'
  if units not in _TRC_UNITS:
    raise ValueError(f"{path}: unsupported Units {units!r} (expected one of "
                     f"{sorted(_TRC_UNITS)})")
  names = list(table.getColumnLabels())
  times = np.array(table.getIndependentColumn(), np.float64)
  # Keep each SWIG temporary in a variable: getMatrix() returns a reference into
  # its table, and a table freed too early makes to_numpy() read freed memory.
  flat_table = table.flatten()  # columns <name>_1, _2, _3
  matrix = flat_table.getMatrix()
  positions = np.array(matrix.to_numpy(), np.float64).reshape(len(times), len(names), 3)
  return times, names, positions * _TRC_UNITS[units]


# ---- .mot / .sto ----------------------------------------------------------------

def write_mot(path: str | os.PathLike, times, coordinate_names: Sequence[str], values,
              in_degrees: bool = True, rotational_mask=None, name: str | None = None) -> str:
  """Writes coordinates (or any scalar columns) as an OpenSim `.mot`/`.sto` file.

  Args:
    path: output file; '.mot' or '.sto' (the content is the same).
    times: (T,) seconds, strictly increasing.
    coordinate_names: (C,) column names (e.g. `Skeleton.coordinate_names`).
    values: (T, C) radians for rotational and metres for translational columns.
    in_degrees: write `inDegrees=yes` and the rotational columns in degrees (what
      OpenSim's IK tool writes), or `inDegrees=no` and everything in SI units.
    rotational_mask: (C,) bool, True for the columns OpenSim converts between
      degrees and radians (motion type Rotational, e.g. `Skeleton.rotational`).
      Required when `in_degrees` is True.
    name: optional table name written in the header.

  Returns:
    The path written, as a string.
  """
  values = np.asarray(values, np.float64)
  if values.ndim != 2:
    raise ValueError(f'write_mot: values must have shape (T, C), got {values.shape}')
  num_rows, num_cols = values.shape
  times = _check_times(times, num_rows, 'write_mot')
  names = _check_names(coordinate_names, num_cols, 'write_mot')
  if in_degrees:
    if rotational_mask is None:
      raise ValueError('write_mot: in_degrees=True needs rotational_mask (C,) saying which '
                       'columns are rotational (e.g. Skeleton.rotational)')
    mask = np.asarray(rotational_mask, bool)
    if mask.shape != (num_cols,):
      raise ValueError(f'write_mot: rotational_mask must have shape ({num_cols},), '
                       f'got {mask.shape}')
    values = np.where(mask, np.degrees(values), values)
  table = osim.TimeSeriesTable([float(t) for t in times],
                               osim.Matrix.createFromMat(np.ascontiguousarray(values)), names)
  table.addTableMetaDataString('inDegrees', 'yes' if in_degrees else 'no')
  if name:
    table.addTableMetaDataString('header', str(name))
  path = os.fspath(path)
  osim.STOFileAdapter.write(table, path)
  return path


def read_mot(path: str | os.PathLike, rotational=None) -> tuple[np.ndarray, list[str], np.ndarray]:
  """Reads an OpenSim `.mot`/`.sto` file (written by OpenSim or by `write_mot`).

  Args:
    path: the file.
    rotational: which columns are rotational, needed only when the file says
      `inDegrees=yes`: a `banet_jax.skeleton.Skeleton` or a path to an `.osim`
      file (columns named like its coordinates are converted when the motion type
      is Rotational; other columns are kept), a {name: bool} dict, or a (C,) bool
      sequence aligned with the file's columns. None: the project model
      (`banet_jax.skeleton.models.project_skeleton()`).

  Returns:
    times (T,), column names (C,), values (T, C) in radians / metres.
    A states file (every column a state path, as the MarkerPlacer writes its
    static pose) is reduced to its coordinate values: '/jointset/<joint>/<name>/
    value' columns are returned as <name>, the '/speed' columns are dropped.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such .mot/.sto file')
  table = osim.TimeSeriesTable(path)
  names = list(table.getColumnLabels())
  times = np.array(table.getIndependentColumn(), np.float64)
  matrix = table.getMatrix()  # a reference into `table`, which stays alive here
  values = np.array(matrix.to_numpy(), np.float64).reshape(len(times), len(names))
  if names and all(n.startswith('/') for n in names):
    keep = [i for i, n in enumerate(names) if n.endswith('/value')]
    names = [names[i].split('/')[-2] for i in keep]
    values = values[:, keep]
  in_degrees = (table.hasTableMetaDataKey('inDegrees')
                and table.getTableMetaDataString('inDegrees').strip().lower() == 'yes')
  if in_degrees:
    mask = _rotational_columns(names, rotational, path)
    values = np.where(mask, np.radians(values), values)
  return times, names, values


def _rotational_columns(names: list[str], rotational, path: str) -> np.ndarray:
  if rotational is None or isinstance(rotational, (str, os.PathLike)):
    rotational = load_model(rotational)
  if hasattr(rotational, 'coordinate_names') and hasattr(rotational, 'rotational'):
    lookup = dict(zip(rotational.coordinate_names, np.asarray(rotational.rotational)))
    return np.array([bool(lookup.get(n, False)) for n in names])
  if isinstance(rotational, dict):
    return np.array([bool(rotational.get(n, False)) for n in names])
  mask = np.asarray(rotational, bool)
  if mask.shape != (len(names),):
    raise ValueError(f'{path}: rotational mask must have shape ({len(names)},) (one entry '
                     f'per column), got {mask.shape}')
  return mask


def uniform_times(num_frames: int, fps: float, start: float = 0.0) -> np.ndarray:
  """(num_frames,) float64 sample times start + k / fps."""
  if fps <= 0 or not math.isfinite(fps):
    raise ValueError(f'fps must be a positive number, got {fps}')
  return start + np.arange(int(num_frames), dtype=np.float64) / float(fps)
