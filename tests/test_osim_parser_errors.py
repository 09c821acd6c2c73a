"""Bad .osim input gives clear errors naming the file and the element; fuzzed
real files give nothing but those errors."""

from __future__ import annotations

import copy
import os
import pathlib
import re
import xml.etree.ElementTree as ET

import hypothesis
from hypothesis import strategies as st
import pytest

from banet_jax.skeleton import OsimError, load_osim, osim_parser
from banet_jax.skeleton.models import DEFAULT_MODEL_PATH

PROJECT_XML = pathlib.Path(DEFAULT_MODEL_PATH).read_text()


def _write(tmp_path, text, name='model.osim'):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def _edit(tmp_path, edit):
  """Apply `edit(model_element)` to the project model and write the result."""
  root = ET.fromstring(PROJECT_XML)
  edit(root.find('Model'))
  return _write(tmp_path, ET.tostring(root, encoding='unicode'))


def test_project_model_loads():
  skel = load_osim(DEFAULT_MODEL_PATH)
  assert skel.source == str(DEFAULT_MODEL_PATH)


def test_missing_file(tmp_path):
  path = tmp_path / 'absent.osim'
  with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
    load_osim(path)


def test_malformed_xml(tmp_path):
  path = _write(tmp_path, PROJECT_XML[: len(PROJECT_XML) // 2])
  with pytest.raises(OsimError, match=re.escape(path) + '.*malformed XML'):
    load_osim(path)


def test_not_an_opensim_document(tmp_path):
  path = _write(tmp_path, '<html><body/></html>')
  with pytest.raises(OsimError, match='not an OpenSim document'):
    load_osim(path)


def test_opensim3_file_is_refused_with_advice(tmp_path):
  path = _write(tmp_path, PROJECT_XML.replace('Version="40', 'Version="30', 1))
  with pytest.raises(OsimError, match='OpenSim 3.x file format.*printToXML'):
    load_osim(path)


def test_unknown_coordinate_in_coupler(tmp_path):
  def edit(model):
    name = model.find('.//CoordinateCouplerConstraint/independent_coordinate_names')
    name.text = 'no_such_knee'
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=re.escape(path) +
                     r".*<CoordinateCouplerConstraint name=.*unknown coordinate 'no_such_knee'"):
    load_osim(path)


def test_body_tree_cycle(tmp_path):
  def edit(model):
    pelvis_joint = model.find(".//*[@name='ground_pelvis']")
    frame = pelvis_joint.find(".//PhysicalOffsetFrame/socket_parent")
    frame.text = '/bodyset/toes_r'  # the pelvis now hangs off its own toes
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=re.escape(path) + '.*cycle not connected to ground'):
    load_osim(path)


def test_spline_without_knots(tmp_path):
  def edit(model):
    spline = model.find('.//SimmSpline')
    for tag in ('x', 'y'):
      spline.find(tag).text = ''
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=re.escape(path) + r'.*<SimmSpline.*at least 2 knots'):
    load_osim(path)


def test_unsupported_joint_is_named(tmp_path):
  def edit(model):
    model.find('.//PinJoint').tag = 'EllipsoidJoint'
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=r'unsupported joint type EllipsoidJoint'):
    load_osim(path)


def test_unsupported_function_is_named(tmp_path):
  def edit(model):
    model.find('.//SimmSpline').tag = 'GCVSpline'
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=r'<GCVSpline.*unsupported function type GCVSpline'):
    load_osim(path)


def test_dangling_socket_is_named(tmp_path):
  def edit(model):
    model.find('.//Marker/socket_parent_frame').text = '/bodyset/no_such_body'
  path = _edit(tmp_path, edit)
  with pytest.raises(OsimError, match=r"<Marker name=.*'/bodyset/no_such_body'.*not in the model"):
    load_osim(path)


def test_irrelevant_elements_are_ignored(tmp_path):
  def edit(model):
    forces = ET.SubElement(model, 'ForceSet', name='forceset')
    objects = ET.SubElement(forces, 'objects')
    ET.SubElement(objects, 'Millard2012EquilibriumMuscle', name='m').text = 'anything'
    ET.SubElement(model, 'ProbeSet', name='probeset')
  skel = load_osim(_edit(tmp_path, edit))
  assert len(skel.coordinate_names) == 39


# ---- fuzzing ------------------------------------------------------------------
# Mutations of real model files: each either loads or raises OsimError. The
# project model always; the files in $BANET_EXTRA_OSIM_DIR too when it is set.

_FUZZ_SOURCES = [pathlib.Path(DEFAULT_MODEL_PATH)] + sorted(
    pathlib.Path(os.environ['BANET_EXTRA_OSIM_DIR']).glob('*.osim')
    if os.environ.get('BANET_EXTRA_OSIM_DIR') else [])

_TEXTS = st.one_of(
    st.sampled_from(['', 'nan', 'inf', '1e400', '-0', 'true', 'maybe', '1 2', '1 2 3 4',
                     '/bodyset/pelvis', '..', '/', 'pelvis_tx', '0 0 0', '-1 1', '1 -1']),
    # Characters XML can hold (control characters cannot be written at all).
    st.text(st.characters(blacklist_categories=('Cs', 'Cc')), max_size=12))


@st.composite
def _mutations(draw):
  # Element indices are taken modulo the element count of the file being mutated.
  return [(draw(st.sampled_from(['text', 'delete', 'duplicate', 'retag', 'rename'])),
           draw(st.integers(0, 2**20)), draw(_TEXTS))
          for _ in range(draw(st.integers(1, 4)))]


def _mutate(source, mutations):
  # Read as the parser reads (no XML namespaces): files with C++-scoped element names
  # such as <HuntCrossleyForce::ContactParametersSet> are fuzzed too.
  root = osim_parser._parse_xml(str(source))
  elements = list(root.iter())
  parents = {child: parent for parent in elements for child in parent}
  for kind, index, text in mutations:
    elem = elements[index % len(elements)]
    parent = parents.get(elem)
    if kind == 'text':
      elem.text = text
    elif kind == 'delete' and parent is not None and elem in list(parent):
      parent.remove(elem)
    elif kind == 'duplicate' and parent is not None and elem in list(parent):
      parent.append(copy.deepcopy(elem))
    elif kind == 'retag' and text.isidentifier():
      elem.tag = text
    elif kind == 'rename' and 'name' in elem.attrib:
      elem.set('name', text)
  return ET.tostring(root, encoding='unicode')


@pytest.mark.parametrize('source', _FUZZ_SOURCES, ids=lambda p: p.stem)
@hypothesis.settings(max_examples=100, deadline=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
@hypothesis.given(mutations=_mutations())
def test_fuzzed_files_raise_only_clear_errors(tmp_path, source, mutations):
  path = _write(tmp_path, _mutate(source, mutations), 'fuzzed.osim')
  try:
    skel = load_osim(path)
  except OsimError as e:
    assert str(e).startswith(path + ': ')
  else:
    assert len(skel.coordinate_names) == skel.coordinate_ranges.shape[0]
  finally:
    os.unlink(path)
