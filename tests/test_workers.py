"""The TF-free worker pool that ODAH generation runs in."""

import functools
import os
import subprocess
import sys
import textwrap

import pytest

from odah_tfds import generate
from odah_tfds import workers


@pytest.fixture(scope='module')
def pool():
  with workers.WorkerPool(2) as p:
    yield p


def test_tasks_run_in_separate_tf_free_interpreters(pool):
  infos = list(pool.map(workers.process_info, [()] * 4))
  assert len(infos) == 4
  assert all(info['pid'] != os.getpid() for info in infos)
  assert all(not info['tensorflow_loaded'] for info in infos)
  assert all(not info['renderer_loaded'] for info in infos)
  assert all('odah_tfds.workers' in info['odah_modules'] for info in infos)
  assert all(info['pyopengl_platform'] == os.environ.get('PYOPENGL_PLATFORM', 'egl')
             for info in infos)


def test_a_worker_imports_only_the_modules_of_its_tasks():
  with workers.WorkerPool(1) as p:
    assert p.call(workers.process_info)['odah_modules'] == ['odah_tfds', 'odah_tfds.workers']
    assert p.call(generate.subject_id, 2) == 'S0002'
    info = p.call(workers.process_info)
  assert 'odah_tfds.generate' in info['odah_modules']
  # generate imports the Mesa GL renderer only inside the functions that render.
  assert not info['renderer_loaded'] and not info['tensorflow_loaded']


def test_results_come_back_in_task_order(pool):
  ids = list(pool.map(generate.subject_id, [(i,) for i in range(7)]))
  assert ids == [f'S{i:04d}' for i in range(7)]


def test_task_error_carries_the_worker_traceback_and_pool_survives(pool):
  with pytest.raises(workers.WorkerError, match='ValueError'):
    pool.call(generate.GenerationConfig, subjects=(0, 0, 0))
  assert pool.call(generate.subject_id, 3) == 'S0003'


def test_only_odah_functions_can_be_called(pool):
  with pytest.raises(workers.WorkerError, match='odah_tfds function'):
    pool.call(os.getcwd)


def _nested():
  def inner():
    return 1
  return inner


@pytest.mark.parametrize('function', [
    lambda: 1, _nested(), functools.partial(generate.subject_id, 1),
    'odah_tfds.generate:subject_id', generate.GenerationConfig().subject_indices],
    ids=['lambda', 'nested', 'partial', 'string', 'bound_method'])
def test_functions_without_an_importable_name_are_refused(pool, function):
  with pytest.raises(TypeError, match='worker'):
    pool.call(function)
  with pytest.raises(TypeError, match='worker'):
    pool.map(function, [()])  # at once, not when iterated


def test_functions_go_by_reference():
  assert workers.function_reference(generate.generate_subject) == (
      'odah_tfds.generate:generate_subject')
  assert workers.function_reference(generate.GenerationConfig) == (
      'odah_tfds.generate:GenerationConfig')
  assert workers.function_reference(workers.process_info) == 'odah_tfds.workers:process_info'


def test_sending_generate_subject_imports_nothing_in_the_parent():
  """The parent (the TFDS builder, TensorFlow loaded) must never import the renderer."""
  script = textwrap.dedent('''
      import sys
      from odah_tfds import generate, workers
      before = set(sys.modules)
      workers.function_reference(generate.generate_subject)
      workers.WorkerPool(1).close()
      heavy = ('odah_tfds', 'banet_jax', 'pyrender', 'OpenGL', 'opensim', 'tensorflow')
      print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy),
            'odah_tfds.render' in sys.modules)
  ''')
  out = subprocess.run([sys.executable, '-c', script], env=workers.worker_environment(),
                       capture_output=True, text=True, check=True, timeout=600).stdout
  assert out.split('\n')[-2] == '[] False', out


def test_a_dead_worker_is_reported_and_replaced():
  with workers.WorkerPool(1) as p:
    first = p.call(workers.process_info)['pid']
    p._workers[0].process.kill()  # pylint: disable=protected-access
    p._workers[0].process.wait()  # pylint: disable=protected-access
    with pytest.raises(workers.WorkerError, match='died'):
      p.call(workers.process_info)
    assert p.call(workers.process_info)['pid'] != first


def test_protocol_round_trip(tmp_path):
  path = tmp_path / 'stream'
  with open(path, 'wb') as f:
    workers.send(f, {'a': [1, 2]})
    workers.send(f, ('x', None))
  with open(path, 'rb') as f:
    assert workers.receive(f) == {'a': [1, 2]}
    assert workers.receive(f) == ('x', None)
    with pytest.raises(EOFError):
      workers.receive(f)


def test_bad_pool_size():
  with pytest.raises(ValueError, match='num_workers'):
    workers.WorkerPool(0)
