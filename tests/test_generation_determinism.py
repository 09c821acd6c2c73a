"""Generation is deterministic: a subject's labels do not depend on what the worker
process that makes them did before (`odah_tfds.generate`'s promise: identical examples in
any order, on any number of workers).

The JAX IK (`banet_jax.skeleton.ik`) compiles one program per skeleton structure and
passes a subject model's numbers to it as arguments, relative to a template skeleton
compiled in. The template used to be the first model of that structure the process
solved, and a model's result changed in the last bits with it (amplified to ~2e-3 rad
by the solver): two `tfds build`s of odah/tiny gave different validation labels,
depending on which subject each worker had started with.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from banet_jax.skeleton import forward_kinematics, load_osim
from banet_jax.skeleton import ik as jax_ik
from odah_tfds.alignment import marker_setup, opensim_scaling
from scaled_subjects import subject_scale_factors

NUM_FRAMES = 4


@pytest.fixture(scope='module', autouse=True)
def _fast(fast_compile):  # pylint: disable=unused-argument
  """XLA's cheap compile mode (the property holds in any mode)."""


def _subject(out, project_model_path, seed: int):
  """A subject model scaled by OpenSim's ScaleTool from the project model (as
  `labels.make_subject` makes them)."""
  generic = load_osim(project_model_path)
  scales = subject_scale_factors(generic, seed)
  static = np.asarray(forward_kinematics(generic, generic.default_coordinates, scales).markers)
  result = opensim_scaling.scale_model(dict(zip(generic.marker_names, static)),
                                       project_model_path, out, subject_mass=70.0,
                                       name=f'S{seed}')
  return load_osim(result.scaled_model_path)


def _targets(skel, seed: int) -> np.ndarray:
  """(T, M, 3) float32 markers of poses near the default one, with 5 mm of noise (so
  the solution has a residual, as the virtual markers of a mesh do)."""
  rng = np.random.default_rng(seed)
  q = skel.default_coordinates + rng.normal(0.0, 0.1, (NUM_FRAMES, skel.num_coordinates))
  q = np.clip(q, *np.asarray(skel.coordinate_ranges).T)
  markers = np.asarray(forward_kinematics(skel, q).markers)
  return (markers + rng.normal(0.0, 0.005, markers.shape)).astype(np.float32)


@pytest.fixture(scope='module')
def subjects(tmp_path_factory, project_model_path):
  out = tmp_path_factory.mktemp('determinism')
  return (_subject(out / 'first', project_model_path, 1),
          _subject(out / 'second', project_model_path, 2))


def test_ik_of_a_subject_does_not_depend_on_the_subjects_solved_before(subjects, monkeypatch):
  first, second = subjects
  weights = marker_setup.ik_weight_array(second.marker_names)
  targets = _targets(second, 0)
  with jax.enable_x64(False):  # float32, as ODAH's labels
    # A fresh process: nothing solved before.
    monkeypatch.setattr(jax_ik, '_TEMPLATES', {})
    alone = jax_ik.solve_ik(second, targets, weights)
    # A worker that solved another subject first.
    monkeypatch.setattr(jax_ik, '_TEMPLATES', {})
    jax_ik.solve_ik(first, _targets(first, 1), weights)
    after = jax_ik.solve_ik(second, targets, weights)
  assert np.asarray(alone.coordinates).dtype == np.float32
  assert np.asarray(alone.rms).max() < 0.02  # a real fit, not a failure
  np.testing.assert_array_equal(np.asarray(after.coordinates), np.asarray(alone.coordinates))
  np.testing.assert_array_equal(np.asarray(after.marker_errors),
                                np.asarray(alone.marker_errors))
  # ... and the subjects still share one compiled program.
  assert jax_ik._template_for(first)[0] is jax_ik._template_for(second)[0]  # pylint: disable=protected-access


def test_template_and_ratios_reproduce_the_model(subjects, project_model_path):
  """The template (a function of the model alone) x the ratios is the model: the same
  joint centres, for subject models and for the generic model (whose knee translations
  are splines scaled by the femur's factors, not multipliers)."""
  models = (load_osim(project_model_path),) + tuple(subjects)
  rng = np.random.default_rng(0)
  with jax.enable_x64(True):
    for skel in models:
      template, ratios = jax_ik._template_for(skel)  # pylint: disable=protected-access
      assert template is not skel
      assert template is jax_ik._template_for(skel.derive())[0]  # pylint: disable=protected-access
      q = skel.default_coordinates + rng.normal(0.0, 0.3, (3, skel.num_coordinates))
      scales = rng.uniform(0.9, 1.1, (3, skel.num_bodies, 1)) * np.ones(3)
      expected = forward_kinematics(skel, q, scales).joint_centers
      got = forward_kinematics(template, q, scales * ratios).joint_centers
      np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=0.0, atol=1e-9)
