"""TFDS's own checks of the `odah` builder on its `smoke` config.

    python -m pytest odah_tfds/odah/odah_dataset_builder_test.py

This imports TensorFlow, so it must not run in a process that renders: the default test
suite runs it in a child process (tests/test_odah_builder.py). `dummy_data/` is passed as
the manual directory; its `backgrounds/` stand in for a user's own background images.
"""

import tensorflow_datasets as tfds

from odah_tfds.odah import odah_dataset_builder


class OdahDatasetBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """Builds odah/smoke (1 subject per split, 1 clip each) and checks it."""

  DATASET_CLASS = odah_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ['smoke']
  SPLITS = {'train': 1, 'validation': 1, 'test': 1}
  SKIP_CHECKSUMS = True  # nothing is downloaded


if __name__ == '__main__':
  tfds.testing.test_main()
