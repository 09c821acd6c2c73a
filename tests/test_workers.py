"""The TF-free worker pool that ODAH generation runs in."""

import os

import pytest

from odah_tfds import workers


@pytest.fixture(scope='module')
def pool():
  with workers.WorkerPool(2) as p:
    yield p


def test_tasks_run_in_separate_tf_free_interpreters(pool):
  infos = list(pool.map('odah_tfds.workers:process_info', [()] * 4))
  assert len(infos) == 4
  assert all(info['pid'] != os.getpid() for info in infos)
  assert all(not info['tensorflow_loaded'] for info in infos)
  assert all(info['pyopengl_platform'] == os.environ.get('PYOPENGL_PLATFORM', 'egl')
             for info in infos)


def test_results_come_back_in_task_order(pool):
  ids = list(pool.map('odah_tfds.generate:subject_id', [(i,) for i in range(7)]))
  assert ids == [f'S{i:04d}' for i in range(7)]


def test_task_error_carries_the_worker_traceback_and_pool_survives(pool):
  with pytest.raises(workers.WorkerError, match='ValueError'):
    pool.call('odah_tfds.generate:GenerationConfig', subjects=(0, 0, 0))
  assert pool.call('odah_tfds.generate:subject_id', 3) == 'S0003'


def test_only_odah_functions_can_be_called(pool):
  with pytest.raises(workers.WorkerError, match='odah_tfds function'):
    pool.call('os:getcwd')


def test_a_dead_worker_is_reported_and_replaced():
  with workers.WorkerPool(1) as p:
    first = p.call('odah_tfds.workers:process_info')['pid']
    p._workers[0].process.kill()  # pylint: disable=protected-access
    p._workers[0].process.wait()  # pylint: disable=protected-access
    with pytest.raises(workers.WorkerError, match='died'):
      p.call('odah_tfds.workers:process_info')
    assert p.call('odah_tfds.workers:process_info')['pid'] != first


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
