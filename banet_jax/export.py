"""Predictions as the files biomechanists open: `.mot`, `.trc` and a scaled `.osim`.

Per clip, `export_clip` writes
  <clip>.mot   the coordinates (degrees for rotational ones, `inDegrees=yes`), at the
               clip's frame rate;
  <clip>.osim  the skeleton model scaled by OpenSim itself (`Model.scale`, the call
               ScaleTool's ModelScaler makes) with the predicted body scale factors;
  <clip>.trc   the scaled model's markers moved by the predicted coordinates (from the
               skeleton layer), so OpenSim's IK on this .trc with this .osim recovers the
               .mot: a consistency check a user can run.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np
import opensim as osim

from banet_jax import opensim_io
from banet_jax.skeleton import forward_kinematics, load_osim, models


def scale_osim(generic_model: str | os.PathLike, body_names: Sequence[str], scales,
               out_path: str | os.PathLike, name: str | None = None,
               mass: float | None = None) -> pathlib.Path:
  """Writes `generic_model` scaled by per-body factors, through OpenSim's `Model.scale`.

  Args:
    generic_model: the unscaled .osim the factors refer to.
    body_names: B body names, matching `scales`.
    scales: (B, 3) positive (x, y, z) factors.
    out_path: the .osim to write.
    name: the scaled model's name (default: the file stem).
    mass: total mass (kg) with the mass distribution preserved (None: masses scale
      with the segments, as OpenSim does without a target mass).
  """
  scales = np.asarray(scales, np.float64)
  if scales.shape != (len(body_names), 3):
    raise ValueError(f'scales must have shape ({len(body_names)}, 3), got {scales.shape}')
  if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
    raise ValueError('scale factors must be finite and positive')
  model = osim.Model(str(generic_model))
  known = {model.getBodySet().get(i).getName() for i in range(model.getBodySet().getSize())}
  unknown = sorted(set(body_names) - known)
  if unknown:
    raise ValueError(f'bodies {unknown} are not in {generic_model}')
  state = model.initSystem()
  scale_set = osim.ScaleSet()
  for body, factors in zip(body_names, scales):
    scale = osim.Scale()
    scale.setSegmentName(body)
    scale.setScaleFactors(osim.Vec3(*map(float, factors)))
    scale.setApply(True)
    scale_set.cloneAndAppend(scale)
  preserve = mass is not None
  if not model.scale(state, scale_set, preserve, float(mass) if preserve else -1.0):
    raise RuntimeError(f'OpenSim could not scale {generic_model}; see its log')
  out_path = pathlib.Path(out_path)
  model.setName(name or out_path.stem)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  model.printToXML(str(out_path))
  return out_path


def export_clip(out_dir: str | os.PathLike, clip_id: str, coordinates, scales, fps: float,
                model_path: str | os.PathLike | None = None,
                mass: float | None = None) -> dict[str, str]:
  """Writes `<clip_id>.mot`, `.trc` and `.osim` into `out_dir`.

  Args:
    coordinates: (T, C) in the model's coordinate order; radians and metres.
    scales: (B, 3) body scale factors in the model's body order (one set per clip).
    fps: frame rate of the rows.
    model_path: the generic .osim (default: the project's full-body model).

  Returns:
    {'mot': path, 'trc': path, 'osim': path}.
  """
  model_path = str(models.model_path(model_path))
  skel = load_osim(model_path)
  coordinates = np.asarray(coordinates, np.float64)
  scales = np.asarray(scales, np.float64)
  if coordinates.ndim != 2 or coordinates.shape[1] != len(skel.coordinate_names):
    raise ValueError(f'coordinates must have shape (T, {len(skel.coordinate_names)}), '
                     f'got {coordinates.shape}')
  if scales.shape != (len(skel.body_names), 3):
    raise ValueError(f'scales must have shape ({len(skel.body_names)}, 3), got {scales.shape}')
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = {k: out_dir / f'{clip_id}.{k}' for k in ('mot', 'trc', 'osim')}
  times = opensim_io.uniform_times(len(coordinates), fps)
  opensim_io.write_mot(paths['mot'], times, skel.coordinate_names, coordinates,
                       in_degrees=True, rotational_mask=skel.rotational)
  scale_osim(model_path, skel.body_names, scales, paths['osim'], name=clip_id, mass=mass)
  markers = forward_kinematics(skel, coordinates,
                               np.broadcast_to(scales, coordinates.shape[:1] + scales.shape))
  opensim_io.write_trc(paths['trc'], times, list(skel.marker_names),
                       np.asarray(markers.markers, np.float64))
  return {k: str(v) for k, v in paths.items()}
