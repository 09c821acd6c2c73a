"""Subject-specific scaling of an OpenSim model with OpenSim's own ScaleTool.

    result = scale_model(static_markers, DEFAULT_MODEL_PATH, out_dir,
                         subject_mass=72.0, subject_height=1.68, name='S01')
    result.scaled_model_path      # the subject's .osim (scaled, markers placed)
    result.scale_factors          # (22, 3) relative to the generic model

The ScaleTool set-up is built in code and written next to the outputs
(`<name>_scale_setup.xml`), so the same scaling can be re-run in the OpenSim GUI
or with `opensim-cmd run-tool`. Its three steps are OpenSim's:

1. GenericModelMaker: loads the generic model.
2. ModelScaler ('measurements'): every body axis gets the factor of one
   measurement of `marker_setup.scaling_measurements()` (mean over its marker
   pairs of static-trial distance / generic-model distance in the default
   pose); masses are scaled to `subject_mass` preserving the mass distribution.
3. MarkerPlacer: inverse kinematics of the (averaged) static trial with the IK
   weights of `marker_setup`, then every model marker is moved onto its static
   trial position (when `marker_placement`), so that the residuals of a later
   IK reflect only the motion, not the subject's marker offsets.

The tool runs twice. The MarkerPlacer solves the static pose with OpenSim's
assembler at its default accuracy (1e-4), which stops ~0.5 mm (RMS) short of
the exact fit, and would then bake that error into the placed markers. So the
first pass only scales; the static pose is then solved accurately with
`opensim_ik.run_ik` (OpenSim's IK solver, accuracy 1e-8) on the scaled model and
written as `<name>_static_ik.mot`; the second pass (the set-up kept on disk)
scales again and gives the MarkerPlacer that pose as its coordinate file with
weight-1 coordinate tasks, which makes it converge to the exact optimum.

The applied factors are read back from the ScaleSet file that the ModelScaler
writes (`<name>_scale_set.xml`, 6 significant digits). `opensim` is imported
inside the functions.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

import jax
import numpy as np
import opensim as osim

from banet_jax import opensim_io
from banet_jax.skeleton import forward_kinematics, load_osim
from banet_jax.skeleton import models
from odah_tfds.alignment import marker_setup
from odah_tfds.alignment import opensim_ik

STATIC_FPS = 60.0  # frame rate written to the static .trc
NUM_STATIC_FRAMES = 5  # frames written when a single static pose is given
STATIC_IK_ACCURACY = 1e-8  # OpenSim IK accuracy of the static pose (one frame)
# Weight of the coordinate tasks that hold a known static pose during marker placement:
# large against the marker weights (<= 20, in m^2), so the pose stays within ~0.1 deg.
KNOWN_POSE_WEIGHT = 1e4


@dataclasses.dataclass(frozen=True)
class MeasurementValue:
  """One measurement of the scaling: subject and generic distances (m), factor."""

  subject_distance: float  # mean over the pairs, static trial
  model_distance: float  # mean over the pairs, generic model in its default pose
  factor: float  # what the ModelScaler applied (mean of the per-pair ratios)


@dataclasses.dataclass(frozen=True)
class ScaleResult:
  """What `scale_model` produced.

  Attributes:
    scaled_model_path: the subject model (.osim): scaled, markers placed when
      `marker_placement` was True.
    scale_factors: (B, 3) float64 x/y/z factors relative to the generic model,
      in `body_names` order (= `Skeleton.body_names` of the generic model).
    body_names: (B,) body names.
    measurements: {measurement name: MeasurementValue}.
    marker_residual_rms: RMS over the static-trial markers of the distance (m)
      between each marker of the scaled model (before marker placement) and the
      static trial at the solved static pose: how far the placement moved them,
      i.e. how much the subject's markers differ from the scaled generic ones.
    marker_residual_max: the largest of these distances (m).
    marker_residuals: {marker name: distance (m)}.
    static_coordinates: (C,) static pose (rad / m) in `coordinate_names` order
      (the MarkerPlacer's when markers were placed, else OpenSim IK's).
    coordinate_names: (C,) the model's coordinate names.
    setup_path: the ScaleTool set-up XML written next to the outputs.
    scaled_only_model_path: the model after the ModelScaler, before placement.
    scale_set_path: the ScaleSet file written by the ModelScaler.
    static_trc_path: the static trial given to the tool.
    seconds: wall time of the ScaleTool run.
  """

  scaled_model_path: str
  scale_factors: np.ndarray
  body_names: tuple[str, ...]
  measurements: dict[str, MeasurementValue]
  marker_residual_rms: float
  marker_residual_max: float
  marker_residuals: dict[str, float]
  static_coordinates: np.ndarray
  coordinate_names: tuple[str, ...]
  setup_path: str
  scaled_only_model_path: str
  scale_set_path: str
  static_trc_path: str
  seconds: float


def _normalise_static(static_markers, num_frames: int) -> tuple[list[str], np.ndarray]:
  """-> names (M,), positions (F, M, 3) float64."""
  if isinstance(static_markers, Mapping):
    names = [str(n) for n in static_markers]
    positions = np.stack([np.asarray(static_markers[n], np.float64) for n in names])
    if positions.shape != (len(names), 3):
      raise ValueError('static_markers as a dict must map each marker name to a (3,) '
                       f'position in metres; got stacked shape {positions.shape}')
    positions = np.broadcast_to(positions, (num_frames,) + positions.shape).copy()
  elif isinstance(static_markers, (tuple, list)) and len(static_markers) == 2:
    names = [str(n) for n in static_markers[0]]
    positions = np.asarray(static_markers[1], np.float64)
    if positions.ndim == 2:
      positions = np.broadcast_to(positions, (num_frames,) + positions.shape).copy()
    if positions.ndim != 3 or positions.shape[1:] != (len(names), 3):
      raise ValueError(f'static_markers positions must have shape (F, {len(names)}, 3) or '
                       f'({len(names)}, 3), got {positions.shape}')
  else:
    raise TypeError('static_markers must be a {name: (3,)} dict or a (names, (F, M, 3)) '
                    f'pair, got {type(static_markers).__name__}')
  if not np.all(np.isfinite(positions)):
    bad = sorted({names[m] for m in np.argwhere(~np.isfinite(positions))[:, 1]})
    raise ValueError(f'static_markers holds non-finite positions for {bad}')
  return names, positions


def _fmt(x: float) -> str:
  return repr(float(x))


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib) -> ET.Element:
  elem = ET.SubElement(parent, tag, attrib)
  if text is not None:
    elem.text = text
  return elem


def build_setup_xml(*, name: str, generic_model_file: str, static_trc_file: str,
                    time_range: tuple[float, float], subject_mass: float,
                    subject_height_m: float | None,
                    measurements: Sequence[marker_setup.Measurement],
                    ik_weights: Mapping[str, float], marker_placement: bool,
                    scaled_only_model_file: str, scale_set_file: str,
                    output_model_file: str, static_motion_file: str,
                    marker_set_file: str, static_coordinates_file: str | None = None,
                    coordinate_names: Sequence[str] = (),
                    coordinate_weight: float = 1.0) -> ET.ElementTree:
  """The ScaleTool set-up document (file names as given, relative to the set-up).

  `static_coordinates_file` (with `coordinate_names`): a .mot of the static pose
  that the MarkerPlacer tracks with coordinate tasks of `coordinate_weight` next
  to the marker tasks (see `scale_model` for why).
  """
  root = ET.Element('OpenSimDocument', Version='40000')
  tool = _sub(root, 'ScaleTool', name=name)
  _sub(tool, 'mass', _fmt(subject_mass))
  # The ScaleTool stores the height in millimetres (informational only).
  _sub(tool, 'height', _fmt(-1 if subject_height_m is None else 1000.0 * subject_height_m))
  _sub(tool, 'age', '-1')
  _sub(tool, 'notes', 'Written by odah_tfds.alignment.opensim_scaling (banet-jax).')
  maker = _sub(tool, 'GenericModelMaker')
  _sub(maker, 'model_file', generic_model_file)
  _sub(maker, 'marker_set_file', 'Unassigned')

  scaler = _sub(tool, 'ModelScaler')
  _sub(scaler, 'apply', 'true')
  _sub(scaler, 'scaling_order', ' measurements')
  mset = _sub(scaler, 'MeasurementSet')
  objects = _sub(mset, 'objects')
  for meas in measurements:
    m = _sub(objects, 'Measurement', name=meas.name)
    _sub(m, 'apply', 'true')
    pairs = _sub(_sub(m, 'MarkerPairSet'), 'objects')
    for a, b in meas.marker_pairs:
      _sub(_sub(pairs, 'MarkerPair'), 'markers', f' {a} {b}')
    scales = _sub(_sub(m, 'BodyScaleSet'), 'objects')
    for body, axes in meas.body_axes:
      _sub(_sub(scales, 'BodyScale', name=body), 'axes', ' ' + ' '.join(axes))
  _sub(mset, 'groups')
  _sub(_sub(scaler, 'ScaleSet'), 'objects')
  _sub(scaler, 'marker_file', static_trc_file)
  _sub(scaler, 'time_range', f' {_fmt(time_range[0])} {_fmt(time_range[1])}')
  _sub(scaler, 'preserve_mass_distribution', 'true')
  _sub(scaler, 'output_model_file', scaled_only_model_file)
  _sub(scaler, 'output_scale_file', scale_set_file)

  placer = _sub(tool, 'MarkerPlacer')
  _sub(placer, 'apply', 'true' if marker_placement else 'false')
  tasks = _sub(_sub(placer, 'IKTaskSet'), 'objects')
  for marker, weight in ik_weights.items():
    task = _sub(tasks, 'IKMarkerTask', name=marker)
    _sub(task, 'apply', 'true' if weight > 0 else 'false')
    _sub(task, 'weight', _fmt(weight))
  if static_coordinates_file:
    for coordinate in coordinate_names:
      task = _sub(tasks, 'IKCoordinateTask', name=coordinate)
      _sub(task, 'apply', 'true')
      _sub(task, 'weight', _fmt(coordinate_weight))
      _sub(task, 'value_type', 'from_file')
  _sub(placer, 'marker_file', static_trc_file)
  _sub(placer, 'coordinate_file', static_coordinates_file or 'Unassigned')
  _sub(placer, 'time_range', f' {_fmt(time_range[0])} {_fmt(time_range[1])}')
  _sub(placer, 'output_motion_file', static_motion_file if marker_placement else 'Unassigned')
  _sub(placer, 'output_model_file', output_model_file if marker_placement else 'Unassigned')
  _sub(placer, 'output_marker_file', marker_set_file if marker_placement else 'Unassigned')
  _sub(placer, 'max_marker_movement', '-1')
  ET.indent(root, space='\t')
  return ET.ElementTree(root)


def read_scale_set(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """{body name: (3,) factors} from a ScaleSet file written by OpenSim."""
  root = ET.parse(os.fspath(path)).getroot()
  out = {}
  for scale in root.iter('Scale'):
    segment = (scale.findtext('segment') or '').strip()
    values = (scale.findtext('scales') or '').split()
    apply = (scale.findtext('apply') or 'true').strip().lower() == 'true'
    if not segment or len(values) != 3:
      raise ValueError(f'{path}: malformed <Scale> entry (segment {segment!r}, scales {values})')
    out[segment] = np.array([float(v) for v in values]) if apply else np.ones(3)
  if not out:
    raise ValueError(f'{path}: no <Scale> entries; the ModelScaler did not write factors')
  return out


def scale_model(static_markers, generic_model_path: str | os.PathLike | None = None,
                out_dir: str | os.PathLike = '.', subject_mass: float = 75.0,
                subject_height: float | None = None, name: str = 'subject',
                marker_placement: bool = True, *,
                measurements: Sequence[marker_setup.Measurement] | None = None,
                weights: Mapping[str, float] | None = None,
                num_static_frames: int = NUM_STATIC_FRAMES,
                static_coordinates=None, clamp_coordinates: bool = True) -> ScaleResult:
  """Scales `generic_model_path` to the subject of a static trial with OpenSim's ScaleTool.

  Args:
    static_markers: the static trial in the model's ground frame (metres): a
      {marker name: (3,)} dict (written as `num_static_frames` identical frames),
      or (names (M,), positions (F, M, 3) or (M, 3)). The subject should stand in
      (or near) the generic model's default pose, since the generic distances of
      marker pairs that span a joint are taken in that pose.
    generic_model_path: the unscaled model; None: the project model.
    out_dir: folder for every file written (created if needed).
    subject_mass: kg; the scaled model's total mass.
    subject_height: m, informational (written to the set-up), or None.
    name: subject name, used as the model name and file prefix.
    marker_placement: move the model markers onto the static trial.
    measurements: the measurement set; None: `marker_setup.scaling_measurements()`.
    weights: {marker: IK weight} for the static-pose IK; None: `marker_setup`'s.
    num_static_frames: frames written when a single pose is given.
    static_coordinates: optional (C,) pose (rad / m, generic model order) the subject
      is known to hold in the static trial, e.g. the pose a synthetic body was
      driven with (its translational coordinates are ignored: the body's position
      comes from the static IK). The MarkerPlacer then keeps that pose (tasks of
      weight KNOWN_POSE_WEIGHT) and moves the markers onto the trial, so that the
      markers encode the body's own posture convention instead of whatever pose
      best fits the generic marker positions. None: the pose is estimated by IK.
    clamp_coordinates: mark the subject model's coordinates clamped (`clamp_model`),
      so that inverse kinematics on it -- OpenSim's, and `banet_jax.skeleton.ik`, which reads the
      flag -- keeps every joint angle inside its range.

  Returns:
    ScaleResult (file paths, factors, measurement values, residuals, static pose).
  """
  generic_model_path = os.path.abspath(models.model_path(generic_model_path))
  if not (np.isfinite(subject_mass) and subject_mass > 0):
    raise ValueError(f'subject_mass must be a positive number of kg, got {subject_mass}')
  if subject_height is not None and not (np.isfinite(subject_height) and 0.3 < subject_height < 3):
    raise ValueError(f'subject_height must be in metres (0.3-3), got {subject_height}')
  if not name or any(c in name for c in '/\\ \t'):
    raise ValueError(f'name must be a plain file-name prefix, got {name!r}')
  generic = load_osim(generic_model_path)
  names, positions = _normalise_static(static_markers, int(num_static_frames))
  measurements = tuple(marker_setup.scaling_measurements() if measurements is None
                       else measurements)
  marker_setup.check_measurements(measurements, generic.body_names, generic.marker_names)
  missing = sorted({m for meas in measurements for m in meas.marker_names} - set(names))
  if missing:
    raise ValueError(f'static_markers lacks markers that the measurements need: {missing}')
  in_model = [n for n in names if n in generic.marker_names]
  if weights is None:
    weights = marker_setup.ik_weights(in_model, default=1.0)  # 1: other models
  else:
    weights = {n: float(weights[n]) for n in in_model if n in weights}

  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  files = dict(trc=f'{name}_static.trc', setup=f'{name}_scale_setup.xml',
               scaled_only=f'{name}_scaled_only.osim', scale_set=f'{name}_scale_set.xml',
               model=f'{name}.osim', motion=f'{name}_static_pose.mot',
               markers=f'{name}_markers.xml', static_ik=f'{name}_static_ik.mot')
  for key in ('scaled_only', 'scale_set', 'model', 'motion', 'static_ik'):
    (out / files[key]).unlink(missing_ok=True)  # never read a stale output
  times = opensim_io.uniform_times(positions.shape[0], STATIC_FPS)
  opensim_io.write_trc(out / files['trc'], times, names, positions)
  setup = functools.partial(
      build_setup_xml, name=name, generic_model_file=generic_model_path,
      static_trc_file=files['trc'], time_range=(float(times[0]), float(times[-1])),
      subject_mass=subject_mass, subject_height_m=subject_height,
      measurements=measurements, ik_weights=weights,
      scaled_only_model_file=files['scaled_only'], scale_set_file=files['scale_set'],
      output_model_file=files['model'], static_motion_file=files['motion'],
      marker_set_file=files['markers'])
  setup_path = out / files['setup']

  start = time.perf_counter()
  # Pass 1: GenericModelMaker + ModelScaler (the MarkerPlacer is off).
  setup(marker_placement=False).write(setup_path, encoding='UTF-8', xml_declaration=True)
  _run_scale_tool(osim, setup_path, out, files, ('scaled_only', 'scale_set'))
  # The static pose, accurately: OpenSim IK on the scaled model. The MarkerPlacer's
  # own IK stops at the assembler's default accuracy (1e-4), which leaves the
  # markers ~0.5 mm (RMS) off an exact static fit; tracking this pose as a
  # coordinate task makes it converge to the true optimum.
  mean_static = positions.mean(0)
  static_ik = opensim_ik.run_ik(out / files['scaled_only'], names, mean_static[None],
                                STATIC_FPS, weights={n: weights.get(n, 0.0) for n in names},
                                accuracy=STATIC_IK_ACCURACY)
  static_q = static_ik.coordinates[0]
  coordinate_weight = 1.0
  if static_coordinates is not None:
    static_coordinates = np.asarray(static_coordinates, np.float64)
    if static_coordinates.shape != (generic.num_coordinates,):
      raise ValueError(f'static_coordinates must have shape ({generic.num_coordinates},) '
                       f'in the order of {generic_model_path}, got {static_coordinates.shape}')
    # Known joint angles. The position of the body in the room (translational
    # coordinates) then decides only where the model's skeleton sits in the trial:
    # it is the one that puts the model's joint centres on the trial's (see
    # `joint_centre_translation`), so that the model's bodies rotate about the
    # body's own joints.
    for k, n in enumerate(static_ik.coordinate_names):
      i = generic.coordinate_index(n)
      if not generic.translational[i]:
        static_q[k] = static_coordinates[i]
    static_q = joint_centre_translation(out / files['scaled_only'], static_ik.coordinate_names,
                                        static_q, dict(zip(names, mean_static)), weights)
    coordinate_weight = KNOWN_POSE_WEIGHT
  if marker_placement:
    scaled_only = load_osim(out / files['scaled_only'])
    free = [n for n, dep, locked in zip(scaled_only.coordinate_names, scaled_only.dependent,
                                        scaled_only.locked) if not (dep or locked)]
    # The MarkerPlacer splines the coordinate file (>= 6 rows) over the trial's times.
    rows = max(positions.shape[0], 6)
    opensim_io.write_mot(out / files['static_ik'], opensim_io.uniform_times(rows, STATIC_FPS),
                         static_ik.coordinate_names, np.tile(static_q, (rows, 1)),
                         in_degrees=True, rotational_mask=_rotational(scaled_only,
                                                                      static_ik.coordinate_names))
    # Pass 2 (the set-up kept on disk): scaling again, then marker placement.
    setup(marker_placement=True, static_coordinates_file=files['static_ik'],
          coordinate_names=free, coordinate_weight=coordinate_weight).write(setup_path, encoding='UTF-8', xml_declaration=True)
    _run_scale_tool(osim, setup_path, out, files, ('scaled_only', 'scale_set', 'model', 'motion'))
    placed = load_osim(out / files['model'])
    _, placed_names, placed_q = opensim_io.read_mot(out / files['motion'], rotational=placed)
    static_q = placed.coordinates_from_dict(dict(zip(placed_names, placed_q.mean(0))))
  if clamp_coordinates:
    clamp_model(out / files['model' if marker_placement else 'scaled_only'])
  seconds = time.perf_counter() - start

  factors_by_body = read_scale_set(out / files['scale_set'])
  scale_factors = np.ones((generic.num_bodies, 3))
  for i, body in enumerate(generic.body_names):
    if body in factors_by_body:
      scale_factors[i] = factors_by_body[body]

  # Measurement values: static-trial and generic-model distances of each pair.
  static_points = dict(zip(names, mean_static))
  generic_markers = np.asarray(forward_kinematics(generic, generic.default_coordinates).markers)
  model_points = dict(zip(generic.marker_names, generic_markers))
  factors = marker_setup.measurement_factors(measurements, static_points, model_points)
  values = {}
  for meas in measurements:
    subject_d = np.mean([np.linalg.norm(static_points[a] - static_points[b])
                         for a, b in meas.marker_pairs])
    model_d = np.mean([np.linalg.norm(model_points[a] - model_points[b])
                       for a, b in meas.marker_pairs])
    values[meas.name] = MeasurementValue(float(subject_d), float(model_d), factors[meas.name])

  # Residuals of the scaled (not yet placed) markers at the static pose.
  residuals = {n: float(e) for n, e in zip(names, static_ik.marker_errors[0]) if np.isfinite(e)}
  errors = np.array(list(residuals.values()))
  return ScaleResult(
      scaled_model_path=str(out / files['model' if marker_placement else 'scaled_only']),
      scale_factors=scale_factors,
      body_names=generic.body_names,
      measurements=values,
      marker_residual_rms=float(np.sqrt(np.mean(errors ** 2))),
      marker_residual_max=float(errors.max()),
      marker_residuals=residuals,
      static_coordinates=np.asarray(static_q, np.float64),
      coordinate_names=static_ik.coordinate_names,
      setup_path=str(setup_path),
      scaled_only_model_path=str(out / files['scaled_only']),
      scale_set_path=str(out / files['scale_set']),
      static_trc_path=str(out / files['trc']),
      seconds=seconds,
  )


def clamp_model(model_path) -> list[str]:
  """Marks the model's joint angles clamped (in place) and returns their names.

  Every rotational or coupled coordinate whose range is narrower than a full turn is
  clamped (in the project model: all but pelvis_rotation, which must be free to wrap
  at +-180 deg); translations are left free. OpenSim's IK then bounds them in its
  optimiser (it ignores ranges of unclamped coordinates), and `jax_ik` projects them.
  """
  path = os.fspath(model_path)
  model = osim.Model(path)
  coordinates = model.updCoordinateSet()
  clamped = []
  for k in range(coordinates.getSize()):
    coordinate = coordinates.get(k)
    translational = coordinate.getMotionType() == osim.Coordinate.Translational
    width = coordinate.getRangeMax() - coordinate.getRangeMin()
    if not translational and width < 2.0 * np.pi - 1e-9:
      coordinate.setDefaultClamped(True)
      clamped.append(coordinate.getName())
  model.finalizeConnections()
  model.printToXML(path)
  return clamped


def joint_centre_translation(model_path, coordinate_names: Sequence[str], q,
                             trial: Mapping[str, np.ndarray],
                             weights: Mapping[str, float]) -> np.ndarray:
  """`q` (C,) with its translational coordinates set to put the model's joint-centre
  markers (`marker_setup` class 'joint': HJC, KJC, AJC, SJC, EJC, WJC) on the trial's
  ones, in the weighted least-squares sense, the rest of the pose held.

  For a known pose the translations are the only unknowns, and the joint centres are
  the points the kinematics rotate about: a skeleton placed by all markers (soft-tissue
  landmarks included) can sit several cm away from the body's joints, and every later
  rotation then moves the model's segments on a different circle than the body's.
  Unchanged when the trial holds no joint-centre marker of the model.

  Args:
    model_path: the (scaled, not placed) model: its joint-centre markers sit on its
      joints, as in the generic project model.
    coordinate_names: (C,) names of the entries of q.
    q: (C,) the pose.
    trial: {marker name: (3,)} static trial (ground frame, m).
    weights: {marker name: IK weight}.
  """
  skel = load_osim(model_path)
  names = [n for n in skel.marker_names if n in trial and weights.get(n, 0.0) > 0
           and n in marker_setup.MARKER_CLASSES and marker_setup.marker_class(n) == 'joint']
  out = np.array(q, np.float64)
  if not names:
    return out
  order = [skel.coordinate_index(n) for n in coordinate_names]
  trans = [k for k, i in enumerate(order) if skel.translational[i]]
  full = np.array(skel.default_coordinates, np.float64)
  full[order] = out
  index = [skel.marker_index(n) for n in names]
  # Markers move linearly with the root's translations: one FK per translation.
  probes = np.repeat(full[None], len(trans) + 1, axis=0)
  for row, k in enumerate(trans):
    probes[row + 1, order[k]] += 1.0
  with jax.enable_x64(True):
    markers = np.asarray(forward_kinematics(skel, probes, enforce_couplers=True).markers,
                         np.float64)[:, index]
  jac = (markers[1:] - markers[0]).transpose(1, 2, 0).reshape(-1, len(trans))  # (3K, n)
  residual = (np.stack([trial[n] for n in names]) - markers[0]).reshape(-1)
  w = np.repeat(np.sqrt([weights[n] for n in names]), 3)
  step = np.linalg.lstsq(jac * w[:, None], residual * w, rcond=None)[0]
  out[trans] += step
  return out


def _rotational(skel, names: Sequence[str]) -> np.ndarray:
  lookup = dict(zip(skel.coordinate_names, skel.rotational))
  return np.array([bool(lookup.get(n, False)) for n in names])


def _run_scale_tool(osim, setup_path: pathlib.Path, out: pathlib.Path, files: dict[str, str],
                    expected: Sequence[str]) -> None:
  # Relative file names in the set-up resolve against its (absolute) folder.
  tool = osim.ScaleTool(str(setup_path.resolve()))
  ok = tool.run()
  for key in expected:
    if not (out / files[key]).is_file():
      raise RuntimeError(f'OpenSim ScaleTool ({setup_path}) did not write {files[key]} '
                         f'(run() returned {ok}); see the OpenSim log')
