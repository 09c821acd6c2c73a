"""Two-view camera rigs for ODAH, and their conversion to pyrender.

Conventions (`banet_jax.geometry`): world = OpenSim ground (metres, x forward, y up,
z right, floor y = 0); `x_cam = R @ X + t`, the camera looks along its +z axis, image
x right and y down (OpenCV); integer pixel coordinates are pixel centres.

A rig is two cameras aimed at a `target` point (the centre of the person's motion):
view 0 at a random azimuth ("yaw") around it, view 1 about 90 degrees away, like the
front and side cameras of the BANet data. Yaw 0 puts the camera on the +x side of the
target (in front of a subject facing +x, as clips start), yaw 90 on the +z side (the
subject's right). The distance is chosen from the field of view so that a sphere of
diameter `extent_m` around the target is inside the image (`clip_target_and_extent`
gives the smallest such sphere for a clip), then multiplied by a random factor >= 1.

`RIGS['lab']` draws rigs like real motion labs instead (the Pose2Sim demo's four cameras
stand 2.6-4.1 m from the subject, 1.7-2.1 m high, pitched 18-25 degrees down, pairs 52-173
degrees apart): the distance is drawn (2-8 m) and the field of view follows from it, so
near cameras see the person in strong perspective from above and far ones almost
orthographically; the pair angle is drawn from 40-120 degrees. Frame shape and lens
distortion are not drawn: BANet sees square crops that the real-capture front end cuts
through the lens model (`banet_jax.crops.undistorted_square_crop`), so both are undone
before the network. Distributions: `RigConfig`, `RIGS` and README.md.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from banet_jax import geometry
from odah_tfds.render import _gl

# Clip planes of the pyrender camera (metres). Rigs put the person 1-20 m away; a
# 24-bit depth buffer resolves ~1 mm there with these planes.
ZNEAR = 0.05
ZFAR = 100.0


@dataclasses.dataclass(frozen=True)
class RigConfig:
  """Distributions of the two-view rig (angles in degrees, lengths in metres).

  Every range is sampled uniformly.

  Attributes:
    yaw_range: azimuth of view 0 around the target (0 = on the +x side).
    side_angle: nominal azimuth difference between views 1 and 0 (its sign is random).
    side_jitter: view 1's azimuth deviates from the nominal by U(-side_jitter, +side_jitter).
    height_range: camera height above the floor.
    fov_range: horizontal field of view (square pixels, principal point at the centre).
    distance_factor_range: camera distance / the smallest distance at which the
      target sphere fits the image (1 = the sphere touches the image's inscribed circle).
    pitch_jitter: the optical axis is tilted by U(-p, p) from the target (about the
      camera x axis); the distance accounts for it.
    roll_jitter: rotation about the optical axis, U(-r, r).
    side_angle_range: when set, the azimuth difference is U(low, high) (sign random)
      instead of side_angle +- side_jitter.
    distance_range: when set, the camera distance (metres) is U(low, high) and the field
      of view follows from it (the target sphere fills 1 / distance factor of the image's
      inscribed circle); fov_range is then unused.
  """

  yaw_range: tuple[float, float] = (0.0, 360.0)
  side_angle: float = 90.0
  side_jitter: float = 15.0
  height_range: tuple[float, float] = (0.5, 2.2)
  fov_range: tuple[float, float] = (35.0, 65.0)
  distance_factor_range: tuple[float, float] = (1.05, 1.5)
  pitch_jitter: float = 3.0
  roll_jitter: float = 3.0
  side_angle_range: tuple[float, float] | None = None
  distance_range: tuple[float, float] | None = None

  def __post_init__(self):
    for name in ('yaw_range', 'height_range', 'fov_range', 'distance_factor_range',
                 'side_angle_range', 'distance_range'):
      if getattr(self, name) is None:  # the two optional ranges
        continue
      lo, hi = getattr(self, name)
      if not lo <= hi:
        raise ValueError(f'RigConfig.{name} must be (low, high) with low <= high, got {(lo, hi)}')
    if self.side_angle_range is not None and not (0.0 <= self.side_angle_range[0]
                                                  and self.side_angle_range[1] <= 180.0):
      raise ValueError('RigConfig.side_angle_range must lie in [0, 180] degrees, got '
                       f'{self.side_angle_range}')
    if self.distance_range is not None and not self.distance_range[0] > 0.0:
      raise ValueError(f'RigConfig.distance_range must be > 0 m, got {self.distance_range}')
    if not (0.0 < self.fov_range[0] and self.fov_range[1] < 170.0):
      raise ValueError(f'RigConfig.fov_range must lie in (0, 170) degrees, got {self.fov_range}')
    if self.distance_factor_range[0] < 1.0:
      raise ValueError('RigConfig.distance_factor_range must start at >= 1 (smaller distances '
                       f'cut the person), got {self.distance_factor_range}')
    if self.height_range[0] < 0.0:
      raise ValueError(f'RigConfig.height_range must be >= 0 m, got {self.height_range}')
    for name in ('side_jitter', 'pitch_jitter', 'roll_jitter'):
      if getattr(self, name) < 0:
        raise ValueError(f'RigConfig.{name} must be >= 0, got {getattr(self, name)}')


# Named rig distributions (`GenerationConfig.rig`). 'default' is the BANet-like rig every
# ODAH config used before 'lab' (90 +- 15 degrees, the person filling the frame).
_LAB_RIG = RigConfig(side_angle_range=(40.0, 120.0), height_range=(0.5, 3.0),
                     distance_range=(2.0, 8.0), distance_factor_range=(1.05, 1.4),
                     pitch_jitter=4.0, roll_jitter=3.0)

RIGS: dict[str, RigConfig] = {
    'default': RigConfig(),
    # Real motion labs: see the module docstring. Heights up to 3 m (wall-mounted
    # cameras); pitch and roll jitter keep the person off the image centre a little, as
    # a real operator aims.
    'lab': _LAB_RIG,
    # 'lab' with every camera high and close, as the Pose2Sim demo's (1.7-2.1 m high,
    # 2.8-4.3 m from the person's hips at the first frame, 11-23 degrees above them): of
    # odah/lab 1.5.0's training pairs only 3.8 % have both cameras 15+ degrees above the
    # body centre and within 4.5 m. No dataset config uses it;
    # benchmarks/rig_sensitivity.py re-renders test clips with it.
    'mounted': dataclasses.replace(_LAB_RIG, height_range=(1.7, 2.2), distance_range=(2.5, 3.5)),
    # 'lab' with each camera rolled by U(-30, 30) degrees about its optical axis: the demo's
    # cam04 is rolled by 26 degrees and cam01 by 13 (the world vertical's tilt in the image);
    # 'lab' rolls by at most 3. No dataset config uses it (benchmarks/rig_sensitivity.py).
    'rolled': dataclasses.replace(_LAB_RIG, roll_jitter=30.0),
}


def _check_image_size(image_size) -> tuple[int, int]:
  try:
    width, height = (int(s) for s in image_size)
  except (TypeError, ValueError):
    raise ValueError(f'image_size must be (width, height), got {image_size!r}') from None
  if width < 1 or height < 1:
    raise ValueError(f'image_size must be positive (width, height), got {image_size!r}')
  return width, height


def intrinsics(fov_x_deg: float, image_size) -> np.ndarray:
  """(3, 3) float64 K with horizontal field of view `fov_x_deg`, square pixels and the
  principal point at the image centre ((W - 1) / 2, (H - 1) / 2) (pixel centres)."""
  width, height = _check_image_size(image_size)
  f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2.0)
  return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def look_at(center, target, roll_deg: float = 0.0, pitch_deg: float = 0.0
            ) -> tuple[np.ndarray, np.ndarray]:
  """World-to-camera (R (3, 3), t (3,)) of a camera at `center` aimed at `target`.

  Image x runs horizontally (no roll), y down; then the camera is tilted by `pitch_deg`
  about its x axis (positive: the optical axis moves up) and rolled by `roll_deg` about
  its optical axis.
  """
  center = np.asarray(center, np.float64)
  rot, _ = geometry.look_at(center, target)
  p, r = math.radians(pitch_deg), math.radians(roll_deg)
  # Tilting the axis up is a rotation about camera x by -p (y points down).
  pitch = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(p), math.sin(p)],
                    [0.0, -math.sin(p), math.cos(p)]])
  roll = np.array([[math.cos(r), -math.sin(r), 0.0], [math.sin(r), math.cos(r), 0.0],
                   [0.0, 0.0, 1.0]])
  rot = roll @ pitch @ rot
  return rot, -rot @ center


def clip_target_and_extent(vertices) -> tuple[np.ndarray, float]:
  """Aim point and extent of a clip: the centre of the bounding box of all vertices
  (T, V, 3) (or (V, 3)) and the diameter of the sphere around it that holds them all.

  Returns: target (3,) float64 metres, extent_m float.
  """
  v = np.asarray(vertices, np.float64).reshape(-1, 3)
  if v.size == 0 or not np.all(np.isfinite(v)):
    raise ValueError('clip_target_and_extent needs finite vertices of shape (..., 3)')
  target = 0.5 * (v.min(axis=0) + v.max(axis=0))
  return target, 2.0 * float(np.linalg.norm(v - target, axis=1).max())


def sample_rig(rng: np.random.Generator, target, extent_m: float, image_size,
               config: RigConfig = RigConfig()) -> tuple[list[geometry.Camera], dict]:
  """Samples the two cameras of a clip.

  Args:
    rng: numpy Generator (consumed deterministically).
    target: (3,) world point the cameras aim at (metres), e.g. `clip_target_and_extent`.
    extent_m: diameter of a sphere around `target` holding the whole person over the
      clip; every point of it projects inside both images.
    image_size: (width, height) in pixels.
    config: the distributions.

  Returns:
    ([Camera(K, R, t)] * 2, float64 arrays), and a JSON-able dict of the sampled
    parameters (per view: yaw, height, fov, distance, distance factor, pitch, roll).
  """
  if not isinstance(rng, np.random.Generator):
    raise TypeError(f'rng must be a numpy Generator, got {type(rng).__name__}')
  width, height = _check_image_size(image_size)
  target = np.asarray(target, np.float64)
  if target.shape != (3,) or not np.all(np.isfinite(target)):
    raise ValueError(f'target must be a finite (3,) world point, got {target!r}')
  if not extent_m > 0:
    raise ValueError(f'extent_m must be > 0 metres, got {extent_m}')
  radius = 0.5 * float(extent_m)
  yaw0 = float(rng.uniform(*config.yaw_range))
  sign = 1.0 if rng.random() < 0.5 else -1.0
  if config.side_angle_range is None:
    side = config.side_angle + float(rng.uniform(-config.side_jitter, config.side_jitter))
  else:
    side = float(rng.uniform(*config.side_angle_range))
  yaw1 = yaw0 + sign * side
  cameras, views = [], []
  for yaw in (yaw0, yaw1):
    if config.distance_range is None:
      fov_x = float(rng.uniform(*config.fov_range))
      k = intrinsics(fov_x, (width, height))
      half_fov = math.atan(min(k[0, 2] + 0.5, k[1, 2] + 0.5) / k[0, 0])  # inscribed circle
      pitch = float(rng.uniform(-config.pitch_jitter, config.pitch_jitter))
      roll = float(rng.uniform(-config.roll_jitter, config.roll_jitter))
      usable = half_fov - math.radians(abs(pitch))
      if usable <= math.radians(1.0):
        raise ValueError(f'field of view {fov_x:.1f} deg leaves no room for a pitch jitter of '
                         f'{config.pitch_jitter} deg')
      factor = float(rng.uniform(*config.distance_factor_range))
      distance = factor * radius / math.sin(usable)
    else:
      # Distance first; the lens is the one that makes the sphere fill 1 / factor of the
      # inscribed circle (plus the pitch). A sphere reaching the camera is pushed away.
      distance = float(rng.uniform(*config.distance_range))
      pitch = float(rng.uniform(-config.pitch_jitter, config.pitch_jitter))
      roll = float(rng.uniform(-config.roll_jitter, config.roll_jitter))
      factor = float(rng.uniform(*config.distance_factor_range))
      distance = max(distance, 1.05 * factor * radius)
      half_fov = math.asin(factor * radius / distance) + math.radians(abs(pitch))
      # The inscribed circle's half-angle is the short side's; convert to the horizontal.
      f = (min(width, height) / 2.0) / math.tan(half_fov)
      fov_x = math.degrees(2.0 * math.atan(0.5 * width / f))
      if not fov_x < 170.0:
        raise ValueError(f'a {distance:.2f} m camera needs a {fov_x:.0f} deg lens for a '
                         f'{extent_m:.2f} m clip; raise RigConfig.distance_range')
      k = intrinsics(fov_x, (width, height))
    cam_height = float(rng.uniform(*config.height_range))
    # A camera far above or below the target would look nearly straight down or up;
    # keep the elevation within 60 degrees by limiting the height difference.
    dy = float(np.clip(cam_height - target[1], -distance * math.sin(math.radians(60)),
                       distance * math.sin(math.radians(60))))
    horizontal = math.sqrt(distance ** 2 - dy ** 2)
    a = math.radians(yaw)
    center = target + np.array([horizontal * math.cos(a), dy, horizontal * math.sin(a)])
    rot, t = look_at(center, target, roll_deg=roll, pitch_deg=pitch)
    cameras.append(geometry.Camera(K=k, R=rot, t=t))
    views.append({'yaw_deg': yaw % 360.0, 'height_m': float(center[1]), 'fov_x_deg': fov_x,
                  'distance_m': distance, 'distance_factor': factor, 'pitch_deg': pitch,
                  'roll_deg': roll})
  params = {'target': target.tolist(), 'extent_m': float(extent_m),
            'image_size': [width, height], 'views': views}
  return cameras, params


def optical_axis(camera: geometry.Camera) -> np.ndarray:
  """(3,) unit viewing direction of a camera in the world (its +z axis)."""
  return np.asarray(camera.R, np.float64)[2]


def ground_angle_deg(camera_a: geometry.Camera, camera_b: geometry.Camera) -> float:
  """Angle (degrees, in [0, 180]) between two optical axes projected on the ground."""
  a, b = optical_axis(camera_a)[[0, 2]], optical_axis(camera_b)[[0, 2]]
  cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
  return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def visible_fraction(vertices, camera: geometry.Camera, image_size) -> float:
  """Fraction of points (..., 3) in front of the camera and inside the image.

  Inside = within the image's pixel area [-0.5, W - 0.5] x [-0.5, H - 0.5].
  """
  width, height = _check_image_size(image_size)
  v = np.asarray(vertices, np.float64).reshape(-1, 3)
  if v.size == 0:
    raise ValueError('visible_fraction needs at least one point')
  z = geometry.to_camera(v, np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64))
  in_front = z[:, 2] > 1e-9
  px = geometry.project(v[in_front], np.asarray(camera.K, np.float64),
                        np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64))
  inside = ((px[:, 0] >= -0.5) & (px[:, 0] <= width - 0.5) & (px[:, 1] >= -0.5)
            & (px[:, 1] <= height - 0.5))
  return float(inside.sum()) / len(v)


# OpenCV camera axes (x right, y down, z forward) -> OpenGL camera axes (x right, y up,
# z backward): flip y and z.
_CV_TO_GL = np.diag([1.0, -1.0, -1.0])


def pyrender_pose(camera: geometry.Camera) -> np.ndarray:
  """(4, 4) float64 camera-to-world pose of the pyrender (OpenGL) camera of `camera`."""
  rot = np.asarray(camera.R, np.float64)
  t = np.asarray(camera.t, np.float64)
  pose = np.eye(4)
  pose[:3, :3] = rot.T @ _CV_TO_GL
  pose[:3, 3] = -rot.T @ t
  return pose


def camera_from_pyrender_pose(pose, K) -> geometry.Camera:
  """Inverse of `pyrender_pose`: the OpenCV Camera (float64) for a pyrender pose (4, 4)."""
  pose = np.asarray(pose, np.float64)
  rot = (pose[:3, :3] @ _CV_TO_GL).T
  return geometry.Camera(K=np.asarray(K, np.float64), R=rot, t=-rot @ pose[:3, 3])


def pyrender_intrinsics(K, image_size, znear: float = ZNEAR, zfar: float = ZFAR):
  """`pyrender.IntrinsicsCamera` that renders pixel (i, j) where `K` projects to (i, j).

  OpenGL samples pixel i at window coordinate i + 0.5 while OpenCV's pixel i is centred
  at i, so the GL principal point is K's plus half a pixel. K must have no skew.
  """
  width, height = _check_image_size(image_size)
  k = np.asarray(K, np.float64)
  if k.shape != (3, 3) or abs(k[0, 1]) > 1e-9 or np.any(k[2] != [0.0, 0.0, 1.0]):
    raise ValueError(f'K must be a (3, 3) pinhole matrix without skew, got {k.tolist()}')
  if not 0 < znear < zfar:
    raise ValueError(f'need 0 < znear < zfar, got {znear}, {zfar}')
  del width, height  # pyrender reads the viewport size at render time
  pyrender = _gl.import_pyrender()
  return pyrender.IntrinsicsCamera(fx=float(k[0, 0]), fy=float(k[1, 1]), cx=float(k[0, 2]) + 0.5,
                                   cy=float(k[1, 2]) + 0.5, znear=znear, zfar=zfar)
