"""Tests for banet_jax.model.restormer (BANet's spatio-temporal Restormer).

The references below are written in numpy from the PyTorch definitions (NCHW
layout, OIHW kernels, torch's view/permute pixel (un)shuffle), independently of
the NHWC implementation under test.

A second reference, `_Lax*` further down, is the module's original Flax formulation
(lax.conv_general_dilated for the depthwise and 3x3 convs, flax LayerNorm, einsum
attention, autodiff everywhere), kept here after the speed rewrite to pin the parameter
tree (names, shapes, initial values) and the outputs and gradients of the rewritten
operators to it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flax.linen as nn

from banet_jax.model.restormer import (
  GDFN,
  MDTA,
  Conv2d,
  TemporalRestormer,
  TransformerBlock,
  batched_linear,
  depthwise_conv,
  gelu_gate,
  pixel_shuffle_time,
  pixel_unshuffle_time,
  pointwise_conv,
)

PAPER_PARAM_COUNT = 14_397_541
TINY = {'dim': 8, 'num_blocks': (1, 1, 1), 'heads': (1, 1, 2)}
TINY_T, TINY_P = 16, 20


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _normal(seed, shape, dtype=jnp.float32):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def _count(tree) -> int:
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


# ----------------------------------------------------------------------------------------
# numpy references (PyTorch semantics, NCHW)


def _torch_unshuffle1d(x, r):
  """Official PixelUnshuffle1D: (b, c, h, w) -> view (b, c, h, w/r, r) -> permute (0,4,1,2,3)."""
  b, c, h, w = x.shape
  return x.reshape(b, c, h, w // r, r).transpose(0, 4, 1, 2, 3).reshape(b, r * c, h, w // r)


def _torch_shuffle1d(x, r):
  """Official PixelShuffle1D: view (b, r, c/r, h, w) -> permute (0,2,3,4,1) -> (b, c/r, h, w*r)."""
  b, c, h, w = x.shape
  return x.reshape(b, r, c // r, h, w).transpose(0, 2, 3, 4, 1).reshape(b, c // r, h, w * r)


def _nchw(x):
  return np.transpose(x, (0, 3, 1, 2))


def _nhwc(x):
  return np.transpose(x, (0, 2, 3, 1))


def _conv_nchw(x, conv, groups=1):
  """torch Conv2d(stride 1, padding k//2) on NCHW from a Flax HWIO param dict."""
  w = np.transpose(np.asarray(conv['kernel']), (3, 2, 0, 1))  # OIHW, as torch stores it
  cout, cin_g, k, _ = w.shape
  b, _, h, wd = x.shape
  p = k // 2
  xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
  y = np.zeros((b, cout, h, wd))
  out_per_group = cout // groups
  for o in range(cout):
    g = o // out_per_group
    xs = xp[:, g * cin_g:(g + 1) * cin_g]
    for dy in range(k):
      for dx in range(k):
        y[:, o] += np.einsum('bihw,i->bhw', xs[:, :, dy:dy + h, dx:dx + wd], w[o, :, dy, dx])
  if 'bias' in conv:
    y += np.asarray(conv['bias'])[None, :, None, None]
  return y


def _softmax(z, axis):
  z = z - z.max(axis=axis, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=axis, keepdims=True)


def _mdta_ref(x, p, heads):
  """Restormer Attention.forward on NCHW."""
  b, c, h, w = x.shape
  qkv = _conv_nchw(_conv_nchw(x, p['qkv']), p['qkv_dwconv'], groups=3 * c)
  q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in np.split(qkv, 3, axis=1))
  q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
  k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-12)
  attn = _softmax((q @ np.swapaxes(k, -1, -2)) * np.asarray(p['temperature'])[:, None, None],
                  axis=-1)
  return _conv_nchw((attn @ v).reshape(b, c, h, w), p['project_out'])


def _gdfn_ref(x, p):
  """Restormer FeedForward.forward on NCHW."""
  y = _conv_nchw(x, p['project_in'])
  y = _conv_nchw(y, p['dwconv'], groups=y.shape[1])
  x1, x2 = np.split(y, 2, axis=1)
  gelu = x1 * 0.5 * (1.0 + np.vectorize(math.erf)(x1 / math.sqrt(2.0)))
  return _conv_nchw(gelu * x2, p['project_out'])


def _layer_norm_ref(x, p):
  """WithBias_LayerNorm over channels of NCHW."""
  mu = x.mean(axis=1, keepdims=True)
  var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
  return ((x - mu) / np.sqrt(var + 1e-5) * np.asarray(p['scale'])[None, :, None, None]
          + np.asarray(p['bias'])[None, :, None, None])


def _block_ref(x, p, heads):
  """Restormer TransformerBlock.forward on NCHW (pre-norm, two residuals)."""
  x = x + _mdta_ref(_layer_norm_ref(x, p['norm1']), p['attn'], heads)
  return x + _gdfn_ref(_layer_norm_ref(x, p['norm2']), p['ffn'])


def _restormer_ref(x, p, num_blocks, heads):
  """The official BANet Restormer.forward (no refinement, no residual) on (B, T, P)."""
  def blocks(h, prefix, n, nh):
    for i in range(n):
      h = _block_ref(h, p[f'{prefix}_{i}'], nh)
    return h

  img = np.transpose(x, (0, 2, 1))[:, None]  # 'b f p c -> b c p f' with c = 1
  enc1 = blocks(_conv_nchw(img, p['patch_embed']), 'encoder_level1', num_blocks[0], heads[0])
  enc2 = blocks(_torch_unshuffle1d(_conv_nchw(enc1, p['down1_2']), 2), 'encoder_level2',
                num_blocks[1], heads[1])
  enc3 = blocks(_torch_unshuffle1d(_conv_nchw(enc2, p['down2_3']), 4), 'encoder_level3',
                num_blocks[2], heads[2])
  dec2 = _torch_shuffle1d(_conv_nchw(enc3, p['up3_2']), 4)
  dec2 = _conv_nchw(np.concatenate([dec2, enc2], axis=1), p['reduce_chan_level2'])
  dec2 = blocks(dec2, 'decoder_level2', num_blocks[1], heads[1])
  dec1 = np.concatenate([_torch_shuffle1d(_conv_nchw(dec2, p['up2_1']), 2), enc1], axis=1)
  dec1 = blocks(dec1, 'decoder_level1', num_blocks[0], heads[0])
  return np.transpose(_conv_nchw(dec1, p['fusion'])[:, 0], (0, 2, 1))


def _random_params(module, x, seed):
  """Random parameters for `module` applied to `x`, made with numpy from the shapes.

  Kernels U(+-1/sqrt(fan_in)) as PyTorch's default; biases 0.3 N(0,1); LayerNorm
  scales and temperatures 1 + 0.3 N(0,1), so none sits at its special init value.
  (Flax `init` is avoided: its eager/jitted random-number kernels take seconds to
  compile, dominating these tests; `test_conv_init_is_torch_default` covers it.)
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))['params']

  def make(path, s):
    if len(s.shape) == 4:
      bound = 1.0 / math.sqrt(np.prod(s.shape[:3]))
      value = rng.uniform(-bound, bound, s.shape)
    elif path[-1].key in ('scale', 'temperature'):
      value = 1.0 + 0.3 * rng.normal(size=s.shape)
    else:
      value = 0.3 * rng.normal(size=s.shape)
    return jnp.asarray(value, s.dtype)

  return jax.tree_util.tree_map_with_path(make, shapes)


# ----------------------------------------------------------------------------------------
# pixel (un)shuffle


@pytest.mark.parametrize('r', [1, 2, 4])
def test_unshuffle_matches_torch_definition_and_inverts(r):
  rng = np.random.default_rng(r)
  x = rng.normal(size=(2, 3, 8, 5)).astype(np.float32)  # NHWC: B=2, H=3, W=8, C=5
  y = np.asarray(pixel_unshuffle_time(jnp.asarray(x), r))
  assert y.shape == (2, 3, 8 // r, 5 * r)
  np.testing.assert_array_equal(y, _nhwc(_torch_unshuffle1d(_nchw(x), r)))
  z = np.asarray(pixel_shuffle_time(jnp.asarray(y), r))
  np.testing.assert_array_equal(z, x)
  np.testing.assert_array_equal(z, _nhwc(_torch_shuffle1d(_nchw(y), r)))
  # shuffle then unshuffle is the identity too.
  np.testing.assert_array_equal(
      np.asarray(pixel_unshuffle_time(pixel_shuffle_time(jnp.asarray(y), r), r)), y)


def test_unshuffle_is_factor_major():
  # x[b, h, w, c] = 10 * w + c: W=4, C=3, r=2 -> out[w', j*C + c] = x[2w' + j, c].
  x = (10 * np.arange(4)[:, None] + np.arange(3)[None, :])[None, None].astype(np.float32)
  y = np.asarray(pixel_unshuffle_time(jnp.asarray(x), 2))[0, 0]
  np.testing.assert_array_equal(y, [[0, 1, 2, 10, 11, 12], [20, 21, 22, 30, 31, 32]])
  # torch.nn.PixelUnshuffle's 2-D (channel-major) order would give c*r + j instead.
  assert not np.array_equal(y, [[0, 10, 1, 11, 2, 12], [20, 30, 21, 31, 22, 32]])


def test_shuffle_errors():
  with pytest.raises(ValueError, match='divisible'):
    pixel_unshuffle_time(jnp.zeros((1, 2, 6, 3)), 4)
  with pytest.raises(ValueError, match='divisible'):
    pixel_shuffle_time(jnp.zeros((1, 2, 6, 3)), 2)


# ----------------------------------------------------------------------------------------
# building blocks against the numpy references (float64)


def test_mdta_matches_reference(x64):
  del x64
  b, h, w, d, heads = 2, 5, 6, 8, 2
  x = _normal(0, (b, h, w, d), jnp.float64)
  mod = MDTA(num_heads=heads, dtype=jnp.float64, param_dtype=jnp.float64)
  params = _random_params(mod, x, 1)
  assert params['temperature'].shape == (heads,)
  assert params['qkv_dwconv']['kernel'].shape == (3, 3, 1, 3 * d)
  # Distinct temperatures make the per-head scaling observable.
  params['temperature'] = jnp.array([0.5, 3.0])
  got = np.asarray(mod.apply({'params': params}, x))
  want = _nhwc(_mdta_ref(_nchw(np.asarray(x)), params, heads))
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
  # The temperature does matter (guards against it being ignored).
  params['temperature'] = jnp.array([1.0, 1.0])
  other = np.asarray(mod.apply({'params': params}, x))
  assert np.abs(other - got).max() > 1e-3


def test_mdta_attention_is_global_over_tokens(x64):
  """Channel attention pools all H*W positions: a far-away change moves every output."""
  del x64
  x = _normal(3, (1, 7, 9, 4), jnp.float64)
  mod = MDTA(num_heads=1, dtype=jnp.float64, param_dtype=jnp.float64)
  params = {'params': _random_params(mod, x, 4)}
  x2 = x.at[0, 6, 8].add(5.0)  # bottom-right corner
  diff = np.abs(np.asarray(mod.apply(params, x2) - mod.apply(params, x)))
  assert diff[0, 0, 0].max() > 1e-6  # top-left corner, far outside the 3x3 support


def test_gdfn_matches_reference(x64):
  del x64
  d = 6
  x = _normal(5, (2, 4, 5, d), jnp.float64)
  mod = GDFN(ffn_expansion_factor=2.66, dtype=jnp.float64, param_dtype=jnp.float64)
  params = _random_params(mod, x, 6)
  hidden = int(d * 2.66)
  assert params['project_in']['kernel'].shape == (1, 1, d, 2 * hidden)
  assert params['dwconv']['kernel'].shape == (3, 3, 1, 2 * hidden)
  assert params['project_out']['kernel'].shape == (1, 1, hidden, d)
  got = np.asarray(mod.apply({'params': params}, x))
  np.testing.assert_allclose(got, _nhwc(_gdfn_ref(_nchw(np.asarray(x)), params)),
                             rtol=1e-10, atol=1e-10)


def test_transformer_block_matches_reference(x64):
  del x64
  d, heads = 8, 2
  x = _normal(8, (1, 4, 6, d), jnp.float64) * 2.0 + 0.5
  mod = TransformerBlock(num_heads=heads, dtype=jnp.float64, param_dtype=jnp.float64)
  p = _random_params(mod, x, 9)
  np.testing.assert_allclose(np.asarray(mod.apply({'params': p}, x)),
                             _nhwc(_block_ref(_nchw(np.asarray(x)), p, heads)),
                             rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------
# the full module


def test_paper_parameter_count():
  model = TemporalRestormer()
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 102))))
  p = shapes['params']
  assert _count(p) == PAPER_PARAM_COUNT
  assert not any('refinement' in k for k in p)
  assert len([k for k in p if k.startswith('encoder_level1_')]) == 4
  assert len([k for k in p if k.startswith('decoder_level2_')]) == 6
  # Widths and GDFN hidden sizes per level (hidden = int(2.66 d) = 127 / 255 / 1021).
  for name, d, hidden, heads in (('encoder_level1_0', 48, 127, 1),
                                 ('encoder_level2_5', 96, 255, 2),
                                 ('encoder_level3_0', 384, 1021, 4),
                                 ('decoder_level2_0', 96, 255, 2),
                                 ('decoder_level1_3', 96, 255, 1)):
    blk = p[name]
    assert blk['norm1']['scale'].shape == (d,)
    assert blk['attn']['temperature'].shape == (heads,)
    assert blk['attn']['qkv_dwconv']['kernel'].shape == (3, 3, 1, 3 * d)
    assert blk['ffn']['project_out']['kernel'].shape == (1, 1, hidden, d)
  # Bias-free resampling / embedding convs; biased reduce and output convs.
  for name, shape in (('patch_embed', (3, 3, 1, 48)), ('down1_2', (3, 3, 48, 48)),
                      ('down2_3', (3, 3, 96, 96)), ('up3_2', (3, 3, 384, 384)),
                      ('up2_1', (3, 3, 96, 96))):
    assert set(p[name]) == {'kernel'} and p[name]['kernel'].shape == shape
  assert p['reduce_chan_level2']['kernel'].shape == (1, 1, 192, 96)
  assert p['reduce_chan_level2']['bias'].shape == (96,)
  assert p['fusion']['kernel'].shape == (3, 3, 96, 1) and p['fusion']['bias'].shape == (1,)


def test_full_model_matches_reference(x64):
  """Whole tiny network against the numpy transcription of the official forward:
  checks wiring, skip-concatenation order, shuffle ordering and layout transposes."""
  del x64
  model = TemporalRestormer(**TINY, dtype=jnp.float64, param_dtype=jnp.float64)
  x = _normal(20, (1, TINY_T, TINY_P), jnp.float64)
  params = _random_params(model, x, 21)
  got = np.asarray(jax.jit(model.apply)({'params': params}, x))
  want = _restormer_ref(np.asarray(x), params, TINY['num_blocks'], TINY['heads'])
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_conv_init_is_torch_default():
  """U(+-1/sqrt(fan_in)) for kernel and bias, fan_in = k*k*C_in/groups."""
  x = jnp.zeros((1, 4, 4, 64))
  convs = ((Conv2d(64, 3), 9 * 64), (Conv2d(64, 3, groups=64), 9), (Conv2d(32, 1), 64))
  # One jit for all three: eager random-number ops compile one kernel per shape.
  inits = jax.jit(lambda key: [c.init(key, x)['params'] for c, _ in convs])(jax.random.key(0))
  for p, (_, fan_in) in zip(inits, convs):
    bound = 1.0 / math.sqrt(fan_in)
    for leaf in (p['kernel'], p['bias']):
      leaf = np.asarray(leaf)
      assert np.abs(leaf).max() <= bound
      assert np.abs(leaf).max() > 0.8 * bound  # spread over the range, not e.g. N(0, 0.02)


@pytest.fixture(scope='module')
def tiny():
  model = TemporalRestormer(**TINY)
  x = _normal(11, (2, TINY_T, TINY_P))
  params = {'params': _random_params(model, x, 12)}
  return model, params, x, jax.jit(model.apply)


def _loss_and_output(model, x, target):
  """jit(value_and_grad) of the MSE whose aux output is the forward pass (one compile)."""
  def loss(params):
    y = model.apply(params, x)
    return jnp.mean((y.astype(jnp.float32) - target) ** 2), y
  return jax.jit(jax.value_and_grad(loss, has_aux=True))


def test_tiny_forward_and_grads(tiny):
  model, params, x, _ = tiny
  target = _normal(13, x.shape)
  (_, y), grads = _loss_and_output(model, x, target)(params)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(y)))
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  assert len(flat) == len(jax.tree.leaves(params))
  for path, g in flat:
    name = jax.tree_util.keystr(path)
    assert bool(jnp.all(jnp.isfinite(g))), name
    assert float(jnp.abs(g).max()) > 0.0, f'zero gradient for {name}'


def test_output_depends_on_temporal_neighbours(tiny):
  _, params, x, apply = tiny
  y = np.asarray(apply(params, x))
  t0, p0 = 7, 11
  y2 = np.asarray(apply(params, x.at[:, t0, p0].add(1.0)))
  diff = np.abs(y2 - y)
  for t in (t0 - 1, t0 + 1):  # neighbouring frames, same parameter
    assert diff[:, t, p0].min() > 1e-6
  assert diff[:, t0, p0 + 1].min() > 1e-6  # neighbouring parameter, same frame
  assert diff[:, 0].max() > 1e-6 and diff[:, -1].max() > 1e-6  # and far frames (attention)


def test_not_a_per_frame_model(tiny):
  """A per-frame map would commute with any reordering of the frames; this does not."""
  _, params, x, apply = tiny
  y = np.asarray(apply(params, x))
  perm = np.random.default_rng(0).permutation(TINY_T)
  y_perm = np.asarray(apply(params, x[:, perm]))
  scale = np.abs(y).mean()
  assert np.abs(y_perm - y[:, perm]).mean() > 0.05 * scale
  y_rev = np.asarray(apply(params, x[:, ::-1]))
  assert np.abs(y_rev - y[:, ::-1]).mean() > 0.05 * scale


def test_bfloat16_compute(tiny):
  _, params, x, apply = tiny
  bf = TemporalRestormer(**TINY, dtype=jnp.bfloat16)
  shapes = jax.eval_shape(lambda: bf.init(jax.random.key(0), x))
  for leaf in jax.tree.leaves(shapes):
    assert leaf.dtype == jnp.float32
  # Same parameter tree, so the float32 parameters drive both compute dtypes.
  assert jax.tree.structure(shapes) == jax.tree.structure(params)
  y_bf = jax.jit(bf.apply)(params, x)
  assert y_bf.dtype == jnp.bfloat16 and y_bf.shape == x.shape
  assert bool(jnp.all(jnp.isfinite(y_bf)))
  y = apply(params, x)
  err = float(jnp.linalg.norm(y_bf.astype(jnp.float32) - y) / jnp.linalg.norm(y))
  assert err < 0.05, err


@pytest.mark.slow
def test_bfloat16_grads(tiny):
  """Gradients through the bfloat16 path are float32 (param dtype), finite, non-zero.
  Slow only because compiling the backward pass takes ~10-25 s on a loaded CPU."""
  _, params, x, _ = tiny
  bf = TemporalRestormer(**TINY, dtype=jnp.bfloat16)
  (loss, _), grads = _loss_and_output(bf, x, _normal(13, x.shape))(params)
  assert bool(jnp.isfinite(loss))
  for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]:
    name = jax.tree_util.keystr(path)
    assert g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))), name
    assert float(jnp.abs(g).max()) > 0.0, f'zero gradient for {name}'


@pytest.mark.parametrize('shape, match', [((2, 12, 20), 'divisible'),
                                          ((16, 20), r'\(B, T, P\)')])
def test_bad_input_shapes(shape, match):
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(lambda: TemporalRestormer(**TINY).init(jax.random.key(0), jnp.zeros(shape)))


def test_bad_heads():
  with pytest.raises(ValueError, match='heads'):
    jax.eval_shape(lambda: TemporalRestormer(dim=8, num_blocks=(1, 1, 1), heads=(3, 1, 1)).init(
        jax.random.key(0), jnp.zeros((1, TINY_T, TINY_P))))


@pytest.mark.slow
def test_paper_size_forward():
  model = TemporalRestormer()
  x = _normal(0, (1, 64, 102))
  y = jax.jit(model.apply)({'params': _random_params(model, x, 1)}, x)
  assert y.shape == (1, 64, 102) and bool(jnp.all(jnp.isfinite(y)))


# ----------------------------------------------------------------------------------------
# the original lax formulation (the module before the CPU speed rewrite), as a reference


class _LaxConv2d(nn.Module):
  features: int
  kernel_size: int = 1
  groups: int = 1
  use_bias: bool = True
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    cin, k = x.shape[-1], self.kernel_size
    bound = 1.0 / math.sqrt(k * k * cin // self.groups)
    init = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
    kernel = self.param('kernel', init, (k, k, cin // self.groups, self.features))
    x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
    if k == 1 and self.groups == 1:
      y = jnp.einsum('bhwi,io->bhwo', x, kernel[0, 0])
    else:
      y = jax.lax.conv_general_dilated(
          x, kernel, (1, 1), ((k // 2, k // 2),) * 2, dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
          feature_group_count=self.groups)
    if self.use_bias:
      y = y + self.param('bias', init, (self.features,)).astype(self.dtype)
    return y


class _LaxMDTA(nn.Module):
  num_heads: int
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    b, h, w, d = x.shape
    temperature = self.param('temperature', nn.initializers.ones, (self.num_heads,))
    qkv = _LaxConv2d(3 * d, 1, 1, True, self.dtype, name='qkv')(x)
    qkv = _LaxConv2d(3 * d, 3, 3 * d, True, self.dtype, name='qkv_dwconv')(qkv)
    c = d // self.num_heads
    q, k, v = (t.reshape(b, h * w, self.num_heads, c) for t in jnp.split(qkv, 3, axis=-1))
    q = q / jnp.maximum(jnp.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    k = k / jnp.maximum(jnp.linalg.norm(k, axis=1, keepdims=True), 1e-12)
    attn = jax.nn.softmax(jnp.einsum('bnhc,bnhe->bhce', q, k) * temperature[:, None, None], -1)
    out = jnp.einsum('bhce,bnhe->bnhc', attn, v).reshape(b, h, w, d)
    return _LaxConv2d(d, 1, 1, True, self.dtype, name='project_out')(out)


class _LaxGDFN(nn.Module):
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    d = x.shape[-1]
    hidden = int(d * 2.66)
    y = _LaxConv2d(2 * hidden, 1, 1, True, self.dtype, name='project_in')(x)
    y = _LaxConv2d(2 * hidden, 3, 2 * hidden, True, self.dtype, name='dwconv')(y)
    x1, x2 = jnp.split(y, 2, axis=-1)
    return _LaxConv2d(d, 1, 1, True, self.dtype, name='project_out')(
        jax.nn.gelu(x1, approximate=False) * x2)


class _LaxBlock(nn.Module):
  num_heads: int
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    norm = lambda name: nn.LayerNorm(epsilon=1e-5, use_fast_variance=False, dtype=self.dtype,
                                     name=name)
    x = x + _LaxMDTA(self.num_heads, self.dtype, name='attn')(norm('norm1')(x))
    return x + _LaxGDFN(self.dtype, name='ffn')(norm('norm2')(x))


class _LaxTemporalRestormer(nn.Module):
  dim: int = 48
  num_blocks: tuple = (4, 6, 6)
  heads: tuple = (1, 2, 4)
  dtype: object = jnp.float32

  @nn.compact
  def __call__(self, x):
    d1, d2, d3 = self.dim, 2 * self.dim, 8 * self.dim
    conv = lambda f, k, bias, name: _LaxConv2d(f, k, 1, bias, self.dtype, name=name)
    unshuffle = lambda t, r: t.reshape(t.shape[0], t.shape[1], t.shape[2] // r, r * t.shape[3])
    shuffle = lambda t, r: t.reshape(t.shape[0], t.shape[1], t.shape[2] * r, t.shape[3] // r)

    def blocks(t, heads, n, prefix):
      for i in range(n):
        t = _LaxBlock(heads, self.dtype, name=f'{prefix}_{i}')(t)
      return t

    enc1 = blocks(conv(d1, 3, False, 'patch_embed')(jnp.swapaxes(x, 1, 2)[..., None]),
                  self.heads[0], self.num_blocks[0], 'encoder_level1')
    enc2 = blocks(unshuffle(conv(d1, 3, False, 'down1_2')(enc1), 2), self.heads[1],
                  self.num_blocks[1], 'encoder_level2')
    enc3 = blocks(unshuffle(conv(d2, 3, False, 'down2_3')(enc2), 4), self.heads[2],
                  self.num_blocks[2], 'encoder_level3')
    dec2 = shuffle(conv(d3, 3, False, 'up3_2')(enc3), 4)
    dec2 = conv(d2, 1, True, 'reduce_chan_level2')(jnp.concatenate([dec2, enc2], -1))
    dec2 = blocks(dec2, self.heads[1], self.num_blocks[1], 'decoder_level2')
    dec1 = jnp.concatenate([shuffle(conv(d2, 3, False, 'up2_1')(dec2), 2), enc1], -1)
    dec1 = blocks(dec1, self.heads[0], self.num_blocks[0], 'decoder_level1')
    return jnp.swapaxes(conv(1, 3, True, 'fusion')(dec1)[..., 0], 1, 2)


@pytest.mark.parametrize('kwargs, shape', [({}, (2, 64, 102)), (TINY, (2, TINY_T, TINY_P))],
                         ids=['paper', 'tiny'])
def test_parameter_tree_is_the_original_one(kwargs, shape):
  """Names and shapes of every parameter, paper and tiny presets, as the original module
  (so existing checkpoints and banet_jax/released/ load unchanged)."""
  x = jnp.zeros(shape)
  new = jax.eval_shape(lambda: TemporalRestormer(**kwargs).init(jax.random.key(0), x))
  old = jax.eval_shape(lambda: _LaxTemporalRestormer(**kwargs).init(jax.random.key(0), x))
  assert jax.tree.structure(new) == jax.tree.structure(old)
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(new), jax.tree.leaves(old)):
    assert (a.shape, a.dtype) == (b.shape, b.dtype), jax.tree_util.keystr(path)


def test_initial_values_are_the_original_ones():
  """Same key, same initial parameters (same param paths and initialisers)."""
  x = jnp.zeros((1, TINY_T, TINY_P))
  init = jax.jit(lambda key: (TemporalRestormer(**TINY).init(key, x),
                              _LaxTemporalRestormer(**TINY).init(key, x)))
  new, old = init(jax.random.key(3))
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(new), jax.tree.leaves(old)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


def _value_and_grads(model, params, x, target):
  def loss(p, x):
    y = model.apply({'params': p}, x)
    return jnp.mean((y - target) ** 2), y
  (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)
  return y, grads


def _assert_trees_close(got, want, rtol, atol_frac):
  """Elementwise |got - want| <= atol + rtol |want| with atol = atol_frac * max|want| per
  leaf (gradients of different parameters differ in scale by orders of magnitude)."""
  for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
    b = np.asarray(b)
    np.testing.assert_allclose(np.asarray(a), b, rtol=rtol, atol=atol_frac * np.abs(b).max(),
                               err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize('dtype, rtol, atol_frac', [(jnp.float32, 1e-5, 1e-5),
                                                    (jnp.float64, 1e-10, 1e-10)],
                         ids=['float32', 'float64'])
def test_outputs_and_grads_match_original_formulation(dtype, rtol, atol_frac):
  """The rewritten operators (shifted-sum depthwise conv with its written-out backward
  pass, norm-folded attention with the projection folded into one (d x d) matrix, erf
  GELU gate, matmul-based bias gradients) against the original lax/autodiff
  formulation: output and gradients w.r.t. every parameter and the input. float32 to
  1e-5 (summation orders differ), float64 to 1e-10 (same mathematics)."""
  with jax.enable_x64(dtype == jnp.float64):
    x = _normal(30, (2, TINY_T, TINY_P), dtype)
    target = _normal(31, x.shape, dtype)
    new = TemporalRestormer(**TINY, dtype=dtype, param_dtype=dtype)
    params = _random_params(new, x, 32)
    y, grads = _value_and_grads(new, params, x, target)
    y_ref, grads_ref = _value_and_grads(_LaxTemporalRestormer(**TINY, dtype=dtype), params, x,
                                        target)
    assert y.dtype == dtype
    _assert_trees_close(y, y_ref, rtol, atol_frac)
    _assert_trees_close(grads, grads_ref, rtol, atol_frac)


@pytest.mark.parametrize('shape, k', [((2, 7, 5, 6), 3), ((1, 17, 8, 4), 3), ((2, 6, 9, 3), 5),
                                      ((1, 102, 8, 2), 3)])
def test_depthwise_conv_matches_lax(x64, shape, k):
  """Forward, input gradient and kernel gradient of the shifted-sum depthwise conv
  against lax's grouped convolution (float64: same sums up to rounding)."""
  del x64
  x = _normal(40, shape, jnp.float64)
  kernel = _normal(41, (k, k, shape[-1]), jnp.float64)
  g = _normal(42, shape, jnp.float64)
  lax_dw = lambda x, kern: jax.lax.conv_general_dilated(
      x, kern[:, :, None, :], (1, 1), ((k // 2, k // 2),) * 2,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=shape[-1])
  for fn in (depthwise_conv, jax.jit(depthwise_conv)):
    y, vjp = jax.vjp(fn, x, kernel)
    y_ref, vjp_ref = jax.vjp(lax_dw, x, kernel)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-12, atol=1e-12)
    for got, want in zip(vjp(g), vjp_ref(g)):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)


def test_gate_and_linear_vjps_match_autodiff(x64):
  """The written-out backward passes of gelu_gate, pointwise_conv and batched_linear
  against autodiff of their plain formulas."""
  del x64
  x1, x2 = _normal(50, (3, 4, 5), jnp.float64) * 2.0, _normal(57, (3, 4, 5), jnp.float64)
  g = _normal(51, (3, 4, 5), jnp.float64)
  plain_gate = lambda x1, x2: jax.nn.gelu(x1, approximate=False) * x2
  np.testing.assert_allclose(np.asarray(gelu_gate(x1, x2)), np.asarray(plain_gate(x1, x2)),
                             rtol=1e-13, atol=1e-13)
  for got, want in zip(jax.vjp(gelu_gate, x1, x2)[1](g), jax.vjp(plain_gate, x1, x2)[1](g)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
  x2, w, b = _normal(52, (12, 6), jnp.float64), _normal(53, (6, 4), jnp.float64), _normal(54, (4,), jnp.float64)
  g2 = _normal(55, (12, 4), jnp.float64)
  for fn, plain, args, gg in (
      (pointwise_conv, lambda x, w, b: x @ w + b, (x2, w, b), g2),
      (batched_linear, lambda v, m, b: jnp.einsum('bni,bio->bno', v, m) + b,
       (x2.reshape(2, 6, 6), _normal(56, (2, 6, 4), jnp.float64), b), g2.reshape(2, 6, 4))):
    for got, want in zip(jax.vjp(fn, *args)[1](gg), jax.vjp(plain, *args)[1](gg)):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
  # No bias.
  for got, want in zip(jax.vjp(lambda x, w: pointwise_conv(x, w, None), x2, w)[1](g2),
                       jax.vjp(lambda x, w: x @ w, x2, w)[1](g2)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
