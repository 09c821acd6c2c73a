"""Tests of the UV textures (odah_tfds/render/textures.py), their renderer path and the
opt-in extra lights.

Everything that opens a GL context runs in a spawned child process (`gl` fixture, as in
tests/test_render.py): TensorFlow and Mesa GL segfault in one process.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from banet_jax import geometry
from odah_tfds import generate
from odah_tfds.render import appearance as app
from odah_tfds.render import cameras as cam
from odah_tfds.render import renderer as rnd
from odah_tfds.render import textures

SMALL = app.TextureConfig(size=256)  # 4x cheaper than the default 512 where size is moot


# ---- helpers -------------------------------------------------------------------------------------


def _anny_parts():
  from odah_tfds.body import anny_body  # pylint: disable=g-import-not-at-top
  return app.BodyParts.from_body(anny_body.AnnyBody())


@pytest.fixture(scope='module')
def parts():
  return _anny_parts()


def _uv_sphere(center, radius, subdivisions=4):
  """Icosphere with spherical UVs (per vertex; the u wrap gives a few stretched
  triangles, harmless for the uniform textures used here)."""
  import trimesh  # pylint: disable=g-import-not-at-top
  s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
  v = np.asarray(s.vertices)
  uv = np.stack([np.arctan2(v[:, 2], v[:, 0]) / (2 * np.pi) + 0.5,
                 np.arccos(np.clip(v[:, 1] / radius, -1, 1)) / np.pi], axis=1)
  faces = np.asarray(s.faces, np.int32)
  return (v + np.asarray(center)).astype(np.float32), faces, uv.astype(np.float32)


def _camera(eye, target, size, fov=50.0):
  rotation, t = cam.look_at(eye, target)
  return geometry.Camera(cam.intrinsics(fov, size), rotation, t)


# ---- the GL child process ------------------------------------------------------------------------


def _child_uniform(color, size):
  """A sphere drawn with uniform vertex colours `color` and with a uniform texture of
  the same sRGB value, per shading, under ambient light only, a key light, and the key
  light with extra lights."""
  v, f, uv = _uv_sphere([0.0, 1.0, 0.0], 0.4)
  camera = _camera([2.4, 1.5, 0.9], [0.0, 1.0, 0.0], size)
  key = app.Lighting(direction=tuple(-np.array([0.5, 0.7, 0.5]) / np.linalg.norm([0.5, 0.7, 0.5])),
                     color=(1.0, 0.95, 0.9), intensity=4.0, ambient=(0.3, 0.3, 0.3))
  ambient = dataclasses.replace(key, intensity=0.0, ambient=(0.8, 0.75, 0.7))
  extra = dataclasses.replace(key, extra=(
      app.ExtraLight('directional', (0.9, 0.95, 1.0), 1.5, direction=(-0.6, 0.2, -0.77)),
      app.ExtraLight('point', (1.0, 1.0, 1.0), 6.0, position=(1.5, 1.2, -1.2))))
  colors = np.tile(np.asarray(color, np.uint8), (len(v), 1))
  texture = app.UVTexture(np.full((64, 64, 3), color, np.uint8), uv, f)
  out = {}
  for shading in rnd.SHADINGS:
    with rnd.Renderer(size, shading=shading) as r:
      for name, lighting in (('ambient', ambient), ('key', key), ('extra', extra)):
        out[shading, name, 'vertex'] = r.render_layer(v, f, colors, camera, lighting)
        out[shading, name, 'texture'] = r.render_layer(v, f, colors, camera, lighting,
                                                       texture=texture)
  return out


def _child_anny(size, seed, paddings):
  """The anny default subject at rest from the front and the back: textured, with its
  vertex colours, and with debug textures whose texels beyond each of `paddings` texels
  of a chart are magenta (the rest as the texture)."""
  from odah_tfds.body import anny_body  # pylint: disable=g-import-not-at-top
  body = anny_body.AnnyBody()
  parts = app.BodyParts.from_body(body)
  rest = body.rest_frames(anny_body.AnnySubject()).vertices[0]
  config = app.AppearanceConfig(uv_texture_probability=1.0, blur_probability=0.0,
                                texture=SMALL)
  look = app.sample_appearance(np.random.default_rng(seed), parts, size, config)
  _, choices = app.sample_vertex_colors(np.random.default_rng(seed), parts, config)
  atlas = textures.uv_atlas(parts, SMALL.size)
  looks = {'texture': look, 'vertex': dataclasses.replace(look, texture=None)}
  for padding in paddings:
    image, _ = textures.sample_uv_texture(
        np.random.default_rng(look.choices['texture']['seed']), parts, choices, SMALL, config,
        padding=padding)
    image = image.copy()
    image[(atlas.fill_distance > padding).reshape(image.shape[:2])] = (255, 0, 255)
    looks[padding] = dataclasses.replace(look, texture=app.UVTexture(
        image, parts.texture_coordinates, parts.face_texture_coordinate_indices))
  target = 0.5 * (rest.min(axis=0) + rest.max(axis=0))
  out = {}
  with rnd.Renderer(size) as r:
    for name, azimuth in (('front', 15.0), ('back', 195.0)):
      a = math.radians(azimuth)
      camera = _camera(target + [2.6 * math.cos(a), 0.2, 2.6 * math.sin(a)], target, size)
      for kind, appearance in looks.items():
        out[name, kind] = r.render(rest, body.faces, look.vertex_colors, camera, appearance)
  return out


# ---- textures ------------------------------------------------------------------------------------


def test_texture_is_deterministic_with_its_shape_and_record(parts):
  config = app.AppearanceConfig(uv_texture_probability=1.0)
  first = app.sample_appearance(np.random.default_rng(5), parts, (16, 16), config)
  second = app.sample_appearance(np.random.default_rng(5), parts, (16, 16), config)
  image = first.texture.image
  assert image.shape == (512, 512, 3) and image.dtype == np.uint8  # the default size
  np.testing.assert_array_equal(image, second.texture.image)
  assert first.to_json() == second.to_json()
  record = json.loads(first.to_json())['texture']
  assert record['size'] == 512 and isinstance(record['seed'], int)
  for key in ('skin', 'shirt', 'trousers', 'shoes', 'hair'):
    assert key in record, key
  # The record regenerates the texture: the same seed and vertex-colour choices.
  _, choices = app.sample_vertex_colors(np.random.default_rng(5), parts, config)
  again, _ = textures.sample_uv_texture(np.random.default_rng(record['seed']), parts, choices,
                                        config.texture, config)
  np.testing.assert_array_equal(again, image)
  # The texture paints the vertex colours' decisions: the eyes, the hair colour.
  atlas = textures.uv_atlas(parts, 512)
  colors = image.reshape(-1, 3)[atlas.texels]
  np.testing.assert_array_equal(colors[atlas.part_mask('eye')], np.broadcast_to(
      app.EYE_COLOR, (int(atlas.part_mask('eye').sum()), 3)))
  other = app.sample_appearance(np.random.default_rng(6), parts, (16, 16), config)
  assert np.abs(other.texture.image.astype(int) - image).mean() > 5


def test_texture_parameters_stay_in_their_documented_ranges(parts):
  tex = SMALL
  config = app.AppearanceConfig(uv_texture_probability=1.0, texture=tex, bald_probability=0.3,
                                shoes_probability=0.7)
  prints = set()

  def inside(value, bounds):
    return bounds[0] - 1e-9 <= value <= bounds[1] + 1e-9

  for seed in range(8):
    look = app.sample_appearance(np.random.default_rng(seed), parts, (8, 8), config)
    rec = look.choices['texture']
    assert rec['size'] == tex.size
    assert inside(rec['skin']['blotch_sd'], tex.skin_blotch_sd_range)
    assert inside(rec['skin']['blotch_cell_m'], tex.skin_blotch_cell_range)
    assert inside(rec['skin']['region_strength'], tex.skin_region_strength_range)
    for garment in ('shirt', 'trousers'):
      g = rec[garment]
      if look.choices[garment] is None:
        assert g is None
        continue
      vertex_pattern = look.choices[garment]['pattern']
      prints.add(g['print'])
      # Stripes / checks / noise garments keep their pattern; solid ones may get a print.
      assert (g['print'] in app.SOLID_PRINTS if vertex_pattern == 'solid'
              else g['print'] == vertex_pattern)
      assert inside(g['folds']['depth'], tex.fold_depth_range)
      assert inside(g['folds']['period_m'], tex.fold_period_range)
      assert inside(g['hem_width_m'], tex.hem_width_range)
      assert inside(g['seam_darkening'], tex.seam_darkening_range)
      if g['print'] == 'dots':
        assert inside(g['spacing_m'], tex.dot_spacing_range)
        assert inside(g['radius_fraction'], tex.dot_radius_range)
      if g['print'] == 'logo':
        assert inside(g['logo_width_m'], tex.logo_width_range)
      if g['print'] in ('stripes', 'checks', 'noise'):
        assert g['period_m'] == look.choices[garment]['period_m']
    if look.choices['shoes'] is None:
      assert rec['shoes'] is None
    else:
      assert inside(rec['shoes']['sole_height_m'], tex.sole_height_range)
    if look.choices['hair'] is None:
      assert rec['hair'] is None
    else:
      assert inside(rec['hair']['strand_width_m'], tex.hair_strand_width_range)
      assert inside(rec['hair']['contrast'], tex.hair_contrast_range)
  assert len(prints) >= 3, prints


def test_default_config_draws_exactly_what_it_drew_before(parts):
  """uv_texture_probability = extra_light_probability = 0: the generator is consumed
  exactly as the vertex-colour sampler always did, and the record has no new key."""
  size, config = (24, 16), app.AppearanceConfig()
  for seed in (0, 1):
    rng = np.random.default_rng(seed)
    look = app.sample_appearance(rng, parts, size, config)
    # The call sequence of sample_appearance before textures and extra lights existed.
    old = np.random.default_rng(seed)
    colors, choices = app.sample_vertex_colors(old, parts, config)
    backgrounds = [app.sample_background(old, size, config)[0] for _ in range(2)]
    lighting = app.sample_lighting(old, config)
    blur = app.sample_motion_blur(old, config)
    assert rng.bit_generator.state == old.bit_generator.state
    np.testing.assert_array_equal(look.vertex_colors, colors)
    np.testing.assert_array_equal(look.backgrounds, np.stack(backgrounds))
    assert (look.lighting, look.motion_blur, look.texture) == (lighting, blur, None)
    record = json.loads(look.to_json())
    assert 'texture' not in record and 'extra' not in record['lighting']
    assert set(record) - {'backgrounds', 'body_parts_backend', 'lighting', 'motion_blur'} == set(
        choices)
  # With the options on, everything drawn before them is the same (drawn last).
  on = app.AppearanceConfig(uv_texture_probability=1.0, extra_light_probability=1.0,
                            texture=SMALL)
  a = app.sample_appearance(np.random.default_rng(3), parts, size, config)
  b = app.sample_appearance(np.random.default_rng(3), parts, size, on)
  np.testing.assert_array_equal(a.vertex_colors, b.vertex_colors)
  np.testing.assert_array_equal(a.backgrounds, b.backgrounds)
  assert dataclasses.replace(b.lighting, extra=()) == a.lighting
  assert a.motion_blur == b.motion_blur and b.texture is not None and b.lighting.extra


def test_padding_debug_mode_and_the_fill(parts):
  config = app.AppearanceConfig()
  _, choices = app.sample_vertex_colors(np.random.default_rng(2), parts, config)
  full, _ = textures.sample_uv_texture(np.random.default_rng(0), parts, choices, SMALL, config)
  debug, _ = textures.sample_uv_texture(np.random.default_rng(0), parts, choices, SMALL, config,
                                        padding=3)
  atlas = textures.uv_atlas(parts, SMALL.size)
  far = (atlas.fill_distance > 3).reshape(full.shape[:2])
  assert far.any() and (~far).any()
  assert not debug[far].any()  # unpainted: black
  np.testing.assert_array_equal(debug[~far], full[~far])
  # The fill copies the nearest chart texel: no texel of the full texture is unpainted.
  flat = full.reshape(-1, 3)
  np.testing.assert_array_equal(flat, flat[atlas.texels][atlas.fill_index])


def test_uv_atlas_is_cached_and_checks_its_input(parts):
  assert textures.uv_atlas(parts, 256) is textures.uv_atlas(parts, 256)
  atlas = textures.uv_atlas(parts, 256)
  # Texel centres lie in their faces: barycentrics reproduce the texel's UV.
  uv = parts.texture_coordinates[parts.face_texture_coordinate_indices]
  k = np.arange(0, atlas.num_texels, 97)
  face = np.array([np.flatnonzero((parts.faces == c).all(axis=1))[0] for c in atlas.corners[k]])
  np.testing.assert_allclose((uv[face] * atlas.bary[k, :, None]).sum(axis=1), atlas.uv[k],
                             atol=2e-6)
  # anny's region masks land where they belong (the image / UV orientation is right).
  masks = textures.anny_region_masks(256)
  for name, where in (('lips', ('head',)), ('ears', ('head',)), ('fingernails', ('hand',)),
                      ('toenails', ('foot',)), ('aureolae', ('torso',))):
    weight = masks[name].ravel()[atlas.texels]
    assert weight[atlas.part_mask(*where)].sum() > 0.9 * weight.sum(), name
  bare = app.BodyParts(parts.part_index, parts.rest_vertices, 'anny')
  with pytest.raises(ValueError, match='texture coordinates'):
    textures.uv_atlas(bare, 256)
  with pytest.raises(ValueError, match='texture coordinates'):
    app.sample_appearance(np.random.default_rng(0), bare, (8, 8),
                          app.AppearanceConfig(uv_texture_probability=0.5))
  with pytest.raises(ValueError, match='choices lacks'):
    textures.sample_uv_texture(np.random.default_rng(0), parts, {'skin': {}}, SMALL)
  with pytest.raises(ValueError, match='size'):
    app.TextureConfig(size=16)
  with pytest.raises(ValueError, match='uv_texture_probability'):
    app.AppearanceConfig(uv_texture_probability=1.5)
  with pytest.raises(ValueError, match='all or none'):
    app.BodyParts(parts.part_index, parts.rest_vertices, faces=parts.faces)


def test_unwelded_mesh_reproduces_positions_and_uvs(parts):
  vertex_index, uv_index, faces = rnd.unwelded_indices(parts.faces,
                                                       parts.face_texture_coordinate_indices)
  assert len(vertex_index) == 14898  # anny's distinct (vertex, UV) corners
  np.testing.assert_array_equal(vertex_index[faces], parts.faces)
  np.testing.assert_array_equal(uv_index[faces], parts.face_texture_coordinate_indices)
  assert faces.dtype == np.uint32
  # The pyrender LUT maps a 2.2-gamma sRGB value to the byte whose exact-sRGB decoding is
  # the same linear value (within quantisation).
  decoded = rnd._srgb_encode  # pylint: disable=protected-access
  x = np.arange(256)
  lin = np.where(rnd.TEXTURE_LUT / 255.0 <= 0.04045, rnd.TEXTURE_LUT / 255.0 / 12.92,
                 ((rnd.TEXTURE_LUT / 255.0 + 0.055) / 1.055) ** 2.4)
  assert np.abs(lin ** (1 / 2.2) * 255 - x)[16:].max() < 0.6
  assert decoded(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0])


# ---- lights and config plumbing ------------------------------------------------------------------


def test_extra_lights_ranges_and_record(parts):
  config = app.AppearanceConfig(extra_light_probability=1.0, point_light_probability=0.5)
  kinds = []
  anchor = np.array([0.3, 0.9, -0.2])
  for seed in range(12):
    look = app.sample_appearance(np.random.default_rng(seed), parts, (8, 8), config,
                                 anchor=anchor)
    key = look.lighting
    fill = key.extra[0]
    assert fill.kind == 'directional'
    assert np.isclose(np.linalg.norm(fill.direction), 1.0)
    ratio = fill.intensity / key.intensity
    assert config.fill_intensity_ratio_range[0] <= ratio <= config.fill_intensity_ratio_range[1]
    # From the key's other side: horizontal directions >= 120 deg apart.
    h_key, h_fill = np.asarray(key.direction)[[0, 2]], np.asarray(fill.direction)[[0, 2]]
    cos = h_key @ h_fill / np.linalg.norm(h_key) / np.linalg.norm(h_fill)
    assert cos <= math.cos(math.radians(120)) + 1e-9
    for light in key.extra[1:]:
      assert light.kind == 'point'
      d = np.linalg.norm(np.asarray(light.position) - anchor)
      assert config.point_light_distance_range[0] - 1e-9 <= d <= (
          config.point_light_distance_range[1] + 1e-9)
      irradiance = light.intensity / d ** 2
      lo, hi = config.point_light_irradiance_range
      assert lo - 1e-9 <= irradiance <= hi + 1e-9
    kinds.append(len(key.extra))
    record = json.loads(look.to_json())['lighting']['extra']
    assert [r['kind'] for r in record] == [l.kind for l in key.extra]
  assert set(kinds) == {1, 2}
  with pytest.raises(ValueError, match='position'):
    app.ExtraLight('point', (1.0, 1.0, 1.0), 1.0)


def test_generation_config_plumbing_and_small_uv():
  config = generate.GenerationConfig(uv_texture_probability=0.8, extra_light_probability=0.8)
  assert config.uv_texture_probability == 0.8
  with pytest.raises(ValueError, match="body='anny'"):
    generate.GenerationConfig(body='smplx', uv_texture_probability=0.5)
  with pytest.raises(ValueError, match='extra_light_probability'):
    generate.GenerationConfig(extra_light_probability=2.0)
  from odah_tfds.odah import odah_dataset_builder  # pylint: disable=g-import-not-at-top
  configs = {c.name: c.generation for c in odah_dataset_builder.CONFIGS}
  small, small_uv = dataclasses.asdict(configs['small']), dataclasses.asdict(configs['small_uv'])
  assert {k: v for k, v in small_uv.items() if small[k] != v} == {
      'uv_texture_probability': 0.8, 'extra_light_probability': 0.8}
  assert all(c.uv_texture_probability == 0 and c.extra_light_probability == 0
             for name, c in configs.items() if name != 'small_uv')


# ---- rendering (GL child process) ----------------------------------------------------------------


def test_uniform_texture_renders_like_uniform_vertex_colours(gl):
  size = (96, 96)
  for color in ((180, 120, 90), (60, 140, 200)):
    out = gl(_child_uniform, color, size)
    for shading in rnd.SHADINGS:
      for lights in ('ambient', 'key', 'extra'):
        (rgba_v, depth_v), (rgba_t, depth_t) = (out[shading, lights, 'vertex'],
                                                out[shading, lights, 'texture'])
        np.testing.assert_array_equal(depth_v > 0, depth_t > 0)
        diff = (rgba_t.astype(int) - rgba_v.astype(int))[depth_v > 0][:, :3]
        stats = (shading, lights, color, np.abs(diff).mean(), diff.min(), diff.max())
        if shading == 'vertex' or lights == 'ambient':
          # The same linear albedo and light: equal up to interpolation and rounding.
          assert np.abs(diff).mean() < 0.6 and np.abs(diff).max() <= 2, stats
        else:
          # pyrender multiplies vertex colours into its specular term too, textures only
          # into the diffuse one (renderer.py): the texture is brighter by spec x (1 -
          # albedo) where the (broad, roughness 0.75) highlight falls, never darker
          # (measured: 3-6 levels on average, up to 12-18, most in the darkest channel).
          assert diff.min() >= -2 and np.abs(diff).mean() < 7.0 and diff.max() <= 24, stats
    # Extra lights brighten the sphere, in both shadings alike.
    for shading in rnd.SHADINGS:
      key, extra = out[shading, 'key', 'texture'][0], out[shading, 'extra', 'texture'][0]
      assert extra[..., :3].astype(int).sum() > 1.1 * key[..., :3].astype(int).sum()
    on = out['pbr', 'extra', 'texture'][0][..., :3].astype(float)
    on_v = out['vertex', 'extra', 'texture'][0][..., :3].astype(float)
    assert np.abs(on - on_v).mean() < 6.0


def test_textured_anny_renders_a_varied_person_without_seams(gl):
  size = (128, 128)
  out = gl(_child_anny, size, 4, (4, 32))
  for view in ('front', 'back'):
    rgb, mask = out[view, 'texture']
    rgb_v, mask_v = out[view, 'vertex']
    np.testing.assert_array_equal(mask, mask_v)  # the texture changes colours only
    person = rgb[mask].astype(float)
    assert mask.sum() > 500
    assert person.std(axis=0).mean() > 15  # skin, garments, hair: not one colour
    # The same garment colours: the textured person's mean colour is near the vertex one.
    assert np.abs(person.mean(axis=0) - rgb_v[mask].astype(float).mean(axis=0)).max() < 25
    # Texels beyond 32 texels of a chart (magenta in a debug texture, otherwise the same)
    # never reach the image: the fill reaches far enough for the mipmapped lookups at
    # this size. 4 texels do not (measured: 4 / 8 / 16 / 32 texels -> 59 / 17 / 1 / 0
    # leaking person pixels, front view), hence the default fill of every texel; this
    # also shows that the check sees leaks.
    for padding, leaking in ((32, False), (4, True)):
      debug, _ = out[view, padding]
      leak = np.abs(debug.astype(int) - rgb.astype(int)).max(axis=-1)[mask]
      assert (leak.max() > 8) == leaking, (view, padding, int((leak > 2).sum()), leak.max())
