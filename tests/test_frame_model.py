"""Tests of the BANet frame network: hourglass encoder, heads, point head, FrameModel.

Paper-size networks are only shape-evaluated (`jax.eval_shape`), never run. Behaviour is
checked on tiny configurations: against numpy / PyTorch transcriptions of the official
layer semantics (written from the dossier, with the JAX parameters copied in), and for
finite, non-zero gradients.
"""

from __future__ import annotations

import functools

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from banet_jax.model import hourglass
from banet_jax.model.frame_model import FrameModel
from banet_jax.model.hourglass import HGFilter, HGHeads
from banet_jax.model.point_head import Point2Osim, WeightNormDense
from banet_jax.model.sampling import grid_sample_bilinear

TINY = {"num_stacks": 2, "depth": 2, "width": 32, "stem_widths": (16, 32), "norm_groups": 8,
        "head_channels": 16, "point_widths": (32, 32, 8), "global_widths": (32, 32),
        "out_dim": 102, "num_points": 64}


def _tiny_inputs(batch=2, size=64, n=64, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.normal(size=(batch, 2, size, size, 3)).astype(np.float32)
  crop_pixels = rng.uniform(0, size - 1, (batch, 2, n, 2)).astype(np.float32)
  points = rng.normal(scale=0.3, size=(batch, n, 3)).astype(np.float32)
  points -= points.mean(1, keepdims=True)
  return jnp.asarray(images), jnp.asarray(crop_pixels), jnp.asarray(points)


@functools.cache
def _tiny_model_and_params():
  model = FrameModel(**TINY)
  # The rbg key compiles ~3x faster than threefry on CPU; the distributions are the same.
  params = jax.jit(model.init)(jax.random.key(0, impl="unsafe_rbg"), *_tiny_inputs())["params"]
  return model, params


@functools.cache
def _tiny_encode():
  """Jitted FrameModel.encode of the tiny model (compiled once, shared by tests)."""
  model, _ = _tiny_model_and_params()
  return jax.jit(functools.partial(model.apply, method=FrameModel.encode))


@functools.cache
def _tiny_loss_and_grad():
  """Jitted value_and_grad of a squared error of the tiny model: f(params, *inputs, target)."""
  model, _ = _tiny_model_and_params()

  def loss(params, images, crop_pixels, points, target):
    out = model.apply({"params": params}, images, crop_pixels, points)
    return jnp.mean((out - target) ** 2), out

  return jax.jit(jax.value_and_grad(loss, has_aux=True))


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _unused_norm_paths(params):
  """Paths of the bn4 norms of ConvBlocks without a projection (kept only for the count)."""
  flat = flax.traverse_util.flatten_dict(params)
  return {p for p in flat
          if p[-2] == "bn4" and p[:-2] + ("downsample_conv", "kernel") not in flat}


# ----------------------------------------------------------------------------------------
# Paper sizes (shape evaluation only).


def test_paper_parameter_counts():
  key = jax.random.key(0)
  shapes = lambda module, *args: jax.eval_shape(
      functools.partial(module.init, key), *args)["params"]
  image = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)
  hg = shapes(HGFilter(), image)
  assert _count(hg) == 14_420_864
  assert _count(shapes(HGFilter(keep_unused_norm_params=False), image)) == 14_420_864 - 16_640
  assert sum(int(np.prod(flax.traverse_util.flatten_dict(hg)[p].shape))
             for p in _unused_norm_paths(hg)) == 16_640
  maps = tuple(jax.ShapeDtypeStruct((1, 128, 128, 256), jnp.float32) for _ in range(4))
  assert _count(shapes(HGHeads(), maps)) == 131_584
  point_features = jax.ShapeDtypeStruct((1, 500, 1027), jnp.float32)
  assert _count(shapes(Point2Osim(), point_features)) == 2_884_620

  model = FrameModel()
  params = shapes(model, jax.ShapeDtypeStruct((1, 2, 256, 256, 3), jnp.float32),
                  jax.ShapeDtypeStruct((1, 2, 500, 2), jnp.float32),
                  jax.ShapeDtypeStruct((1, 500, 3), jnp.float32))
  assert _count(params) == 14_420_864 + 131_584 + 2_884_620
  p2o = params["point2osim"]
  assert p2o["fc1"]["v"].shape == (1027, 512)  # 3 + 2 views * 4 stacks * 128
  assert p2o["fc4"]["v"].shape == (500 * 32, 128)
  assert p2o["fc6"]["v"].shape == (128, 102)
  out = jax.eval_shape(model.apply, {"params": params},
                       jax.ShapeDtypeStruct((3, 2, 256, 256, 3), jnp.float32),
                       jax.ShapeDtypeStruct((3, 2, 500, 2), jnp.float32),
                       jax.ShapeDtypeStruct((3, 500, 3), jnp.float32))
  assert out.shape == (3, 102) and out.dtype == jnp.float32


# ----------------------------------------------------------------------------------------
# Bicubic align-corners upsampling.


def _bicubic_reference(img, out_h, out_w, a=-0.75):
  """Per-output-pixel transcription of PyTorch's bicubic (align_corners=True) for a (H, W) map."""
  h, w = img.shape

  def kernel(d):
    d = abs(d)
    if d <= 1:
      return (a + 2) * d**3 - (a + 3) * d**2 + 1
    if d < 2:
      return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return 0.0

  out = np.zeros((out_h, out_w))
  for oy in range(out_h):
    ry = oy * (h - 1) / (out_h - 1)
    y0 = int(np.floor(ry))
    for ox in range(out_w):
      rx = ox * (w - 1) / (out_w - 1)
      x0 = int(np.floor(rx))
      for m in range(-1, 3):
        for n in range(-1, 3):
          yy = min(max(y0 + m, 0), h - 1)
          xx = min(max(x0 + n, 0), w - 1)
          out[oy, ox] += kernel(ry - (y0 + m)) * kernel(rx - (x0 + n)) * img[yy, xx]
  return out


def test_bicubic_align_corners_matches_reference():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 5, 7, 3))
  for out_h, out_w in ((10, 14), (9, 4)):
    got = np.asarray(
        hourglass.resize_bicubic_align_corners(jnp.asarray(x, jnp.float32), out_h, out_w))
    assert got.shape == (2, out_h, out_w, 3)
    for b in range(2):
      for c in range(3):
        np.testing.assert_allclose(got[b, :, :, c], _bicubic_reference(x[b, :, :, c], out_h, out_w),
                                   atol=2e-6)
    # Corners reproduce the input exactly (align_corners), also in float32.
    x32 = x.astype(np.float32)
    for i, j in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
      np.testing.assert_array_equal(got[:, i, j], x32[:, i, j])


def test_bicubic_align_corners_matches_torch():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  x = rng.normal(size=(2, 8, 6, 4)).astype(np.float32)
  want = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2,
                                         mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
  got = hourglass.resize_bicubic_align_corners(jnp.asarray(x), 16, 12)
  np.testing.assert_allclose(np.asarray(got), want.numpy(), atol=2e-6)
  bf16 = hourglass.resize_bicubic_align_corners(jnp.asarray(x, jnp.bfloat16), 16, 12)
  assert bf16.dtype == jnp.bfloat16


# ----------------------------------------------------------------------------------------
# HGFilter / HGHeads against a PyTorch transcription of the official layers.


def _torch_hgfilter(torch, params, images_nhwc, cfg):
  """Runs the official layer sequence with torch.nn.functional on the flax parameters."""
  fn = torch.nn.functional
  t = lambda a: torch.from_numpy(np.asarray(a))
  groups = cfg["norm_groups"]

  def conv(x, p, stride=1, pad=0):
    return fn.conv2d(x, t(p["kernel"]).permute(3, 2, 0, 1),
                     t(p["bias"]) if "bias" in p else None, stride, pad)

  def gn(x, p):
    return fn.group_norm(x, groups, t(p["scale"]), t(p["bias"]), eps=1e-5)

  def block(x, p):
    o1 = conv(fn.relu(gn(x, p["bn1"])), p["conv1"], pad=1)
    o2 = conv(fn.relu(gn(o1, p["bn2"])), p["conv2"], pad=1)
    o3 = conv(fn.relu(gn(o2, p["bn3"])), p["conv3"], pad=1)
    res = conv(fn.relu(gn(x, p["bn4"])), p["downsample_conv"]) if "downsample_conv" in p else x
    return torch.cat([o1, o2, o3], 1) + res

  def hourglass_level(x, p, level):
    up1 = block(x, p[f"b1_{level}"])
    low = block(fn.avg_pool2d(x, 2, stride=2), p[f"b2_{level}"])
    low = hourglass_level(low, p, level - 1) if level > 1 else block(low, p[f"b2_plus_{level}"])
    low = block(low, p[f"b3_{level}"])
    return up1 + fn.interpolate(low, scale_factor=2, mode="bicubic", align_corners=True)

  x = t(images_nhwc).permute(0, 3, 1, 2)
  x = fn.relu(gn(conv(x, params["conv1"], stride=2, pad=3), params["bn1"]))
  x = block(block(x, params["conv2"]), params["conv3"])
  previous = block(x, params["conv4"])
  outputs = []
  for i in range(cfg["num_stacks"]):
    ll = block(hourglass_level(previous, params[f"m{i}"], cfg["depth"]), params[f"top_m_{i}"])
    ll = fn.relu(gn(conv(ll, params[f"conv_last{i}"]), params[f"bn_end{i}"]))
    out = conv(ll, params[f"l{i}"])
    outputs.append(out.permute(0, 2, 3, 1).numpy())
    if i < cfg["num_stacks"] - 1:
      previous = previous + conv(ll, params[f"bl{i}"]) + conv(out, params[f"al{i}"])
  return outputs


def test_encoder_matches_torch_transcription():
  """FrameModel.encode (HGFilter + HGHeads per view) against the official layer sequence."""
  torch = pytest.importorskip("torch")
  _, params = _tiny_model_and_params()
  images = _tiny_inputs(seed=4)[0]
  # Random GroupNorm affines and biases too, so that a swapped norm would be noticed.
  leaves, tree = jax.tree.flatten(params)
  rng = np.random.default_rng(2)
  params = jax.tree.unflatten(tree, [l + 0.1 * rng.normal(size=l.shape).astype(np.float32)
                                     for l in leaves])
  got = np.asarray(_tiny_encode()({"params": params}, images))
  params64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  cfg = {k: TINY[k] for k in ("num_stacks", "depth", "norm_groups")}
  for view in range(2):
    stacks = _torch_hgfilter(torch, params64["image_filter"],
                             np.asarray(images[:, view], np.float64), cfg)
    assert len(stacks) == 2 and stacks[0].shape == (2, 32, 32, 32)
    heads = [s @ params64["heads"][f"head{i + 1}"]["kernel"][0, 0]
             + params64["heads"][f"head{i + 1}"]["bias"] for i, s in enumerate(stacks)]
    want = np.concatenate(heads, -1)
    np.testing.assert_allclose(got[:, view], want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_hgfilter_rejects_bad_sizes():
  init_shapes = lambda model, shape: jax.eval_shape(
      functools.partial(model.init, jax.random.key(0)), jax.ShapeDtypeStruct(shape, jnp.float32))
  model = HGFilter(num_stacks=1, depth=3, width=32, stem_widths=(16, 32), norm_groups=8)
  with pytest.raises(ValueError, match="divisible by 8"):
    init_shapes(model, (1, 24, 24, 3))  # features 12x12
  init_shapes(model, (1, 16, 16, 3))  # features 8x8 are fine
  with pytest.raises(ValueError, match="norm_groups"):
    init_shapes(HGFilter(num_stacks=1, width=36, stem_widths=(16, 32), norm_groups=8),
                (1, 16, 16, 3))


# ----------------------------------------------------------------------------------------
# Point head.


def test_weight_norm_dense_semantics():
  layer = WeightNormDense(5)
  params = layer.init(jax.random.key(0), jnp.zeros((1, 7)))["params"]
  assert params["v"].shape == (7, 5) and params["g"].shape == (5,) and params["bias"].shape == (5,)
  # Initially g = ||v||, so the effective kernel is v.
  np.testing.assert_allclose(params["g"], np.linalg.norm(params["v"], axis=0), rtol=1e-6)
  params = dict(params, g=jnp.array([0.5, 2.0, 3.0, -1.0, 0.1]),
                bias=jnp.arange(5.0), v=params["v"] * 3.7)
  # Read the kernel actually used back from the forward pass on the identity.
  kernel = layer.apply({"params": params}, jnp.eye(7)) - params["bias"]
  np.testing.assert_allclose(np.linalg.norm(kernel, axis=0), np.abs(params["g"]), rtol=1e-5)
  np.testing.assert_allclose(
      kernel, params["v"] / np.linalg.norm(params["v"], axis=0) * params["g"], rtol=1e-5, atol=1e-7)


def test_point2osim_matches_torch_weight_norm_conv1d():
  torch = pytest.importorskip("torch")
  n, c_in = 6, 11
  head = Point2Osim(point_widths=(9, 8, 3), global_widths=(7, 5), out_dim=4, num_points=n)
  x = np.random.default_rng(0).normal(size=(2, n, c_in)).astype(np.float32)
  params = head.init(jax.random.key(0), jnp.asarray(x))["params"]
  params = jax.tree.map(lambda a: a * 1.3 + 0.05, params)  # g != ||v||, non-zero biases
  got = head.apply({"params": params}, jnp.asarray(x))

  # Official structure: weight-normed Conv1d(k=1) layers on (B, C, N), reshape (B, C*N, 1).
  layers = []
  for name in ("fc1", "fc2", "fc3", "fc4", "fc5", "fc6"):
    p = jax.tree.map(lambda a: torch.from_numpy(np.array(a)), params[name])
    conv = torch.nn.Conv1d(p["v"].shape[0], p["v"].shape[1], kernel_size=1)
    conv = torch.nn.utils.parametrizations.weight_norm(conv)
    with torch.no_grad():
      conv.parametrizations.weight.original0.copy_(p["g"][:, None, None])
      conv.parametrizations.weight.original1.copy_(p["v"].T[:, :, None])
      conv.bias.copy_(p["bias"])
    layers.append(conv)
  relu = torch.nn.functional.relu
  with torch.no_grad():
    y = torch.from_numpy(x).permute(0, 2, 1)
    for conv in layers[:3]:
      y = relu(conv(y))
    y = y.reshape(y.shape[0], -1, 1)
    y = relu(layers[4](relu(layers[3](y))))
    want = layers[5](y)[..., 0].numpy()
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)

  with pytest.raises(ValueError, match="num_points=6"):
    head.apply({"params": params}, jnp.zeros((2, 5, c_in)))


# ----------------------------------------------------------------------------------------
# Tiny FrameModel.


def test_tiny_frame_model_forward_and_gradients():
  _, params = _tiny_model_and_params()
  target = jnp.asarray(np.random.default_rng(1).normal(size=(2, 102)), jnp.float32)
  (value, out), grads = _tiny_loss_and_grad()(params, *_tiny_inputs(), target)
  assert out.shape == (2, 102) and out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all() and np.isfinite(float(value))
  assert params["point2osim"]["fc1"]["v"].shape == (3 + 2 * 2 * 16, 32)
  assert params["point2osim"]["fc4"]["v"].shape == (64 * 8, 32)
  unused = {("image_filter",) + p for p in _unused_norm_paths(params["image_filter"])}
  assert unused  # the tiny config has in == out ConvBlocks too
  for path, g in flax.traverse_util.flatten_dict(grads).items():
    g = np.asarray(g)
    assert np.isfinite(g).all(), path
    if path in unused:
      assert not g.any(), f"{path}: PyTorch-compat parameter should be unused"
    else:
      assert np.abs(g).max() > 0, f"{path}: zero gradient"


def test_tiny_frame_model_composition():
  """__call__ == encode -> sample each view at px/S*2-1 -> [xyz | view0 | view1] -> head."""
  model, params = _tiny_model_and_params()
  images, crop_pixels, points = _tiny_inputs(seed=3)
  variables = {"params": params}
  encode = _tiny_encode()
  feats = encode(variables, images)
  assert feats.shape == (2, 2, 32, 32, 2 * 16)
  # Views share the encoder and are encoded independently, each into its own slot.
  swapped = encode(variables, images[:, ::-1])
  np.testing.assert_allclose(swapped[:, 0], feats[:, 1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(swapped[:, 1], feats[:, 0], rtol=1e-5, atol=1e-6)

  grid = crop_pixels / 64 * 2 - 1
  per_point = jnp.concatenate(
      [points, grid_sample_bilinear(feats[:, 0], grid[:, 0]),
       grid_sample_bilinear(feats[:, 1], grid[:, 1])], -1)
  head = Point2Osim((32, 32, 8), (32, 32), 102, num_points=64)
  want = head.apply({"params": params["point2osim"]}, per_point)
  forward = lambda *inputs: _tiny_loss_and_grad()(params, *inputs, jnp.zeros((2, 102)))[0][1]
  got = forward(images, crop_pixels, points)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # The output depends on the image content through the sampled features.
  other = forward(images.at[:, 1].multiply(-1.0), crop_pixels, points)
  assert np.abs(np.asarray(other - got)).max() > 1e-6

  with pytest.raises(ValueError, match="points_centered"):
    model.apply(variables, images, crop_pixels, points[:, :10])
  with pytest.raises(ValueError, match="num_points=64"):
    model.apply(variables, images, crop_pixels[:, :, :10], points[:, :10])
  with pytest.raises(ValueError, match="square crops"):
    model.apply(variables, images[:, :, :, :32], crop_pixels, points)


@pytest.mark.slow
def test_tiny_frame_model_bfloat16():
  _, params = _tiny_model_and_params()
  inputs = _tiny_inputs(seed=5)
  out32 = _tiny_loss_and_grad()(params, *inputs, jnp.zeros((2, 102)))[0][1]
  bf16 = FrameModel(**TINY, dtype=jnp.bfloat16)
  out16 = jax.jit(bf16.apply)({"params": params}, *inputs)
  assert out16.dtype == jnp.float32 and np.isfinite(np.asarray(out16)).all()
  scale = float(jnp.abs(out32).max())
  assert float(jnp.abs(out16 - out32).max()) < 0.05 * scale + 1e-3


def test_group_norm_and_conv1x1_equal_flax_modules():
  """hourglass.GroupNorm and Conv1x1 (written for CPU speed, issue 17) compute what
  flax's nn.GroupNorm(epsilon=1e-5) and nn.Conv(features, (1, 1)) compute, with the same
  parameter names and shapes, forward and backward, also when the maps have a large mean
  (where E[x^2] - E[x]^2 loses digits)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(loc=2.0, scale=0.5, size=(2, 8, 12, 32)), jnp.float32)
  cases = [
      (hourglass.GroupNorm(num_groups=8),
       nn.GroupNorm(num_groups=8, epsilon=hourglass.GN_EPSILON), 2e-5),
      (hourglass.Conv1x1(24, kernel_init=nn.initializers.normal(0.3)),
       nn.Conv(24, (1, 1), kernel_init=nn.initializers.normal(0.3)), 1e-5),
      (hourglass.Conv1x1(24, use_bias=False), nn.Conv(24, (1, 1), use_bias=False), 1e-5),
  ]
  for ours, theirs, tol in cases:
    params = ours.init(jax.random.key(0), x)
    assert (jax.tree.map(jnp.shape, params)
            == jax.tree.map(jnp.shape, theirs.init(jax.random.key(0), x)))
    params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(rng.normal(size=p.shape), p.dtype),
                          params)

    def loss(module, p, x):
      return jnp.sum(jnp.sin(module.apply(p, x)))

    np.testing.assert_allclose(ours.apply(params, x), theirs.apply(params, x), atol=tol)
    for g_ours, g_theirs in zip(jax.grad(functools.partial(loss, ours), argnums=(0, 1))(params, x),
                                jax.grad(functools.partial(loss, theirs), argnums=(0, 1))(params, x)):
      for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_theirs)):
        np.testing.assert_allclose(a, b, atol=tol * max(1.0, float(np.abs(b).max())))


def test_remat_keeps_parameters_outputs_and_gradients():
  """`remat=True` recomputes the encoder's residual blocks in the backward pass: the same
  parameter tree, the same outputs and gradients (only the schedule differs)."""
  filters = {r: HGFilter(num_stacks=2, depth=2, width=16, stem_widths=(8, 16), norm_groups=4,
                         remat=r) for r in (False, True)}
  images = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  params = filters[False].init(jax.random.key(1), images)
  assert (jax.tree.map(jnp.shape, filters[True].init(jax.random.key(1), images))
          == jax.tree.map(jnp.shape, params))

  def loss(remat, p):
    return sum(jnp.sum(jnp.sin(o)) for o in filters[remat].apply(p, images))

  plain, remat = (jax.jit(jax.value_and_grad(functools.partial(loss, r))) for r in (False, True))
  (v0, g0), (v1, g1) = plain(params), remat(params)
  # The two programs fuse and sum the ~16k float32 terms of the loss in different orders:
  # a fresh-clone run on the 2-core AMD EPYC differed by 5.7e-6 (4.4e-6 relative; the
  # earlier rtol=1e-6 held on other runs), float32 rounding of a sum that cancels to -1.3.
  np.testing.assert_allclose(v1, v0, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):  # float32 rounding only
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(np.abs(b).max()))
  # The remat program really recomputes: its backward holds more convolutions.
  count = lambda f: f.lower(params).as_text().count('convolution')
  assert count(remat) > count(plain)
