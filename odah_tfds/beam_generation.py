"""The Beam stage of large `odah` builds: one subject per element, in TF-free workers.

Beam pickles the functions it runs by module path, so they live here, in an importable,
TF-free module (the builder itself may be imported as `odah.odah_dataset_builder` when
`tfds build` is given the folder, a name Beam workers cannot import).
"""

from __future__ import annotations

from odah_tfds import generate
from odah_tfds import workers

# One TF-free generation worker per Beam worker process, started on first use (Beam
# pickles the functions it runs, so the pool cannot be passed in).
_POOL: list[workers.WorkerPool] = []


def generate_subject_examples(index: int, config: generate.GenerationConfig,
                              manual: str | None, backgrounds: str | None):
  """FlatMap body: the (key, example) pairs of subject `index`, counted in Beam metrics."""
  # Lazy: apache_beam, 1.7 s: only Beam builds run this; every build imports this module.
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  if not _POOL:
    _POOL.append(workers.WorkerPool(1))
  result = _POOL[0].call(generate.generate_subject, config, index, manual, backgrounds)
  beam.metrics.Metrics.counter('odah', 'clips').inc(len(result['examples']))
  beam.metrics.Metrics.counter('odah', 'rejected_clips').inc(len(result['rejected']))
  beam.metrics.Metrics.counter('odah', 'frames').inc(result['frames'])
  return [generate.as_tfds_example(e) for e in result['examples']]
