"""TF-free worker processes for ODAH generation.

Why: TensorFlow and Mesa's GL driver segfault when loaded into one process (they export
clashing LLVM symbols), and the `tfds` CLI imports TensorFlow before it imports a builder.
So rendering, and with it the whole per-subject generation, runs in separate Python
interpreters that never import TensorFlow.

How: each worker is a fresh interpreter (`python -m odah_tfds.worker`, started with
`subprocess`, i.e. fork + exec: no multiprocessing spawn/forkserver, whose children
re-import the parent's `__main__`, which under the tfds CLI imports TensorFlow). A worker
lives as long as its pool, so the body model, the renderer's GL context and JAX's
compiled IK programs are built once and reused for every task it runs.

Protocol: length-prefixed pickles over the worker's stdin/stdout. A task is
`('module:function', args, kwargs)`; the reply is `(True, result)` or
`(False, formatted traceback)`. The worker moves its own stdout to stderr first, so a
library that prints (OpenSim's tools do) cannot corrupt the protocol; worker logs reach
the parent's stderr.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import queue
import struct
import subprocess
import sys
from typing import Any, BinaryIO, Iterable, Iterator

_HEADER = struct.Struct('<Q')


class WorkerError(RuntimeError):
  """A task raised in a worker (the message holds the worker's traceback), or a worker died."""


def send(stream: BinaryIO, obj: Any) -> None:
  payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
  stream.write(_HEADER.pack(len(payload)))
  stream.write(payload)
  stream.flush()


def receive(stream: BinaryIO) -> Any:
  """The next object, or raises EOFError when the stream ends."""
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    raise EOFError('stream closed')
  (size,) = _HEADER.unpack(header)
  payload = stream.read(size)
  if len(payload) < size:
    raise EOFError('stream closed in the middle of a message')
  return pickle.loads(payload)


def process_info() -> dict[str, Any]:
  """What a worker reports about itself (`pool.call('odah_tfds.workers:process_info')`)."""
  return {'pid': os.getpid(), 'tensorflow_loaded': 'tensorflow' in sys.modules,
          'pyopengl_platform': os.environ.get('PYOPENGL_PLATFORM')}


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
  """The environment workers start with: headless EGL rendering, JAX's persistent
  compilation cache (the IK programs take tens of seconds to compile on a CPU; every
  worker and every later build reuses them), and the package importable from this
  checkout even when it is not installed."""
  env = dict(os.environ)
  env.setdefault('PYOPENGL_PLATFORM', 'egl')
  env.setdefault('JAX_COMPILATION_CACHE_DIR',
                 os.path.join(os.path.expanduser('~'), '.cache', 'odah_tfds', 'jax'))
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
  env.update(extra or {})
  return env


class _Worker:
  """One interpreter running `odah_tfds.worker`."""

  def __init__(self, env: dict[str, str]):
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'odah_tfds.worker'], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=env)

  def call(self, function: str, args: tuple, kwargs: dict) -> Any:
    try:
      send(self.process.stdin, (function, args, kwargs))
      ok, value = receive(self.process.stdout)
    except (EOFError, BrokenPipeError) as e:
      code = self.process.poll()
      raise WorkerError(f'ODAH worker process {self.process.pid} died (exit code {code}) while '
                        f'running {function}; its log is on stderr above') from e
    if not ok:
      raise WorkerError(f'{function} failed in worker {self.process.pid}:\n{value}')
    return value

  def close(self, timeout: float = 30.0) -> None:
    if self.process.poll() is None:
      try:
        self.process.stdin.close()  # EOF: the worker's loop ends
        self.process.wait(timeout)
      except (BrokenPipeError, subprocess.TimeoutExpired):
        self.process.kill()
        self.process.wait()
    self.process.stdout.close()


class WorkerPool:
  """A fixed set of TF-free worker interpreters.

      with WorkerPool(2) as pool:
        for result in pool.map('odah_tfds.generate:generate_subject', tasks):
          ...

  `map` runs every task (a tuple of positional arguments) on the next free worker and
  yields the results in task order. A task that raises makes `map` raise WorkerError
  with the worker's traceback; the pool stays usable. Workers start lazily, on first use.
  """

  def __init__(self, num_workers: int, env: dict[str, str] | None = None):
    if num_workers < 1:
      raise ValueError(f'num_workers must be >= 1, got {num_workers}')
    self.num_workers = num_workers
    self._env = worker_environment(env)
    self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
    self._workers: list[_Worker] = []
    self._threads = concurrent.futures.ThreadPoolExecutor(num_workers)

  def _start(self) -> None:
    if not self._workers:
      self._workers = [_Worker(self._env) for _ in range(self.num_workers)]
      for worker in self._workers:
        self._idle.put(worker)

  def _run(self, function: str, args: tuple, kwargs: dict) -> Any:
    worker = self._idle.get()
    try:
      return worker.call(function, args, kwargs)
    finally:
      if worker.process.poll() is None:
        self._idle.put(worker)
      else:  # replace a dead worker so later tasks still run
        self._workers.remove(worker)
        replacement = _Worker(self._env)
        self._workers.append(replacement)
        self._idle.put(replacement)

  def call(self, function: str, *args, **kwargs) -> Any:
    """Runs one task and returns its result."""
    self._start()
    return self._run(function, args, kwargs)

  def map(self, function: str, tasks: Iterable[tuple], **kwargs) -> Iterator[Any]:
    """Yields `function(*task, **kwargs)` for every task, in order, run in parallel."""
    self._start()
    futures = [self._threads.submit(self._run, function, tuple(task), kwargs) for task in tasks]
    try:
      for future in futures:
        yield future.result()
    finally:
      for future in futures:
        future.cancel()

  def close(self) -> None:
    self._threads.shutdown(wait=True, cancel_futures=True)
    for worker in self._workers:
      worker.close()
    self._workers = []

  def __enter__(self) -> WorkerPool:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
