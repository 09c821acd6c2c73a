"""Training metrics: one JSON line per logged step, and TensorBoard event files.

    <workdir>/metrics.jsonl     {"step": 100, "loss/total": 1.23, ..., "steps_per_sec": 2.1}
    <workdir>/tensorboard/      event files (tensorboardX), one scalar per key

A run resumed from checkpoint step s first drops the JSON lines after s and asks
TensorBoard to purge events after s, so the logs read as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import pathlib


class MetricWriter:
  """Writes scalar dicts per step; `enabled=False` (non-zero processes) writes nothing."""

  def __init__(self, workdir: str | pathlib.Path, resume_step: int | None = None,
               enabled: bool = True):
    self.enabled = enabled
    self.path = pathlib.Path(workdir) / 'metrics.jsonl'
    self._tb = None
    if not enabled:
      return
    self._truncate(resume_step or 0)
    try:
      # Lazy: tensorboardX imports torch, 1.8 s: only for a writing process.
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError('tensorboardX is needed for TensorBoard logs: pip install '
                        'tensorboardX==2.6.5') from e
    # TensorBoard drops earlier events at steps >= purge_step (a fresh start: all of them).
    self._tb = SummaryWriter(str(pathlib.Path(workdir) / 'tensorboard'),
                             purge_step=(resume_step or 0) + 1)

  def _truncate(self, keep_upto: int) -> None:
    """Keeps only the lines of steps <= keep_upto (atomic rewrite)."""
    if not self.path.exists():
      return
    kept = []
    for line in self.path.read_text().splitlines():
      try:
        if json.loads(line)['step'] <= keep_upto:
          kept.append(line)
      except (ValueError, KeyError):  # a line cut short by a kill
        continue
    tmp = self.path.with_suffix('.jsonl.tmp')
    tmp.write_text(''.join(line + '\n' for line in kept))
    os.replace(tmp, self.path)

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step)}
    record.update({k: _jsonable(v) for k, v in scalars.items()})
    with self.path.open('a') as f:
      f.write(json.dumps(record) + '\n')
    for key, value in scalars.items():
      self._tb.add_scalar(key, float(value), global_step=int(step))

  def flush(self) -> None:
    if self._tb is not None:
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def _jsonable(value) -> float | None | str:
  value = float(value)
  return value if math.isfinite(value) else str(value)  # JSON has no NaN / inf
