"""ODAH part 1: synthetic subjects, their motions, and OpenSim ground truth for them.

Per subject (`make_subject`):
  1. sample a body (default: anny phenotypes) and pose it in the project model's
     default standing posture: a static trial of virtual markers;
  2. OpenSim `ScaleTool` on the project model (marker-pair measurements, then
     marker placement): a scaled `.osim` and the per-body scale factors (22, 3)
     relative to the generic model, which is what BANet predicts.
Per clip (`make_clip`, procedural; `make_amass_clip`, AMASS on SMPL-X):
  3. sample a motion (default: the procedural library) planted on the floor for
     the scaled skeleton, retarget it onto the body, pose the mesh (T frames)
     (`frames_from_motion`); or take a window of an AMASS sequence, resampled to the
     clip rate, and pose the SMPL-X subject with it natively (`amass_frames`);
  4. (`label_frames`, for any posed frames) inverse kinematics of the virtual markers
     on the scaled model (the batched JAX solver by default, OpenSim's
     `InverseKinematicsTool` as the reference), giving all coordinates per frame and
     per-marker residuals; the subject model's
     joint angles are clamped to their ranges, so both solvers keep every angle
     inside them;
  5. the skeleton layer's 44 BANet points (22 mass centres + 22 joint centres,
     generic model + scales) and the scaled model's markers per frame;
  6. quality gates: frames whose IK marker RMS exceeds `rms_gate_m` (2 cm, the
     predecessor D3KE's gate) are flagged; a clip with more than
     `max_flagged_fraction` of its frames flagged, or whose IK did not give
     finite coordinates, is reported and not written.

AMASS clips have no project-model coordinates of their own: their `ClipLabels.motion`
is a `Motion` of family 'amass' whose coordinates are the IK result (the same array as
`ClipLabels.coordinates`; params['coordinates_source'] == 'ik'), and whose params name
the source file (relative to the AMASS root), the window's first frame at the clip rate,
the file's frame rate and the placement applied (see `amass_frames`).

Nothing here imports TensorFlow: the renderer (next stage) runs in TF-free
processes and the TFDS builder calls this module through them.

World frame everywhere: the project model's ground (metres; x forward, y up,
z right; floor y = 0).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from banet_jax import opensim_io
from banet_jax.skeleton import forward_kinematics, load_osim
from banet_jax.skeleton.models import DEFAULT_MODEL_PATH
from odah_tfds import motions as motion_lib
from banet_jax.skeleton import ik as jax_ik
from odah_tfds.alignment import marker_setup, opensim_ik, opensim_scaling
from odah_tfds.body import base as body_base
from odah_tfds.body import smplx_body

# Body density (kg/m^3) used to turn the mesh volume into the subject's mass (whole-body
# density of adults is ~1.01-1.07 g/cm^3; Winter 2009). Mass only scales inertia.
BODY_DENSITY = 1040.0


@dataclasses.dataclass(frozen=True)
class LabelConfig:
  """What `make_subject` / `make_clip` produce; defaults are the `tiny`-style run."""

  fps: float = 60.0
  clip_frames: int = 64
  # None: the motion is sampled at the clip's length (ODAH 1.x). A number of frames: the
  # motion is sampled that long and a random window of `clip_frames` is the clip. The
  # families' repetitions last 2-5 s (a squat, a trunk bend) and start 0.1-0.6 s in, so
  # a 32-frame clip (0.53 s) sampled at its own length shows little beyond the start of
  # a repetition: on odah/lab 1.1.0 the forward and lateral trunk_flexion clips, sampled
  # for 20-50 deg of lumbar flexion and 16-24 deg of side bend, reach 4 deg of lumbar
  # extension and 2.8 deg of bending at most.
  motion_frames: int | None = None
  clips_per_subject: int = 2
  # Motion families to draw from (None: the 13 of ODAH 1, motions.ODAH_1_FAMILIES).
  families: tuple[str, ...] | None = None
  ik: str = 'jax'  # 'jax' (fast path), 'opensim' (reference) or 'both' (compare)
  rms_gate_m: float = 0.02
  max_flagged_fraction: float = 0.1
  static_frames: int = 10
  # OpenSim IK accuracy (ik='opensim' / 'both'): it stops where its cost is within
  # ~accuracy of the optimum, so flat directions of the objective stay off. On these
  # clips 1e-7 (its default) left the toes (one soft marker) 1.1 deg off, 1e-8 a humeral
  # rotation during an arm raise 1.3 deg off (cost 6e-5 above the optimum); 1e-9 is
  # within 0.15 deg, at ~1.5x the time of 1e-8 (~13 s per 64-frame clip here). The JAX
  # solver's labels are within 0.1 deg of the optimum.
  opensim_accuracy: float = 1e-9

  def __post_init__(self):
    if self.ik not in ('jax', 'opensim', 'both'):
      raise ValueError(f"ik must be 'jax', 'opensim' or 'both', got {self.ik!r}")
    if self.clip_frames < 2 or self.fps <= 0:
      raise ValueError(f'need clip_frames >= 2 and fps > 0, got {self.clip_frames}, {self.fps}')
    if self.motion_frames is not None and self.motion_frames < self.clip_frames:
      raise ValueError(f'motion_frames ({self.motion_frames}) must be at least clip_frames '
                       f'({self.clip_frames}), or None for motions of the clip\'s length')
    if not self.opensim_accuracy > 0:
      raise ValueError(f'opensim_accuracy must be > 0, got {self.opensim_accuracy}')


@dataclasses.dataclass
class SubjectLabels:
  """One subject: its body, the scaled model and the scale factors."""

  subject_id: str
  body: body_base.BodyModel
  shape: Any  # the backend's subject parameters (e.g. AnnySubject)
  mass: float
  stature: float
  scaling: opensim_scaling.ScaleResult
  static_markers: np.ndarray  # (M, 3) virtual markers of the static trial
  seconds: float


@dataclasses.dataclass
class ClipLabels:
  """One clip's ground truth (see `clip_record` for the stored form, one for every record)."""

  clip_id: str
  motion: motion_lib.Motion
  frames: body_base.BodyFrames
  coordinates: np.ndarray  # (T, C) IK result on the scaled model
  marker_errors: np.ndarray  # (T, M) per-marker IK distance (m)
  rms: np.ndarray  # (T,) weighted-free RMS over markers (m)
  flagged: np.ndarray  # (T,) bool, rms > rms_gate_m
  points: np.ndarray  # (T, 44, 3) BANet points
  model_markers: np.ndarray  # (T, M, 3) the scaled model's markers at `coordinates`
  outside_limits: int  # coordinate values outside the model's ranges
  timings: dict[str, float]
  reference: dict[str, Any] | None = None  # ik='both': OpenSim's result and the differences


class ClipRejected(RuntimeError):
  """A clip failed a quality gate; the message says which and by how much."""


def _mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
  """Signed volume of a closed triangle mesh (divergence theorem), m^3."""
  a, b, c = (vertices[faces[:, k]] for k in range(3))
  return float(abs(np.einsum('ij,ij->i', a, np.cross(b, c)).sum()) / 6.0)


def make_subject(body: body_base.BodyModel, subject_id: str, rng: np.random.Generator,
                 out_dir: pathlib.Path, config: LabelConfig,
                 generic_model: str = DEFAULT_MODEL_PATH, shape=None) -> SubjectLabels:
  """Sample a subject (unless `shape` is given) and scale the project model to it."""
  start = time.perf_counter()
  skel = load_osim(generic_model)
  shape = body.sample_subject(rng) if shape is None else shape
  static_q = np.tile(skel.default_coordinates, (config.static_frames, 1))
  frames = body.pose(shape, *body.retarget(shape, static_q))
  stature = float(frames.vertices[0, :, 1].max() - frames.vertices[0, :, 1].min())
  mass = BODY_DENSITY * _mesh_volume(frames.vertices[0].astype(np.float64), body.faces)
  out_dir.mkdir(parents=True, exist_ok=True)
  scaling = opensim_scaling.scale_model(
      (frames.marker_names, frames.markers.astype(np.float64)), generic_model, out_dir,
      subject_mass=mass, subject_height=stature, name=subject_id,
      # The body was driven with this pose: markers are placed relative to it, so IK
      # recovers the driving convention (see opensim_scaling.scale_model).
      static_coordinates=skel.default_coordinates)
  return SubjectLabels(subject_id=subject_id, body=body, shape=shape, mass=mass,
                       stature=stature, scaling=scaling,
                       static_markers=frames.markers[0].astype(np.float64),
                       seconds=time.perf_counter() - start)


def _floor_shift(frames: body_base.BodyFrames) -> body_base.BodyFrames:
  """Shift the clip vertically so that its lowest vertex over all frames is on the floor.

  The motion is planted with the scaled skeleton; the mesh's soles sit a few mm
  off that skeleton's, and a constant shift removes penetration without adding
  foot sliding."""
  dy = -float(frames.vertices[..., 1].min())
  shift = np.array([0.0, dy, 0.0], np.float32)
  root = None if frames.root_translation is None else frames.root_translation + shift
  return dataclasses.replace(frames, vertices=frames.vertices + shift,
                             markers=frames.markers + shift, root_translation=root)


def frames_from_motion(subject: SubjectLabels, motion: motion_lib.Motion
                       ) -> body_base.BodyFrames:
  """A project-coordinate motion retargeted onto the subject's body, posed and shifted
  onto the floor (the motion is planted for the scaled skeleton: translation scale 1)."""
  body = subject.body
  calibration = dataclasses.replace(body.calibration(subject.shape), translation_scale=1.0)
  poses, roots = body.retarget(subject.shape, motion.coordinates, calibration)
  return _floor_shift(body.pose(subject.shape, poses, roots))


def make_clip(subject: SubjectLabels, clip_id: str, family: str, rng: np.random.Generator,
              config: LabelConfig, generic_model: str = DEFAULT_MODEL_PATH) -> ClipLabels:
  """Motion -> mesh -> virtual markers -> IK -> labels. Raises ClipRejected on a failed gate."""
  timings = {}
  skel = load_osim(generic_model)
  scales = subject.scaling.scale_factors
  start = time.perf_counter()
  motion = motion_lib.sample_motion(family, rng, fps=config.fps,
                                    num_frames=config.motion_frames or config.clip_frames,
                                    skeleton=skel, scales=scales)
  if config.motion_frames is not None:
    first = int(rng.integers(config.motion_frames - config.clip_frames + 1))
    motion = motion.window(first, config.clip_frames)
  timings['motion'] = time.perf_counter() - start
  start = time.perf_counter()
  frames = frames_from_motion(subject, motion)
  timings['body'] = time.perf_counter() - start
  return label_frames(subject, clip_id, frames, config, motion=motion,
                      generic_model=generic_model, timings=timings)


def label_frames(subject: SubjectLabels, clip_id: str, frames: body_base.BodyFrames,
                 config: LabelConfig, motion: motion_lib.Motion | None = None,
                 family: str | None = None, params: dict | None = None,
                 generic_model: str = DEFAULT_MODEL_PATH,
                 timings: dict[str, float] | None = None) -> ClipLabels:
  """Labels of already-posed frames: IK -> quality gates -> BANet points -> ClipLabels.

  Args:
    subject: the subject the frames were posed for (its scaled model is fitted).
    clip_id: the clip's name.
    frames: T posed frames (world frame, on the floor) with the 63 virtual markers.
    config: fps, IK solver and gates.
    motion: the project-coordinate motion that drove the frames; None for a source
      without one (AMASS): a `Motion(family, config.fps, IK coordinates, params)` is
      made after IK (see the module docstring).
    family, params: that Motion's family (e.g. 'amass') and parameters; give them
      exactly when motion is None.
    generic_model: the generic project model (BANet points use it with the scales).
    timings: seconds per stage so far (this adds the IK's); None: a new dict.

  Returns:
    ClipLabels. Raises ClipRejected when IK is not finite or too many frames fail the
    marker-RMS gate.
  """
  if (motion is None) == (family is None):
    raise ValueError('give the motion that drove the frames, or (for a source without '
                     'project coordinates) its family and params')
  timings = {} if timings is None else timings
  skel = load_osim(generic_model)
  scales = subject.scaling.scale_factors
  scaled = load_osim(subject.scaling.scaled_model_path)
  names = list(frames.marker_names)
  targets = frames.markers.astype(np.float64)
  weights_map = marker_setup.ik_weights(names)
  weights = np.array([weights_map[n] for n in names])
  reference = None
  if config.ik in ('jax', 'both'):
    start = time.perf_counter()
    solution = jax_ik.solve_ik(scaled, targets, weights, marker_names=names, keyframe_stride=8)
    coords, errors = np.asarray(solution.coordinates, np.float64), np.asarray(
        solution.marker_errors, np.float64)
    timings['ik_jax'] = time.perf_counter() - start
    # The solver held clamped coordinates at their bounds in its own precision (float32
    # unless x64 is on): snap them onto the float64 ranges.
    lo, hi = scaled.coordinate_ranges.T
    coords = np.where(scaled.clamped, np.clip(coords, lo, hi), coords)
  if config.ik in ('opensim', 'both'):
    start = time.perf_counter()
    result = opensim_ik.run_ik(subject.scaling.scaled_model_path, names, targets, config.fps,
                               weights_map, accuracy=config.opensim_accuracy)
    timings['ik_opensim'] = time.perf_counter() - start
    if config.ik == 'opensim':
      coords, errors = result.coordinates, result.marker_errors
    else:
      diff = coords - result.coordinates
      trans = scaled.translational
      angle_diff = np.abs(np.angle(np.exp(1j * diff[:, ~trans])))  # 2 pi apart is equal
      reference = {
          'opensim_coordinates': result.coordinates,
          'opensim_rms': result.rms,
          'max_rotation_difference_deg': float(np.degrees(angle_diff.max())),
          'max_translation_difference_m': float(np.abs(diff[:, trans]).max()) if trans.any() else 0.0,
          'rms_difference_m': float(np.abs(
              np.sqrt(np.nanmean(errors ** 2, axis=1)) - result.rms).max()),
      }
  if not np.all(np.isfinite(coords)):
    raise ClipRejected(f'{clip_id}: IK gave non-finite coordinates')
  if motion is None:
    motion = motion_lib.Motion(family=family, fps=config.fps, coordinates=coords,
                               coordinate_names=tuple(scaled.coordinate_names),
                               params={**(params or {}), 'coordinates_source': 'ik'})
  rms = np.sqrt(np.nanmean(errors ** 2, axis=1))
  flagged = rms > config.rms_gate_m
  if flagged.mean() > config.max_flagged_fraction:
    raise ClipRejected(
        f'{clip_id}: {int(flagged.sum())}/{len(rms)} frames above the {config.rms_gate_m * 100:.1f}'
        f' cm IK marker-RMS gate (max {rms.max() * 100:.2f} cm)')
  lo, hi = scaled.coordinate_ranges.T
  outside = int(np.sum((coords < lo - 1e-9) | (coords > hi + 1e-9)))
  fk_generic = forward_kinematics(skel, coords, np.broadcast_to(scales, coords.shape[:1] + scales.shape))
  points = np.concatenate([np.asarray(fk_generic.centers_of_mass),
                           np.asarray(fk_generic.joint_centers)], axis=1)
  model_markers = np.asarray(forward_kinematics(scaled, coords).markers)
  return ClipLabels(clip_id=clip_id, motion=motion, frames=frames, coordinates=coords,
                    marker_errors=errors, rms=rms, flagged=flagged, points=points,
                    model_markers=model_markers, outside_limits=outside, timings=timings,
                    reference=reference)


def amass_frames(subject: SubjectLabels, clip, start: int, num_frames: int
                 ) -> tuple[body_base.BodyFrames, dict[str, Any]]:
  """Frames start .. start + num_frames - 1 of an AMASS clip posed on a SMPL-X subject.

  The poses are SMPL-X's own (`SmplxPose.from_amass`, the z-up mocap frame); only the
  placement changes: the window is turned about the vertical so that the pelvis faces
  +x in its first frame, moved so that the pelvis starts above the world origin, and
  shifted vertically so that its lowest vertex is on the floor -- as the procedural
  motions start (pelvis_tx/tz and pelvis_rotation then stay near their defaults, far
  from their +-10 m / +-180 deg limits).

  Args:
    subject: a subject of the SMPL-X backend.
    clip: an `AmassClip` at the label rate.
    start, num_frames: the window, in frames of `clip`.

  Returns:
    (BodyFrames, placement dict: 'heading_deg' = the turn applied, 'origin_m' = the
    first frame's native pelvis position (world x, z) that was moved to the origin).
  """
  body = subject.body
  if not isinstance(body, smplx_body.SmplxBody):
    raise TypeError(f'AMASS clips drive the SMPL-X backend, not {body.name!r}')
  if not 0 <= start <= clip.num_frames - num_frames:
    raise ValueError(f'window {start}..{start + num_frames - 1} is outside the clip\'s '
                     f'{clip.num_frames} frames')
  window = slice(start, start + num_frames)
  pose = smplx_body.SmplxPose.from_amass(clip.poses[window], clip.transl[window], up_axis='z')
  to_world = smplx_body.UP_AXIS_TO_WORLD['z']
  roots = body.native_root_translation(subject.shape, pose)  # (T, 3) world
  root_rotation = Rotation.from_rotvec(pose.global_orient[0]).as_matrix()
  forward = to_world @ root_rotation @ np.array([0.0, 0.0, 1.0])  # the body faces native +z
  heading = float(np.arctan2(forward[2], forward[0]))
  turn = Rotation.from_rotvec([0.0, heading, 0.0]).as_matrix()  # about world y: forward -> +x
  origin = np.array([roots[0, 0], 0.0, roots[0, 2]])
  roots = (roots - origin) @ turn.T
  # The same turn about the mocap frame's vertical, applied to the root orientation.
  turn_native = to_world.T @ turn @ to_world
  orient = Rotation.from_matrix(
      turn_native @ Rotation.from_rotvec(pose.global_orient).as_matrix()).as_rotvec()
  pelvis = body.native_root_translation(subject.shape, dataclasses.replace(
      pose, transl=np.zeros_like(pose.transl)))
  pose = dataclasses.replace(pose, global_orient=orient, transl=(roots - pelvis) @ to_world)
  frames = _floor_shift(body.pose(subject.shape, pose, roots))
  return frames, {'heading_deg': float(np.degrees(heading)),
                  'origin_m': [float(origin[0]), float(origin[2])]}


def make_amass_clip(subject: SubjectLabels, clip_id: str, source, rng: np.random.Generator,
                    config: LabelConfig, amass_root=None, start_frame: int | None = None,
                    generic_model: str = DEFAULT_MODEL_PATH) -> ClipLabels:
  """An AMASS window on a SMPL-X subject -> virtual markers -> IK -> labels.

  Args:
    subject: a subject of the SMPL-X backend (e.g. `make_subject(..., shape=` the
      sequence's own `SmplxSubject`)).
    clip_id: the clip's name.
    source: path of an AMASS SMPL-X `*_stageii.npz`, or an `AmassClip` at `config.fps`.
    rng: draws the window's first frame (uniform over the windows that fit) unless
      `start_frame` is given.
    config: `clip_frames` frames at `fps` (the file is resampled to it).
    amass_root: the AMASS folder; the record names the file relative to it (else by
      its file name).
    start_frame: first frame of the window at `config.fps`.

  Returns:
    ClipLabels (motion family 'amass', see the module docstring).

  Raises:
    ClipRejected: the sequence is shorter than `clip_frames` at `fps`, or a gate failed.
    motions.ManualFilesError: the file is missing or not an AMASS SMPL-X file.
  """
  timings = {}
  start = time.perf_counter()
  if isinstance(source, motion_lib.AmassClip):
    clip = source
    if not np.isclose(clip.fps, config.fps):
      raise ValueError(f'the AmassClip is at {clip.fps} fps, the labels at {config.fps}')
  else:
    clip = motion_lib.load_amass_clip(source, fps=config.fps)
  name = pathlib.Path(clip.source)
  if amass_root is not None:
    name = name.resolve().relative_to(pathlib.Path(amass_root).resolve())
  name = name.as_posix() if amass_root is not None else name.name
  if clip.num_frames < config.clip_frames:
    raise ClipRejected(f'{clip_id}: {name} has {clip.num_frames} frames at {config.fps:g} fps, '
                       f'fewer than the {config.clip_frames} of a clip')
  first = (int(rng.integers(clip.num_frames - config.clip_frames + 1)) if start_frame is None
           else int(start_frame))
  timings['motion'] = time.perf_counter() - start
  start = time.perf_counter()
  frames, placement = amass_frames(subject, clip, first, config.clip_frames)
  timings['body'] = time.perf_counter() - start
  params = {'source': name, 'start_frame': first, 'fps': float(config.fps),
            'source_fps': float(clip.source_fps), 'num_frames': config.clip_frames,
            'gender': clip.gender, **placement}
  return label_frames(subject, clip_id, frames, config, family='amass', params=params,
                      generic_model=generic_model, timings=timings)


def clip_sources(sources, rng: np.random.Generator, count: int) -> list:
  """`count` clip sources (family names or AMASS files) cycling through `sources` from a
  random start (one draw of `rng`), so that a subject's clips differ."""
  start = int(rng.integers(len(sources)))
  return [sources[(start + k) % len(sources)] for k in range(count)]


def source_family(source, amass_root=None) -> str:
  """The motion family of a clip source: 'amass' for AMASS files, else the family name."""
  return 'amass' if amass_root is not None else source


def make_source_clip(subject: SubjectLabels, clip_id: str, source, rng: np.random.Generator,
                     config: LabelConfig, amass_root=None) -> ClipLabels:
  """`make_clip` for a procedural family name; `make_amass_clip` for an AMASS file when
  `amass_root` (the AMASS folder) is given."""
  if amass_root is not None:
    return make_amass_clip(subject, clip_id, source, rng, config, amass_root=amass_root)
  return make_clip(subject, clip_id, source, rng, config)


def json_text(value) -> str:
  """The JSON of a record's `*_json` fields: sorted keys, arrays as lists."""
  return json.dumps(value, sort_keys=True, default=lambda v: np.asarray(v).tolist())


def clip_record(subject: SubjectLabels, clip: ClipLabels) -> dict[str, Any]:
  """A clip's labels as every stored record holds them: `odah_tfds.schema`'s names, dtypes
  and encodings (strings as str, JSON through `json_text`, arrays float32).

  One format for one clip: the ODAH example (`generate`) is this record plus its
  appearance and rendered views, and `make_subjects`' `<clip>.npz` is this record plus
  `clip_extras`. Motion timings are left out: they vary run to run, records must not
  (same seed, identical record).
  """
  skel = load_osim(subject.scaling.scaled_model_path)  # parsed once per subject (cached)
  shape = subject.shape
  shape_dict = dataclasses.asdict(shape) if dataclasses.is_dataclass(shape) else dict(shape)
  params = {k: v for k, v in clip.motion.params.items() if not k.endswith('seconds')}
  return {
      'clip_id': clip.clip_id,
      'subject_id': subject.subject_id,
      'body_backend': subject.body.name,
      'body_shape_json': json_text(shape_dict),
      'stature': np.float32(subject.stature),
      'mass': np.float32(subject.mass),
      'motion_family': clip.motion.family,
      'motion_params_json': json_text(params),
      'fps': np.float32(clip.motion.fps),
      'coordinate_names': np.array(skel.coordinate_names),
      'coordinates': clip.coordinates.astype(np.float32),
      'body_names': np.array(skel.body_names),
      'scales': np.asarray(subject.scaling.scale_factors, np.float32),
      'points': clip.points.astype(np.float32),
      'marker_names': np.array(clip.frames.marker_names),
      'markers': clip.frames.markers.astype(np.float32),
      'ik_marker_errors': clip.marker_errors.astype(np.float32),
      'ik_rms': clip.rms.astype(np.float32),
      'ik_flagged': np.asarray(clip.flagged, bool),
  }


def clip_extras(subject: SubjectLabels, clip: ClipLabels) -> dict[str, np.ndarray]:
  """What `<clip>.npz` holds beyond `clip_record`: the mesh, times, the driving motion,
  the scaled model, point names, the model's markers at the IK solution and the body
  model's native poses (`native_*`)."""
  skel = load_osim(subject.scaling.scaled_model_path)
  frames = clip.frames
  native = frames.native_poses
  native_dict = (dataclasses.asdict(native) if dataclasses.is_dataclass(native)
                 else {'native_poses': native})
  extras = {
      'faces': np.asarray(frames.faces, np.int32),
      'root_translation': np.asarray(frames.root_translation, np.float32),
      'times': np.arange(len(clip.coordinates)) / clip.motion.fps,
      'motion_coordinates': np.asarray(clip.motion.coordinates),
      'scaled_model_osim': np.array(pathlib.Path(subject.scaling.scaled_model_path).read_text()),
      'point_names': np.array([f'com_{b}' for b in skel.body_names]
                              + [f'joint_{j}' for j in skel.joint_names]),
      'model_markers': clip.model_markers.astype(np.float32),
  }
  for key, value in native_dict.items():
    if isinstance(value, np.ndarray):
      extras[f'native_{key}'] = value.astype(np.float32)
  return extras


def write_clip_files(subject: SubjectLabels, clip: ClipLabels, out_dir: pathlib.Path) -> dict:
  """Write `<clip>.npz` (the record), `<clip>.mot` (IK coordinates, degrees) and
  `<clip>.trc` (virtual markers); returns their paths."""
  out_dir.mkdir(parents=True, exist_ok=True)
  skel = load_osim(subject.scaling.scaled_model_path)
  times = np.arange(len(clip.coordinates)) / clip.motion.fps
  paths = {'npz': out_dir / f'{clip.clip_id}.npz', 'mot': out_dir / f'{clip.clip_id}.mot',
           'trc': out_dir / f'{clip.clip_id}.trc'}
  tmp = paths['npz'].with_suffix('.tmp.npz')
  np.savez_compressed(tmp, **clip_record(subject, clip), **clip_extras(subject, clip))
  tmp.replace(paths['npz'])  # never leave a half-written record behind
  opensim_io.write_mot(paths['mot'], times, skel.coordinate_names, clip.coordinates,
                       in_degrees=True, rotational_mask=skel.rotational)
  opensim_io.write_trc(paths['trc'], times, list(clip.frames.marker_names),
                       clip.frames.markers.astype(np.float64))
  return {k: str(v) for k, v in paths.items()}
