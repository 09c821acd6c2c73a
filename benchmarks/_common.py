"""What every benchmark prints about the machine it ran on.

Imported as `benchmarks._common`, both when a test imports a benchmark and when one runs
as a script (`python benchmarks/<name>.py`): a script first puts the repository root on
`sys.path`, where Python put only the script's own folder.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable, Hashable


def cpu_name() -> str:
  """The CPU model from /proc/cpuinfo, else what `platform` knows."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def platform_info(dtype: str | None = None, with_load: bool = False) -> str:
  """One line: JAX version, backend and devices; the dtype (if given); CPU model and
  logical cores; the 1-minute load average (`with_load`: timings on a shared machine
  depend on it); Python version."""
  import jax  # pylint: disable=g-import-not-at-top  # lazy: `--help` needs no JAX
  parts = [f'jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}']
  if dtype:
    parts.append(f'dtype {dtype}')
  machine = f'CPU: {cpu_name()}, {os.cpu_count()} logical cores'
  if with_load:
    machine += f'; load average {os.getloadavg()[0]:.1f}'
  parts.append(machine)
  parts.append(f'python {platform.python_version()}')
  return '; '.join(parts)


def peak_memory_gib() -> float:
  """Peak memory so far, GiB: the first JAX device's peak bytes in use where it reports them
  (GPU, TPU), else this process's maximum RSS (CPU; it includes everything allocated
  before, JAX and the inputs too)."""
  import jax  # pylint: disable=g-import-not-at-top  # lazy, as in platform_info
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return stats['peak_bytes_in_use'] / 2**30
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def interleaved_times(calls: dict[Hashable, Callable[[], object]], repeats: int,
                      report: Callable[[int, dict], None] | None = None
                      ) -> dict[Hashable, list[float]]:
  """Seconds of each call, `repeats` times, interleaved: call 1 of every key, then call 2,
  ..., the order rotated by one every repeat so that no key always runs right after the
  same other one; load changes on a shared machine then hit all keys alike. Each call
  must block until its result is ready. `report(repeat_index, times_so_far)` runs after
  every repeat (for progress lines)."""
  keys = list(calls)
  times = {key: [] for key in keys}
  for rep in range(repeats):
    for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:
      start = time.perf_counter()
      calls[key]()
      times[key].append(time.perf_counter() - start)
    if report:
      report(rep, times)
  return times
