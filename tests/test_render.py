"""Tests of odah_tfds/render: cameras, appearance, crops, the renderer and render_clip.

Everything that opens a GL context runs in a spawned child process (`gl` fixture):
TensorFlow and Mesa GL segfault in one process, and other test modules import
TensorFlow. The child imports only this module's dependencies (no TensorFlow), keeps
one Renderer per image size, and returns numpy arrays; assertions run here.
"""

from __future__ import annotations

import dataclasses

import json
import logging
import time

import numpy as np
import pytest

from banet_jax import crops
from banet_jax import geometry
from odah_tfds import schema
from odah_tfds.render import appearance as app
from odah_tfds.render import cameras as cam
from odah_tfds.render import clip as clip_lib
from odah_tfds.render import renderer as rnd

# ---- helpers -----------------------------------------------------------------------------------


def _sphere(center, radius, subdivisions=3):
  import trimesh  # pylint: disable=g-import-not-at-top
  s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  return (s.vertices + np.asarray(center)).astype(np.float32), s.faces.astype(np.int32)


def _toy_parts(vertices):
  """BodyParts for a toy mesh: parts by height bands (for appearance without a body)."""
  y = vertices[:, 1]
  bands = np.digitize(y, np.quantile(y, [0.15, 0.3, 0.5, 0.7, 0.85]))
  part = np.array([app.PARTS.index(p) for p in ('foot', 'shank', 'thigh', 'pelvis', 'torso',
                                                 'head')])[bands]
  return app.BodyParts(part.astype(np.int8), vertices)


def _camera(center, target, image_size, fov=50.0, roll=0.0, pitch=0.0, K=None):
  rot, t = cam.look_at(center, target, roll_deg=roll, pitch_deg=pitch)
  return geometry.Camera(cam.intrinsics(fov, image_size) if K is None else np.asarray(K), rot, t)


def _appearance(vertices, image_size, seed=0, **config):
  return app.sample_appearance(np.random.default_rng(seed), _toy_parts(vertices), image_size,
                               app.AppearanceConfig(**config))


# ---- the GL child process ----------------------------------------------------------------------

_CHILD: dict = {}


def _child_renderer(image_size):
  key = tuple(image_size)
  if key not in _CHILD:
    _CHILD[key] = rnd.Renderer(key)
  return _CHILD[key]


def _child_sphere_scene(image_size, K, center, radius, eye, blur_motion=None):
  """Renders a sphere: render() and render_layer() outputs, and a blurred render."""
  r = _child_renderer(image_size)
  v, f = _sphere(center, radius)
  camera = _camera(eye, center, image_size, K=K)
  look = _appearance(v, image_size)
  rgb, mask = r.render(v, f, look.vertex_colors, camera, look)
  rgba, depth = r.render_layer(v, f, look.vertex_colors, camera, look.lighting)
  out = {'rgb': rgb, 'mask': mask, 'rgba': rgba, 'depth': depth,
         'background': look.backgrounds[0], 'camera': tuple(camera)}
  if blur_motion is not None:
    seq = np.stack([v - blur_motion, v, v + blur_motion])
    blur = app.MotionBlur(subframes=3, shutter=1.0)
    out['blur_rgb'], out['blur_mask'] = r.render(rnd.blur_subframes(seq, 1, blur), f,
                                                 look.vertex_colors, camera, look)
    still = np.stack([v, v, v])
    out['still_rgb'], _ = r.render(still, f, look.vertex_colors, camera, look)
  return out


def _child_determinism(image_size):
  """The same frame twice in one renderer and once in a fresh renderer."""
  v, f = _sphere([0.0, 1.0, 0.0], 0.3, subdivisions=4)
  camera = _camera([2.5, 1.4, 1.0], [0.0, 1.0, 0.0], image_size)
  look = _appearance(v, image_size, seed=3)
  r = _child_renderer(image_size)
  first = r.render(v, f, look.vertex_colors, camera, look)
  second = r.render(v, f, look.vertex_colors, camera, look)
  with rnd.Renderer(image_size) as fresh:
    third = fresh.render(v, f, look.vertex_colors, camera, look)
  return first, second, third


def _child_shadings(image_size):
  """A lit sphere with 'pbr' and 'vertex' shading, and the light's direction."""
  v, f = _sphere([0.0, 1.0, 0.0], 0.4, subdivisions=5)
  camera = _camera([3.0, 1.3, 0.8], [0.0, 1.0, 0.0], image_size)
  look = _appearance(v, image_size, seed=2)
  look = app.Appearance(np.full_like(look.vertex_colors, 150), look.backgrounds, look.lighting,
                        look.motion_blur, look.choices)
  out = {}
  for shading in rnd.SHADINGS:
    with rnd.Renderer(image_size, shading=shading) as r:
      out[shading] = r.render(v, f, look.vertex_colors, camera, look)
  lit = app.Lighting(look.lighting.direction, look.lighting.color, 4.0, (0.0, 0.0, 0.0))
  with rnd.Renderer(image_size) as r:
    out['layer'] = r.render_layer(v, f, look.vertex_colors, camera, lit)
  out['camera'] = tuple(camera)
  out['direction'] = np.asarray(lit.direction)
  return out


def _child_errors(image_size):
  """Messages of the renderer's and render_clip's input errors."""
  v, f = _sphere([0.0, 1.0, 0.0], 0.3)
  camera = _camera([2.5, 1.4, 1.0], [0.0, 1.0, 0.0], image_size)
  look = _appearance(v, image_size)
  small = _appearance(v, (image_size[0] // 2, image_size[1]))
  r = _child_renderer(image_size)
  errors = {}
  for name, call in {
      'background_size': lambda: r.render(v, f, small.vertex_colors, camera, small),
      'colors': lambda: r.render(v, f, look.vertex_colors[:-1], camera, look),
      'even_subframes': lambda: r.render(np.stack([v, v]), f, look.vertex_colors, camera, look),
      'view': lambda: r.render(v, f, look.vertex_colors, camera, look, view=2),
  }.items():
    try:
      call()
      errors[name] = None
    except ValueError as e:
      errors[name] = str(e)
  # A camera looking away from the sphere in view 1, frame 0.
  away = _camera([2.5, 1.4, 1.0], [5.0, 1.4, 2.0], image_size)
  try:
    clip_lib.render_clip(r, v[None], f, [camera, away], look, 16)
    errors['empty'] = None
  except crops.EmptyMaskError as e:
    errors['empty'] = (str(e), e.view, e.frame)
  closed = rnd.Renderer(image_size)
  closed.close()
  try:
    closed.render(v, f, look.vertex_colors, camera, look)
    errors['closed'] = None
  except RuntimeError as e:
    errors['closed'] = str(e)
  return errors


def _child_anny_rest_clip(image_size, crop_size, seed):
  """The anny default subject at rest (2 frames, the second shifted), rendered in a
  sampled rig, with the rig joints as joint centres."""
  from odah_tfds.body import anny_body  # pylint: disable=g-import-not-at-top
  body = anny_body.AnnyBody()
  subject = anny_body.AnnySubject()
  rest = body.rest_frames(subject)
  geom = body.rest_geometry(subject)
  lift = -rest.vertices[0, :, 1].min()  # feet on the floor
  shift = np.array([0.0, lift, 0.0], np.float32)
  vertices = np.stack([rest.vertices[0] + shift, rest.vertices[0] + shift + [0.1, 0.0, 0.05]])
  joint_names = sorted(geom.joints)
  joints = np.stack([np.asarray([geom.joints[n] for n in joint_names]) + shift] * 2)
  joints[1] += [0.1, 0.0, 0.05]
  config = clip_lib.RenderConfig(image_size=image_size, crop_size=crop_size)
  rng = np.random.default_rng(seed)
  parts = app.BodyParts.from_body(body)
  cameras, look, params = clip_lib.sample_clip_setup(rng, vertices, parts, config)
  start = time.perf_counter()
  out = clip_lib.render_clip(_child_renderer(image_size), vertices, body.faces, cameras, look,
                             crop_size, joints, keep_full=True)
  seconds = time.perf_counter() - start
  return {'out': out, 'params': params, 'json': look.to_json({'rig': params}),
          'joint_names': joint_names, 'seconds': seconds, 'parts': parts.part_index,
          'joints': joints}


def _child_anny_timing(image_size, frames):
  """Seconds per frame (both views) for an anny clip at rest, after a warm-up."""
  from odah_tfds.body import anny_body  # pylint: disable=g-import-not-at-top
  body = anny_body.AnnyBody()
  rest = body.rest_frames(anny_body.AnnySubject()).vertices[0]
  vertices = np.repeat(rest[None], frames, axis=0)
  config = clip_lib.RenderConfig(image_size=image_size, crop_size=image_size[0] // 2,
                                 appearance=app.AppearanceConfig(blur_probability=0.0))
  cameras, look, _ = clip_lib.sample_clip_setup(np.random.default_rng(0), vertices,
                                                app.BodyParts.from_body(body), config)
  r = _child_renderer(image_size)
  clip_lib.render_clip(r, vertices[:2], body.faces, cameras, look, config.crop_size)
  start = time.perf_counter()
  clip_lib.render_clip(r, vertices, body.faces, cameras, look, config.crop_size)
  return (time.perf_counter() - start) / frames


# ---- cameras -------------------------------------------------------------------------------------


def test_rendering_refuses_a_process_with_tensorflow(monkeypatch):
  import sys  # pylint: disable=g-import-not-at-top
  from odah_tfds.render import _gl  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, 'tensorflow', object())
  with pytest.raises(RuntimeError, match='TensorFlow'):
    _gl.import_pyrender()
  with pytest.raises(RuntimeError, match='TensorFlow'):
    rnd.Renderer((8, 8))


def test_pyrender_pose_round_trip_and_axes():
  rng = np.random.default_rng(0)
  for _ in range(5):
    center = rng.uniform(-3, 3, 3)
    target = rng.uniform(-1, 1, 3)
    c = _camera(center, target, (64, 48), roll=rng.uniform(-5, 5), pitch=rng.uniform(-5, 5))
    pose = cam.pyrender_pose(c)
    np.testing.assert_allclose(pose[:3, 3], geometry.camera_center(c.R, c.t), atol=1e-12)
    # OpenGL cameras look along their -z axis and have y up (= -OpenCV y).
    np.testing.assert_allclose(-pose[:3, 2], cam.optical_axis(c), atol=1e-12)
    np.testing.assert_allclose(pose[:3, 1], -c.R[1], atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(pose[:3, :3]), 1.0, atol=1e-12)
    back = cam.camera_from_pyrender_pose(pose, c.K)
    np.testing.assert_allclose(back.R, c.R, atol=1e-12)
    np.testing.assert_allclose(back.t, c.t, atol=1e-12)


def test_look_at_puts_the_target_at_the_principal_point():
  size = (80, 60)
  target = np.array([0.2, 1.1, -0.3])
  c = _camera([3.0, 1.6, 2.0], target, size)
  np.testing.assert_allclose(geometry.project(target, *c), [39.5, 29.5], atol=1e-9)
  up = _camera([3.0, 1.6, 2.0], target, size, pitch=5.0)
  assert geometry.project(target, *up)[1] > 29.5 + 1  # axis tilted up: the target drops
  # Image x points to the right: seen from +x (facing -x), world +z (the subject's
  # right, i.e. the camera's left) appears on the left.
  front = _camera([4.0, 1.0, 0.0], [0.0, 1.0, 0.0], size)
  assert geometry.project(np.array([0.0, 1.0, 0.5]), *front)[0] < 39.5
  assert geometry.project(np.array([0.0, 1.5, 0.0]), *front)[1] < 29.5  # up is up


def _child_intrinsics(K, image_size):
  """pyrender_intrinsics' parameters for K, and its error messages for bad inputs."""
  c = cam.pyrender_intrinsics(K, image_size)
  errors = []
  for k, near, far in ((np.array([[100.0, 1.0, 31.5], [0, 90, 20], [0, 0, 1]]), 0.05, 100.0),
                       (K, 2.0, 1.0)):
    try:
      cam.pyrender_intrinsics(k, image_size, znear=near, zfar=far)
      errors.append(None)
    except ValueError as e:
      errors.append(str(e))
  return (c.fx, c.fy, c.cx, c.cy, c.znear, c.zfar), errors


def test_pyrender_intrinsics_half_pixel_and_errors(gl):
  K = np.array([[100.0, 0, 31.5], [0, 90.0, 20.25], [0, 0, 1]])
  params, errors = gl(_child_intrinsics, K, (64, 48))
  assert params == (100.0, 90.0, 32.0, 20.75, cam.ZNEAR, cam.ZFAR)
  assert 'skew' in errors[0] and 'znear' in errors[1]


def _walking_cloud(rng, frames=20):
  """A person-sized point cloud (a 1.75 m cylinder with arms) moving 1.3 m along x."""
  n = 400
  theta = rng.uniform(0, 2 * np.pi, n)
  body = np.stack([0.15 * np.cos(theta), rng.uniform(0, 1.75, n), 0.2 * np.sin(theta)], 1)
  arms = np.stack([rng.uniform(-0.1, 0.1, 50), rng.uniform(1.2, 1.45, 50),
                   rng.uniform(-0.75, 0.75, 50)], 1)
  pts = np.concatenate([body, arms])
  return np.stack([pts + [1.3 * k / (frames - 1), 0, 0.2] for k in range(frames)])


def test_rigs_are_two_roughly_orthogonal_views_that_see_the_whole_person():
  config = cam.RigConfig()
  size = (96, 64)  # not square: the narrow side limits the view
  for seed in range(25):
    rng = np.random.default_rng(seed)
    clip = _walking_cloud(rng)
    target, extent = cam.clip_target_and_extent(clip)
    cameras, params = cam.sample_rig(rng, target, extent, size, config)
    angle = cam.ground_angle_deg(*cameras)
    lo = config.side_angle - config.side_jitter
    hi = config.side_angle + config.side_jitter
    assert lo - 1e-6 <= angle <= hi + 1e-6, (seed, angle)
    for c, view in zip(cameras, params['views'], strict=True):
      assert cam.visible_fraction(clip, c, size) == 1.0, seed
      np.testing.assert_allclose(np.linalg.norm(geometry.camera_center(c.R, c.t) - target),
                                 view['distance_m'], rtol=1e-9)
      assert config.fov_range[0] <= view['fov_x_deg'] <= config.fov_range[1]
      assert abs(view['roll_deg']) <= config.roll_jitter
    json.dumps(params)  # JSON-able


def test_lab_rigs_stay_in_their_documented_ranges_and_see_the_whole_person():
  config = cam.RIGS['lab']
  size = (96, 64)
  angles, distances, heights = [], [], []
  for seed in range(40):
    rng = np.random.default_rng(seed)
    clip = _walking_cloud(rng)
    target, extent = cam.clip_target_and_extent(clip)
    cameras, params = cam.sample_rig(rng, target, extent, size, config)
    angles.append(cam.ground_angle_deg(*cameras))
    for c, view in zip(cameras, params['views'], strict=True):
      assert cam.visible_fraction(clip, c, size) == 1.0, seed
      center = geometry.camera_center(c.R, c.t)
      np.testing.assert_allclose(np.linalg.norm(center - target), view['distance_m'], rtol=1e-9)
      assert config.distance_range[0] <= view['distance_m'] <= config.distance_range[1], seed
      distances.append(view['distance_m'])
      heights.append(view['height_m'])
  lo, hi = config.side_angle_range
  # Ground angles of the optical axes: the pair angle up to the pitch/roll jitter's effect.
  assert min(angles) >= lo - 2 and max(angles) <= hi + 2, (min(angles), max(angles))
  assert max(angles) - min(angles) > 50  # the range is used, not one value
  assert max(distances) - min(distances) > 3
  assert min(heights) >= config.height_range[0] - 1e-9
  assert max(heights) <= config.height_range[1] + 1e-9
  # The same seed draws the same rig; the default rig's draws are unchanged by the new
  # options (its records stay byte-identical).
  a = cam.sample_rig(np.random.default_rng(3), np.zeros(3), 2.0, size, config)
  b = cam.sample_rig(np.random.default_rng(3), np.zeros(3), 2.0, size, config)
  assert a[1] == b[1]
  with pytest.raises(ValueError, match='side_angle_range'):
    cam.RigConfig(side_angle_range=(30.0, 200.0))
  with pytest.raises(ValueError, match='distance_range'):
    cam.RigConfig(distance_range=(0.0, 3.0))


def test_mounted_rigs_are_lab_rigs_high_and_close():
  """RIGS['mounted'] (benchmarks/rig_sensitivity.py) draws what 'lab' draws with every
  camera 1.7-2.2 m high and 2.5-3.5 m from the target, and still sees the whole person."""
  config, lab = cam.RIGS['mounted'], cam.RIGS['lab']
  assert dataclasses.replace(config, height_range=lab.height_range,
                             distance_range=lab.distance_range) == lab
  assert dataclasses.replace(cam.RIGS['rolled'], roll_jitter=lab.roll_jitter) == lab
  size = (96, 64)
  for seed in range(20):
    rng = np.random.default_rng(seed)
    clip = _walking_cloud(rng)
    target, extent = cam.clip_target_and_extent(clip)
    cameras, params = cam.sample_rig(rng, target, extent, size, config)
    for c, view in zip(cameras, params['views'], strict=True):
      assert cam.visible_fraction(clip, c, size) == 1.0, seed
      assert 1.7 - 1e-9 <= view['height_m'] <= 2.2 + 1e-9, seed
      assert 2.5 - 1e-9 <= view['distance_m'] <= 3.5 + 1e-9, seed


def test_generation_rig_names_are_the_render_rigs():
  from odah_tfds import generate  # pylint: disable=g-import-not-at-top
  assert generate.RIG_NAMES == tuple(cam.RIGS)
  with pytest.raises(ValueError, match='rig must be one of'):
    generate.GenerationConfig(rig='studio')


def test_sample_rig_is_deterministic_and_checks_inputs():
  a = cam.sample_rig(np.random.default_rng(7), np.zeros(3), 2.0, (64, 64))
  b = cam.sample_rig(np.random.default_rng(7), np.zeros(3), 2.0, (64, 64))
  for ca, cb in zip(a[0], b[0], strict=True):
    for x, y in zip(ca, cb, strict=True):
      np.testing.assert_array_equal(x, y)
  assert a[1] == b[1]
  with pytest.raises(ValueError, match='extent_m'):
    cam.sample_rig(np.random.default_rng(0), np.zeros(3), 0.0, (64, 64))
  with pytest.raises(ValueError, match='image_size'):
    cam.sample_rig(np.random.default_rng(0), np.zeros(3), 1.0, (64,))
  with pytest.raises(ValueError, match='distance_factor_range'):
    cam.RigConfig(distance_factor_range=(0.8, 1.2))


def test_visible_fraction_counts_points_in_front_and_inside():
  c = _camera([5.0, 1.0, 0.0], [0.0, 1.0, 0.0], (64, 64), fov=40.0)
  inside = np.array([[0.0, 1.0, 0.0], [0.0, 1.2, 0.3]])
  outside = np.array([[0.0, 1.0, 10.0]])  # far to the side
  behind = np.array([[8.0, 1.0, 0.0]])  # behind the camera (its projection would be inside)
  pts = np.concatenate([inside, outside, behind])
  assert cam.visible_fraction(pts, c, (64, 64)) == pytest.approx(0.5)


# ---- crops ---------------------------------------------------------------------------------------


def test_square_crop_official_formulas_by_hand():
  img = np.arange(20 * 10 * 3, dtype=np.uint8).reshape(10, 20, 3)
  mask = np.zeros((10, 20), bool)
  mask[2:8, 5:10] = True  # box x=5, y=2, w=5, h=6
  assert crops.mask_box(mask) == (5, 2, 5, 6)
  # side = int(6 * 1.1) // 2 * 2 = 6; new_x = 3 - 5 // 2 = 1, new_y = 3 - 6 // 2 = 0.
  assert crops.crop_square((5, 2, 5, 6)) == (4, 2, 6)
  crop, crop_mask, meta = crops.square_crop(img, mask, 6)
  np.testing.assert_array_equal(meta, np.array([4, 2, 1.0], np.float32))
  # Scale 1: the crop is the square window of the image itself.
  np.testing.assert_array_equal(crop, img[2:8, 4:10])
  np.testing.assert_array_equal(crop_mask, mask[2:8, 4:10].astype(np.uint8))
  # Odd box sizes, margin 1.1, larger box: w=21, h=9 -> side = int(23.1)//2*2 = 22,
  # new_x = 11 - 10 = 1, new_y = 11 - 4 = 7.
  assert crops.crop_square((30, 40, 21, 9)) == (29, 33, 22)
  _, _, meta = crops.square_crop(np.zeros((100, 100, 3), np.uint8),
                                 np.pad(np.ones((9, 21), bool), ((40, 51), (30, 49))), 11)
  np.testing.assert_allclose(meta, [29, 33, 2.0])


def test_square_crop_pads_with_zeros_outside_the_image():
  img = np.full((40, 50, 3), 200, np.uint8)
  mask = np.zeros((40, 50), bool)
  mask[0:20, 0:8] = True  # touches the top-left corner: the square leaves the image
  crop, crop_mask, meta = crops.square_crop(img, mask, 22)  # side 22: scale 1
  ox, oy, scale = meta
  assert (ox, oy, scale) == (-7.0, -1.0, 1.0)  # new_x = 11 - 8 // 2, new_y = 11 - 20 // 2
  np.testing.assert_array_equal(crop[:, :7], 0)  # columns left of the image
  np.testing.assert_array_equal(crop[0], 0)  # the row above it
  np.testing.assert_array_equal(crop[1:, 7:], 200)
  np.testing.assert_array_equal(crop_mask[1:21, 7:15], 1)
  assert crop_mask.sum() == mask.sum()


def test_crop_pixels_follow_meta_exactly():
  """A blob at a sub-pixel full-image position lands at full_to_crop(position) in the
  crop, for shrinking and enlarging crops (bilinear resampling consistent with meta)."""
  h, w = 120, 160
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
  for center, sigma, crop_size in (((71.3, 52.6), 4.0, 24), ((60.7, 48.2), 1.5, 96)):
    blob = np.exp(-0.5 * ((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / sigma ** 2)
    img = (blob * 250).astype(np.float32)[..., None]
    mask = np.zeros((h, w), bool)
    mask[30:90, 50:95] = True
    crop, _, meta = crops.square_crop(img, mask, crop_size)
    c = crop[..., 0].astype(np.float64)
    cy, cx = np.mgrid[0:crop_size, 0:crop_size]
    measured = np.array([(c * cx).sum() / c.sum(), (c * cy).sum() / c.sum()])
    expected = geometry.full_to_crop(np.array(center), meta.astype(np.float64))
    np.testing.assert_allclose(measured, expected, atol=0.05)
    np.testing.assert_allclose(geometry.crop_to_full(expected, meta.astype(np.float64)),
                               center, atol=1e-4)


def test_square_crop_errors():
  with pytest.raises(crops.EmptyMaskError, match='empty'):
    crops.square_crop(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool), 4)
  assert issubclass(crops.EmptyMaskError, ValueError)
  with pytest.raises(ValueError, match='match'):
    crops.square_crop(np.zeros((8, 8, 3), np.uint8), np.ones((8, 9), bool), 4)
  with pytest.raises(ValueError, match='crop_size'):
    crops.square_crop(np.zeros((8, 8, 3), np.uint8), np.ones((8, 8), bool), 0)


# ---- appearance ----------------------------------------------------------------------------------


def test_body_part_of_joint_knows_anny_and_smplx_names():
  cases = {'root': 'pelvis', 'spine05': 'pelvis', 'spine02': 'torso', 'upperarm02.L': 'upper_arm',
           'lowerarm01.R': 'forearm', 'finger3-2.L': 'hand', 'metacarpal1.R': 'hand',
           'upperleg01.R': 'thigh', 'lowerleg02.L': 'shank', 'toe5-3.R': 'foot', 'neck02': 'neck',
           'head': 'head', 'eye.L': 'eye', 'clavicle.R': 'torso', 'pelvis.L': 'pelvis',
           'left_hip': 'thigh', 'right_knee': 'shank', 'left_ankle': 'foot', 'right_foot': 'foot',
           'spine1': 'torso', 'left_collar': 'torso', 'right_shoulder': 'upper_arm',
           'left_elbow': 'forearm', 'right_wrist': 'hand', 'left_pinky3': 'hand', 'jaw': 'head',
           'right_eye_smplhf': 'eye', 'pelvis': 'pelvis', 'neck': 'neck'}
  for name, part in cases.items():
    assert app.body_part_of_joint(name) == part, name
  with pytest.raises(ValueError, match='tail'):
    app.body_part_of_joint('tail')


def test_body_parts_from_skinning_take_the_heaviest_part():
  names = ['upperarm01.L', 'upperarm02.L', 'spine01', 'lowerarm01.L']
  w = np.array([[0.3, 0.3, 0.4, 0.0],  # arm 0.6 > torso 0.4, though spine01 is the top joint
                [0.0, 0.1, 0.0, 0.9]])
  parts = app.BodyParts.from_skinning(names, w, np.zeros((2, 3)))
  assert [app.PARTS[i] for i in parts.part_index] == ['upper_arm', 'forearm']
  with pytest.raises(ValueError, match='weights'):
    app.BodyParts.from_skinning(names, w[:, :3], np.zeros((2, 3)))


def test_appearance_is_deterministic_and_recorded():
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=4)
  a = _appearance(v, (48, 32), seed=11, blur_probability=0.5)
  b = _appearance(v, (48, 32), seed=11, blur_probability=0.5)
  c = _appearance(v, (48, 32), seed=12, blur_probability=0.5)
  np.testing.assert_array_equal(a.vertex_colors, b.vertex_colors)
  np.testing.assert_array_equal(a.backgrounds, b.backgrounds)
  assert a.to_json() == b.to_json()
  assert a.lighting == b.lighting and a.motion_blur == b.motion_blur
  assert not np.array_equal(a.vertex_colors, c.vertex_colors)
  assert a.to_json() != c.to_json()
  assert a.vertex_colors.dtype == np.uint8 and a.vertex_colors.shape == (len(v), 3)
  assert a.backgrounds.shape == (2, 32, 48, 3) and a.backgrounds.dtype == np.uint8
  record = json.loads(a.to_json({'rig': {'x': 1}}))
  for key in ('skin', 'shirt', 'trousers', 'shoes', 'hair', 'backgrounds', 'lighting',
              'motion_blur', 'rig'):
    assert key in record, key
  assert np.isclose(np.linalg.norm(a.lighting.direction), 1.0)
  assert a.lighting.direction[1] < 0  # the key light comes from above


def test_appearance_covers_parts_with_garments():
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=4)
  parts = _toy_parts(v)
  config = app.AppearanceConfig(pattern_probabilities=(1.0, 0.0, 0.0, 0.0), cloth_noise=0.0,
                                long_trousers_probability=1.0, shoes_probability=1.0)
  look = app.sample_appearance(np.random.default_rng(0), parts, (16, 16), config)
  trousers = np.asarray(json.loads(look.to_json())['trousers']['color'])
  on = parts.mask('pelvis', 'thigh', 'shank')
  np.testing.assert_allclose(look.vertex_colors[on], np.broadcast_to(trousers, (on.sum(), 3)),
                             atol=0.51)


def test_bare_torsos_show_skin_and_leave_other_configs_unchanged():
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=3)
  parts = _toy_parts(v)
  bare = app.sample_appearance(np.random.default_rng(0), parts, (16, 16), app.AppearanceConfig(
      bare_torso_probability=1.0, skin_noise=0.0, cloth_noise=0.0, skin_tint=0.0))
  record = json.loads(bare.to_json())
  assert record['shirt'] is None
  torso = parts.mask('torso')
  np.testing.assert_allclose(bare.vertex_colors[torso],
                             np.broadcast_to(record['skin']['color'], (torso.sum(), 3)), atol=0.51)
  # Probability 0 (every existing config) draws nothing extra: the same look as before.
  a = app.sample_appearance(np.random.default_rng(3), parts, (16, 16), app.AppearanceConfig())
  b = app.sample_appearance(np.random.default_rng(3), parts, (16, 16),
                            app.AppearanceConfig(bare_torso_probability=0.0))
  np.testing.assert_array_equal(a.vertex_colors, b.vertex_colors)
  assert json.loads(a.to_json())['shirt'] is not None


def test_skin_tones_span_the_palette():
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=1)
  tones = [json.loads(_appearance(v, (8, 8), seed=s).to_json())['skin']['fitzpatrick_position']
           for s in range(60)]
  assert min(tones) < 1.5 and max(tones) > 5.5
  assert all(1.0 <= t <= 6.0 for t in tones)


def _write_png(path, color, size):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(np.full((size[1], size[0], 3), color, np.uint8)).save(path)


def test_background_folder_images_are_used_and_resized(tmp_path, caplog):
  _write_png(tmp_path / 'red.png', (250, 10, 10), (300, 200))
  _write_png(tmp_path / 'blue.JPG', (10, 10, 250), (40, 30))  # smaller: enlarged
  (tmp_path / 'notes.txt').write_text('not an image')
  (tmp_path / 'broken.png').write_bytes(b'not a png')
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=1)
  seen = set()
  with caplog.at_level(logging.WARNING, logger=app.__name__):
    for seed in range(8):
      look = app.sample_appearance(np.random.default_rng(seed), _toy_parts(v), (64, 48),
                                   background_dir=tmp_path)
      assert look.backgrounds.shape == (2, 48, 64, 3)
      for bg, info in zip(look.backgrounds, look.choices['backgrounds'], strict=True):
        assert info['kind'] == 'file' and info['file'] in ('red.png', 'blue.JPG')
        mean = bg.reshape(-1, 3).mean(axis=0)
        expected = (250, 10, 10) if info['file'] == 'red.png' else (10, 10, 250)
        np.testing.assert_allclose(mean, expected, atol=3)  # JPEG: approximately
        seen.add(info['file'])
  assert seen == {'red.png', 'blue.JPG'}
  messages = ' '.join(r.getMessage() for r in caplog.records)
  assert 'notes.txt' in messages and 'broken.png' in messages


def test_background_folder_errors(tmp_path):
  v, _ = _sphere([0.0, 1.0, 0.0], 0.5, subdivisions=1)
  parts = _toy_parts(v)
  with pytest.raises(ValueError, match='no image file'):
    app.sample_appearance(np.random.default_rng(0), parts, (8, 8), background_dir=tmp_path)
  with pytest.raises(ValueError, match='does not exist'):
    app.sample_appearance(np.random.default_rng(0), parts, (8, 8),
                          background_dir=tmp_path / 'missing')
  (tmp_path / 'bad.jpg').write_bytes(b'\xff\xd8 truncated')
  with pytest.raises(ValueError, match='no readable image'):
    app.sample_appearance(np.random.default_rng(0), parts, (8, 8), background_dir=tmp_path)


def test_appearance_config_errors():
  with pytest.raises(ValueError, match='pattern_probabilities'):
    app.AppearanceConfig(pattern_probabilities=(0.5, 0.5, 0.5, 0.0))
  with pytest.raises(ValueError, match='odd'):
    app.AppearanceConfig(blur_subframes=(4,))
  with pytest.raises(ValueError, match='blur_probability'):
    app.AppearanceConfig(blur_probability=1.5)


def test_smplx_backend_parts_from_the_standin(tmp_path):
  from odah_tfds.body import markers as mk  # pylint: disable=g-import-not-at-top
  from odah_tfds.body import smplx_body  # pylint: disable=g-import-not-at-top
  from odah_tfds.body import smplx_standin  # pylint: disable=g-import-not-at-top
  smplx_standin.write_standin_model(tmp_path, 'neutral', resolution=0.5)
  body = smplx_body.SmplxBody(tmp_path, marker_vertices={
      n: i for i, n in enumerate(mk.SURFACE_LANDMARKS)})
  parts = app.BodyParts.from_body(body)
  assert parts.num_vertices == body.num_vertices and parts.backend == 'smplx'
  rest = parts.rest_vertices
  for p in ('head', 'torso', 'pelvis', 'upper_arm', 'forearm', 'hand', 'thigh', 'shank', 'foot'):
    assert parts.mask(p).sum() > 20, p
  # Anatomical order along the height (world y up).
  height = {p: rest[parts.mask(p), 1].mean() for p in ('head', 'torso', 'thigh', 'shank', 'foot')}
  assert height['head'] > height['torso'] > height['thigh'] > height['shank'] > height['foot']
  look = app.sample_appearance(np.random.default_rng(0), body, (16, 16))
  assert look.vertex_colors.shape == (body.num_vertices, 3)


# ---- motion blur sub-frames --------------------------------------------------------------------


def test_blur_subframes_interpolate_around_the_frame():
  seq = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
  blur = app.MotionBlur(subframes=5, shutter=0.5)
  np.testing.assert_allclose(blur.offsets(), [-0.25, -0.125, 0.0, 0.125, 0.25])
  sub = rnd.blur_subframes(seq, 1, blur)
  np.testing.assert_allclose(sub[:, 0, 0], [0.75, 0.875, 1.0, 1.125, 1.25])
  np.testing.assert_array_equal(sub[2], seq[1])
  # Clip ends: extrapolated from the nearest pair.
  np.testing.assert_allclose(rnd.blur_subframes(seq, 0, blur)[:, 0, 0],
                             [-0.25, -0.125, 0, 0.125, 0.25])
  np.testing.assert_allclose(rnd.blur_subframes(seq, 3, blur)[:, 0, 0],
                             [2.75, 2.875, 3, 3.125, 3.25])
  assert rnd.blur_subframes(seq[:1], 0, blur).shape == (5, 2, 3)
  assert not app.MotionBlur().enabled and app.MotionBlur().offsets().tolist() == [0.0]


# ---- rendering (GL child process) --------------------------------------------------------------


def test_sphere_renders_where_geometry_projects_it(gl):
  size = (96, 72)
  K = np.array([[95.0, 0.0, 41.3], [0.0, 88.0, 37.8], [0.0, 0.0, 1.0]])  # fx != fy, off-centre
  center = np.array([0.4, 1.1, -0.2])
  out = gl(_child_sphere_scene, size, K, center, 0.25, [3.0, 1.8, 1.5])
  mask, rgba, depth = out['mask'], out['rgba'], out['depth']
  assert mask.shape == (72, 96) and mask.dtype == bool and out['rgb'].dtype == np.uint8
  # The mask is the depth buffer's coverage.
  np.testing.assert_array_equal(mask, depth > 0)
  expected = geometry.project(center, *out['camera'])
  # The coverage (alpha) centroid is the rendered disc's centre, nearly sub-pixel exact;
  # the one-sample mask's centroid within half a pixel. (A sphere's image centre is
  # 0.0x px from its centre's projection at this size: negligible.)
  a = rgba[..., 3].astype(np.float64)
  yy, xx = np.mgrid[0:72, 0:96]
  np.testing.assert_allclose([(a * xx).sum() / a.sum(), (a * yy).sum() / a.sum()], expected,
                             atol=0.15)
  np.testing.assert_allclose([xx[mask].mean(), yy[mask].mean()], expected, atol=0.5)
  # Depth: the sphere's front surface, metres along the optical axis.
  z_center = geometry.to_camera(center, out['camera'][1], out['camera'][2])[2]
  assert z_center - 0.25 - 0.01 < depth[mask].min() < z_center - 0.2
  # Background exactly where no sample hits the person; the person elsewhere.
  empty = rgba[..., 3] == 0
  np.testing.assert_array_equal(out['rgb'][empty], out['background'][empty])
  assert not np.all(out['rgb'][mask] == out['background'][mask])
  assert empty.any()
  # Area: the sphere's outline is an ellipse of semi-axes f * r / sqrt(d^2 - r^2) near
  # the image centre (d: distance to the centre).
  d = np.linalg.norm(geometry.to_camera(center, out['camera'][1], out['camera'][2]))
  area = np.pi * K[0, 0] * K[1, 1] * 0.25 ** 2 / (d ** 2 - 0.25 ** 2)
  assert abs(mask.sum() / area - 1) < 0.1, (mask.sum(), area)


def test_motion_blur_smears_colour_but_keeps_the_frame_mask(gl):
  size = (64, 64)
  center = np.array([0.0, 1.0, 0.0])
  out = gl(_child_sphere_scene, size, cam.intrinsics(45, size), center, 0.3, [3.0, 1.2, 0.0],
           np.array([0.0, 0.0, 0.15], np.float32))
  np.testing.assert_array_equal(out['blur_mask'], out['mask'])
  # Motionless sub-frames average back to the single render (sRGB <-> linear rounding).
  assert np.abs(out['still_rgb'].astype(int) - out['rgb'].astype(int)).max() <= 1
  diff = np.abs(out['blur_rgb'].astype(int) - out['rgb'].astype(int)).sum(axis=2)
  assert diff.max() > 30  # the moving sphere's edges are smeared


def test_rendering_is_deterministic(gl):
  first, second, third = gl(_child_determinism, (80, 64))
  for other in (second, third):
    np.testing.assert_array_equal(first[0], other[0])
    np.testing.assert_array_equal(first[1], other[1])


def test_shadings_agree_and_light_comes_from_its_direction(gl):
  out = gl(_child_shadings, (80, 80))
  (pbr, pbr_mask), (vert, vert_mask) = out['pbr'], out['vertex']
  np.testing.assert_array_equal(pbr_mask, vert_mask)
  diff = np.abs(pbr.astype(int) - vert.astype(int))[pbr_mask]
  assert diff.mean() < 4 and np.percentile(diff, 99) < 25, (diff.mean(), diff.max())
  # Key light only: the lit side of the sphere faces the light (brightest pixels lie
  # towards -direction from the centre, in the image).
  rgba, depth = out['layer']
  K, R, t = out['camera']
  grey = rgba[..., :3].astype(float).mean(axis=2)
  mask = depth > 0
  ys, xs = np.nonzero(mask & (grey >= np.percentile(grey[mask], 90)))
  bright = np.array([xs.mean(), ys.mean()])
  center = geometry.project(np.array([0.0, 1.0, 0.0]), K, R, t)
  toward = geometry.project(np.array([0.0, 1.0, 0.0]) - 0.2 * out['direction'], K, R, t)
  assert np.dot(bright - center, toward - center) > 0
  assert rgba[..., :3][rgba[..., 3] == 0].max() == 0  # premultiplied: nothing where empty


def test_renderer_input_errors(gl):
  errors = gl(_child_errors, (48, 40))
  assert 'does not match' in errors['background_size']
  assert 'vertex_colors' in errors['colors']
  assert 'odd' in errors['even_subframes']
  assert 'out of range' in errors['view']
  message, view, frame = errors['empty']
  assert (view, frame) == (1, 0) and 'view 1, frame 0' in message
  assert 'closed' in errors['closed']


def test_render_clip_anny_rest_matches_the_schema(gl):
  size, s = (128, 128), 64
  res = gl(_child_anny_rest_clip, size, s, 4)
  out, t = res['out'], 2
  expected = schema.shapes(schema.Dims(frames=t, crop_size=s, joints=len(res['joint_names'])))
  view_keys = ('crops', 'masks', 'crop_meta', 'image_size', 'camera_K', 'camera_R', 'camera_t',
               'joints_2d')
  assert set(out) == set(view_keys) | {'full_rgb', 'full_masks'}
  for key in view_keys:
    assert out[key].shape == expected[key], key
    assert out[key].dtype == np.dtype(schema.FEATURES[key].dtype), key
  np.testing.assert_array_equal(out['image_size'], [[128, 128], [128, 128]])
  assert set(np.unique(out['masks'])) <= {0, 1}
  # The whole person is in both views: the mask never touches the image border.
  full = out['full_masks'].astype(bool)
  assert full.any(axis=(2, 3)).all()
  assert not full[..., 0, :].any() and not full[..., -1, :].any()
  assert not full[..., :, 0].any() and not full[..., :, -1].any()
  # The crop mask is the full mask's box, centred and scaled as crop_meta says.
  for v in range(2):
    for k in range(t):
      x, y, w, h = crops.mask_box(full[v, k])
      ox, oy, scale = out['crop_meta'][v, k].astype(np.float64)
      assert crops.crop_square((x, y, w, h)) == (ox, oy, round(scale * s))
      cx, cy, cw, ch = crops.mask_box(out['masks'][v, k])
      assert abs(max(cw, ch) - max(w, h) / scale) <= 1.5
      assert abs(cx + (cw - 1) / 2 - (x + (w - 1) / 2 - ox) / scale) <= 1.0
      assert abs(cy + (ch - 1) / 2 - (y + (h - 1) / 2 - oy) / scale) <= 1.0
  # Joint centres (rig joints, inside the body) project inside the person mask (the
  # finger MCP joints are left out: fingers are ~1 crop pixel wide at this size).
  body_joints = np.array(['mcp' not in n for n in res['joint_names']])
  inside = []
  for v in range(2):
    for k in range(t):
      px = np.round(out['joints_2d'][v, k]).astype(int)
      in_crop = (px >= 0).all(axis=1) & (px < s).all(axis=1)
      hit = np.zeros(len(px), bool)
      hit[in_crop] = out['masks'][v, k][px[in_crop, 1], px[in_crop, 0]] == 1
      inside.extend(hit[body_joints])
      # joints_2d are geometry.project + full_to_crop with the frame's crop_meta.
      camera = (out['camera_K'][v].astype(np.float64), out['camera_R'][v].astype(np.float64),
                out['camera_t'][v].astype(np.float64))
      full = geometry.crop_to_full(out['joints_2d'][v, k].astype(np.float64),
                                   out['crop_meta'][v, k].astype(np.float64))
      np.testing.assert_allclose(full, geometry.project(res['joints'][k], *camera), atol=1e-3)
  assert np.mean(inside) >= 0.9, np.mean(inside)
  # Body parts of anny: every part present; the appearance recorded with the rig.
  for p in range(len(app.PARTS)):
    assert (res['parts'] == p).sum() > 50, app.PARTS[p]
  record = json.loads(res['json'])
  assert record['rig']['image_size'] == [128, 128] and len(record['rig']['views']) == 2


@pytest.mark.slow
def test_anny_render_timing_256(gl):
  per_frame = gl(_child_anny_timing, (256, 256), 16)
  print(f'anny, 256x256, both views: {per_frame * 1e3:.1f} ms per frame')
  assert per_frame < 1.0


@pytest.mark.slow
def test_anny_walking_clips_stay_in_view(gl):
  for seed in range(3):
    res = gl(_child_anny_walking, seed)
    assert res['visible'] == [1.0, 1.0]
    assert not res['border_touch'], seed


def _child_anny_walking(seed):
  from odah_tfds.body import anny_body  # pylint: disable=g-import-not-at-top
  from odah_tfds.motions import sample_motion  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  body = anny_body.AnnyBody()
  subject = body.sample_subject(rng)
  motion = sample_motion('walking', rng, fps=60, num_frames=64)
  frames = body.pose_motion(subject, motion.coordinates)
  config = clip_lib.RenderConfig(image_size=(128, 128), crop_size=32)
  cameras, look, _ = clip_lib.sample_clip_setup(rng, frames.vertices,
                                                app.BodyParts.from_body(body), config)
  out = clip_lib.render_clip(_child_renderer((128, 128)), frames.vertices[::8], body.faces,
                             cameras, look, 32, keep_full=True)
  full = out['full_masks'].astype(bool)
  border = (full[..., 0, :].any() or full[..., -1, :].any() or full[..., :, 0].any()
            or full[..., :, -1].any())
  return {'visible': [cam.visible_fraction(frames.vertices, c, (128, 128)) for c in cameras],
          'border_touch': bool(border)}
