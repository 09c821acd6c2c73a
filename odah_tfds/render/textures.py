"""Procedural UV textures of a body: skin, garments, shoes and hair painted in UV space.

Contract:
  sample_uv_texture(rng, parts, choices, texture_config, appearance_config, padding=None)
    -> (image (T, T, 3) uint8 sRGB, record dict)
  * `parts`: `appearance.BodyParts` with texture coordinates (`parts.has_uvs`; anny's
    `BodyParts.from_body` has them);
  * `choices`: the record `appearance.sample_vertex_colors` returned for the same clip.
    The texture paints the same decisions: skin colour, shirt (or bare torso) and its
    parts (sleeves), trousers / shorts, shoes or bare feet, hair colour and hairline,
    eyes; the same garment colours and, for stripes / checks / noise garments, the same
    pattern, period and second colour. Solid garments may get a print only textures
    have (dots, a logo-like block: `TextureConfig.solid_print_probabilities`).
  * image: T = `texture_config.size` (default 512); row 0 is the top (v = 1), texel
    (r, c) is centred at (u, v) = ((c + 0.5) / T, 1 - (r + 0.5) / T) (the OpenGL /
    OBJ convention anny's UVs and pyrender's texture upload use). Colours sRGB.
  * record: JSON-able parameters (`size`, then per element; README.md lists them); the
    caller (`appearance.sample_appearance`) adds the generator `seed`.
  * padding: None (default) fills every texel outside the UV charts with the colour of
    the nearest chart texel, so no background colour reaches a chart's edge at any mip
    level; an int k fills only texels within k texels of a chart and leaves the rest
    black (a debug mode to check that seams never show unpainted texels). A few texels
    are not enough with mipmapping: rendering anny at 128^2 with T = 256, texels 4 / 8 /
    16 / 32 texels from a chart still reach 59 / 17 / 1 / 0 person pixels
    (tests/test_textures.py), hence the full fill.

What is painted (lengths in metres on the rest-pose body; distributions `TextureConfig`):
  * skin: the sampled tone x a low-frequency multiplicative blotch noise, + per-texel
    noise (`skin_noise`); anny's MakeHuman region masks (lips, aureolae, eyelids, ears,
    finger / toe nails, inside of the mouth, crotch) tint it (`anny_texture_paths()`,
    2048^2 JPEGs decoded once at T and cached);
  * garments (shirt, trousers): the texels inside the garment's parts, by a per-vertex
    signed distance to the garment's edge interpolated per texel; each edge ring (the
    midpoints of mesh edges leaving the covered parts, e.g. torso / pelvis) is replaced
    by its least-squares plane, so edges are clean cuts rather than the skinning
    parts' zigzag (RING_REACH); the print; fold bands (multiplicative, darker, wavy,
    near the elbows, knees, waist, hips and shoulders, in random patches); a hem band
    and a stitch line along every edge; side seams (torso) and in / out seams (legs);
    per-texel cloth noise (`cloth_noise`);
  * shoes: the feet (edge as garments), a sole band of another colour, sometimes a toe
    cap, a darker collar;
  * hair: the scalp above the same hairline as the vertex colours (soft edge; not on
    the ears, anny's ear mask), with anisotropic value noise (narrow around the head,
    long along its height: strands);
  * eyes: `EYE_COLOR` (as the vertex colours).

Stripes and the noise print are functions of the rest-pose point (continuous across UV
seams, as the vertex patterns); checks (gingham), dots and logos are drawn in fabric
space = UV scaled to metres by the garment's median texel size, so they are flat and
regular like printed cloth and break at UV seams like cut and sewn fabric. Sharp edges
are antialiased over one texel.

Caches (explicit, module level; their keys hold everything they depend on):
  * `uv_atlas(parts, size)`: the rasterisation of the UV triangles (per texel: face,
    barycentrics, part, rest-pose point, texel size, nearest-chart index for the fill)
    and the anny region masks at that size; keyed by a hash of the mesh arrays, the
    parts and the size; 4 entries. 0.25 s (CPU) to build at 512 (0.17 s at 256) on the
    2-core VM, plus ~0.2 s the first time for the masks.

Cost (2-core VM shared with a training job, anny, CPU time, median of 12 clips):
painting 107 ms per clip at T = 512, 50 ms at 256, 355 ms at 1024 (README.md).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy import spatial

from odah_tfds.body import anny_body
from odah_tfds.render import appearance as app

# anny region masks (`anny_texture_paths()['skin_masks']` keys) and their multiplicative
# sRGB tints at full strength (project choices: redder lips, darker / browner aureolae,
# slightly darker eyelids and folds, redder ears, a dark red mouth).
SKIN_REGION_TINTS = {
    'lips': (0.86, 0.64, 0.66),
    'aureolae': (0.8, 0.64, 0.6),
    'eyelids': (0.92, 0.84, 0.82),
    'ears': (1.0, 0.92, 0.9),
    'inside-mouth': (0.55, 0.25, 0.27),
    'crotch': (0.9, 0.8, 0.78),
    'genitals': (0.88, 0.76, 0.74),
}
# Nails are blended towards half skin, half this pale pink.
NAIL_MASKS = ('fingernails', 'toenails')
NAIL_COLOR = (250, 228, 218)
# Part boundaries near which cloth folds (elbow, knee, waist, hip, shoulder), and the
# fold envelope: base + (1 - base) * exp(-(distance / FOLD_JOINT_SIGMA)^2).
FOLD_JOINTS = (('upper_arm', 'forearm'), ('thigh', 'shank'), ('torso', 'pelvis'),
               ('pelvis', 'thigh'), ('torso', 'upper_arm'))
FOLD_JOINT_SIGMA = 0.07
FOLD_BASE = 0.1
# Width (m) of the soft hairline.
HAIRLINE_SOFTNESS = 0.004
# Garment edges. The skinning parts' boundaries zigzag (over 1-3 mesh edges, and anny's
# torso / pelvis boundary dips ~5 cm at the spine), which looks ragged on a texture;
# smoothing the per-vertex field (tried: 12-40 Jacobi steps) leaves the dips. So each
# boundary ring of a garment (the crossing-edge midpoints between one covered and one
# uncovered part, per side for limbs) with at least RING_MIN_POINTS points is replaced
# by its least-squares plane: within RING_REACH of the ring the signed distance is the
# distance to that plane, i.e. the edge is the plane's clean cut through the surface
# (a hem). Two garments that meet (shirt / trousers at the waist) fit the same ring,
# so their edges coincide.
RING_MIN_POINTS = 8
RING_REACH = 0.08
ATLAS_CACHE_SIZE = 4


# ---- the UV atlas (cached geometry of the charts) ---------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class UVAtlas:
  """The UV triangles rasterised at T x T, for painting (N = texels inside a triangle).

  Attributes:
    size: T.
    texels: (N,) int64 flat texel indices (row * T + col), row 0 = top (v = 1).
    face: (N,) int32 the face each texel lies in; corners: (N, 3) int32 its vertices.
    bary: (N, 3) float32 barycentric weights of the texel centre in that face.
    part: (N,) int8 part (appearance.PARTS) of the face corner nearest the texel.
    rest: (N, 3) float32 rest-pose point of the texel (world metres).
    uv: (N, 2) float32 texel centres.
    texel_m: (N,) float32 size of a texel on the body (metres; sqrt of the face's 3-D /
      UV area ratio / T).
    fill_index: (T * T,) int32 index into the N texels of the nearest painted texel.
    fill_distance: (T * T,) float32 distance (texels) to it (0 inside the charts).
    parts: the BodyParts.
    edges: (E, 2) int32 unique mesh edges.
    region_tint: (N, 3) float32 multiplicative tint of the anny region masks at full
      strength (ones for other bodies); tinted: indices of the texels where it is not 1;
      nail: (N,) float32 nail mask; ears: (N,) float32 ear mask (hair stays off the ears).
    fold_envelope: (N,) float32 fold strength from the texel's distance d to the nearest
      FOLD_JOINTS boundary: FOLD_BASE + (1 - FOLD_BASE) exp(-(d / FOLD_JOINT_SIGMA)^2).
    limb_coordinate: (N,) float32 position along the body axis (height y), or along the
      arm's axis for arm and hand texels (metres).
  """

  size: int
  texels: np.ndarray
  face: np.ndarray
  corners: np.ndarray
  bary: np.ndarray
  part: np.ndarray
  rest: np.ndarray
  uv: np.ndarray
  texel_m: np.ndarray
  fill_index: np.ndarray
  fill_distance: np.ndarray
  parts: app.BodyParts
  edges: np.ndarray
  region_tint: np.ndarray
  tinted: np.ndarray
  nail: np.ndarray
  ears: np.ndarray
  fold_envelope: np.ndarray
  limb_coordinate: np.ndarray

  @property
  def num_texels(self) -> int:
    return int(self.texels.shape[0])

  def interpolate(self, values: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Per-vertex values (V,) -> per texel (N,), barycentrically; only at the texels
    `index` (an index array into the N texels) when given."""
    v = np.asarray(values)
    c = self.corners if index is None else self.corners[index]
    b = self.bary if index is None else self.bary[index]
    return v[c[:, 0]] * b[:, 0] + v[c[:, 1]] * b[:, 1] + v[c[:, 2]] * b[:, 2]

  def part_mask(self, *names: str) -> np.ndarray:
    """(N,) bool: texels of any of the parts `names`."""
    return np.isin(self.part, [app.PARTS.index(n) for n in names])

  def image(self, colors: np.ndarray, padding: int | None = None) -> np.ndarray:
    """(T, T, 3) uint8 from per-texel sRGB colours (N, 3): texels outside the charts
    take their nearest chart texel's colour (all of them, or those within `padding`
    texels; the rest black)."""
    c = np.clip(np.round(colors), 0, 255).astype(np.uint8)
    out = c[self.fill_index]
    if padding is not None:
      out[self.fill_distance > padding] = 0
    return out.reshape(self.size, self.size, 3)


_ATLAS_CACHE: collections.OrderedDict = collections.OrderedDict()


def _fingerprint(parts: app.BodyParts, size: int) -> str:
  h = hashlib.blake2b(digest_size=16)
  for a in (parts.part_index, parts.rest_vertices, parts.faces, parts.texture_coordinates,
            parts.face_texture_coordinate_indices):
    a = np.ascontiguousarray(a)
    h.update(str((a.dtype, a.shape)).encode())
    h.update(a.tobytes())
  h.update(f'{parts.backend}/{size}'.encode())
  return h.hexdigest()


def uv_atlas(parts: app.BodyParts, size: int = 512) -> UVAtlas:
  """The (cached) UVAtlas of `parts` at `size` x `size` texels."""
  if not isinstance(parts, app.BodyParts) or not parts.has_uvs:
    raise ValueError('uv_atlas needs BodyParts with faces and texture coordinates (e.g. '
                     "BodyParts.from_body(AnnyBody())); got one without")
  size = int(size)
  if not 8 <= size <= 4096:
    raise ValueError(f'texture size must lie in [8, 4096], got {size}')
  key = _fingerprint(parts, size)
  if key in _ATLAS_CACHE:
    _ATLAS_CACHE.move_to_end(key)
    return _ATLAS_CACHE[key]
  atlas = _build_atlas(parts, size)
  _ATLAS_CACHE[key] = atlas
  while len(_ATLAS_CACHE) > ATLAS_CACHE_SIZE:
    _ATLAS_CACHE.popitem(last=False)
  return atlas


def _rasterise(uvs: np.ndarray, uv_faces: np.ndarray, size: int):
  """Texels whose centre lies in a UV triangle: (flat index, face, barycentrics).

  Vectorised over all (face, texel in its bounding box) candidates; a texel on an edge
  shared by two faces goes to the first.
  """
  x = uvs[:, 0].astype(np.float64) * size - 0.5  # texel centres at integers
  y = (1.0 - uvs[:, 1].astype(np.float64)) * size - 0.5
  tx, ty = x[uv_faces], y[uv_faces]  # (F, 3)
  x0 = np.clip(np.ceil(tx.min(1)), 0, size - 1).astype(np.int64)
  x1 = np.clip(np.floor(tx.max(1)), 0, size - 1).astype(np.int64)
  y0 = np.clip(np.ceil(ty.min(1)), 0, size - 1).astype(np.int64)
  y1 = np.clip(np.floor(ty.max(1)), 0, size - 1).astype(np.int64)
  w = np.maximum(x1 - x0 + 1, 0)
  n = w * np.maximum(y1 - y0 + 1, 0)
  face = np.repeat(np.arange(len(uv_faces)), n)
  offset = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
  cx = x0[face] + offset % w[face]
  cy = y0[face] + offset // w[face]
  ax, ay = tx[face, 0], ty[face, 0]
  e1x, e1y = tx[face, 1] - ax, ty[face, 1] - ay
  e2x, e2y = tx[face, 2] - ax, ty[face, 2] - ay
  det = e1x * e2y - e1y * e2x
  ok = np.abs(det) > 1e-12
  det = np.where(ok, det, 1.0)
  px, py = cx - ax, cy - ay
  b1 = (px * e2y - py * e2x) / det
  b2 = (e1x * py - e1y * px) / det
  b0 = 1.0 - b1 - b2
  eps = -1e-9
  inside = ok & (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
  flat = (cy * size + cx)[inside]
  bary = np.clip(np.stack([b0, b1, b2], 1)[inside], 0.0, 1.0)
  bary /= bary.sum(axis=1, keepdims=True)
  flat, first = np.unique(flat, return_index=True)
  return flat, face[inside][first], bary[first]


def _edges(faces: np.ndarray) -> np.ndarray:
  e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
  return np.unique(np.sort(e, axis=1), axis=0).astype(np.int32)


def _boundary_distance(rest: np.ndarray, edges: np.ndarray, crossing: np.ndarray,
                       bound: float = np.inf) -> np.ndarray:
  """Distance (m) of each vertex to the midpoints of the edges marked `crossing`,
  capped at `bound` (a cap makes the k-d tree query ~3x faster); `bound` when none."""
  if not crossing.any():
    return np.full(len(rest), bound)
  mid = 0.5 * (rest[edges[crossing, 0]] + rest[edges[crossing, 1]])
  d = spatial.cKDTree(mid).query(rest, distance_upper_bound=bound)[0]
  return np.minimum(d, bound)


def _limb_coordinate(parts: app.BodyParts) -> np.ndarray:
  """Height y, or, for arm and hand vertices, the position along that arm's main axis
  (oriented shoulder -> hand), metres."""
  rest = parts.rest_vertices.astype(np.float64)
  t = rest[:, 1].copy()
  arm = parts.mask('upper_arm', 'forearm', 'hand')
  torso = parts.mask('torso')
  center_z = rest[torso, 2].mean() if torso.any() else rest[:, 2].mean()
  for side in (rest[:, 2] > center_z, rest[:, 2] <= center_z):
    m = arm & side
    if m.sum() < 3:
      continue
    c = rest[m].mean(axis=0)
    axis = np.linalg.svd(rest[m] - c, full_matrices=False)[2][0]
    hand = parts.mask('hand') & side
    if hand.any() and (rest[hand] - c).mean(axis=0) @ axis < 0:
      axis = -axis
    t[m] = (rest[m] - c) @ axis
  return t


def _build_atlas(parts: app.BodyParts, size: int) -> UVAtlas:
  faces = np.asarray(parts.faces, np.int64)
  uvs = np.asarray(parts.texture_coordinates, np.float64)
  uv_faces = np.asarray(parts.face_texture_coordinate_indices, np.int64)
  rest_v = parts.rest_vertices.astype(np.float64)
  flat, face, bary = _rasterise(uvs, uv_faces, size)
  if not len(flat):
    raise ValueError(f'no texel of a {size}x{size} texture lies inside a UV triangle')
  corners = faces[face].astype(np.int32)
  part = parts.part_index[corners[np.arange(len(face)), bary.argmax(axis=1)]]
  rest = (rest_v[corners] * bary[..., None]).sum(axis=1)
  row, col = flat // size, flat % size
  uv = np.stack([(col + 0.5) / size, 1.0 - (row + 0.5) / size], axis=1)
  # Texel size on the body: sqrt(3-D area / UV area) of the face, over T.
  a3 = 0.5 * np.linalg.norm(np.cross(rest_v[faces[:, 1]] - rest_v[faces[:, 0]],
                                     rest_v[faces[:, 2]] - rest_v[faces[:, 0]]), axis=1)
  e1, e2 = uvs[uv_faces[:, 1]] - uvs[uv_faces[:, 0]], uvs[uv_faces[:, 2]] - uvs[uv_faces[:, 0]]
  auv = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
  texel_m = (np.sqrt(a3 / np.maximum(auv, 1e-12)) / size)[face]
  # Nearest chart texel of every texel (the fill that dilates the charts).
  covered = np.zeros(size * size, bool)
  covered[flat] = True
  distance, nearest = ndimage.distance_transform_edt(~covered.reshape(size, size),
                                                     return_indices=True)
  position = np.full(size * size, -1, np.int64)
  position[flat] = np.arange(len(flat))
  fill_index = position[(nearest[0] * size + nearest[1]).ravel()].astype(np.int32)
  edges = _edges(faces)
  # Distances to the part boundaries where cloth folds.
  pi = parts.part_index
  crossing = np.zeros(len(edges), bool)
  for a, b in FOLD_JOINTS:
    ia, ib = app.PARTS.index(a), app.PARTS.index(b)
    pa, pb = pi[edges[:, 0]], pi[edges[:, 1]]
    crossing |= ((pa == ia) & (pb == ib)) | ((pa == ib) & (pb == ia))
  tint, nail, ears = _region_tints(parts, flat, size)
  joint_distance = _boundary_distance(rest_v, edges, crossing, bound=1.0)

  def interpolate(values):
    return (values[corners] * bary).sum(axis=1)

  envelope = FOLD_BASE + (1 - FOLD_BASE) * np.exp(
      -(interpolate(joint_distance) / FOLD_JOINT_SIGMA) ** 2)
  return UVAtlas(size=size, texels=flat.astype(np.int64), face=face.astype(np.int32),
                 corners=corners, bary=bary.astype(np.float32), part=part.astype(np.int8),
                 rest=rest.astype(np.float32), uv=uv.astype(np.float32),
                 texel_m=texel_m.astype(np.float32), fill_index=fill_index,
                 fill_distance=distance.ravel().astype(np.float32), parts=parts, edges=edges,
                 region_tint=tint, tinted=np.flatnonzero(np.any(tint != 1.0, axis=1)),
                 nail=nail, ears=ears, fold_envelope=envelope.astype(np.float32),
                 limb_coordinate=interpolate(_limb_coordinate(parts)).astype(np.float32))


def anny_region_masks(size: int) -> dict[str, np.ndarray]:
  """anny's MakeHuman skin-region masks (`anny_texture_paths()['skin_masks']`, 2048^2
  grayscale JPEGs in anny's UV layout) as (size, size) float32 in [0, 1], row 0 = top.
  JPEG draft mode decodes them at a reduced scale (~20 ms each at 512)."""
  out = {}
  for name, path in anny_body.anny_texture_paths()['skin_masks'].items():
    with Image.open(path) as im:
      im.draft('L', (size, size))
      im = im.convert('L').resize((size, size), Image.Resampling.BILINEAR)
      out[name] = np.asarray(im, np.float32) / 255.0
  return out


def _region_tints(parts: app.BodyParts, flat: np.ndarray, size: int):
  tint = np.ones((len(flat), 3), np.float32)
  nail = np.zeros(len(flat), np.float32)
  ears = np.zeros(len(flat), np.float32)
  if parts.backend != 'anny':  # the masks are drawn in anny's (MakeHuman's) UV layout
    return tint, nail, ears
  masks = anny_region_masks(size)
  for name, color in SKIN_REGION_TINTS.items():
    if name in masks:
      m = masks[name].ravel()[flat][:, None]
      tint *= 1.0 + m * (np.asarray(color, np.float32) - 1.0)
  for name in NAIL_MASKS:
    if name in masks:
      nail = np.maximum(nail, masks[name].ravel()[flat])
  if 'ears' in masks:
    ears = masks['ears'].ravel()[flat]
  return tint, nail, ears


# ---- painting helpers --------------------------------------------------------------------------
def _smooth(x):
  return x * x * (3.0 - 2.0 * x)


def _aa(signed: np.ndarray, width: np.ndarray) -> np.ndarray:
  """Coverage in [0, 1] of the side signed > 0 of an edge, antialiased over `width`."""
  return np.clip(0.5 + signed / np.maximum(width, 1e-9), 0.0, 1.0)


def _band_signed(x: np.ndarray, duty: float) -> np.ndarray:
  """For x in [0, 1) (a periodic coordinate, in periods): signed distance (periods) to
  the nearest edge of the band [0, duty), > 0 inside."""
  return np.where(x < duty, np.minimum(x, duty - x), -np.minimum(x - duty, 1.0 - x))


def _mix(a, b, t):
  t = np.asarray(t)
  t = t[:, None] if t.ndim == 1 else t
  return a + (np.asarray(b) - a) * t


def _vertex_noise(atlas: UVAtlas, cell: float, rng: np.random.Generator,
                  index: np.ndarray | None = None) -> np.ndarray:
  """Low-frequency 3-D value noise in [0, 1] per texel (at `index` when given):
  evaluated at the vertices and interpolated (cells of >= 3 cm are 2+ mesh edges wide,
  so this loses little)."""
  return atlas.interpolate(app._value_noise(  # pylint: disable=protected-access
      atlas.parts.rest_vertices.astype(np.float64), cell, rng), index)


def _standardised(x: np.ndarray) -> np.ndarray:
  return (x - x.mean()) / max(float(x.std()), 1e-9)


def _periodic_noise_2d(a: np.ndarray, b: np.ndarray, cells_a: int,
                       rng: np.random.Generator) -> np.ndarray:
  """2-D value noise in [0, 1] at lattice coordinates (a, b), periodic in a with period
  `cells_a` (smoothstep-bilinear)."""
  b0 = np.floor(b.min()) if len(b) else 0.0
  ia, ib = np.floor(a).astype(np.int64), np.floor(b - b0).astype(np.int64)
  fa, fb = _smooth(a - np.floor(a)), _smooth(b - b0 - ib)
  lattice = rng.random((cells_a, int(ib.max(initial=0)) + 2))
  ia0, ia1 = ia % cells_a, (ia + 1) % cells_a
  return ((1 - fa) * ((1 - fb) * lattice[ia0, ib] + fb * lattice[ia0, ib + 1])
          + fa * ((1 - fb) * lattice[ia1, ib] + fb * lattice[ia1, ib + 1]))


# Garment signed distances are capped here (m): the edge, hems and stitches only need
# the first centimetres.
SIGNED_DISTANCE_CAP = 0.15


_CENTRAL_PARTS = tuple(app.PARTS.index(p) for p in ('head', 'eye', 'neck', 'torso', 'pelvis'))


def _garment_signed_distance(atlas: UVAtlas, inside: np.ndarray) -> np.ndarray:
  """Per texel: signed distance (m, within +-SIGNED_DISTANCE_CAP) to the garment's edge,
  > 0 inside. Edge: the midpoints of the mesh edges leaving the covered vertices (the
  zero crossing of the interpolated distance runs through them), replaced near each
  boundary ring by the ring's plane (RING_MIN_POINTS, RING_REACH)."""
  parts = atlas.parts
  rest = parts.rest_vertices.astype(np.float64)
  e = atlas.edges
  crossing = inside[e[:, 0]] != inside[e[:, 1]]
  if not crossing.any():
    return np.full(atlas.num_texels, SIGNED_DISTANCE_CAP if inside.all() else
                   -SIGNED_DISTANCE_CAP)
  a, b = e[crossing, 0], e[crossing, 1]
  v_in = np.where(inside[a], a, b)
  v_out = np.where(inside[a], b, a)
  mid = 0.5 * (rest[a] + rest[b])
  d, nearest = spatial.cKDTree(mid).query(rest, distance_upper_bound=SIGNED_DISTANCE_CAP)
  d = np.minimum(d, SIGNED_DISTANCE_CAP)
  signed = np.where(inside, d, -d)
  # Rings: (covered part, uncovered part, body side for limbs).
  torso = parts.mask('torso')
  center_z = rest[torso, 2].mean() if torso.any() else rest[:, 2].mean()
  p_in, p_out = parts.part_index[v_in], parts.part_index[v_out]
  limb = ~(np.isin(p_in, _CENTRAL_PARTS) & np.isin(p_out, _CENTRAL_PARTS))
  ring = (p_in.astype(np.int64) * len(app.PARTS) + p_out) * 2 + (limb & (mid[:, 2] > center_z))
  near = np.isfinite(d) & (d < RING_REACH)
  owner = np.full(len(rest), -1, np.int64)
  owner[near] = ring[nearest[near]]
  for key in np.unique(ring):
    points = mid[ring == key]
    if len(points) < RING_MIN_POINTS:
      continue
    c = points.mean(axis=0)
    normal = np.linalg.svd(points - c, full_matrices=False)[2][2]
    if (rest[v_in[ring == key]] - c).mean(axis=0) @ normal < 0:
      normal = -normal  # positive towards the covered side
    m = owner == key
    signed[m] = np.clip((rest[m] - c) @ normal, -SIGNED_DISTANCE_CAP, SIGNED_DISTANCE_CAP)
  # Interpolated only in faces that reach within 2 cm of the garment (a texel's value is
  # at most its face's largest corner value): the garments cover a fraction of the
  # texels, and this halves the cost.
  out = np.full(atlas.num_texels, -SIGNED_DISTANCE_CAP)
  reach = np.flatnonzero(signed[atlas.parts.faces].max(axis=1)[atlas.face] > -0.02)
  out[reach] = atlas.interpolate(signed, reach)
  return out


def _print_second_color(rng, info, config: app.AppearanceConfig) -> np.ndarray:
  if info.get('second_color') is not None:
    return np.asarray(info['second_color'], np.float64)
  r = rng.random()
  if r < 0.25:
    return np.full(3, 240.0)
  if r < 0.4:
    return np.full(3, 25.0)
  return app._garment_color(rng, config)  # pylint: disable=protected-access


# ---- the texture -------------------------------------------------------------------------------
def _paint_skin(rng, atlas: UVAtlas, choices, tex: app.TextureConfig,
                config: app.AppearanceConfig):
  n = atlas.num_texels
  skin = np.asarray(choices['skin']['color'], np.float64)
  sd = float(rng.uniform(*tex.skin_blotch_sd_range))
  cell = float(rng.uniform(*tex.skin_blotch_cell_range))
  strength = float(rng.uniform(*tex.skin_region_strength_range))
  # Luminance blotches (SD `sd`) and a redness variation, multiplicative.
  lum, red = (_standardised(_vertex_noise(atlas, c, rng)).astype(np.float32)
              for c in (cell, 1.5 * cell))
  factor = (1.0 + sd * lum)[:, None] * (
      1.0 + 0.5 * sd * red[:, None] * np.array([1, -0.5, -0.7], np.float32))
  colors = skin.astype(np.float32) * factor
  tinted = atlas.tinted  # the few texels the region masks touch
  colors[tinted] *= 1.0 + strength * (atlas.region_tint[tinted] - 1.0)
  nails = np.flatnonzero(atlas.nail > 0)
  colors[nails] = _mix(colors[nails], 0.5 * skin + 0.5 * np.asarray(NAIL_COLOR, np.float64),
                       strength * atlas.nail[nails])
  colors += config.skin_noise * rng.standard_normal((n, 3), dtype=np.float32)
  return colors, {'blotch_sd': sd, 'blotch_cell_m': cell, 'region_strength': strength}


def _fabric_coordinates(atlas: UVAtlas, region: np.ndarray) -> tuple[np.ndarray, float]:
  """UV of the region's texels scaled to metres by its median texel size."""
  scale = float(np.median(atlas.texel_m[region])) * atlas.size
  return atlas.uv[region].astype(np.float64) * scale, scale


def _paint_print(rng, atlas: UVAtlas, region, info, garment: str, tex: app.TextureConfig,
                 config: app.AppearanceConfig, center: np.ndarray):
  """Colours (n, 3) of a garment's print over its texels `region`, and its record."""
  base = np.asarray(info['color'], np.float64)
  pattern = info['pattern']
  if pattern == 'solid':
    pattern = app.SOLID_PRINTS[int(rng.choice(len(app.SOLID_PRINTS),
                                              p=tex.solid_print_probabilities))]
  rec: dict[str, Any] = {'print': pattern}
  p = atlas.rest[region].astype(np.float64)
  width = atlas.texel_m[region].astype(np.float64)
  colors = np.broadcast_to(base, (len(p), 3)).copy()
  if pattern == 'solid':
    return colors, rec
  second = _print_second_color(rng, info, config)
  rec['second_color'] = second.round(1).tolist()
  if pattern == 'stripes':  # the vertex pattern, sharp: the same period, duty, direction
    period = float(info['period_m'])
    vertical, duty = bool(info['vertical']), float(info['duty'])
    coord = (0.15 * np.arctan2(p[:, 2] - center[2], p[:, 0] - center[0]) if vertical
             else p[:, 1])
    phase = float(rng.uniform())
    x = np.mod(coord / period + phase, 1.0)  # stripe "on" for x < duty
    on = _aa(_band_signed(x, duty) * period, width)
    rec.update(period_m=period, vertical=vertical, duty=duty, phase=phase)
  elif pattern == 'checks':  # gingham in fabric space
    period = float(info['period_m'])
    q, _ = _fabric_coordinates(atlas, region)
    shift = rng.uniform(size=2)
    cover = []
    for k in range(2):
      x = np.mod(q[:, k] / period + shift[k], 1.0)
      cover.append(_aa(_band_signed(x, 0.5) * period, width))
    on = 0.5 * (cover[0] + cover[1])
    rec.update(period_m=period, space='fabric', kind='gingham')
  elif pattern == 'noise':  # the vertex pattern's noise, at texel resolution
    period = float(info['period_m'])
    t = _vertex_noise(atlas, period, rng, np.flatnonzero(region))
    on = np.clip((t - 0.5) * 3.0 + 0.5, 0.0, 1.0)
    rec.update(period_m=period)
  elif pattern == 'dots':
    spacing = float(rng.uniform(*tex.dot_spacing_range))
    radius = float(rng.uniform(*tex.dot_radius_range))
    q, _ = _fabric_coordinates(atlas, region)
    row = np.floor(q[:, 1] / spacing)
    x = q[:, 0] / spacing + 0.5 * (row % 2)  # staggered rows
    d = np.hypot(x - np.floor(x) - 0.5, q[:, 1] / spacing - row - 0.5) * spacing
    on = _aa(radius * spacing - d, width)
    rec.update(spacing_m=spacing, radius_fraction=radius, space='fabric')
  else:  # logo: a block with bars, on the chest (shirt) or a thigh (trousers)
    on, logo = _logo(rng, atlas, region, garment, tex, center)
    third = app._garment_color(rng, config)  # pylint: disable=protected-access
    colors = _mix(colors, second, on[0])
    colors = _mix(colors, third, on[1])
    rec.update(logo, third_color=third.round(1).tolist())
    return colors, rec
  return _mix(colors, second, on), rec


def _logo(rng, atlas: UVAtlas, region, garment: str, tex: app.TextureConfig, center):
  """Coverage (block, bars) of a logo-like block over the region's texels."""
  n = int(region.sum())
  p = atlas.rest[region].astype(np.float64)
  part = atlas.part[region]
  if garment == 'shirt':
    pool = part == app.PARTS.index('torso')
    if pool.any():
      lo, hi = np.quantile(p[pool, 1], [0.55, 0.85])
      pool &= (p[:, 1] >= lo) & (p[:, 1] <= hi)
  else:
    right = bool(rng.random() < 0.5)
    pool = (part == app.PARTS.index('thigh')) & ((p[:, 2] > center[2]) == right)
    if pool.any():
      lo, hi = np.quantile(p[pool, 1], [0.4, 0.8])
      pool &= (p[:, 1] >= lo) & (p[:, 1] <= hi)
  if not pool.any():
    pool = np.ones(n, bool)
  # The front-most texel of the pool (x = forward), off the centre line a little.
  score = p[:, 0] - 0.3 * np.abs(p[:, 2] - np.median(p[pool, 2]))
  k = int(np.flatnonzero(pool)[np.argmax(score[pool])])
  width = float(rng.uniform(*tex.logo_width_range))
  height = width * float(rng.uniform(0.35, 0.9))
  scale = float(atlas.texel_m[region][k]) * atlas.size  # metres per UV unit there
  d = (atlas.uv[region].astype(np.float64) - atlas.uv[region][k]) * scale
  near = np.linalg.norm(p - p[k], axis=1) < 0.6 * max(width, height) + 0.05  # same chart area
  block = (np.abs(d[:, 0]) < width / 2) & (np.abs(d[:, 1]) < height / 2) & near
  bars = int(rng.integers(1, 4))
  margin = 0.15 * height
  inner = np.zeros(n, bool)
  pitch = (height - 2 * margin) / bars
  for i in range(bars):  # "text lines": bars of random lengths, top to bottom
    length = float(rng.uniform(0.4, 1.0)) * (width - 2 * margin)
    top = height / 2 - margin - i * pitch
    inner |= (block & (d[:, 1] <= top) & (d[:, 1] > top - 0.6 * pitch)
              & (d[:, 0] > -width / 2 + margin) & (d[:, 0] < -width / 2 + margin + length))
  record = {'logo_width_m': width, 'logo_height_m': height, 'logo_bars': bars,
            'logo_center_uv': atlas.uv[region][k].round(4).tolist()}
  return (block.astype(np.float64), inner.astype(np.float64)), record


def _paint_garment(rng, atlas: UVAtlas, colors, garment: str, info, tex: app.TextureConfig,
                   config: app.AppearanceConfig, center: np.ndarray):
  parts = atlas.parts
  inside_v = parts.mask(*info['parts'])
  sd = _garment_signed_distance(atlas, inside_v)
  region = sd > -0.5 * atlas.texel_m  # antialiased edge: half a texel outside
  if not region.any():
    return {'print': None}
  index = np.flatnonzero(region)
  cover = _aa(sd[index], atlas.texel_m[index])
  cloth, rec = _paint_print(rng, atlas, region, info, garment, tex, config, center)
  # Folds: narrow dark bands across the limb / body axis, wavy, strongest near joints
  # and in random patches.
  period = float(rng.uniform(*tex.fold_period_range))
  depth = float(rng.uniform(*tex.fold_depth_range))
  wave = float(rng.uniform(0.1, 0.5))
  phase = _vertex_noise(atlas, float(rng.uniform(0.06, 0.15)), rng, index)
  patches = _vertex_noise(atlas, 0.15, rng, index)
  t = atlas.limb_coordinate[index]
  band = (0.5 + 0.5 * np.cos(2 * np.pi * (t / period + wave * (2 * phase - 1)))) ** 6
  envelope = atlas.fold_envelope[index] * np.clip(2.0 * patches - 0.2, 0.0, 1.0)
  edge = sd[index]
  shade = 1.0 - depth * envelope * band
  # Hem band and a stitch line along every edge; side / leg seams.
  hem = float(rng.uniform(*tex.hem_width_range))
  dark = float(rng.uniform(*tex.seam_darkening_range))
  w = atlas.texel_m[region].astype(np.float64)
  shade *= 1.0 - 0.5 * dark * _aa(hem - edge, w)
  # A stitch line ~2.5 mm wide, at least 1.2 texels (thinner lines alias into dots).
  stitch = _aa(np.maximum(0.0012, 0.6 * w) - np.abs(edge - 0.75 * hem), w)
  shade *= 1.0 - dark * stitch
  p = atlas.rest[region].astype(np.float64)
  part = atlas.part[region]
  seam = np.zeros(len(p))
  torso = np.isin(part, [app.PARTS.index('torso'), app.PARTS.index('pelvis')])
  if torso.any():  # side seams: where the surface turns from front to back
    cx = np.median(p[torso, 0])
    seam = np.where(torso, _aa(0.002 - np.abs(p[:, 0] - cx), w), seam)
  legs = np.isin(part, [app.PARTS.index('thigh'), app.PARTS.index('shank')])
  for side in (p[:, 2] > center[2], p[:, 2] <= center[2]):
    m = legs & side
    if m.any():  # in- and out-seams of each leg
      cx = np.median(p[m, 0])
      seam = np.where(m, _aa(0.002 - np.abs(p[:, 0] - cx), w), seam)
  shade *= 1.0 - dark * seam
  cloth = cloth * shade[:, None] + config.cloth_noise * rng.standard_normal(cloth.shape,
                                                                           dtype=np.float32)
  colors[region] = _mix(colors[region], cloth, cover)
  rec.update(folds={'period_m': period, 'depth': depth, 'waviness': wave},
             hem_width_m=hem, seam_darkening=dark)
  return rec


def _paint_shoes(rng, atlas: UVAtlas, colors, info, tex: app.TextureConfig,
                 config: app.AppearanceConfig):
  parts = atlas.parts
  inside_v = parts.mask('foot')
  if not inside_v.any():
    return {}
  sd = _garment_signed_distance(atlas, inside_v)
  region = sd > -0.5 * atlas.texel_m
  cover = _aa(sd[region], atlas.texel_m[region])
  base = np.asarray(info['color'], np.float64)
  p = atlas.rest[region].astype(np.float64)
  w = atlas.texel_m[region].astype(np.float64)
  feet = parts.rest_vertices[inside_v].astype(np.float64)
  sole_h = float(rng.uniform(*tex.sole_height_range))
  sole_color = (np.full(3, float(rng.uniform(200, 245))) if rng.random() < 0.6
                else np.full(3, float(rng.uniform(20, 70))))
  shoe = np.broadcast_to(base, (len(p), 3)).copy()
  toe_cap = bool(rng.random() < 0.5)
  toe_shade = float(rng.uniform(0.75, 1.2))
  if toe_cap:  # the front 30 % of the foot's length
    front = feet[:, 0].max() - 0.3 * (feet[:, 0].max() - feet[:, 0].min())
    shoe = _mix(shoe, np.clip(base * toe_shade, 0, 255), _aa(p[:, 0] - front, w))
  shoe *= (1.0 - 0.25 * _aa(0.01 - sd[region], w))[:, None]  # collar
  shoe = _mix(shoe, sole_color, _aa(feet[:, 1].min() + sole_h - p[:, 1], w))
  shoe += config.cloth_noise * rng.standard_normal(shoe.shape, dtype=np.float32)
  colors[region] = _mix(colors[region], shoe, cover)
  return {'sole_height_m': sole_h, 'sole_color': sole_color.round(1).tolist(),
          'toe_cap': toe_cap, 'toe_cap_shade': toe_shade}


def _paint_hair(rng, atlas: UVAtlas, colors, info, tex: app.TextureConfig):
  parts = atlas.parts
  head_v = parts.mask('head')
  region = atlas.part_mask('head')
  if not head_v.any() or not region.any():
    return {}
  v = parts.rest_vertices[head_v].astype(np.float64)
  top, bottom = v[:, 1].max(), v[:, 1].min()
  size = top - bottom
  front, back = v[:, 0].max(), v[:, 0].min()
  p = atlas.rest[region].astype(np.float64)
  # The vertex colours' hairline (appearance._hair_mask), per texel, soft.
  u = np.clip((p[:, 0] - back) / max(front - back, 1e-6), 0, 1)
  depth = info['back_depth'] + (info['front_depth'] - info['back_depth']) * u ** 2
  alpha = np.clip(0.5 + (p[:, 1] - (top - depth * size)) / HAIRLINE_SOFTNESS, 0, 1)
  alpha *= 1.0 - atlas.ears[region]
  # Strands: value noise narrow around the head, long along its height.
  strand = float(rng.uniform(*tex.hair_strand_width_range))
  length = strand * float(rng.uniform(8.0, 20.0))
  contrast = float(rng.uniform(*tex.hair_contrast_range))
  cx, cz = v[:, 0].mean(), v[:, 2].mean()
  radius = float(np.median(np.hypot(v[:, 0] - cx, v[:, 2] - cz)))
  cells = max(8, int(round(2 * np.pi * radius / strand)))
  angle = (np.arctan2(p[:, 2] - cz, p[:, 0] - cx) / (2 * np.pi) + 0.5) * cells
  n1 = _periodic_noise_2d(angle, p[:, 1] / length, cells, rng)
  n2 = _periodic_noise_2d(angle * 2.0, p[:, 1] / (0.5 * length), 2 * cells, rng)
  variation = 1.0 + contrast * (2.0 * (0.65 * n1 + 0.35 * n2) - 1.0)
  hair = np.asarray(app.HAIR_PALETTE[info['color_name']], np.float64)
  hair = hair * variation[:, None] + 3.0 * rng.standard_normal((len(p), 3), dtype=np.float32)
  colors[region] = _mix(colors[region], hair, alpha)
  return {'strand_width_m': strand, 'strand_length_m': length, 'contrast': contrast}


def sample_uv_texture(rng: np.random.Generator, parts: app.BodyParts, choices: dict,
                      texture_config: app.TextureConfig = app.TextureConfig(),
                      appearance_config: app.AppearanceConfig = app.AppearanceConfig(),
                      padding: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
  """Paints a clip's UV texture from its vertex-colour choices (module docstring).

  Args:
    rng: numpy Generator (the texture's own; consumed deterministically).
    parts: BodyParts with texture coordinates.
    choices: the record of `appearance.sample_vertex_colors` for this clip.
    texture_config: the texture's distributions (size T).
    appearance_config: skin_noise and cloth_noise (per-texel noise SDs, sRGB units)
      and garment colours of prints that need a new one.
    padding: None: fill every texel outside the charts; k: only within k texels of a
      chart, the rest black (debug).

  Returns:
    (T, T, 3) uint8 sRGB texture and the record of its parameters.
  """
  if not isinstance(rng, np.random.Generator):
    raise TypeError(f'rng must be a numpy Generator, got {type(rng).__name__}')
  for key in ('skin', 'shirt', 'trousers', 'shoes', 'hair'):
    if key not in choices:
      raise ValueError(f'choices lacks {key!r}: pass the record sample_vertex_colors returned')
  atlas = uv_atlas(parts, texture_config.size)
  colors, skin_rec = _paint_skin(rng, atlas, choices, texture_config, appearance_config)
  record: dict[str, Any] = {'size': atlas.size, 'skin': skin_rec}
  rest = parts.rest_vertices.astype(np.float64)
  torso = parts.mask('torso')
  center = rest[torso].mean(axis=0) if torso.any() else rest.mean(axis=0)
  for garment in ('trousers', 'shirt'):
    info = choices[garment]
    record[garment] = None if info is None else _paint_garment(
        rng, atlas, colors, garment, info, texture_config, appearance_config, center)
  record['shoes'] = None if choices['shoes'] is None else _paint_shoes(
      rng, atlas, colors, choices['shoes'], texture_config, appearance_config)
  hair = choices['hair']
  record['hair'] = None if hair is None or hair.get('style') != 'cap' else _paint_hair(
      rng, atlas, colors, hair, texture_config)
  colors[atlas.part_mask('eye')] = app.EYE_COLOR
  return atlas.image(colors, padding), record
