"""One ODAH clip through two views: render, mask, crop, project the joints.

`render_clip` returns exactly the view features of an example (odah_tfds/schema.py):
crops, masks, crop_meta, image_size, camera_K/R/t and joints_2d. `RenderConfig` bundles
the sizes and the rig / appearance distributions; `sample_clip_setup` draws a clip's
cameras and appearance from it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from banet_jax import crops
from banet_jax import geometry
from banet_jax.crops import EmptyMaskError
from odah_tfds.render import appearance as appearance_lib
from odah_tfds.render import cameras as cameras_lib
from odah_tfds.render import renderer as renderer_lib

NUM_VIEWS = 2


@dataclasses.dataclass(frozen=True)
class RenderConfig:
  """Rendering settings of a dataset config.

  Attributes:
    image_size: full rendered image (width, height), pixels.
    crop_size: S, side of BANet's square crops (official: 256).
    rig: camera rig distributions.
    appearance: appearance distributions (motion blur: `appearance.blur_probability`).
    crop_margin: square side / longest mask-box side (official: 1.1).
    shading: Renderer shading, 'pbr' (pyrender's lit shader) or 'vertex' (the same
      diffuse light per vertex, ~2.5x faster on CPU; see renderer.Renderer).
  """

  image_size: tuple[int, int] = (512, 512)
  crop_size: int = 256
  rig: cameras_lib.RigConfig = cameras_lib.RigConfig()
  appearance: appearance_lib.AppearanceConfig = appearance_lib.AppearanceConfig()
  crop_margin: float = 1.1
  shading: str = 'pbr'

  def __post_init__(self):
    if self.shading not in renderer_lib.SHADINGS:
      raise ValueError(f'shading must be one of {renderer_lib.SHADINGS}, got {self.shading!r}')
    if len(self.image_size) != 2 or min(self.image_size) < 8:
      raise ValueError(f'image_size must be (width, height) >= 8 px, got {self.image_size}')
    if self.crop_size < 8:
      raise ValueError(f'crop_size must be >= 8, got {self.crop_size}')

  @property
  def blur_probability(self) -> float:
    return self.appearance.blur_probability


# Presets: 'full' matches BANet's 256 crops from 512 x 512 renders (the person spans
# ~250-480 px, so crops are mostly downscaled); 'small' halves both; 'test' is tiny.
PRESETS = {
    'full': RenderConfig(image_size=(512, 512), crop_size=256),
    'small': RenderConfig(image_size=(256, 256), crop_size=128),
    'test': RenderConfig(image_size=(96, 96), crop_size=32),
}


def make_renderer(config: RenderConfig) -> renderer_lib.Renderer:
  """A Renderer for `config` (image size, shading); reuse it for every clip."""
  return renderer_lib.Renderer(config.image_size, shading=config.shading)


def sample_clip_setup(rng: np.random.Generator, vertices, body, config: RenderConfig,
                      background_dir=None
                      ) -> tuple[list[geometry.Camera], appearance_lib.Appearance, dict]:
  """Cameras and appearance of a clip.

  Args:
    rng: numpy Generator.
    vertices: (T, V, 3) the posed clip (world, metres); the rig keeps all of it in view.
    body: `appearance.BodyParts` or an anny / SMPL-X body model.
    config: RenderConfig.
    background_dir: folder of background images, or None (procedural).

  Returns:
    (two Cameras, Appearance, rig parameters dict); `appearance.to_json({'rig': params})`
    is the example's appearance_json.
  """
  target, extent = cameras_lib.clip_target_and_extent(vertices)
  cams, params = cameras_lib.sample_rig(rng, target, extent, config.image_size, config.rig)
  look = appearance_lib.sample_appearance(rng, body, config.image_size, config.appearance,
                                          background_dir=background_dir, num_views=NUM_VIEWS,
                                          anchor=target)
  return cams, look, params


def render_clip(renderer: renderer_lib.Renderer, vertices, faces, cameras, appearance,
                crop_size: int, joint_centers=None, keep_full: bool = False,
                margin: float = 1.1) -> dict[str, np.ndarray]:
  """Renders a clip in two views and makes BANet's crops.

  Args:
    renderer: a Renderer whose image size matches the appearance's backgrounds.
    vertices: (T, V, 3) float world vertices (metres).
    faces: (F, 3) integer triangles.
    cameras: two geometry.Camera.
    appearance: the clip's Appearance (vertex colours or UV texture, backgrounds, light,
      blur).
    crop_size: S.
    joint_centers: (T, J, 3) world joint centres to project, or None.
    keep_full: also return `full_rgb` (2, T, H, W, 3) uint8 and `full_masks`
      (2, T, H, W) uint8, for debugging and contact sheets.
    margin: crop margin (official 1.1).

  Returns:
    crops (2, T, S, S, 3) uint8, masks (2, T, S, S) uint8 {0, 1}, crop_meta (2, T, 3)
    float32, image_size (2, 2) int32 (width, height), camera_K (2, 3, 3), camera_R
    (2, 3, 3), camera_t (2, 3) float32, joints_2d (2, T, J, 2) float32 crop pixels
    ((2, T, 0, 2) when joint_centers is None).

  Raises:
    EmptyMaskError: a frame's person mask is empty in a view (`.view`, `.frame` set);
      the caller can resample the cameras or skip the clip.
  """
  verts = np.asarray(vertices, np.float32)
  if verts.ndim != 3 or verts.shape[2] != 3 or verts.shape[0] < 1:
    raise ValueError(f'vertices must be (T, V, 3), got {verts.shape}')
  t = verts.shape[0]
  if len(cameras) != NUM_VIEWS:
    raise ValueError(f'render_clip needs {NUM_VIEWS} cameras, got {len(cameras)}')
  if appearance.vertex_colors.shape[0] != verts.shape[1]:
    raise ValueError(f'appearance has colours for {appearance.vertex_colors.shape[0]} vertices, '
                     f'the mesh has {verts.shape[1]}')
  if tuple(appearance.image_size) != tuple(renderer.image_size):
    raise ValueError(f'appearance backgrounds are {appearance.image_size}, the renderer '
                     f'renders {renderer.image_size} (width, height)')
  if joint_centers is None:
    joints = np.zeros((t, 0, 3), np.float64)
  else:
    joints = np.asarray(joint_centers, np.float64)
    if joints.ndim != 3 or joints.shape[0] != t or joints.shape[2] != 3:
      raise ValueError(f'joint_centers must be (T={t}, J, 3), got {joints.shape}')
  width, height = renderer.image_size
  s = int(crop_size)
  out = {
      'crops': np.zeros((NUM_VIEWS, t, s, s, 3), np.uint8),
      'masks': np.zeros((NUM_VIEWS, t, s, s), np.uint8),
      'crop_meta': np.zeros((NUM_VIEWS, t, 3), np.float32),
      'image_size': np.tile(np.array([width, height], np.int32), (NUM_VIEWS, 1)),
      'camera_K': np.stack([np.asarray(c.K, np.float32) for c in cameras]),
      'camera_R': np.stack([np.asarray(c.R, np.float32) for c in cameras]),
      'camera_t': np.stack([np.asarray(c.t, np.float32) for c in cameras]),
      'joints_2d': np.zeros((NUM_VIEWS, t, joints.shape[1], 2), np.float32),
  }
  if keep_full:
    out['full_rgb'] = np.zeros((NUM_VIEWS, t, height, width, 3), np.uint8)
    out['full_masks'] = np.zeros((NUM_VIEWS, t, height, width), np.uint8)
  blur = appearance.motion_blur
  for view, camera in enumerate(cameras):
    cam64 = geometry.Camera(*(np.asarray(a, np.float64) for a in camera))
    for frame in range(t):
      frame_vertices = (renderer_lib.blur_subframes(verts, frame, blur) if blur.enabled
                        else verts[frame])
      rgb, mask = renderer.render(frame_vertices, faces, appearance.vertex_colors, cam64,
                                  appearance, view=view)
      try:
        crop, crop_mask, meta = crops.square_crop(rgb, mask, s, margin)
      except EmptyMaskError as e:
        raise EmptyMaskError(f'view {view}, frame {frame}: {e}', view=view, frame=frame) from e
      out['crops'][view, frame] = crop
      out['masks'][view, frame] = crop_mask
      out['crop_meta'][view, frame] = meta
      if joints.shape[1]:
        full = geometry.project(joints[frame], *cam64)
        out['joints_2d'][view, frame] = geometry.full_to_crop(full, meta.astype(np.float64))
      if keep_full:
        out['full_rgb'][view, frame] = rgb
        out['full_masks'][view, frame] = mask
  return out
