"""`tfds build odah` from the checkout root.

The TFDS CLI, given a dataset name, looks for `<name>/<name>_dataset_builder.py` or
`<name>.py` in the current directory before it looks among registered datasets, and it
takes only a builder class defined in that file. So this file defines one: the `odah`
builder of `odah_tfds/odah/odah_dataset_builder.py` under its own name, with that
folder's metadata (README, citation, checksums). Nothing else lives here.

    tfds build odah --config=tiny --file_format=array_record     # from the checkout root
    tfds build odah_tfds/odah --config=tiny                      # the builder's folder
    tfds build odah --imports=odah_tfds.odah --config=tiny       # anywhere, once installed
"""

from odah_tfds.odah import odah_dataset_builder as _odah


class Builder(_odah.Builder):
  """The `odah` builder (see odah_tfds/odah/odah_dataset_builder.py)."""

  name = 'odah'  # not the checkout folder's name, which TFDS would infer for this file
  pkg_dir_path = _odah.Builder._get_pkg_dir_path()  # pylint: disable=protected-access
