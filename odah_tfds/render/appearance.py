"""Procedural appearance of an ODAH clip: skin, clothes, hair, backgrounds, light, blur.

Everything is sampled from documented distributions (`AppearanceConfig`, README.md) with
a numpy Generator, so the same generator state gives the same appearance, and
`Appearance.to_json()` records every choice for the dataset's `appearance_json`.

Body regions come from the body model's skinning: each vertex goes to the body part
(`PARTS`) whose joints carry most of its skinning weight, the part of a joint being a
function of the joint's name (`body_part_of_joint`, which knows anny's MakeHuman bone
names and SMPL-X's joint names). Clothing covers parts: a shirt (torso + upper arms,
sometimes forearms), trousers or shorts (pelvis + thighs, sometimes shanks) and shoes
(feet); the rest is skin, plus hair on the scalp and dark eyes. Patterns are functions
of each vertex's rest-pose position, so they move with the body.

Colours are sRGB uint8 per vertex; the renderer converts them to linear light.

Opt-in extras (off in the default `AppearanceConfig`, and then not drawn from the
generator at all, so existing configs keep their random streams and records):
`uv_texture_probability` > 0 paints a UV texture (`UVTexture`, painted by
`textures.sample_uv_texture` from the same garment choices as the vertex colours) that
the renderer uses instead of the vertex colours; `extra_light_probability` > 0 adds a
fill light and sometimes a point light (`ExtraLight`). Both are drawn after everything
else of a clip, so a clip with them has the same vertex colours, backgrounds, key light
and blur as the same clip without them.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import json
import logging
import math
import pathlib
from typing import Any

import numpy as np
from PIL import Image

from odah_tfds.body import anny_body
from odah_tfds.body import smplx_body

_log = logging.getLogger(__name__)

# Body parts, in index order of `BodyParts.part_index`.
PARTS = ('head', 'eye', 'neck', 'torso', 'pelvis', 'upper_arm', 'forearm', 'hand', 'thigh',
         'shank', 'foot')
_PART_ID = {p: i for i, p in enumerate(PARTS)}

# Skin palette: sRGB colours standing for the six Fitzpatrick skin types (I very light ..
# VI very dark). Project choices approximating typical photographed skin tones, not
# measured reflectances; tones are sampled continuously along this path.
SKIN_PALETTE = ((246, 222, 203), (234, 196, 168), (212, 166, 128), (172, 122, 84),
                (122, 80, 52), (74, 48, 33))
# Hair colours (sRGB) and their probabilities.
HAIR_PALETTE = {'black': (22, 18, 16), 'dark_brown': (55, 37, 26), 'brown': (98, 68, 44),
                'blonde': (184, 152, 104), 'red': (130, 58, 30), 'grey': (150, 148, 145),
                'white': (215, 212, 205)}
HAIR_PROBABILITIES = {'black': 0.3, 'dark_brown': 0.25, 'brown': 0.18, 'blonde': 0.12,
                      'red': 0.05, 'grey': 0.07, 'white': 0.03}
EYE_COLOR = (38, 30, 26)
PATTERNS = ('solid', 'stripes', 'checks', 'noise')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
# Prints a UV texture may add to a garment whose vertex pattern is 'solid' (the other
# patterns are painted as they are): see TextureConfig.solid_print_probabilities.
SOLID_PRINTS = ('solid', 'dots', 'logo')


@dataclasses.dataclass(frozen=True)
class TextureConfig:
  """Distributions of the UV textures (`textures.sample_uv_texture`; uniform ranges).

  Lengths are metres on the rest-pose body; shading factors multiply sRGB values.

  Attributes:
    size: T, texture side in texels (T x T sRGB). 512: ~3.4 mm per texel on the body's
      charts (median; the face's chart is ~2x finer).
    skin_blotch_sd_range: SD of the low-frequency multiplicative skin variation.
    skin_blotch_cell_range: lattice cell of that variation's value noise.
    skin_region_strength_range: how strongly anny's region masks (lips, aureolae, nails,
      eyelids, ears, inside of the mouth, crotch) tint the skin (1 = the full tint).
    solid_print_probabilities: probabilities of SOLID_PRINTS on a garment whose vertex
      pattern is 'solid' (stripes, checks and noise garments keep their pattern).
    dot_spacing_range: dot grid spacing; dot_radius_range: radius / spacing.
    logo_width_range: width of a logo-like block (chest of shirts, thigh of trousers);
      height = width x U(0.35, 0.9).
    fold_depth_range: darkening at the crest of a fold band (multiplicative).
    fold_period_range: spacing of fold bands along the limb / body axis.
    hem_width_range: width of the hem band at every garment edge.
    seam_darkening_range: darkening of hems, side seams and stitch lines.
    sole_height_range: height of the shoe sole band above the lowest foot point.
    hair_strand_width_range: width of the hair strands (anisotropic noise, across).
    hair_contrast_range: relative brightness variation between strands.
  """

  size: int = 512
  skin_blotch_sd_range: tuple[float, float] = (0.02, 0.06)
  skin_blotch_cell_range: tuple[float, float] = (0.04, 0.12)
  skin_region_strength_range: tuple[float, float] = (0.6, 1.0)
  solid_print_probabilities: tuple[float, float, float] = (0.5, 0.25, 0.25)
  dot_spacing_range: tuple[float, float] = (0.02, 0.06)
  dot_radius_range: tuple[float, float] = (0.15, 0.35)
  logo_width_range: tuple[float, float] = (0.06, 0.16)
  fold_depth_range: tuple[float, float] = (0.1, 0.35)
  fold_period_range: tuple[float, float] = (0.03, 0.08)
  hem_width_range: tuple[float, float] = (0.008, 0.02)
  seam_darkening_range: tuple[float, float] = (0.06, 0.2)
  sole_height_range: tuple[float, float] = (0.015, 0.035)
  hair_strand_width_range: tuple[float, float] = (0.002, 0.006)
  hair_contrast_range: tuple[float, float] = (0.1, 0.35)

  def __post_init__(self):
    if not 64 <= self.size <= 4096:
      raise ValueError(f'TextureConfig.size must lie in [64, 4096] texels, got {self.size}')
    probs = np.asarray(self.solid_print_probabilities, np.float64)
    if probs.shape != (len(SOLID_PRINTS),) or np.any(probs < 0) or not np.isclose(probs.sum(), 1):
      raise ValueError(f'solid_print_probabilities must be {len(SOLID_PRINTS)} non-negative '
                       f'numbers summing to 1 (for {SOLID_PRINTS}), got '
                       f'{self.solid_print_probabilities}')
    for field in dataclasses.fields(self):
      if field.name.endswith('_range'):
        lo, hi = getattr(self, field.name)
        if not 0 <= lo <= hi:
          raise ValueError(f'TextureConfig.{field.name} must be (low, high) with '
                           f'0 <= low <= high, got {(lo, hi)}')


@dataclasses.dataclass(frozen=True)
class AppearanceConfig:
  """Distributions of the appearance (uniform ranges unless stated; angles in degrees).

  Attributes:
    skin_noise: SD of the per-vertex skin colour noise (sRGB units of 255).
    skin_tint: SD of the per-channel multiplicative tint of the sampled tone.
    long_sleeve_probability / long_trousers_probability / shoes_probability /
      bald_probability / bare_torso_probability: Bernoulli probabilities (a bare torso:
      no shirt, as in gait and sports labs).
    pattern_probabilities: probabilities of PATTERNS for the shirt and the trousers.
    pattern_period_range: stripe / check / noise period (metres, rest pose).
    garment_saturation_range, garment_value_range: HSV of garment colours (hue U(0, 1)).
    cloth_noise: SD of per-vertex garment colour noise (sRGB units).
    light_elevation_range, light_intensity_range: key light (pyrender DirectionalLight,
      lux); azimuth U(0, 360).
    ambient_range: grey level of the ambient light (linear), tinted like the key light.
    blur_probability: probability that the clip has motion blur.
    blur_subframes: odd sub-frame counts to choose from (uniformly).
    blur_shutter_range: exposure as a fraction of the frame interval.
    background_noise_range: SD of per-pixel noise of procedural backgrounds (sRGB units).
    background_zoom_range: extra zoom of folder backgrounds beyond covering the image.
    uv_texture_probability: chance that a clip is rendered with a procedural UV texture
      (skin with region masks and blotches; garments with prints, folds, seams and hems;
      shoes with soles; hair strands: `textures.py`) instead of its vertex colours. Needs
      a body with texture coordinates (anny). 0 (default): nothing is drawn for it.
    texture: the texture's distributions (used only when a clip is textured).
    extra_light_probability: chance that a clip gets a fill light besides the key light
      (a DirectionalLight from the key's opposite side: azimuth key + 180 +- 60 deg,
      elevation U(-20, 40) deg, intensity key x U(fill_intensity_ratio_range), its own
      white balance) and, with `point_light_probability`, also a PointLight
      U(point_light_distance_range) m from the clip's centre (azimuth U(0, 360) deg,
      height U(-0.3, 1.5) m above the centre) giving U(point_light_irradiance_range) lux
      there. 0 (default): nothing is drawn for it.
  """

  skin_noise: float = 2.5
  skin_tint: float = 0.03
  long_sleeve_probability: float = 0.4
  long_trousers_probability: float = 0.65
  shoes_probability: float = 0.9
  bald_probability: float = 0.1
  bare_torso_probability: float = 0.0
  pattern_probabilities: tuple[float, float, float, float] = (0.45, 0.25, 0.15, 0.15)
  pattern_period_range: tuple[float, float] = (0.03, 0.10)
  garment_saturation_range: tuple[float, float] = (0.0, 0.85)
  garment_value_range: tuple[float, float] = (0.12, 0.95)
  cloth_noise: float = 3.0
  light_elevation_range: tuple[float, float] = (20.0, 70.0)
  light_intensity_range: tuple[float, float] = (2.5, 5.0)
  ambient_range: tuple[float, float] = (0.2, 0.5)
  blur_probability: float = 0.2
  blur_subframes: tuple[int, ...] = (3, 5)
  blur_shutter_range: tuple[float, float] = (0.3, 1.0)
  background_noise_range: tuple[float, float] = (0.0, 6.0)
  background_zoom_range: tuple[float, float] = (1.0, 1.3)
  uv_texture_probability: float = 0.0
  texture: TextureConfig = TextureConfig()
  extra_light_probability: float = 0.0
  point_light_probability: float = 0.5
  fill_intensity_ratio_range: tuple[float, float] = (0.15, 0.6)
  point_light_distance_range: tuple[float, float] = (1.5, 4.0)
  point_light_irradiance_range: tuple[float, float] = (0.5, 2.5)

  def __post_init__(self):
    probs = np.asarray(self.pattern_probabilities, np.float64)
    if probs.shape != (len(PATTERNS),) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
      raise ValueError(f'pattern_probabilities must be {len(PATTERNS)} non-negative numbers '
                       f'summing to 1 (for {PATTERNS}), got {self.pattern_probabilities}')
    for name in ('long_sleeve_probability', 'long_trousers_probability', 'shoes_probability',
                 'bald_probability', 'blur_probability', 'bare_torso_probability',
                 'uv_texture_probability', 'extra_light_probability', 'point_light_probability'):
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f'AppearanceConfig.{name} must lie in [0, 1], got {getattr(self, name)}')
    if not self.blur_subframes or any(n < 1 or n % 2 == 0 for n in self.blur_subframes):
      raise ValueError('AppearanceConfig.blur_subframes must hold odd counts >= 1 (the middle '
                       f'sub-frame is the frame itself), got {self.blur_subframes}')
    if self.pattern_period_range[0] <= 0:
      raise ValueError(f'pattern_period_range must be > 0 m, got {self.pattern_period_range}')
    if not isinstance(self.texture, TextureConfig):
      raise TypeError(f'AppearanceConfig.texture must be a TextureConfig, got '
                      f'{type(self.texture).__name__}')
    if self.point_light_distance_range[0] <= 0:
      raise ValueError('point_light_distance_range must be > 0 m, got '
                       f'{self.point_light_distance_range}')


# ---- body parts --------------------------------------------------------------------------------
_ANNY_PREFIXES = (
    ('spine05', 'pelvis'), ('spine04', 'pelvis'), ('pelvis', 'pelvis'), ('spine', 'torso'),
    ('clavicle', 'torso'), ('shoulder01', 'torso'), ('neck', 'neck'), ('head', 'head'),
    ('eye', 'eye'), ('upperarm', 'upper_arm'), ('lowerarm', 'forearm'), ('wrist', 'hand'),
    ('finger', 'hand'), ('metacarpal', 'hand'), ('upperleg', 'thigh'), ('lowerleg', 'shank'),
    ('foot', 'foot'), ('toe', 'foot'))
_SMPLX_SUFFIXES = (
    ('hip', 'thigh'), ('knee', 'shank'), ('ankle', 'foot'), ('foot', 'foot'),
    ('collar', 'torso'), ('shoulder', 'upper_arm'), ('elbow', 'forearm'), ('wrist', 'hand'),
    ('eye_smplhf', 'eye'), ('index', 'hand'), ('middle', 'hand'), ('pinky', 'hand'),
    ('ring', 'hand'), ('thumb', 'hand'))
_SMPLX_CENTRAL = {'pelvis': 'pelvis', 'spine1': 'torso', 'spine2': 'torso', 'spine3': 'torso',
                  'neck': 'neck', 'head': 'head', 'jaw': 'head'}


def body_part_of_joint(name: str) -> str:
  """Body part (one of PARTS) of a skinning joint, from its name.

  Knows anny's MakeHuman bone names ('upperarm01.L', 'spine03', 'root', ...) and SMPL-X
  joint names ('left_shoulder', 'spine1', ...). Raises ValueError for other names.
  """
  if name == 'root':
    return 'pelvis'
  if name in _SMPLX_CENTRAL:
    return _SMPLX_CENTRAL[name]
  for side in ('left_', 'right_'):
    if name.startswith(side):
      rest = name[len(side):]
      for suffix, part in _SMPLX_SUFFIXES:
        if rest.startswith(suffix):
          return part
  base = name.rsplit('.', 1)[0] if name.endswith(('.L', '.R')) else name
  for prefix, part in _ANNY_PREFIXES:
    if base.startswith(prefix):
      return part
  raise ValueError(f'no body part known for the joint {name!r} (anny bone or SMPL-X joint '
                   'names expected)')


@dataclasses.dataclass(frozen=True, eq=False)
class BodyParts:
  """Per-vertex body parts and the rest-pose positions patterns are drawn on.

  Attributes:
    part_index: (V,) int8 index into PARTS.
    rest_vertices: (V, 3) float32 world rest pose (standing, facing +x, metres).
    backend: the body model's name.
    faces: (F, 3) int32 triangles, or None; with the two fields below, what UV textures
      need (`has_uvs`); `from_body` fills them for anny.
    texture_coordinates: (N_uv, 2) float32 UVs in [0, 1] (v up: v = 1 is the top row
      of a texture image), or None.
    face_texture_coordinate_indices: (F, 3) int32 UV index of each face corner (UVs are
      per corner: a vertex on a UV seam has several), or None.
  """

  part_index: np.ndarray
  rest_vertices: np.ndarray
  backend: str = ''
  faces: np.ndarray | None = None
  texture_coordinates: np.ndarray | None = None
  face_texture_coordinate_indices: np.ndarray | None = None

  def __post_init__(self):
    idx, rest = np.asarray(self.part_index), np.asarray(self.rest_vertices)
    if idx.ndim != 1 or rest.shape != (idx.shape[0], 3):
      raise ValueError(f'BodyParts needs part_index (V,) and rest_vertices (V, 3), got '
                       f'{idx.shape} and {rest.shape}')
    if idx.size and (idx.min() < 0 or idx.max() >= len(PARTS)):
      raise ValueError(f'part_index values must index PARTS (0..{len(PARTS) - 1})')
    uv_fields = (self.faces, self.texture_coordinates, self.face_texture_coordinate_indices)
    if any(a is not None for a in uv_fields):
      if any(a is None for a in uv_fields):
        raise ValueError('BodyParts: faces, texture_coordinates and '
                         'face_texture_coordinate_indices go together (all or none)')
      _check_uv_mesh(idx.shape[0], *uv_fields)

  @property
  def num_vertices(self) -> int:
    return int(self.part_index.shape[0])

  @property
  def has_uvs(self) -> bool:
    """Whether the mesh's texture coordinates are known (UV textures possible)."""
    return self.texture_coordinates is not None

  def mask(self, *parts: str) -> np.ndarray:
    """(V,) bool: vertices in any of `parts`."""
    return np.isin(self.part_index, [_PART_ID[p] for p in parts])

  @staticmethod
  def from_skinning(joint_names, weights, rest_vertices, backend: str = '') -> BodyParts:
    """Parts from dense skinning weights (V, J) over `joint_names` (J): each vertex takes
    the part whose joints hold most of its weight."""
    w = np.asarray(weights, np.float64)
    if w.ndim != 2 or w.shape[1] != len(joint_names):
      raise ValueError(f'weights must be (V, {len(joint_names)}), got {w.shape}')
    joint_part = np.array([_PART_ID[body_part_of_joint(n)] for n in joint_names])
    per_part = np.zeros((w.shape[0], len(PARTS)))
    for p in range(len(PARTS)):
      per_part[:, p] = w[:, joint_part == p].sum(axis=1)
    return BodyParts(part_index=per_part.argmax(axis=1).astype(np.int8),
                     rest_vertices=np.asarray(rest_vertices, np.float32), backend=backend)

  @staticmethod
  def from_body(body) -> BodyParts:
    """Parts of an anny (`AnnyBody`) or SMPL-X (`SmplxBody`) body model (cached)."""
    return _body_parts_cached(body)


def _check_uv_mesh(num_vertices: int, faces, uvs, uv_faces) -> None:
  f, t, tf = np.asarray(faces), np.asarray(uvs), np.asarray(uv_faces)
  if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
    raise ValueError(f'faces must be (F, 3) integers, got {f.dtype} {f.shape}')
  if f.size and (f.min() < 0 or f.max() >= num_vertices):
    raise ValueError(f'faces index vertices outside 0..{num_vertices - 1}')
  if t.ndim != 2 or t.shape[1] != 2 or not np.all(np.isfinite(t)):
    raise ValueError(f'texture_coordinates must be finite (N_uv, 2), got {t.shape}')
  if tf.shape != f.shape or not np.issubdtype(tf.dtype, np.integer):
    raise ValueError(f'face_texture_coordinate_indices must be integers shaped like faces '
                     f'{f.shape}, got {tf.dtype} {tf.shape}')
  if tf.size and (tf.min() < 0 or tf.max() >= t.shape[0]):
    raise ValueError(f'face_texture_coordinate_indices index UVs outside 0..{t.shape[0] - 1}')


@functools.lru_cache(maxsize=4)
def _body_parts_cached(body) -> BodyParts:
  name = getattr(body, 'name', None)
  if name == 'anny':
    model = body.model
    w = model.vertex_bone_weights.detach().cpu().numpy().astype(np.float64)
    idx = model.vertex_bone_indices.detach().cpu().numpy().astype(np.int64)
    dense = np.zeros((w.shape[0], len(body.bone_labels)))
    np.add.at(dense, (np.repeat(np.arange(w.shape[0]), w.shape[1]), idx.ravel()), w.ravel())
    rest = body.rest_frames(anny_body.AnnySubject()).vertices[0]
    parts = BodyParts.from_skinning(body.bone_labels, dense, rest, backend='anny')
    return dataclasses.replace(
        parts, faces=np.asarray(body.faces, np.int32),
        texture_coordinates=body.texture_coordinates,
        face_texture_coordinate_indices=body.face_texture_coordinate_indices)
  if name == 'smplx':
    geometry = body.rest_geometry()
    data = body.model_data(body.genders[0])
    return BodyParts.from_skinning(smplx_body.JOINT_NAMES, data['weights'], geometry.vertices,
                                   backend='smplx')
  raise ValueError(f"BodyParts.from_body knows the 'anny' and 'smplx' body models, got "
                   f'{name!r}; build BodyParts.from_skinning(...) for others')


# ---- appearance ----------------------------------------------------------------------------------
LIGHT_KINDS = ('directional', 'point')


@dataclasses.dataclass(frozen=True)
class ExtraLight:
  """A light besides the key light (`AppearanceConfig.extra_light_probability`).

  Attributes:
    kind: 'directional' (a fill light) or 'point'.
    color: linear RGB, max 1.
    intensity: 'directional': lux, as the key light; 'point': candela, pyrender's
      PointLight (irradiance intensity / d^2 at distance d, no range cut-off).
    direction: 'directional': unit (3,) world vector the light travels along.
    position: 'point': world position (metres).
  """

  kind: str
  color: tuple[float, float, float]
  intensity: float
  direction: tuple[float, float, float] | None = None
  position: tuple[float, float, float] | None = None

  def __post_init__(self):
    if self.kind not in LIGHT_KINDS:
      raise ValueError(f'ExtraLight.kind must be one of {LIGHT_KINDS}, got {self.kind!r}')
    need = 'direction' if self.kind == 'directional' else 'position'
    if getattr(self, need) is None or len(getattr(self, need)) != 3:
      raise ValueError(f'a {self.kind} ExtraLight needs a 3-vector {need}')
    if self.intensity < 0:
      raise ValueError(f'ExtraLight.intensity must be >= 0, got {self.intensity}')


@dataclasses.dataclass(frozen=True)
class Lighting:
  """Key light + ambient (+ extra lights). `direction`: unit (3,) world vector the light
  travels along (from the light into the scene); `color`: linear RGB, max 1;
  `intensity`: lux; `ambient`: linear RGB added as ambient * albedo; `extra`: further
  lights (`ExtraLight`; () unless `AppearanceConfig.extra_light_probability` > 0)."""

  direction: tuple[float, float, float]
  color: tuple[float, float, float]
  intensity: float
  ambient: tuple[float, float, float]
  extra: tuple[ExtraLight, ...] = ()


@dataclasses.dataclass(frozen=True)
class MotionBlur:
  """Motion blur: `subframes` renders (odd; the middle one is the frame itself) spread
  over `shutter` x the frame interval, centred on the frame; subframes == 1: none."""

  subframes: int = 1
  shutter: float = 0.0

  @property
  def enabled(self) -> bool:
    return self.subframes > 1 and self.shutter > 0.0

  def offsets(self) -> np.ndarray:
    """(subframes,) sub-frame times relative to the frame, in frame intervals."""
    if not self.enabled:
      return np.zeros(1)
    return self.shutter * (np.arange(self.subframes) / (self.subframes - 1) - 0.5)


@dataclasses.dataclass(frozen=True, eq=False)
class UVTexture:
  """A colour texture and the mesh's texture coordinates it is drawn with.

  Attributes:
    image: (T, T, 3) uint8 sRGB; row 0 is the top (v = 1), column 0 is u = 0, texel
      (r, c) is centred at (u, v) = ((c + 0.5) / T, 1 - (r + 0.5) / T).
    texture_coordinates: (N_uv, 2) float32 UVs in [0, 1].
    face_texture_coordinate_indices: (F, 3) int32, the UV index of each face corner
      (faces as the mesh the renderer draws).
  """

  image: np.ndarray
  texture_coordinates: np.ndarray
  face_texture_coordinate_indices: np.ndarray

  def __post_init__(self):
    img = np.asarray(self.image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or img.shape[0] < 1:
      raise ValueError(f'UVTexture.image must be uint8 (T, T, 3), got {img.dtype} {img.shape}')
    uv, uv_faces = np.asarray(self.texture_coordinates), np.asarray(
        self.face_texture_coordinate_indices)
    if uv.ndim != 2 or uv.shape[1] != 2:
      raise ValueError(f'UVTexture.texture_coordinates must be (N_uv, 2), got {uv.shape}')
    if uv_faces.ndim != 2 or uv_faces.shape[1] != 3 or (
        uv_faces.size and (uv_faces.min() < 0 or uv_faces.max() >= len(uv))):
      raise ValueError('UVTexture.face_texture_coordinate_indices must be (F, 3) indices of '
                       f'texture_coordinates (0..{len(uv) - 1}), got {uv_faces.shape}')


@dataclasses.dataclass(frozen=True, eq=False)
class Appearance:
  """A clip's appearance.

  Attributes:
    vertex_colors: (V, 3) uint8 sRGB.
    backgrounds: (num_views, H, W, 3) uint8, one per view.
    lighting: the key and ambient light (and extra lights).
    motion_blur: blur settings.
    choices: JSON-able record of every sampled choice.
    texture: a UVTexture the renderer draws instead of the vertex colours, or None
      (`AppearanceConfig.uv_texture_probability`); its parameters are
      `choices['texture']`.
  """

  vertex_colors: np.ndarray
  backgrounds: np.ndarray
  lighting: Lighting
  motion_blur: MotionBlur
  choices: dict[str, Any]
  texture: UVTexture | None = None

  @property
  def image_size(self) -> tuple[int, int]:
    """(width, height) of the backgrounds."""
    return int(self.backgrounds.shape[2]), int(self.backgrounds.shape[1])

  def to_json(self, extra: dict[str, Any] | None = None) -> str:
    """Every choice (plus `extra`, e.g. the camera rig's parameters) as sorted JSON."""
    record = dict(self.choices)
    record['lighting'] = dataclasses.asdict(self.lighting)
    if not self.lighting.extra:  # the records of clips without extra lights are unchanged
      del record['lighting']['extra']
    record['motion_blur'] = dataclasses.asdict(self.motion_blur)
    if extra:
      record.update(extra)
    return json.dumps(record, sort_keys=True)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
  return np.array(colorsys.hsv_to_rgb(h, s, v)) * 255.0


def _garment_color(rng: np.random.Generator, config: AppearanceConfig) -> np.ndarray:
  return _hsv(float(rng.uniform()), float(rng.uniform(*config.garment_saturation_range)),
              float(rng.uniform(*config.garment_value_range)))


def _value_noise(points: np.ndarray, cell: float, rng: np.random.Generator) -> np.ndarray:
  """Smooth 3-D value noise in [0, 1] at `points` (N, 3): random lattice values every
  `cell` metres, trilinearly interpolated with a smoothstep."""
  lo = points.min(axis=0)
  q = (points - lo) / cell
  n = np.floor(q).astype(np.int64)
  f = q - n
  f = f * f * (3.0 - 2.0 * f)
  lattice = rng.random(tuple(n.max(axis=0) + 2))
  out = np.zeros(len(points))
  for dx in (0, 1):
    for dy in (0, 1):
      for dz in (0, 1):
        w = ((f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
             * (f[:, 2] if dz else 1 - f[:, 2]))
        out += w * lattice[n[:, 0] + dx, n[:, 1] + dy, n[:, 2] + dz]
  return out


def _garment(rng: np.random.Generator, config: AppearanceConfig, points: np.ndarray,
             center: np.ndarray) -> tuple[np.ndarray, dict]:
  """Colours (N, 3) float sRGB of a garment over its vertices' rest positions."""
  base = _garment_color(rng, config)
  pattern = PATTERNS[int(rng.choice(len(PATTERNS), p=config.pattern_probabilities))]
  info = {'pattern': pattern, 'color': base.round(1).tolist()}
  colors = np.broadcast_to(base, points.shape).copy()
  if pattern == 'solid' or len(points) == 0:
    return colors, info
  if rng.random() < 0.5:  # a contrasting colour, else a darker/lighter shade of the base
    second = _garment_color(rng, config)
  else:
    second = np.clip(base * float(rng.uniform(0.4, 1.6)), 0, 255)
  period = float(rng.uniform(*config.pattern_period_range))
  info.update(second_color=second.round(1).tolist(), period_m=period)
  if pattern == 'stripes':
    vertical = bool(rng.random() < 0.3)
    if vertical:  # around the body's vertical axis, at ~0.15 m radius
      coord = 0.15 * np.arctan2(points[:, 2] - center[2], points[:, 0] - center[0])
    else:
      coord = points[:, 1]
    duty = float(rng.uniform(0.3, 0.7))
    phase = float(rng.uniform())
    on = np.mod(coord / period + phase, 1.0) < duty
    info.update(vertical=vertical, duty=duty)
  elif pattern == 'checks':
    shift = rng.uniform(size=3) * period
    on = np.floor((points + shift) / period).astype(np.int64).sum(axis=1) % 2 == 1
  else:  # noise
    t = _value_noise(points, period, rng)
    on = None
    mix = np.clip((t - 0.5) * 3.0 + 0.5, 0.0, 1.0)[:, None]
    colors = (1 - mix) * base + mix * second
  if on is not None:
    colors[on] = second
  return colors, info


def _hair_mask(parts: BodyParts, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
  """Scalp vertices: the head part above a hairline that is higher at the front."""
  head = parts.mask('head')
  if not head.any():
    return head, {'style': 'none'}
  v = parts.rest_vertices.astype(np.float64)
  hv = v[head]
  top, bottom = hv[:, 1].max(), hv[:, 1].min()
  size = top - bottom
  front, back = hv[:, 0].max(), hv[:, 0].min()
  u = (v[:, 0] - back) / max(front - back, 1e-6)  # 0 at the back of the head, 1 at the front
  front_depth = float(rng.uniform(0.18, 0.3))  # hairline below the top at the forehead
  back_depth = float(rng.uniform(0.45, 0.8))  # down the back of the head
  depth = back_depth + (front_depth - back_depth) * np.clip(u, 0, 1) ** 2
  mask = head & (v[:, 1] > top - depth * size)
  return mask, {'style': 'cap', 'front_depth': front_depth, 'back_depth': back_depth}


def sample_vertex_colors(rng: np.random.Generator, parts: BodyParts,
                         config: AppearanceConfig = AppearanceConfig()
                         ) -> tuple[np.ndarray, dict]:
  """(V, 3) uint8 sRGB vertex colours and the record of the choices."""
  v = parts.rest_vertices.astype(np.float64)
  n = parts.num_vertices
  # Skin: a continuous tone along the palette, a small tint, per-vertex noise.
  tone = float(rng.uniform(0.0, len(SKIN_PALETTE) - 1))
  i = min(int(tone), len(SKIN_PALETTE) - 2)
  palette = np.asarray(SKIN_PALETTE, np.float64)
  skin = palette[i] + (tone - i) * (palette[i + 1] - palette[i])
  skin = np.clip(skin * (1.0 + config.skin_tint * rng.standard_normal(3)), 0, 255)
  colors = np.broadcast_to(skin, (n, 3)) + config.skin_noise * rng.standard_normal((n, 3))
  choices: dict[str, Any] = {'skin': {'fitzpatrick_position': tone + 1.0,
                                      'color': skin.round(1).tolist()}}
  torso_center = v[parts.mask('torso')].mean(axis=0) if parts.mask('torso').any() else v.mean(0)

  long_sleeves = bool(rng.random() < config.long_sleeve_probability)
  long_trousers = bool(rng.random() < config.long_trousers_probability)
  shoes = bool(rng.random() < config.shoes_probability)
  # Drawn only when possible, so configs without bare torsos keep their random stream (and
  # their records) unchanged.
  bare_torso = (config.bare_torso_probability > 0.0
                and bool(rng.random() < config.bare_torso_probability))
  garments = {
      'shirt': (('torso', 'upper_arm', 'forearm') if long_sleeves else ('torso', 'upper_arm')),
      'trousers': (('pelvis', 'thigh', 'shank') if long_trousers else ('pelvis', 'thigh')),
  }
  if bare_torso:
    del garments['shirt']
  for name, covered in garments.items():
    m = parts.mask(*covered)
    cloth, info = _garment(rng, config, v[m], torso_center)
    colors[m] = cloth + config.cloth_noise * rng.standard_normal((int(m.sum()), 3))
    choices[name] = dict(info, parts=list(covered))
  if bare_torso:
    choices['shirt'] = None
  else:
    choices['shirt']['long_sleeves'] = long_sleeves
  choices['trousers']['long'] = long_trousers
  if shoes:
    feet = parts.mask('foot')
    shoe = (np.full(3, float(rng.uniform(200, 245))) if rng.random() < 0.2 else
            _hsv(float(rng.uniform()), float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.05, 0.6))))
    colors[feet] = shoe + config.cloth_noise * rng.standard_normal((int(feet.sum()), 3))
    choices['shoes'] = {'color': shoe.round(1).tolist()}
  else:
    choices['shoes'] = None
  if rng.random() < config.bald_probability:
    choices['hair'] = None
  else:
    names = list(HAIR_PROBABILITIES)
    hair_name = names[int(rng.choice(len(names), p=list(HAIR_PROBABILITIES.values())))]
    hair_mask, info = _hair_mask(parts, rng)
    hair = np.asarray(HAIR_PALETTE[hair_name], np.float64)
    colors[hair_mask] = hair + 4.0 * rng.standard_normal((int(hair_mask.sum()), 3))
    choices['hair'] = dict(info, color_name=hair_name)
  colors[parts.mask('eye')] = EYE_COLOR
  return np.clip(np.round(colors), 0, 255).astype(np.uint8), choices


def sample_lighting(rng: np.random.Generator, config: AppearanceConfig = AppearanceConfig()
                    ) -> Lighting:
  """Key light from a random azimuth and elevation, a random white balance, ambient."""
  elevation = math.radians(float(rng.uniform(*config.light_elevation_range)))
  azimuth = math.radians(float(rng.uniform(0.0, 360.0)))
  to_light = np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                       math.cos(elevation) * math.sin(azimuth)])
  warm, cool = np.array([1.0, 0.88, 0.74]), np.array([0.82, 0.9, 1.0])
  color = warm + float(rng.uniform()) * (cool - warm)
  color /= color.max()
  ambient = float(rng.uniform(*config.ambient_range)) * (0.5 + 0.5 * color)
  return Lighting(direction=tuple(float(x) for x in -to_light),
                  color=tuple(float(x) for x in color),
                  intensity=float(rng.uniform(*config.light_intensity_range)),
                  ambient=tuple(float(x) for x in ambient))


def _white_balance(rng: np.random.Generator) -> np.ndarray:
  warm, cool = np.array([1.0, 0.88, 0.74]), np.array([0.82, 0.9, 1.0])
  color = warm + float(rng.uniform()) * (cool - warm)
  return color / color.max()


def sample_extra_lights(rng: np.random.Generator, lighting: Lighting,
                        config: AppearanceConfig = AppearanceConfig(),
                        anchor=(0.0, 1.0, 0.0)) -> Lighting:
  """`lighting` with extra lights (distributions: `AppearanceConfig`
  extra_light_probability and below). Draws nothing when extra_light_probability is 0.

  Args:
    rng: numpy Generator.
    lighting: the clip's key light and ambient (`sample_lighting`).
    config: the distributions.
    anchor: world point (metres) the point light is placed around: the clip's centre
      (`sample_clip_setup` passes the rig's target).
  """
  if config.extra_light_probability <= 0.0 or rng.random() >= config.extra_light_probability:
    return lighting
  key = -np.asarray(lighting.direction, np.float64)  # towards the key light
  key_azimuth = math.atan2(key[2], key[0])
  azimuth = key_azimuth + math.pi + math.radians(float(rng.uniform(-60.0, 60.0)))
  elevation = math.radians(float(rng.uniform(-20.0, 40.0)))  # below: light bounced off a floor
  to_light = np.array([math.cos(elevation) * math.cos(azimuth), math.sin(elevation),
                       math.cos(elevation) * math.sin(azimuth)])
  fill = ExtraLight(
      kind='directional', color=tuple(float(x) for x in _white_balance(rng)),
      intensity=float(lighting.intensity * rng.uniform(*config.fill_intensity_ratio_range)),
      direction=tuple(float(x) for x in -to_light))
  extra = [fill]
  if rng.random() < config.point_light_probability:
    distance = float(rng.uniform(*config.point_light_distance_range))
    height = float(rng.uniform(-0.3, 1.5))
    horizontal = math.sqrt(max(distance ** 2 - height ** 2, 0.0))
    theta = math.radians(float(rng.uniform(0.0, 360.0)))
    position = np.asarray(anchor, np.float64) + [horizontal * math.cos(theta), height,
                                                 horizontal * math.sin(theta)]
    irradiance = float(rng.uniform(*config.point_light_irradiance_range))
    extra.append(ExtraLight(kind='point', color=tuple(float(x) for x in _white_balance(rng)),
                            intensity=irradiance * distance ** 2,
                            position=tuple(float(x) for x in position)))
  return dataclasses.replace(lighting, extra=tuple(extra))


def sample_motion_blur(rng: np.random.Generator, config: AppearanceConfig = AppearanceConfig()
                       ) -> MotionBlur:
  if rng.random() >= config.blur_probability:
    return MotionBlur()
  n = int(config.blur_subframes[int(rng.integers(len(config.blur_subframes)))])
  return MotionBlur(subframes=n, shutter=float(rng.uniform(*config.blur_shutter_range)))


# ---- backgrounds ---------------------------------------------------------------------------------
def procedural_background(rng: np.random.Generator, image_size,
                          config: AppearanceConfig = AppearanceConfig()
                          ) -> tuple[np.ndarray, dict]:
  """A cheap synthetic scene: a wall (vertical gradient, soft blobs, low-frequency noise)
  over a floor (gradient, optional perspective tiles) at a random horizon, plus pixel noise.

  Returns (H, W, 3) uint8 and the record of the choices.
  """
  width, height = (int(s) for s in image_size)
  y = np.arange(height, dtype=np.float64)[:, None]
  x = np.arange(width, dtype=np.float64)[None, :]
  horizon = float(rng.uniform(0.4, 0.75)) * height
  wall_top, wall_low = _garment_color(rng, config), _garment_color(rng, config)
  floor_near, floor_far = _garment_color(rng, config), _garment_color(rng, config)
  a = np.clip(y / max(horizon, 1.0), 0, 1)[..., None]
  img = np.broadcast_to((1 - a) * wall_top + a * wall_low, (height, width, 3)).copy()
  blobs = int(rng.integers(0, 7))
  for _ in range(blobs):  # soft elliptical shapes: furniture, windows, people far away
    cx, cy = rng.uniform(0, width), rng.uniform(0, horizon)
    sx, sy = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
    w = np.exp(-0.5 * (((x - cx) / sx) ** 4 + ((y - cy) / sy) ** 4))[..., None]
    img = (1 - w) * img + w * _garment_color(rng, config)
  # Low-frequency noise: a coarse random grid upsampled bilinearly.
  cells = int(rng.integers(3, 9))
  grid = rng.standard_normal((cells + 1, cells + 1, 3)) * float(rng.uniform(0, 20))
  gy, gx = y / max(height - 1, 1) * cells, x / max(width - 1, 1) * cells
  iy, ix = np.minimum(gy.astype(int), cells - 1), np.minimum(gx.astype(int), cells - 1)
  fy, fx = (gy - iy)[..., None], (gx - ix)[..., None]
  img += ((1 - fy) * (1 - fx) * grid[iy, ix] + (1 - fy) * fx * grid[iy, ix + 1]
          + fy * (1 - fx) * grid[iy + 1, ix] + fy * fx * grid[iy + 1, ix + 1])
  # Floor below the horizon.
  below = y > horizon
  depth = np.clip((y - horizon) / max(height - horizon, 1.0), 0, 1)[..., None]
  floor = (1 - depth) * floor_far + depth * floor_near
  tiles = bool(rng.random() < 0.5)
  if tiles:  # checker in perspective: depth ~ 1 / (y - horizon)
    d = np.maximum(y - horizon, 1e-3)
    scale = float(rng.uniform(2.0, 8.0)) * height / 64.0
    rows = np.floor(scale * 8.0 / d)
    cols = np.floor((x - width / 2) / d * 4.0 / scale * 8.0)
    odd = ((rows + cols) % 2 == 1)[..., None]
    floor = floor * np.where(odd, float(rng.uniform(0.75, 0.95)), 1.0)
  img = np.where(below[..., None], floor, img)
  sigma = float(rng.uniform(*config.background_noise_range))
  img = img + sigma * rng.standard_normal(img.shape)
  info = {'kind': 'procedural', 'horizon': horizon / height, 'blobs': blobs, 'tiles': tiles,
          'noise_sd': sigma}
  return np.clip(np.round(img), 0, 255).astype(np.uint8), info


def list_background_images(background_dir) -> list[pathlib.Path]:
  """Image files (.png/.jpg/.jpeg, sorted) in `background_dir`; other files are skipped
  with a warning. Raises ValueError if the folder is missing or holds no image file."""
  folder = pathlib.Path(background_dir)
  if not folder.is_dir():
    raise ValueError(f'background folder {folder} does not exist or is not a directory')
  images = []
  for path in sorted(folder.iterdir()):
    if not path.is_file():
      continue
    if path.suffix.lower() in IMAGE_EXTENSIONS:
      images.append(path)
    else:
      _log.warning('background folder: skipping %s (not %s)', path.name,
                   '/'.join(IMAGE_EXTENSIONS))
  if not images:
    raise ValueError(f'background folder {folder} holds no image file '
                     f'({", ".join(IMAGE_EXTENSIONS)}); add images or pass background_dir=None '
                     'for procedural backgrounds')
  return images


def load_background(path, image_size, rng: np.random.Generator,
                    config: AppearanceConfig = AppearanceConfig()) -> tuple[np.ndarray, dict]:
  """An image file scaled to cover `image_size` (times a random zoom), randomly cropped
  and mirrored. Returns (H, W, 3) uint8 and the record. Raises OSError if unreadable."""
  width, height = (int(s) for s in image_size)
  zoom = float(rng.uniform(*config.background_zoom_range))
  with Image.open(path) as im:
    # JPEG: decode at a reduced scale that still covers the target (much faster).
    im.draft('RGB', (int(width * zoom) + 1, int(height * zoom) + 1))
    im = im.convert('RGB')
    w0, h0 = im.size
    scale = zoom * max(width / w0, height / h0)
    new = (max(width, int(math.ceil(w0 * scale))), max(height, int(math.ceil(h0 * scale))))
    im = im.resize(new, Image.Resampling.BILINEAR)
    left = int(rng.integers(0, new[0] - width + 1))
    top = int(rng.integers(0, new[1] - height + 1))
    arr = np.asarray(im, np.uint8)[top:top + height, left:left + width]
  mirror = bool(rng.random() < 0.5)
  if mirror:
    arr = arr[:, ::-1]
  info = {'kind': 'file', 'file': pathlib.Path(path).name, 'zoom': zoom, 'crop_xy': [left, top],
          'mirror': mirror}
  return np.ascontiguousarray(arr), info


def sample_background(rng: np.random.Generator, image_size,
                      config: AppearanceConfig = AppearanceConfig(), background_dir=None,
                      images: list[pathlib.Path] | None = None) -> tuple[np.ndarray, dict]:
  """One view's background: procedural when `background_dir` is None, else a random
  readable image of the folder (unreadable ones are skipped with a warning)."""
  if background_dir is None:
    return procedural_background(rng, image_size, config)
  candidates = list(images) if images is not None else list_background_images(background_dir)
  while candidates:
    path = candidates.pop(int(rng.integers(len(candidates))))
    try:
      return load_background(path, image_size, rng, config)
    except (OSError, ValueError) as e:  # PIL raises these for corrupt / unknown files
      _log.warning('background folder: skipping unreadable image %s (%s)', path.name, e)
  raise ValueError(f'background folder {background_dir}: no readable image')


def sample_appearance(rng: np.random.Generator, body, image_size,
                      config: AppearanceConfig = AppearanceConfig(), background_dir=None,
                      num_views: int = 2, anchor=None) -> Appearance:
  """Samples a clip's appearance.

  Draw order: vertex colours, backgrounds, key light, motion blur, then (only when their
  probabilities are > 0) extra lights and the UV texture, so that the opt-in extras
  change nothing else of a clip.

  Args:
    rng: numpy Generator (consumed deterministically).
    body: `BodyParts`, or an anny / SMPL-X body model (`BodyParts.from_body`).
    image_size: (width, height) of the rendered images (backgrounds match it).
    config: the distributions.
    background_dir: None for procedural backgrounds, else a folder of .png/.jpg/.jpeg
      images (e.g. the TFDS manual_dir/backgrounds); one random image per view.
    num_views: number of backgrounds (one per camera).
    anchor: world point (metres) extra point lights are placed around (the clip's
      centre); None: the centre of the rest pose's bounding box.

  Returns:
    Appearance with vertex colours (V, 3) uint8, backgrounds (num_views, H, W, 3) uint8
    and, for textured clips, a UVTexture.
  """
  if not isinstance(rng, np.random.Generator):
    raise TypeError(f'rng must be a numpy Generator, got {type(rng).__name__}')
  try:
    width, height = (int(s) for s in image_size)
  except (TypeError, ValueError):
    raise ValueError(f'image_size must be (width, height), got {image_size!r}') from None
  if width < 1 or height < 1 or num_views < 1:
    raise ValueError(f'need a positive image_size and num_views, got {image_size}, {num_views}')
  parts = body if isinstance(body, BodyParts) else BodyParts.from_body(body)
  if config.uv_texture_probability > 0.0 and not parts.has_uvs:
    raise ValueError(f'uv_texture_probability > 0 needs a body with texture coordinates '
                     f'(anny); the {parts.backend or "given"} BodyParts has none')
  colors, choices = sample_vertex_colors(rng, parts, config)
  images = None if background_dir is None else list_background_images(background_dir)
  backgrounds, infos = [], []
  for _ in range(num_views):
    bg, info = sample_background(rng, (width, height), config, background_dir, images)
    backgrounds.append(bg)
    infos.append(info)
  choices['backgrounds'] = infos
  choices['body_parts_backend'] = parts.backend
  lighting = sample_lighting(rng, config)
  blur = sample_motion_blur(rng, config)
  # The opt-in extras, drawn last and only when enabled (existing configs keep their
  # random streams and records).
  if config.extra_light_probability > 0.0:
    if anchor is None:
      rest = parts.rest_vertices
      anchor = 0.5 * (rest.min(axis=0) + rest.max(axis=0))
    lighting = sample_extra_lights(rng, lighting, config, anchor)
  texture = None
  if config.uv_texture_probability > 0.0:
    choices['texture'] = None
    if rng.random() < config.uv_texture_probability:
      # Lazy: import cycle: textures imports appearance.
      from odah_tfds.render import textures  # pylint: disable=g-import-not-at-top
      # The texture paints from its own generator (seed recorded): its details can change
      # without shifting any later draw of the clip.
      seed = int(rng.integers(2 ** 63))
      image, record = textures.sample_uv_texture(np.random.default_rng(seed), parts, choices,
                                                 config.texture, config)
      choices['texture'] = dict(record, seed=seed)
      texture = UVTexture(image, parts.texture_coordinates,
                          parts.face_texture_coordinate_indices)
  return Appearance(vertex_colors=colors, backgrounds=np.stack(backgrounds), lighting=lighting,
                    motion_blur=blur, choices=choices, texture=texture)
