"""TF-free worker processes for ODAH generation.

Why: TensorFlow and Mesa's GL driver segfault when loaded into one process (they export
clashing LLVM symbols), and the `tfds` CLI imports TensorFlow before it imports a builder.
So rendering, and with it the whole per-subject generation, runs in separate Python
interpreters that never import TensorFlow.

How: each worker is a fresh interpreter (`python -m odah_tfds.workers`, running `serve`,
started with `subprocess`, i.e. fork + exec: no multiprocessing spawn/forkserver, whose
children re-import the parent's `__main__`, which under the tfds CLI imports TensorFlow).
A worker lives as long as its pool, so the body model, the renderer's GL context and JAX's
compiled IK programs are built once and reused for every task it runs.

    with WorkerPool(2) as pool:
      results = list(pool.map(generate.generate_subject, tasks))

Dispatch: callers pass the function itself, a module-level function (or class) of an
`odah_tfds` module. The parent sends only its reference, `'module:qualname'`
(`function_reference`), never the code: the caller already holds the function, so its
module is already imported in the parent and nothing new is imported there (in
particular not the Mesa GL renderer, which `odah_tfds.generate` imports lazily inside the
functions that render). The worker checks that the reference names an `odah_tfds`
function before importing anything, then imports its module and runs it. Lambdas and
nested functions have no importable name and are refused in the parent with TypeError.

Protocol: length-prefixed pickles over the worker's stdin/stdout. A task is
`('module:qualname', args, kwargs)`; the reply is `(True, result)` or
`(False, formatted traceback)`. The worker moves its own stdout to stderr first, so a
library that prints (OpenSim's tools do) cannot corrupt the protocol; worker logs reach
the parent's stderr. A worker refuses to run tasks once TensorFlow is loaded in it.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import traceback
from typing import Any, BinaryIO, Callable, Iterable, Iterator

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
  """What a worker reports about itself (`pool.call(workers.process_info)`).

  Returns:
    pid; tensorflow_loaded; renderer_loaded (whether `odah_tfds.render` is imported);
    pyopengl_platform; odah_modules, the sorted names of the imported `odah_tfds` modules.
  """
  return {'pid': os.getpid(), 'tensorflow_loaded': 'tensorflow' in sys.modules,
          'renderer_loaded': 'odah_tfds.render' in sys.modules,
          'pyopengl_platform': os.environ.get('PYOPENGL_PLATFORM'),
          'odah_modules': sorted(m for m in sys.modules
                                 if m == 'odah_tfds' or m.startswith('odah_tfds.'))}


def function_reference(function: Callable[..., Any]) -> str:
  """The `'module:qualname'` a worker imports `function` by.

  Looks the name up only among the modules the parent has already imported: it imports
  nothing.

  Args:
    function: a module-level function or class of an importable module.

  Returns:
    `f'{function.__module__}:{function.__qualname__}'`.

  Raises:
    TypeError: `function` is not callable, or has no name another interpreter can import
      (a lambda, a nested function, a bound method, a `functools.partial`, anything
      defined in `__main__`, or an object its module does not hold under that name).
  """
  if not callable(function):
    raise TypeError(f'worker tasks take the function itself, e.g. '
                    f'pool.call(generate.subject_id, 3), got {function!r}')
  module = getattr(function, '__module__', None)
  qualname = getattr(function, '__qualname__', None)
  if not isinstance(module, str) or not isinstance(qualname, str):
    raise TypeError(f'{function!r} has no module and qualified name, so a worker cannot '
                    f'import it; pass a module-level function')
  if '<' in qualname or module == '__main__':
    raise TypeError(f'{module}.{qualname} cannot be sent to a worker interpreter (lambdas, '
                    f'nested functions and functions of __main__ cannot be imported there); '
                    f'pass a module-level function of an importable module')
  found = sys.modules.get(module)
  for part in qualname.split('.'):
    found = getattr(found, part, None)
  if found is not function:
    raise TypeError(f'{module}.{qualname} is not the object {function!r} (a bound method, a '
                    f'decorated or renamed function?); a worker would import something else')
  return f'{module}:{qualname}'


def _resolve(reference: str) -> Callable[..., Any]:
  """The function a task names, imported in the worker; only `odah_tfds` functions."""
  module, _, qualname = reference.partition(':')
  if not module.startswith('odah_tfds.') or not qualname or '<' in qualname:
    raise ValueError(f'worker tasks must name an odah_tfds function as "module:qualname", '
                     f'got {reference!r}')
  found = importlib.import_module(module)
  for part in qualname.split('.'):
    found = getattr(found, part)
  return found


def serve(tasks_in: BinaryIO | None = None, replies_out: BinaryIO | None = None) -> None:
  """A worker's loop: runs tasks from stdin until it closes, replying on stdout.

  First moves the process's stdout to stderr, so only replies reach the protocol stream.

  Args:
    tasks_in: where tasks come from; default the process's stdin.
    replies_out: where replies go; default the process's original stdout.
  """
  if replies_out is None:
    replies_out = os.fdopen(os.dup(sys.stdout.fileno()), 'wb')
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
  if tasks_in is None:
    tasks_in = sys.stdin.buffer
  while True:
    try:
      reference, args, kwargs = receive(tasks_in)
    except EOFError:
      return
    try:
      if 'tensorflow' in sys.modules:
        raise RuntimeError('TensorFlow was imported into an ODAH worker; rendering would '
                           'segfault (TF and Mesa GL clash). Keep odah_tfds modules TF-free.')
      reply = (True, _resolve(reference)(*args, **kwargs))
    except Exception:  # pylint: disable=broad-except
      reply = (False, traceback.format_exc())
    send(replies_out, reply)


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
  """One interpreter running `python -m odah_tfds.workers` (`serve`)."""

  def __init__(self, env: dict[str, str]):
    self.process = subprocess.Popen(
        [sys.executable, '-m', 'odah_tfds.workers'], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env=env)

  def call(self, function: str, args: tuple, kwargs: dict) -> Any:
    """Runs `function` (a `function_reference`) and returns its result."""
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
        for result in pool.map(generate.generate_subject, tasks):
          ...

  `map` runs every task (a tuple of positional arguments) on the next free worker and
  yields the results in task order. Functions go by reference (`function_reference`):
  a lambda or nested function raises TypeError before anything runs. A task that raises
  makes `map` raise WorkerError with the worker's traceback; the pool stays usable.
  Workers start lazily, on first use.
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

  def call(self, function: Callable[..., Any], *args, **kwargs) -> Any:
    """Runs `function(*args, **kwargs)` in a worker and returns its result."""
    reference = function_reference(function)
    self._start()
    return self._run(reference, args, kwargs)

  def map(self, function: Callable[..., Any], tasks: Iterable[tuple],
          **kwargs) -> Iterator[Any]:
    """Yields `function(*task, **kwargs)` for every task, in order, run in parallel.

    Raises TypeError at once (not when iterated) for a function that cannot be sent.
    """
    reference = function_reference(function)
    self._start()
    return self._map(reference, tasks, kwargs)

  def _map(self, reference: str, tasks: Iterable[tuple], kwargs: dict) -> Iterator[Any]:
    futures = [self._threads.submit(self._run, reference, tuple(task), kwargs)
               for task in tasks]
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


if __name__ == '__main__':
  # Run the loop in the importable module, not in this `__main__` copy of it, so tasks
  # naming `odah_tfds.workers` functions share its state.
  from odah_tfds import workers as _workers  # pylint: disable=g-import-not-at-top
  _workers.serve()
