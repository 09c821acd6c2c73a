"""ODAH body models: parametric meshes posed in the project's world frame.

* `base`: the `BodyModel` interface, `BodyFrames`, `ManualFilesError`, conventions.
* `anny_body`: the default, free backend (anny, from PyPI).
* `smplx_body`: SMPL-X through the `smplx` package, from user-supplied model files.
* `smplx_standin`: a procedural SMPL-X-format model file for tests (not a body model).
* `markers`: virtual marker definitions and the landmark search.
* `retarget`: project-model motions (T x 39 coordinates) -> rig poses.

Backends are imported lazily (torch, anny and smplx are heavy); no TensorFlow anywhere.
"""

from odah_tfds.body.base import BodyFrames, BodyModel, ManualFilesError

__all__ = ['BodyFrames', 'BodyModel', 'ManualFilesError']
