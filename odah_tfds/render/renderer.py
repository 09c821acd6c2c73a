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

Textured path (`appearance.texture` / `render_layer(texture=...)`, a UVTexture): UVs are
per face corner, so the mesh is unwelded into one vertex per distinct (vertex, UV)
pair (anny: 13,718 vertices -> 14,898), positions and smooth normals (computed on the
welded mesh, so shading stays smooth across UV seams) gathered per pair; the index
mapping is cached per (faces, UV faces). The texture is sRGB uint8 and mipmapped
(trilinear). Colour space: pyrender decodes base-colour textures with the exact sRGB
curve while vertex colours here are decoded with a 2.2 gamma; the texture is therefore
re-encoded through a lookup table (x -> sRGB-encode((x / 255)^2.2)) so that both paths
light the same linear albedo (a uniform texture and uniform vertex colours of the same
sRGB value render alike: tests/test_textures.py). With shading='vertex' the texture is
drawn unlit (FLAT) times a per-vertex light factor light^(1/2.2), which equals the
vertex path's (albedo light)^(1/2.2). One difference remains in 'pbr': pyrender
multiplies vertex colours into the whole lit colour, specular included, whereas a
texture tints only the diffuse part (the physically right dielectric); at roughness 0.75
the texture is brighter by 3-6 sRGB levels on average on a lit sphere, up to 12-18 in
the highlight's darkest channel, and equal under ambient light.

Extra lights (`Lighting.extra`): directional fill lights and point lights are added to
the scene per render ('vertex' shading adds their diffuse term per vertex).
"""

from __future__ import annotations

import hashlib

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


def vertex_light(normals: np.ndarray, lighting: appearance_lib.Lighting,
                 positions: np.ndarray | None = None) -> np.ndarray:
  """(V, 3) float32 linear light reaching each vertex's albedo: ambient + the diffuse
  term of the key light and of any extra lights (point lights need `positions`)."""
  ndotl = np.clip(normals @ -np.asarray(lighting.direction, np.float32), 0.0, None)[:, None]
  light = (np.asarray(lighting.ambient, np.float32)
           + _DIFFUSE * float(lighting.intensity) * np.asarray(lighting.color, np.float32) * ndotl)
  for extra in lighting.extra:
    color = _DIFFUSE * float(extra.intensity) * np.asarray(extra.color, np.float32)
    if extra.kind == 'directional':
      light = light + color * np.clip(normals @ -np.asarray(extra.direction, np.float32),
                                      0.0, None)[:, None]
    else:
      if positions is None:
        raise ValueError('vertex_light: point lights need the vertex positions')
      to_light = np.asarray(extra.position, np.float32) - positions
      d2 = np.maximum((to_light * to_light).sum(axis=1, keepdims=True), 1e-6)
      cos = np.clip((normals * to_light).sum(axis=1, keepdims=True) / np.sqrt(d2), 0.0, None)
      light = light + color * cos / d2
  return light


def vertex_lighting(colors_u8: np.ndarray, normals: np.ndarray,
                    lighting: appearance_lib.Lighting,
                    positions: np.ndarray | None = None) -> np.ndarray:
  """Per-vertex Lambert lighting: (V, 3) float32 sRGB in [0, 1] of sRGB albedos (V, 3)
  uint8 under the key light + ambient (+ extra lights; point lights need `positions`)
  (the diffuse part of pyrender's shader)."""
  albedo = srgb_to_linear(colors_u8)
  light = vertex_light(normals, lighting, positions)
  return np.clip(albedo * light, 0.0, 1.0) ** (1.0 / GAMMA)


def _srgb_encode(linear: np.ndarray) -> np.ndarray:
  """The exact sRGB transfer function (what pyrender's shader inverts for textures)."""
  linear = np.asarray(linear, np.float64)
  return np.where(linear <= 0.0031308, 12.92 * linear,
                  1.055 * np.power(np.maximum(linear, 0.0031308), 1.0 / 2.4) - 0.055)


# uint8 sRGB (2.2 gamma, as vertex colours) -> the uint8 whose exact-sRGB decoding in
# pyrender's shader is the same linear value. Off by < 0.5 sRGB levels after the
# shader's 1/2.2 output encoding except in the darkest few levels (quantisation).
TEXTURE_LUT = np.clip(np.round(_srgb_encode((np.arange(256) / 255.0) ** GAMMA) * 255.0),
                      0, 255).astype(np.uint8)


def unwelded_indices(faces: np.ndarray, uv_faces: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """One vertex per distinct (vertex, UV) corner pair: (vertex index (P,), UV index (P,),
  faces (F, 3) uint32 over the P pairs)."""
  f = np.asarray(faces, np.int64)
  t = np.asarray(uv_faces, np.int64)
  if f.shape != t.shape or f.ndim != 2 or f.shape[1] != 3:
    raise ValueError(f'faces and UV faces must both be (F, 3), got {f.shape} and {t.shape}')
  pairs = np.stack([f.ravel(), t.ravel()], axis=1)
  unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
  return (unique[:, 0].astype(np.int64), unique[:, 1].astype(np.int64),
          inverse.reshape(f.shape).astype(np.uint32))


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
    self._extra_light_nodes = []
    # Textured path caches: unwelded index maps by (faces, UV faces) fingerprint (a few
    # topologies), and the material of the last texture (kept on the GPU across frames).
    self._unwelded = {}
    self._texture_material = None
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
    for node in self._extra_light_nodes:
      self._scene.remove_node(node)
    self._extra_light_nodes = []
    if self.shading == 'vertex':  # lit per vertex; FLAT mode ignores scene lights
      return
    pyrender = self._pyrender
    for extra in lighting.extra:
      color = np.asarray(extra.color, np.float64)
      if extra.kind == 'directional':
        light = pyrender.DirectionalLight(color=color, intensity=float(extra.intensity))
        pose = _light_pose(extra.direction)
      else:
        light = pyrender.PointLight(color=color, intensity=float(extra.intensity))
        pose = np.eye(4)
        pose[:3, 3] = extra.position
      self._extra_light_nodes.append(self._scene.add(light, pose=pose))

  def _unwelded_mesh(self, faces: np.ndarray, uv_faces: np.ndarray):
    """Cached `unwelded_indices` of (faces, uv_faces)."""
    f = np.ascontiguousarray(faces, np.int64)
    t = np.ascontiguousarray(uv_faces, np.int64)
    key = hashlib.blake2b(f.tobytes() + b'|' + t.tobytes(), digest_size=16).digest()
    if key not in self._unwelded:
      if len(self._unwelded) >= 4:
        self._unwelded.pop(next(iter(self._unwelded)))
      self._unwelded[key] = unwelded_indices(f, t)
    return self._unwelded[key]

  def _material_for(self, texture: appearance_lib.UVTexture):
    """The material drawing `texture` (cached for the last texture, so a clip's texture
    is uploaded and mipmapped once, not per frame)."""
    cached = self._texture_material
    if cached is not None and cached[0] is texture:
      return cached[1]
    pyrender = self._pyrender
    image = np.asarray(texture.image, np.uint8)
    if self.shading == 'pbr':  # pyrender decodes exact sRGB; vertex colours use 2.2
      image = TEXTURE_LUT[image]
    tex = pyrender.Texture(source=np.ascontiguousarray(image), source_channels='RGB',
                           sampler=pyrender.Sampler(
                               wrapS=pyrender.constants.GLTF.CLAMP_TO_EDGE,
                               wrapT=pyrender.constants.GLTF.CLAMP_TO_EDGE))
    material = pyrender.MetallicRoughnessMaterial(
        baseColorFactor=(1.0, 1.0, 1.0, 1.0), metallicFactor=0.0, roughnessFactor=ROUGHNESS,
        baseColorTexture=tex)
    self._texture_material = (texture, material)
    return material

  def _set_textured_mesh(self, v, f, normals, texture: appearance_lib.UVTexture,
                         lighting: appearance_lib.Lighting) -> None:
    uv_faces = np.asarray(texture.face_texture_coordinate_indices)
    if uv_faces.shape != f.shape:
      raise ValueError(f'the texture has UV faces {uv_faces.shape}, the mesh faces {f.shape}')
    vertex_index, uv_index, faces = self._unwelded_mesh(f, uv_faces)
    uvs = np.asarray(texture.texture_coordinates, np.float32)
    kwargs = {}
    if self.shading == 'vertex':  # FLAT: texture x light^(1/2.2) = (albedo light)^(1/2.2)
      light = vertex_light(normals, lighting, v) ** (1.0 / GAMMA)
      kwargs['color_0'] = np.concatenate([light[vertex_index],
                                          np.ones((len(vertex_index), 1), np.float32)], axis=1)
    pyrender = self._pyrender
    prim = pyrender.Primitive(positions=v[vertex_index], normals=normals[vertex_index],
                              texcoord_0=uvs[uv_index], indices=faces,
                              material=self._material_for(texture),
                              mode=pyrender.constants.GLTF.TRIANGLES, **kwargs)
    if self._mesh_node is not None:
      self._scene.remove_node(self._mesh_node)
    self._mesh_node = self._scene.add(pyrender.Mesh(primitives=[prim]))

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
                   lighting: appearance_lib.Lighting,
                   texture: appearance_lib.UVTexture | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The person alone: (rgba (H, W, 4) uint8, colour premultiplied by the coverage
    alpha; depth (H, W) float32, metres along the optical axis, 0 where empty).

    With `texture` (a UVTexture over these faces) the mesh is drawn textured and
    `vertex_colors` are only checked, not drawn.
    """
    if self._renderer is None:
      raise RuntimeError('Renderer is closed')
    v, f, c = self._check_mesh(vertices, faces, vertex_colors)
    if v.ndim != 2:
      raise ValueError(f'render_layer takes one frame of vertices (V, 3), got {v.shape}')
    normals = vertex_normals(v, f)
    if texture is not None:
      self._set_textured_mesh(v, f, normals, texture, lighting)
    else:
      if self.shading == 'vertex':  # lit here; FLAT mode draws the colours as they are
        rgb = vertex_lighting(c, normals, lighting, v)
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
      vertex_colors: (V, 3) uint8 sRGB (not drawn when `appearance.texture` is set: the
        mesh is then drawn with that UVTexture).
      camera: geometry.Camera (OpenCV convention).
      appearance: backgrounds, lighting and the optional texture.
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
      rgba, depth = self.render_layer(sub, faces, vertex_colors, camera, appearance.lighting,
                                      texture=appearance.texture)
      alpha = rgba[..., 3:4].astype(np.float32) / 255.0
      composite = rgba[..., :3].astype(np.float32) + (1.0 - alpha) * bg_f
      if k == len(subframes) // 2:
        mask = depth > 0
      if len(subframes) == 1:
        return np.clip(np.round(composite), 0, 255).astype(np.uint8), mask
      lin = (composite / 255.0) ** GAMMA
      linear_sum = lin if linear_sum is None else linear_sum + lin
    return linear_to_srgb_u8(linear_sum / len(subframes)), mask
