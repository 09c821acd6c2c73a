"""Pictures of a clip's labels: the posed mesh with the IK-fitted skeleton on top.

Front view: the subject's right (+z) to the viewer's left, y up (looking along -x at
a subject facing +x). Side view: x (forward) to the right, y up (the subject's right
side, looking along -z). Orthographic, world metres.
"""

from __future__ import annotations

import pathlib

import matplotlib
from matplotlib.collections import LineCollection, PolyCollection
import numpy as np

from banet_jax.skeleton.models import load_model

matplotlib.use('Agg')
# pyplot after choosing Agg.
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

# (horizontal axis, its sign, vertical axis) of each view.
VIEWS = {'front': (2, -1.0, 1), 'side': (0, 1.0, 1)}


def _bones(skel) -> list[tuple[int, int]]:
  """Pairs of joint-centre indices: each joint to the joint that moves its parent body."""
  joint_of_body = {j.child_body: k for k, j in enumerate(skel.joints)}
  return [(joint_of_body[j.parent_body], k) for k, j in enumerate(skel.joints)
          if j.parent_body in joint_of_body]


def _draw(ax, view, vertices, faces, joints, bones, model_markers, virtual_markers):
  h, sign, v = VIEWS[view]
  xy = lambda p: np.stack([sign * p[..., h], p[..., v]], axis=-1)
  # Painter's order: far faces first. Both cameras sit on the positive side of their
  # depth axis (front: +x, side: +z), so far means small.
  depth_axis = 0 if view == 'front' else 2
  order = np.argsort(vertices[faces, depth_axis].mean(1))
  ax.add_collection(PolyCollection(xy(vertices[faces[order]]), facecolors='0.82',
                                   edgecolors='0.72', linewidths=0.05))
  joints_2d = xy(joints)
  ax.add_collection(LineCollection([joints_2d[[a, b]] for a, b in bones], colors='tab:red',
                                   linewidths=1.5))
  ax.scatter(*joints_2d.T, s=8, c='tab:red', zorder=3, label='joint centres (IK)')
  ax.scatter(*xy(virtual_markers).T, s=10, marker='x', c='tab:green', linewidths=0.8,
             zorder=4, label='virtual markers (mesh)')
  ax.scatter(*xy(model_markers).T, s=6, c='tab:blue', zorder=5, label='model markers (IK)')
  # Collections do not enter matplotlib's data limits: set them from everything drawn.
  everything = np.concatenate([xy(vertices), joints_2d, xy(model_markers), xy(virtual_markers)])
  lo, hi = everything.min(0) - 0.03, everything.max(0) + 0.03
  ax.set_xlim(lo[0], hi[0])
  ax.set_ylim(lo[1], hi[1])
  ax.set_aspect('equal')
  ax.set_xticks([])
  ax.set_yticks([])


def plot_clip(clip, path: pathlib.Path, frames=None, model_path: str | None = None):
  """Write a PNG: for a few frames of `clip` (an `odah_tfds.labels.ClipLabels`), the mesh
  with the fitted joint centres, bones and markers, front and side (model_path: the
  labels' model, default the project model)."""
  skel = load_model(model_path)
  bones = _bones(skel)
  t = len(clip.coordinates)
  frames = frames if frames is not None else sorted({0, t // 2, t - 1})
  num_bodies = skel.num_bodies
  fig, axes = plt.subplots(2, len(frames), figsize=(3.2 * len(frames), 7.0), squeeze=False)
  for col, f in enumerate(frames):
    for row, view in enumerate(VIEWS):
      ax = axes[row, col]
      _draw(ax, view, clip.frames.vertices[f], clip.frames.faces, clip.points[f, num_bodies:],
            bones, clip.model_markers[f], clip.frames.markers[f])
      ax.set_title(f'{view}, frame {f} (RMS {clip.rms[f] * 100:.1f} cm)', fontsize=8)
  axes[0, 0].legend(loc='lower left', fontsize=6)
  fig.suptitle(f'{clip.clip_id}: {clip.motion.family}', fontsize=10)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
