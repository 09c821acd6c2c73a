"""Entry point of one TF-free ODAH worker process (see `odah_tfds.workers`).

    python -m odah_tfds.worker     # started by WorkerPool; reads tasks from stdin

Runs `('module:function', args, kwargs)` tasks until stdin closes. Refuses to run in a
process that has TensorFlow loaded: rendering there would segfault.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

from odah_tfds import workers


def _resolve(name: str):
  module, _, function = name.partition(':')
  if not module.startswith('odah_tfds.') or not function:
    raise ValueError(f'worker tasks must name an odah_tfds function as "module:function", '
                     f'got {name!r}')
  return getattr(importlib.import_module(module), function)


def main() -> None:
  # Keep the protocol stream for ourselves; anything else printed goes to stderr.
  protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), 'wb')
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
  protocol_in = sys.stdin.buffer
  while True:
    try:
      function, args, kwargs = workers.receive(protocol_in)
    except EOFError:
      return
    try:
      if 'tensorflow' in sys.modules:
        raise RuntimeError('TensorFlow was imported into an ODAH worker; rendering would '
                           'segfault (TF and Mesa GL clash). Keep odah_tfds modules TF-free.')
      reply = (True, _resolve(function)(*args, **kwargs))
    except Exception:  # pylint: disable=broad-except
      reply = (False, traceback.format_exc())
    workers.send(protocol_out, reply)


if __name__ == '__main__':
  main()
