"""The assembled BANet (banet_jax/model/banet.py): presets, shapes, gradients, overfitting."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from banet_jax import losses
from banet_jax.model.banet import BANet, get_config, parameter_summary


@pytest.fixture(scope='module', autouse=True)
def _compile_fast(fast_compile):  # this module compiles much and runs little
  del fast_compile


@pytest.fixture(scope='module')
def tiny():
  return BANet.create(get_config('tiny'))


def _synthetic_clip(net: BANet, seed: int, batch: int = 1):
  """Random two-view inputs and in-range targets for one chunk."""
  rng = np.random.default_rng(seed)
  c, skel = net.config, net.layout.skeleton
  t = c.chunk_length
  images = rng.normal(size=(batch, t, c.num_views, c.image_size, c.image_size, 3))
  pixels = rng.uniform(0, c.image_size, size=(batch, t, c.num_views, c.num_points, 2))
  points = rng.normal(scale=0.3, size=(batch, t, c.num_points, 3))
  lo, hi = skel.coordinate_ranges.T
  # A smooth in-range trajectory: the midpoint plus slow sinusoids.
  phase = rng.uniform(0, 2 * np.pi, size=(batch, 1, skel.num_coordinates))
  time_axis = np.linspace(0, 1, t)[None, :, None]
  coords = (lo + hi) / 2 + 0.3 * (hi - lo) * np.sin(2 * np.pi * time_axis + phase)
  scales = np.broadcast_to(rng.uniform(0.9, 1.1, size=(batch, 1, skel.num_bodies, 3)),
                           (batch, t, skel.num_bodies, 3))
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  return tuple(map(f32, (images, pixels, points))), (f32(coords), f32(scales))


def test_paper_parameter_counts_within_one_percent():
  rows = dict(parameter_summary(BANet.create(get_config('paper'))))
  frame, total = rows['frame model total (stage 1)'], rows['spatio-temporal model total (stage 2)']
  assert abs(frame / 17.44e6 - 1) < 0.01, frame
  assert abs(total / 31.95e6 - 1) < 0.01, total
  # The modules the dossier counts one by one, exactly (the encoder without the
  # official code's 16,640 never-used GroupNorm parameters; see BANetConfig).
  assert rows['frame/image_filter'] == 14_420_864 - 16_640
  official = BANet.create(get_config('paper', keep_unused_norm_params=True))
  assert dict(parameter_summary(official))['frame/image_filter'] == 14_420_864
  assert rows['frame/heads'] == 131_584
  assert rows['frame/point2osim'] == 2_884_620
  assert rows['temporal'] == 14_397_541
  assert rows['to_one_scales'] == 65


def test_paper_shapes_by_eval_shape():
  net = BANet.create(get_config('paper'))
  variables = jax.eval_shape(net.init_frame, jax.random.key(0))
  raw = jax.eval_shape(net.frame.apply, variables, *net.example_inputs(batch=2))
  assert raw.shape == (2, 102) and raw.dtype == jnp.float32


def test_tiny_shapes_and_decoding(tiny):
  variables = jax.jit(tiny.init_sequence)(jax.random.key(0, impl='unsafe_rbg'))
  inputs, _ = _synthetic_clip(tiny, seed=0, batch=2)
  per_frame, refined = jax.jit(tiny.sequence.apply)(variables, *inputs)
  assert per_frame.shape == refined.shape == (2, 16, 102)
  pred = tiny.predict(refined)
  assert pred['coordinates'].shape == (2, 16, 39)
  assert pred['scales'].shape == (2, 16, 22, 3)
  assert pred['points'].shape == (2, 16, 44, 3)
  # One scale set per chunk; coordinates vary per frame.
  np.testing.assert_array_equal(pred['scales'], jnp.broadcast_to(pred['scales'][:, :1],
                                                                  pred['scales'].shape))
  assert float(jnp.std(pred['coordinates'][:, :, 6], axis=1).min()) > 0
  # Stage-1 weights drop into stage 2 unchanged.
  frame_vars = jax.jit(tiny.init_frame)(jax.random.key(1, impl='unsafe_rbg'))
  assert (jax.tree.structure(frame_vars['params']['frame'])
          == jax.tree.structure(variables['params']['frame']))
  raw = jax.eval_shape(tiny.frame.apply, frame_vars, *(x[:, 0] for x in inputs))
  assert raw.shape == (2, 102)
  with pytest.raises(ValueError, match='chunks of 16'):
    tiny.sequence.apply(variables, *(x[:, :8] for x in inputs))


def _loss_fn(net, params, inputs, targets):
  _, refined = net.sequence.apply({'params': params}, *inputs)
  pred = net.predict(refined)
  terms = losses.banet_losses(net.layout, pred['coordinates'], pred['scales'], *targets)
  return terms['total'], terms


# The smallest clip that exercises every part; one compiled training step is shared
# by the gradient and the overfitting tests (compiling through the skeleton layer's
# backward pass takes ~20-40 s on a 2-core CPU).
_OVERFIT_CONFIG = dict(image_size=32, num_points=32, chunk_length=8)


@pytest.fixture(scope='module')
def training(tiny):
  net = BANet.create(get_config('tiny', **_OVERFIT_CONFIG))
  inputs, targets = _synthetic_clip(net, seed=3)
  optimizer = optax.adam(2e-3)

  @jax.jit
  def step(params, state):
    (loss, terms), grads = jax.value_and_grad(
        lambda p: _loss_fn(net, p, inputs, targets), has_aux=True)(params)
    updates, state = optimizer.update(grads, state, params)
    return optax.apply_updates(params, updates), state, loss, terms, grads

  params = jax.jit(net.init_sequence)(jax.random.key(5, impl='unsafe_rbg'))['params']
  return step, params, optimizer.init(params)


def test_gradients_finite_and_nonzero_for_every_parameter(training):
  step, params, state = training
  grads = step(params, state)[-1]
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  assert len(flat) > 50
  for path, g in flat:
    name = jax.tree_util.keystr(path)
    assert np.all(np.isfinite(g)), name
    assert float(jnp.max(jnp.abs(g))) > 0, name


@pytest.mark.slow
def test_tiny_model_overfits_one_clip(training):
  step, params, state = training
  start = time.perf_counter()
  history = []
  for _ in range(300):
    params, state, loss, terms, _ = step(params, state)
    history.append(float(loss))
  print(f'overfit: loss {history[0]:.3f} -> {history[-1]:.4f} in 300 steps, '
        f'{time.perf_counter() - start:.1f} s; final terms '
        + ', '.join(f'{k} {float(v):.4f}' for k, v in terms.items()))
  assert np.all(np.isfinite(history))
  assert history[-1] < history[0] / 10


def test_bfloat16_compute_keeps_float32_params():
  net = BANet.create(get_config('tiny', compute_dtype='bfloat16'))
  variables = jax.jit(net.init_frame)(jax.random.key(3, impl='unsafe_rbg'))
  assert {leaf.dtype for leaf in jax.tree.leaves(variables)} == {jnp.dtype('float32')}
  inputs, _ = _synthetic_clip(net, seed=2)
  raw = jax.jit(net.frame.apply)(variables, *(x[:, 0] for x in inputs))
  assert raw.dtype == jnp.float32 and np.all(np.isfinite(raw))
  with pytest.raises(ValueError, match='compute_dtype'):
    get_config('tiny', compute_dtype='float16')


def test_other_skeleton_sets_output_size(extra_osim_path):
  net = BANet.create(get_config('tiny', model_path=str(extra_osim_path)))
  shapes = jax.eval_shape(net.init_frame, jax.random.key(4))
  raw = jax.eval_shape(net.frame.apply, shapes, *net.example_inputs(batch=1))
  skel = net.layout.skeleton
  assert raw.shape == (1, net.layout.num_predicted + 3 * skel.num_bodies)
  points = net.predict(jnp.zeros(raw.shape))['points']
  assert points.shape == (1, skel.num_bodies + len(skel.joint_names), 3)


def test_model_summary_command():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  out = subprocess.run([sys.executable, '-m', 'launch.model_summary', '--preset=paper'],
                       capture_output=True, text=True, check=True, timeout=300).stdout
  assert '36 coordinates + 22 x 3 scales = 102 outputs' in out
  assert '17,420,428' in out and '31,818,034' in out
