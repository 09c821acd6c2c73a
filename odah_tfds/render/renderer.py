"""Offscreen rendering of a posed body mesh into one calibrated view (pyrender, EGL).

`Renderer` owns one `pyrender.OffscreenRenderer` and one scene (a mesh node replaced
per frame, a camera node, a directional key light, ambient light) and is reused across
frames and clips. pyrender is imported through `_gl.import_pyrender`, which sets
`PYOPENGL_PLATFORM=egl` (unless already set) before OpenGL loads: headless, on Mesa's
llvmpipe on CPU machines and on the GPU on NVIDIA machines.

Output of `Renderer.render`: the person over the view's background, and the person mask
(depth > 0: the person is the only mesh, there is no floor). Colours: vertex colours
are sRGB; they are converted to linear light for pyrender's shader, which lights in
linear space and gamma-encodes (1/2.2) its output. The offscreen framebuffer is 4x
multisampled, so the person's edge pixels carry partial coverage in alpha; the
background is composited with that alpha (premultiplied), i.e. equals the background
exactly wherever no sample hits the person. The mask is the resolved depth buffer's
coverage (one sample per pixel).
"""

from __future__ import annotations

import numpy as np

from banet_jax import geometry
from odah_tfds.render import _gl
from odah_tfds.render import appearance as appearance_lib
from odah_tfds.render import cameras

# Matte materials: cloth and skin at this resolution are mostly diffuse.
ROUGHNESS = 0.75
# sRGB <-> linear with pyrender's encoding (a plain 2.2 gamma).
GAMMA = 2.2


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Area-weighted unit vertex normals (V, 3) float32 of a triangle mesh (smooth shading)."""
  v = np.asarray(vertices, np.float64)
  f = np.asarray(faces, np.int64)
  face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 x area
  n = np.zeros_like(v)
  idx = f.ravel()
  for c in range(3):
    n[:, c] = np.bincount(idx, weights=np.repeat(face_n[:, c], 3), minlength=len(v))
  norm = np.linalg.norm(n, axis=1, keepdims=True)
  n = np.where(norm > 0, n / np.maximum(norm, 1e-30), np.array([0.0, 1.0, 0.0]))
  return n.astype(np.float32)


def srgb_to_linear(colors_u8: np.ndarray) -> np.ndarray:
  return (np.asarray(colors_u8, np.float32) / 255.0) ** GAMMA


def linear_to_srgb_u8(linear: np.ndarray) -> np.ndarray:
  return np.clip(np.round(np.clip(linear, 0, 1) ** (1.0 / GAMMA) * 255.0), 0, 255).astype(np.uint8)


def _light_pose(direction) -> np.ndarray:
  """(4, 4) pose whose -z axis is `direction` (pyrender lights shine along -z)."""
  z = -np.asarray(direction, np.float64)
  z /= np.linalg.norm(z)
  helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
  x = np.cross(helper, z)
  x /= np.linalg.norm(x)
  pose = np.eye(4)
  pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
  return pose


def blur_subframes(sequence: np.ndarray, index: int,
                   blur: appearance_lib.MotionBlur) -> np.ndarray:
  """Sub-frame vertices (n, V, 3) for frame `index` of `sequence` (T, V, 3).

  Times `index + blur.offsets()` (in frames), linearly interpolated between consecutive
  frames (extrapolated from the nearest pair at the clip ends; T = 1: no motion). The
  middle sub-frame is the frame itself.
  """
  seq = np.asarray(sequence)
  t = seq.shape[0]
  if seq.ndim != 3 or seq.shape[2] != 3 or not 0 <= index < t:
    raise ValueError(f'need sequence (T, V, 3) and 0 <= index < T, got {seq.shape}, {index}')
  offsets = blur.offsets()
  if t == 1:
    return np.repeat(seq[:1], len(offsets), axis=0)
  out = []
  for s in offsets:
    tau = index + float(s)
    if tau == int(tau) and 0 <= tau < t:  # exactly a frame (always the middle one)
      out.append(seq[int(tau)])
      continue
    i = int(np.clip(np.floor(tau), 0, t - 2))
    a = np.float32(tau - i)
    out.append(seq[i] + a * (seq[i + 1] - seq[i]))
  return np.stack(out).astype(np.float32)


SHADINGS = ('pbr', 'vertex')
# pyrender's metallic-roughness shader scales diffuse light by (1 - 0.04) / pi
# (dielectric F0 = min_roughness = 0.04); vertex shading uses the same Lambert factor.
_DIFFUSE = (1.0 - 0.04) / np.pi


def vertex_lighting(colors_u8: np.ndarray, normals: np.ndarray,
                    lighting: appearance_lib.Lighting) -> np.ndarray:
  """Per-vertex Lambert lighting: (V, 3) float32 sRGB in [0, 1] of sRGB albedos (V, 3)
  uint8 under the key light + ambient (the diffuse part of pyrender's shader)."""
  albedo = srgb_to_linear(colors_u8)
  ndotl = np.clip(normals @ -np.asarray(lighting.direction, np.float32), 0.0, None)[:, None]
  light = (np.asarray(lighting.ambient, np.float32)
           + _DIFFUSE * float(lighting.intensity) * np.asarray(lighting.color, np.float32) * ndotl)
  return np.clip(albedo * light, 0.0, 1.0) ** (1.0 / GAMMA)


class Renderer:
  """Renders posed meshes into calibrated views at a fixed image size.

  Args:
    image_size: (width, height) in pixels.
    shading: 'pbr' (default): pyrender's metallic-roughness shader lights every pixel
      with a DirectionalLight and the scene's ambient light (smooth vertex normals);
      'vertex': the same key + ambient light, diffuse only, evaluated per vertex on the
      CPU and interpolated (Gouraud), drawn with pyrender's unlit FLAT mode -- 2.5-3x
      faster on llvmpipe (README.md), visually close at body-mesh resolution.

  Use as a context manager, or call `close()` to free the GL context. One instance per
  process (or thread) is enough; it is reused across frames, cameras and clips.
  """

  def __init__(self, image_size, shading: str = 'pbr'):
    if shading not in SHADINGS:
      raise ValueError(f'shading must be one of {SHADINGS}, got {shading!r}')
    self.shading = shading
    try:
      width, height = (int(s) for s in image_size)
    except (TypeError, ValueError):
      raise ValueError(f'image_size must be (width, height), got {image_size!r}') from None
    if width < 1 or height < 1:
      raise ValueError(f'image_size must be positive, got {image_size!r}')
    self.image_size = (width, height)
    pyrender = _gl.import_pyrender()
    self._pyrender = pyrender
    self._renderer = pyrender.OffscreenRenderer(width, height)
    self._scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.0, 0.0, 0.0))
    self._material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=(1.0, 1.0, 1.0, 1.0), metallicFactor=0.0, roughnessFactor=ROUGHNESS)
    self._light = pyrender.DirectionalLight(color=np.ones(3), intensity=1.0)
    self._light_node = self._scene.add(self._light, pose=np.eye(4))
    self._camera_node = None
    self._mesh_node = None
    self._flags = pyrender.RenderFlags.RGBA | pyrender.RenderFlags.SKIP_CULL_FACES
    if shading == 'vertex':
      self._flags |= pyrender.RenderFlags.FLAT

  def close(self) -> None:
    """Frees the GL context (idempotent)."""
    if self._renderer is not None:
      self._renderer.delete()
      self._renderer = None

  def __enter__(self) -> Renderer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def _set_mesh(self, vertices, faces, colors, normals) -> None:
    pyrender = self._pyrender
    prim = pyrender.Primitive(positions=vertices, normals=normals, color_0=colors, indices=faces,
                              material=self._material, mode=pyrender.constants.GLTF.TRIANGLES)
    if self._mesh_node is not None:
      self._scene.remove_node(self._mesh_node)  # its GL buffers are freed at the next render
    self._mesh_node = self._scene.add(pyrender.Mesh(primitives=[prim]))

  def _set_camera(self, camera: geometry.Camera) -> None:
    cam = cameras.pyrender_intrinsics(camera.K, self.image_size)
    if self._camera_node is not None:
      self._scene.remove_node(self._camera_node)
    self._camera_node = self._scene.add(cam, pose=cameras.pyrender_pose(camera))
    self._scene.main_camera_node = self._camera_node

  def _set_lighting(self, lighting: appearance_lib.Lighting) -> None:
    self._light.color = np.asarray(lighting.color, np.float64)
    self._light.intensity = float(lighting.intensity)
    self._scene.set_pose(self._light_node, _light_pose(lighting.direction))
    self._scene.ambient_light = np.asarray(lighting.ambient, np.float64)

  def _check_mesh(self, vertices, faces, vertex_colors):
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces)
    c = np.asarray(vertex_colors)
    if v.ndim not in (2, 3) or v.shape[-1] != 3:
      raise ValueError(f'vertices must be (V, 3) or (n, V, 3) sub-frames, got {v.shape}')
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
      raise ValueError(f'faces must be (F, 3) integers, got {f.dtype} {f.shape}')
    if f.size and (f.min() < 0 or f.max() >= v.shape[-2]):
      raise ValueError(f'faces index vertices outside 0..{v.shape[-2] - 1}')
    if c.shape != (v.shape[-2], 3) or c.dtype != np.uint8:
      raise ValueError(f'vertex_colors must be uint8 ({v.shape[-2]}, 3), got {c.dtype} {c.shape}')
    if not np.all(np.isfinite(v)):
      raise ValueError('vertices must be finite')
    return v, np.ascontiguousarray(f, np.uint32), c

  def render_layer(self, vertices, faces, vertex_colors, camera: geometry.Camera,
                   lighting: appearance_lib.Lighting) -> tuple[np.ndarray, np.ndarray]:
    """The person alone: (rgba (H, W, 4) uint8, colour premultiplied by the coverage
    alpha; depth (H, W) float32, metres along the optical axis, 0 where empty)."""
    if self._renderer is None:
      raise RuntimeError('Renderer is closed')
    v, f, c = self._check_mesh(vertices, faces, vertex_colors)
    if v.ndim != 2:
      raise ValueError(f'render_layer takes one frame of vertices (V, 3), got {v.shape}')
    normals = vertex_normals(v, f)
    if self.shading == 'vertex':  # lit here; FLAT mode draws the colours as they are
      rgb = vertex_lighting(c, normals, lighting)
    else:  # pyrender lights linear albedos and gamma-encodes its output
      rgb = srgb_to_linear(c)
    colors = np.concatenate([rgb, np.ones((len(c), 1), np.float32)], axis=1)
    self._set_mesh(v, f, colors, normals)
    self._set_camera(camera)
    self._set_lighting(lighting)
    rgba, depth = self._renderer.render(self._scene, flags=self._flags)
    return np.asarray(rgba), np.asarray(depth)

  def render(self, vertices, faces, vertex_colors, camera: geometry.Camera,
             appearance: appearance_lib.Appearance, view: int = 0
             ) -> tuple[np.ndarray, np.ndarray]:
    """Renders a frame over `appearance.backgrounds[view]` with `appearance.lighting`.

    Args:
      vertices: (V, 3) float world vertices (metres), or (n, V, 3) motion-blur sub-frames
        (n odd, see `blur_subframes`): the RGB is their average (in linear light) and
        the mask is the middle sub-frame's.
      faces: (F, 3) integer triangles.
      vertex_colors: (V, 3) uint8 sRGB.
      camera: geometry.Camera (OpenCV convention).
      appearance: backgrounds and lighting.
      view: which background.

    Returns:
      rgb (H, W, 3) uint8, mask (H, W) bool (person pixels: depth > 0).
    """
    width, height = self.image_size
    backgrounds = appearance.backgrounds
    if not 0 <= view < backgrounds.shape[0]:
      raise ValueError(f'view {view} out of range: the appearance has {backgrounds.shape[0]} '
                       'backgrounds')
    bg = backgrounds[view]
    if bg.shape != (height, width, 3):
      raise ValueError(f'background {bg.shape} does not match the renderer image size '
                       f'(width, height) = {self.image_size}')
    v = np.asarray(vertices, np.float32)
    subframes = v[None] if v.ndim == 2 else v
    if subframes.ndim != 3 or subframes.shape[0] % 2 == 0:
      raise ValueError(f'vertices must be (V, 3) or an odd number of sub-frames (n, V, 3), '
                       f'got {v.shape}')
    bg_f = bg.astype(np.float32)
    linear_sum = None
    mask = None
    for k, sub in enumerate(subframes):
      rgba, depth = self.render_layer(sub, faces, vertex_colors, camera, appearance.lighting)
      alpha = rgba[..., 3:4].astype(np.float32) / 255.0
      composite = rgba[..., :3].astype(np.float32) + (1.0 - alpha) * bg_f
      if k == len(subframes) // 2:
        mask = depth > 0
      if len(subframes) == 1:
        return np.clip(np.round(composite), 0, 255).astype(np.uint8), mask
      lin = (composite / 255.0) ** GAMMA
      linear_sum = lin if linear_sum is None else linear_sum + lin
    return linear_to_srgb_u8(linear_sum / len(subframes)), mask
