"""The `odah` TFDS builder, run the way users run it.

TensorFlow (which TFDS imports) and the Mesa GL renderer must never share a process, and
other tests in this process render. So everything that imports TensorFlow runs in a child
process here: TFDS's own `DatasetBuilderTestCase`, the `tfds build` CLI, and reading back.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from banet_jax.skeleton.models import project_skeleton
from odah_tfds import generate

ROOT = pathlib.Path(__file__).resolve().parents[1]
TFDS = str(pathlib.Path(sys.executable).parent / 'tfds')


def _env(**extra) -> dict[str, str]:
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH')) if p)
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  env.update(extra)
  return env


def _run(args, timeout=900, cwd=ROOT, check=True, **env) -> subprocess.CompletedProcess:
  result = subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=timeout, check=False)
  if check and result.returncode:
    raise AssertionError(f'{" ".join(map(str, args))} exited {result.returncode}\n'
                         f'--- stdout ---\n{result.stdout[-6000:]}\n'
                         f'--- stderr ---\n{result.stderr[-6000:]}')
  return result


# Reads a built split in a child process and prints facts about it as JSON.
_READ_BACK = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow_datasets as tfds
    import odah_tfds.odah  # registers odah
    from odah_tfds import schema
    data_dir, config, fmt = sys.argv[1:4]
    builder = tfds.builder(f'odah/{config}', data_dir=data_dir)
    dims = builder.builder_config.generation.dims()
    if fmt == 'array_record':
      source = tfds.data_source(f'odah/{config}', split='train', data_dir=data_dir)
      examples = [source[i] for i in range(len(source))]
    else:
      examples = list(tfds.as_numpy(tfds.load(f'odah/{config}', split='train',
                                              data_dir=data_dir)))
    facts = {'splits': {k: v.num_examples for k, v in builder.info.splits.items()},
             'examples': len(examples)}
    inside = []
    for ex in examples:
      ex = dict(ex)
      for name, feature in schema.FEATURES.items():
        if feature.dtype == 'str':  # TFDS gives bytes for text; the schema takes str
          ex[name] = np.asarray(ex[name]).astype(str)
        elif not feature.shape:  # the data source gives Python scalars
          ex[name] = np.asarray(ex[name], feature.dtype)
      schema.check_example(ex, dims)
      s = dims.crop_size
      j = np.round(ex['joints_2d']).astype(int)
      ok = (j >= 0).all(-1) & (j < s).all(-1)
      v, t, k = np.nonzero(ok)
      inside.append(float(ex['masks'][v, t, j[v, t, k, 1], j[v, t, k, 0]].mean()))
      facts['clip_ids'] = facts.get('clip_ids', []) + [str(ex['clip_id'])]
      look = json.loads(str(ex['appearance_json']))
      facts['backgrounds'] = facts.get('backgrounds', []) + [
          b.get('kind') for b in look.get('backgrounds', [])]
      facts['checksum'] = facts.get('checksum', 0.0) + float(ex['crops'].sum()) + float(
          ex['coordinates'].sum())
    facts['joints_inside_mask'] = min(inside)
    print('FACTS ' + json.dumps(facts))
''')


def _read_back(data_dir, config='smoke', fmt='array_record') -> dict:
  out = _run([sys.executable, '-c', _READ_BACK, str(data_dir), config, fmt], timeout=300)
  line = [l for l in out.stdout.splitlines() if l.startswith('FACTS ')][-1]
  return json.loads(line[len('FACTS '):])


def test_tfds_dataset_builder_testcase():
  """TFDS's DatasetBuilderTestCase on odah/smoke; dummy_data/ is the manual directory, so
  its backgrounds/ (and the non-image file there) exercise user backgrounds."""
  _run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
        'odah_tfds/odah/odah_dataset_builder_test.py'])


def test_tfds_build_cli_array_record_reads_back(tmp_path):
  """The user's literal `tfds build odah` from the checkout root (odah.py there), array_record
  output, read back with tfds.data_source; user backgrounds from --manual_dir (dummy_data/:
  two images and a text file)."""
  data_dir = tmp_path / 'tfds'
  out = _run([TFDS, 'build', 'odah', '--config=smoke', f'--data_dir={data_dir}',
              '--file_format=array_record', '--manual_dir=odah_tfds/odah/dummy_data'])
  log = out.stdout + out.stderr
  assert 'odah/smoke test: 1 clips' in log
  assert 'README.txt' in log  # the non-image file was skipped with a warning
  facts = _read_back(data_dir)
  assert set(facts['backgrounds']) == {'file'}, facts['backgrounds']
  assert facts['splits'] == {'train': 1, 'validation': 1, 'test': 1}
  assert facts['examples'] == 1
  # The projected joint centres land on the rendered person.
  assert facts['joints_inside_mask'] > 0.8, facts
  # The dataset records the OpenSim model of its labels (banet_jax.data checks it).
  metadata = json.loads(next(data_dir.glob('odah/smoke/*/metadata.json')).read_text())
  assert metadata['osim'] == project_skeleton().identity()
  # The contact sheet of the build, filtered by motion family (smoke: squat, arm_flexion or
  # walking; never kneeling).
  sheet = [sys.executable, '-m', 'odah_tfds.odah.contact_sheet', '--config=smoke',
           f'--data_dir={data_dir}', '--examples=1', '--frames=1']
  _run(sheet + ['--families=squat,arm_flexion,walking', f'--out={tmp_path / "sheet.png"}'])
  assert (tmp_path / 'sheet.png').stat().st_size > 1000
  refused = _run(sheet + ['--families=kneeling', f'--out={tmp_path / "none.png"}'], check=False)
  assert refused.returncode != 0 and 'of the families' in refused.stderr
  # ... and by clip id (the train split's one clip is subject S0000's first).
  _run(sheet + ['--clips=S0000_00', f'--out={tmp_path / "clip.png"}'])
  assert (tmp_path / 'clip.png').stat().st_size > 1000
  refused = _run(sheet + ['--clips=S0009', f'--out={tmp_path / "none.png"}'], check=False)
  assert refused.returncode != 0 and "starting with one of ['S0009']" in refused.stderr


def test_unknown_config_is_a_clear_error(tmp_path):
  out = _run([TFDS, 'build', 'odah_tfds/odah', '--config=nope', f'--data_dir={tmp_path}'],
             check=False, timeout=300)
  assert out.returncode != 0
  assert 'nope' in out.stdout + out.stderr
  assert not list(tmp_path.rglob('*.array_record*')) and not list(tmp_path.rglob('*.tfrecord*'))


def test_background_folder_checks(tmp_path):
  assert generate.background_folder(None) is None
  assert generate.background_folder(tmp_path) is None  # no backgrounds/: procedural
  (tmp_path / 'backgrounds').mkdir()
  (tmp_path / 'backgrounds' / 'notes.txt').write_text('not an image')
  with pytest.raises(ValueError, match='no .png/.jpg/.jpeg image'):
    generate.background_folder(tmp_path)
  (tmp_path / 'backgrounds' / 'a.PNG').write_bytes(b'')
  assert generate.background_folder(tmp_path) == str(tmp_path / 'backgrounds')


def test_worker_count(monkeypatch):
  monkeypatch.delenv('ODAH_WORKERS', raising=False)
  assert 1 <= generate.num_workers(3) <= 3
  assert generate.num_workers(1) == 1
  monkeypatch.setenv('ODAH_WORKERS', '5')
  assert generate.num_workers(2) == 5
  monkeypatch.setenv('ODAH_WORKERS', 'many')
  with pytest.raises(ValueError, match='ODAH_WORKERS'):
    generate.num_workers(2)


def test_generation_config_checks_and_splits():
  config = generate.GenerationConfig(subjects=(3, 1, 2))
  assert [list(config.subject_indices(s)) for s in generate.SPLITS] == [[0, 1, 2], [3], [4, 5]]
  with pytest.raises(ValueError, match='unknown split'):
    config.subject_indices('val')
  with pytest.raises(ValueError, match='subjects'):
    generate.GenerationConfig(subjects=(0, 0, 0))
  with pytest.raises(ValueError, match='body'):
    generate.GenerationConfig(body='smpl')


def test_lab_family_cycle_gives_every_subject_one_balance_clip():
  """Each subject draws consecutive entries of LAB_FAMILIES from a random start (cyclic);
  whatever the start, its four clips hold exactly one single-leg balance clip (`balance`
  or, from 1.4.0, `balance_reach`), and every registered family in the cycle exists
  (1.3.0 added `turning` and `kneeling`)."""
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top
  from odah_tfds.odah import odah_dataset_builder as builder  # pylint: disable=g-import-not-at-top
  cycle = builder.LAB_FAMILIES
  lab = {c.name: c for c in builder.CONFIGS}['lab']
  assert lab.generation.families == cycle and lab.generation.clips_per_subject == 4
  assert set(cycle) <= set(motions.FAMILIES)
  assert set(motions.ODAH_1_FAMILIES) | {'turning', 'kneeling'} <= set(cycle)
  assert set(builder.BALANCE_FAMILIES) <= set(cycle)
  for start in range(len(cycle)):
    four = [cycle[(start + k) % len(cycle)] for k in range(4)]
    assert sum(f in builder.BALANCE_FAMILIES for f in four) == 1, (start, four)


@pytest.mark.slow
def test_imports_form_builds(tmp_path):
  """`tfds build odah --imports=odah_tfds.odah` (an installed package), from any folder."""
  data_dir = tmp_path / 'tfds'
  _run([TFDS, 'build', 'odah', '--imports=odah_tfds.odah', '--config=smoke',
        f'--data_dir={data_dir}'], cwd=tmp_path)
  facts = _read_back(data_dir, fmt='tfrecord')
  assert facts['examples'] == 1


@pytest.mark.slow
def test_same_config_same_examples_and_interrupted_build_completes(tmp_path):
  """Two builds of one config give identical examples; a build killed midway, re-run,
  completes and reads back cleanly."""
  first, second = tmp_path / 'a', tmp_path / 'b'
  _run([TFDS, 'build', 'odah_tfds/odah', '--config=smoke', f'--data_dir={first}',
        '--file_format=array_record'])
  # Start the second build and kill it while it generates.
  proc = subprocess.Popen([TFDS, 'build', 'odah_tfds/odah', '--config=smoke',
                           f'--data_dir={second}', '--file_format=array_record'], cwd=ROOT,
                          env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  deadline = time.time() + 300
  while time.time() < deadline and not list(second.rglob('*incomplete*')):
    time.sleep(0.5)
  time.sleep(5)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  _run([TFDS, 'build', 'odah_tfds/odah', '--config=smoke', f'--data_dir={second}',
        '--file_format=array_record'])
  a, b = _read_back(first), _read_back(second)
  assert a['clip_ids'] == b['clip_ids']
  assert a['checksum'] == b['checksum']


@pytest.mark.slow
def test_beam_direct_runner_with_several_workers(tmp_path):
  """The Beam path (used by the large configs), forced on for smoke, DirectRunner with 2
  worker processes; same examples as the local path."""
  data_dir = tmp_path / 'beam'
  _run([TFDS, 'build', 'odah_tfds/odah', '--config=smoke', f'--data_dir={data_dir}',
        '--file_format=array_record',
        '--beam_pipeline_options=runner=DirectRunner,direct_num_workers=2,'
        'direct_running_mode=multi_processing'], ODAH_BEAM='1')
  local = tmp_path / 'local'
  _run([TFDS, 'build', 'odah_tfds/odah', '--config=smoke', f'--data_dir={local}',
        '--file_format=array_record'])
  assert _read_back(data_dir)['checksum'] == _read_back(local)['checksum']
