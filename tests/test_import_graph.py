"""The package dependencies run one way, as README.md's "Layout" section draws them:

    launch  ->  banet_jax, odah_tfds
    odah_tfds  ->  banet_jax
    banet_jax  ->  odah_tfds.schema only, in one declared place (banet_jax/synthetic.py,
                   which makes stand-in examples in the dataset's layout)

Read from the source (every import statement, function-level ones included), so nothing
is imported here.
"""

from __future__ import annotations

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]
# banet_jax's one declared use of odah_tfds: the dataset's schema.
SCHEMA_READERS = {'banet_jax/synthetic.py': {'odah_tfds.schema'}}


def _imports(path: pathlib.Path) -> set[str]:
  """Absolute module names imported anywhere in the file."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names.update(f'{node.module}.{alias.name}' for alias in node.names)
      names.add(node.module)
  return names


def _package_imports(package: str) -> dict[str, set[str]]:
  return {str(p.relative_to(REPO)): _imports(p) for p in sorted((REPO / package).rglob('*.py'))}


def _of(imports: set[str], package: str) -> set[str]:
  return {n for n in imports if n == package or n.startswith(package + '.')}


def test_banet_jax_reads_only_the_dataset_schema():
  found = {path: _of(names, 'odah_tfds') for path, names in _package_imports('banet_jax').items()}
  found = {path: names for path, names in found.items() if names}
  assert set(found) == set(SCHEMA_READERS), found
  for path, names in found.items():
    assert names <= SCHEMA_READERS[path] | {'odah_tfds'}, (path, names)


def test_libraries_never_import_the_entry_points():
  for package in ('banet_jax', 'odah_tfds'):
    for path, names in _package_imports(package).items():
      assert not _of(names, 'launch'), (path, _of(names, 'launch'))
