"""The ODAH example schema and its documentation."""

import pathlib
import re

import numpy as np
import pytest

from odah_tfds import schema

DIMS = schema.Dims(frames=4, crop_size=16)


def test_fake_example_matches_schema():
  example = schema.fake_example(DIMS, np.random.default_rng(0))
  schema.check_example(example, DIMS)
  assert example['crops'].shape == (2, 4, 16, 16, 3)
  assert example['points'].shape == (4, 44, 3)
  assert example['joints_2d'].shape == (2, 4, 22, 2)


@pytest.mark.parametrize('change, message', [
    (lambda e: e.pop('crops'), 'missing'),
    (lambda e: e.update(extra=1), 'unexpected'),
    (lambda e: e.update(coordinates=np.zeros((4, 38), np.float32)), 'coordinates'),
    (lambda e: e.update(masks=np.zeros((2, 4, 16, 16), bool)), 'masks'),
    (lambda e: e.update(coordinate_names=np.zeros(39)), 'coordinate_names'),
])
def test_check_example_rejects(change, message):
  example = schema.fake_example(DIMS, np.random.default_rng(0))
  change(example)
  with pytest.raises(ValueError, match=message):
    schema.check_example(example, DIMS)


def test_dataset_readme_documents_every_feature():
  readme = (pathlib.Path(schema.__file__).parent / 'odah' / 'README.md').read_text()
  rows = dict(re.findall(r'^\| `(\w+)` \| ([^|]+) \|', readme, flags=re.M))
  assert set(rows) >= set(schema.FEATURES)
  for name, feature in schema.FEATURES.items():
    shape = rows[name].strip()
    expected = ('scalar' if not feature.shape else
                '(' + ', '.join(map(str, feature.shape)) + (',)' if len(feature.shape) == 1 else ')'))
    assert shape == expected, (name, shape, expected)
