"""Imports pyrender for headless rendering, selecting EGL first.

PyOpenGL picks its platform once, when `OpenGL` is first imported, from the
`PYOPENGL_PLATFORM` environment variable. Every module of this package that needs
pyrender goes through `import_pyrender()`, so the variable is set before that import.
`setdefault` keeps a platform the user chose (e.g. 'osmesa').

TensorFlow and Mesa's GL driver segfault in one process (both carry LLVM, TF exports
its symbols globally), so rendering refuses to start in a process that imported TF.
"""

from __future__ import annotations

import os
import sys

PLATFORM_ENV = 'PYOPENGL_PLATFORM'
DEFAULT_PLATFORM = 'egl'


def check_no_tensorflow() -> None:
  """Raises RuntimeError if TensorFlow is loaded in this process."""
  if 'tensorflow' in sys.modules:
    raise RuntimeError(
        'odah_tfds.render: TensorFlow is imported in this process; TensorFlow and Mesa GL '
        'segfault together. Render in a separate, TF-free process (see '
        'odah_tfds/render/README.md).')


def import_pyrender():
  """The `pyrender` module, imported with PYOPENGL_PLATFORM defaulting to 'egl'."""
  check_no_tensorflow()
  if 'OpenGL' not in sys.modules:
    os.environ.setdefault(PLATFORM_ENV, DEFAULT_PLATFORM)
  # Lazy: pyrender/OpenGL: PYOPENGL_PLATFORM set and TensorFlow ruled out first.
  import pyrender  # pylint: disable=g-import-not-at-top
  return pyrender
