"""Tests of banet_jax.geometry and banet_jax.model.sampling.

grid_sample is checked against a direct numpy transcription of PyTorch's bilinear /
align_corners / zeros-padding formula (and against torch itself when importable); the
visual-hull sampler against a synthetic two-camera scene whose masks are ray-cast
silhouettes of an ellipsoid.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax import geometry
from banet_jax.model import sampling


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


# ----------------------------------------------------------------------------------------
# grid_sample


def _grid_sample_reference(features, xy):
  """Per-point transcription of PyTorch's grid_sampler_2d (bilinear, zeros, align_corners)."""
  b, h, w, c = features.shape
  out = np.zeros((b, xy.shape[1], c))
  for bi in range(b):
    for n in range(xy.shape[1]):
      ix = (xy[bi, n, 0] + 1) / 2 * (w - 1)
      iy = (xy[bi, n, 1] + 1) / 2 * (h - 1)
      ix_nw, iy_nw = int(np.floor(ix)), int(np.floor(iy))
      corners = [(ix_nw, iy_nw, (ix_nw + 1 - ix) * (iy_nw + 1 - iy)),
                 (ix_nw + 1, iy_nw, (ix - ix_nw) * (iy_nw + 1 - iy)),
                 (ix_nw, iy_nw + 1, (ix_nw + 1 - ix) * (iy - iy_nw)),
                 (ix_nw + 1, iy_nw + 1, (ix - ix_nw) * (iy - iy_nw))]
      for cx, cy, wgt in corners:
        if 0 <= cx < w and 0 <= cy < h:
          out[bi, n] += wgt * features[bi, cy, cx]
  return out


def _test_points(rng, b):
  corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1], [0, 0]], dtype=np.float64)
  outside = np.array([[1.5, 0.0], [0.0, -2.0], [-3.0, 3.0], [1.0 + 1e-9, 5.0]])
  near_border = np.array([[1.1, 0.3], [-1.05, -0.2], [0.4, 1.2]])  # partly outside: fades to 0
  pts = np.concatenate([corners, outside, near_border, rng.uniform(-1, 1, (20, 2))])
  return np.broadcast_to(pts, (b,) + pts.shape).copy()


def test_grid_sample_matches_pytorch_formula():
  rng = np.random.default_rng(0)
  feats = rng.normal(size=(2, 5, 7, 3))
  xy = _test_points(rng, 2)
  xy[1] = rng.uniform(-1.2, 1.2, xy[1].shape)
  got = np.asarray(sampling.grid_sample_bilinear(jnp.asarray(feats), jnp.asarray(xy)))
  want = _grid_sample_reference(feats, xy)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
  # Corners are exactly the corner pixels; far outside is exactly zero.
  np.testing.assert_array_equal(got[0, 0], feats[0, 0, 0])
  np.testing.assert_array_equal(got[0, 3], feats[0, -1, -1])
  np.testing.assert_array_equal(got[0, 5:9], 0.0)
  # float32 path.
  got32 = sampling.grid_sample_bilinear(jnp.asarray(feats, jnp.float32),
                                        jnp.asarray(xy, jnp.float32))
  assert got32.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(got32), want, atol=1e-5)


def test_grid_sample_exact_on_pixel_centres():
  # (size - 1) is a power of two, so (i / (size - 1)) * 2 - 1 round-trips exactly.
  rng = np.random.default_rng(1)
  h, w = 5, 9
  feats = rng.normal(size=(1, h, w, 4)).astype(np.float32)
  jj, ii = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  xy = np.stack([ii / (w - 1) * 2 - 1, jj / (h - 1) * 2 - 1], -1).reshape(1, -1, 2)
  got = sampling.grid_sample_bilinear(jnp.asarray(feats), jnp.asarray(xy, jnp.float32))
  np.testing.assert_array_equal(np.asarray(got).reshape(h, w, 4), feats[0])


def test_grid_sample_against_torch():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(2)
  feats = rng.normal(size=(2, 6, 8, 5))
  xy = rng.uniform(-1.3, 1.3, (2, 40, 2))
  want = torch.nn.functional.grid_sample(
      torch.from_numpy(feats).permute(0, 3, 1, 2), torch.from_numpy(xy)[:, :, None, :],
      mode="bilinear", padding_mode="zeros", align_corners=True)[..., 0].permute(0, 2, 1)
  got = sampling.grid_sample_bilinear(jnp.asarray(feats), jnp.asarray(xy))
  np.testing.assert_allclose(np.asarray(got), want.numpy(), atol=1e-12)


def test_grid_sample_gradient_wrt_features():
  # Sampling is linear in the features: the gradient of <r, sample(F)> is the adjoint,
  # so <grad, dF> must equal <r, sample(dF)> for any dF, and it must be finite.
  rng = np.random.default_rng(3)
  feats = jnp.asarray(rng.normal(size=(2, 4, 6, 3)))
  xy = jnp.asarray(rng.uniform(-1.1, 1.1, (2, 10, 2)))
  r = jnp.asarray(rng.normal(size=(2, 10, 3)))
  grad = jax.grad(lambda f: jnp.sum(r * sampling.grid_sample_bilinear(f, xy)))(feats)
  d_f = jnp.asarray(rng.normal(size=feats.shape))
  lhs = jnp.sum(grad * d_f)
  rhs = jnp.sum(r * sampling.grid_sample_bilinear(d_f, xy))
  assert np.isfinite(np.asarray(grad)).all()
  np.testing.assert_allclose(lhs, rhs, rtol=1e-12)
  assert float(jnp.abs(grad).sum()) > 0


def test_grid_sample_bad_shapes():
  with pytest.raises(ValueError, match="features"):
    sampling.grid_sample_bilinear(jnp.zeros((4, 4, 3)), jnp.zeros((1, 2, 2)))


def test_crop_pixels_to_grid_divides_by_crop_size():
  px = np.array([[0.0, 128.0], [255.0, 256.0]])
  np.testing.assert_array_equal(sampling.crop_pixels_to_grid(px, 256),
                                [[-1.0, 0.0], [255 / 128 - 1, 1.0]])


# ----------------------------------------------------------------------------------------
# geometry


def _look_at(position, target):
  """(R, t) of a level camera at `position` looking at `target` (image y down)."""
  return geometry.look_at(position, target)


K_FULL = np.array([[600.0, 0.0, 320.0], [0.0, 610.0, 240.0], [0.0, 0.0, 1.0]])


def test_geometry_round_trips():
  rng = np.random.default_rng(4)
  r, t = _look_at([3.0, 1.2, 0.5], [0.0, 1.0, 0.0])
  center = geometry.camera_center(r, t)
  np.testing.assert_allclose(center, [3.0, 1.2, 0.5], atol=1e-12)
  np.testing.assert_allclose(geometry.to_camera(center, r, t), 0.0, atol=1e-12)

  pixels = rng.uniform([0, 0], [640, 480], (7, 2))
  origins, dirs = geometry.pixel_rays(pixels, K_FULL, r, t)
  np.testing.assert_allclose(np.linalg.norm(dirs, axis=-1), 1.0, atol=1e-12)
  for s in (0.5, 2.0, 10.0):
    pts = origins + s * dirs
    np.testing.assert_allclose(geometry.project(pts, K_FULL, r, t), pixels, atol=1e-9)
    assert (geometry.to_camera(pts, r, t)[:, 2] > 0).all()

  meta = np.array([[100.0, 40.0, 1.75], [12.0, -3.0, 0.5]])
  crop = rng.uniform(0, 256, (2, 9, 2))
  full = geometry.crop_to_full(crop, meta[:, None])
  np.testing.assert_allclose(full[1], crop[1] * 0.5 + [12.0, -3.0])
  np.testing.assert_allclose(geometry.full_to_crop(full, meta[:, None]), crop, atol=1e-12)
  np.testing.assert_allclose(geometry.crop_to_full(geometry.full_to_crop(full, meta[:, None]),
                                                   meta[:, None]), full, atol=1e-12)
  with pytest.raises(ValueError, match="last dimension of 3"):
    geometry.crop_to_full(crop, meta[:, :2])


def test_geometry_accepts_jax_arrays():
  r, t = _look_at([0.2, 1.5, 3.0], [0.0, 1.0, 0.0])
  pts = np.array([[0.1, 0.9, 0.2], [-0.3, 1.4, -0.1]])
  want = geometry.project(pts, K_FULL, r, t)
  got = jax.jit(geometry.project)(jnp.asarray(pts), jnp.asarray(K_FULL), jnp.asarray(r),
                                  jnp.asarray(t))
  assert isinstance(got, jax.Array) and isinstance(want, np.ndarray)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-9)
  jac = jax.jacobian(lambda p: geometry.project(p, K_FULL, r, t))(jnp.asarray(pts))
  assert np.isfinite(np.asarray(jac)).all()


# ----------------------------------------------------------------------------------------
# visual-hull sampler on a synthetic scene

ELLIPSOID_CENTER = np.array([0.1, 1.0, -0.05])
ELLIPSOID_RADII = np.array([0.25, 0.8, 0.15])
CROP = 64


def _rays_hit_ellipsoid(origins, dirs):
  o = (origins - ELLIPSOID_CENTER) / ELLIPSOID_RADII
  d = dirs / ELLIPSOID_RADII
  a = np.sum(d * d, -1)
  b = np.sum(o * d, -1)
  c = np.sum(o * o, -1) - 1
  disc = b * b - a * c
  return (disc >= 0) & (-b + np.sqrt(np.maximum(disc, 0)) > 0)


def _render_view(r, t):
  """Crop meta as the official preprocessing (square, margin 1.1, centred) and the crop mask."""
  u = np.linspace(0, 2 * np.pi, 200)
  v = np.linspace(0, np.pi, 100)
  surf = ELLIPSOID_CENTER + ELLIPSOID_RADII * np.stack(
      [np.outer(np.cos(u), np.sin(v)), np.outer(np.ones_like(u), np.cos(v)),
       np.outer(np.sin(u), np.sin(v))], -1).reshape(-1, 3)
  px = geometry.project(surf, K_FULL, r, t)
  lo, hi = px.min(0), px.max(0)
  side = int(max(hi - lo) * 1.1) // 2 * 2
  meta = np.array([*((lo + hi) / 2 - side / 2), side / CROP])
  jj, ii = np.meshgrid(np.arange(CROP), np.arange(CROP), indexing="ij")
  crop_px = np.stack([ii, jj], -1).reshape(-1, 2).astype(np.float64)
  origins, dirs = geometry.pixel_rays(geometry.crop_to_full(crop_px, meta), K_FULL, r, t)
  mask = _rays_hit_ellipsoid(origins, dirs).reshape(CROP, CROP)
  return meta, mask


@pytest.fixture(scope="module")
def scene():
  cams, metas, masks = [], [], []
  for position in ([3.5, 1.1, 0.2], [0.1, 1.2, 3.0]):  # front (looking -x) and side (looking -z)
    r, t = _look_at(position, [0.0, 1.0, 0.0])
    meta, mask = _render_view(r, t)
    cams.append(geometry.Camera(K_FULL, r, t))
    metas.append(meta)
    masks.append(mask)
  return cams, np.stack(metas), np.stack(masks).astype(np.uint8)


def _nearest_mask_value(mask, crop_px):
  ij = np.floor(crop_px + 0.5).astype(int)
  inside = (ij >= 0).all(-1) & (ij[:, 0] < mask.shape[1]) & (ij[:, 1] < mask.shape[0])
  vals = np.zeros(len(crop_px), bool)
  vals[inside] = mask[ij[inside, 1], ij[inside, 0]] != 0
  return vals


def test_visual_hull_points_project_inside_both_masks(scene):
  cams, metas, masks = scene
  assert 300 < masks[0].sum() and 300 < masks[1].sum()  # non-trivial silhouettes
  n = 300
  pts, crop_px = sampling.sample_visual_hull_points(masks, cams, metas, n,
                                                    np.random.default_rng(0))
  assert pts.shape == (n, 3) and pts.dtype == np.float32
  assert crop_px.shape == (2, n, 2) and crop_px.dtype == np.float32
  for view, cam in enumerate(cams):
    assert (geometry.to_camera(pts.astype(np.float64), cam.R, cam.t)[:, 2] > 0).all()
    proj = geometry.full_to_crop(geometry.project(pts.astype(np.float64), *cam), metas[view])
    np.testing.assert_allclose(crop_px[view], proj, atol=1e-3)
    assert _nearest_mask_value(masks[view], proj).all(), f"view {view}: point outside the mask"
  # The points fill the hull: near the ellipsoid's box (hull of two views plus pixel size),
  # spread over most of its height, centred on it.
  assert (np.abs(pts - ELLIPSOID_CENTER) <= ELLIPSOID_RADII + 0.1).all()
  assert np.ptp(pts[:, 1]) > 1.0
  np.testing.assert_allclose(pts.mean(0), ELLIPSOID_CENTER, atol=0.15)
  assert len(np.unique(pts, axis=0)) == n  # enough candidates: no padding duplicates


def test_visual_hull_sampler_deterministic_per_seed(scene):
  cams, metas, masks = scene
  a = sampling.sample_visual_hull_points(masks, cams, metas, 64, np.random.default_rng(7))
  b = sampling.sample_visual_hull_points(masks, cams, metas, 64, np.random.default_rng(7))
  c = sampling.sample_visual_hull_points(masks, cams, metas, 64, np.random.default_rng(8))
  np.testing.assert_array_equal(a.points_world, b.points_world)
  np.testing.assert_array_equal(a.crop_pixels, b.crop_pixels)
  assert not np.array_equal(a.points_world, c.points_world)


def test_visual_hull_sampler_pads_when_few_candidates(scene):
  cams, metas, masks = scene
  small = np.zeros_like(masks)
  small[:, 30:34, 30:34] = masks[:, 30:34, 30:34]  # 4x4 pixels near the crop centres
  assert (small.sum((1, 2)) == 16).all()
  n = 500  # far more than the ~70 candidates of these beams
  pts, crop_px = sampling.sample_visual_hull_points(small, cams, metas, n,
                                                    np.random.default_rng(1))
  assert pts.shape == (n, 3) and crop_px.shape == (2, n, 2)
  assert len(np.unique(pts, axis=0)) < n  # padded by resampling
  for view in range(2):
    assert _nearest_mask_value(small[view], crop_px[view].astype(np.float64)).all()


def test_visual_hull_sampler_errors(scene):
  cams, metas, masks = scene
  rng = np.random.default_rng(0)
  empty = masks.copy()
  empty[1] = 0
  with pytest.raises(ValueError, match="view 1 has no foreground"):
    sampling.sample_visual_hull_points(empty, cams, metas, 10, rng)
  # A side camera that looks at another place: no point can be inside both masks.
  r, t = _look_at([5.0, 1.2, 3.0], [5.0, 1.0, 0.0])
  wrong = [cams[0], geometry.Camera(K_FULL, r, t)]
  with pytest.raises(ValueError, match="no candidate point projects inside all masks"):
    sampling.sample_visual_hull_points(masks, wrong, metas, 10, rng)
  with pytest.raises(ValueError, match="crop_meta"):
    sampling.sample_visual_hull_points(masks, cams, metas[:1], 10, rng)
  with pytest.raises(ValueError, match="one camera per view"):
    sampling.sample_visual_hull_points(masks, cams[:1], metas, 10, rng)
