"""The `odah` TFDS dataset; importing this package registers it (`tfds.load('odah/tiny')`)."""

from odah_tfds.odah.odah_dataset_builder import Builder  # noqa: F401
