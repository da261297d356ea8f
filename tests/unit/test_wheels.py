"""Every pin in pyproject.toml has a recorded binary wheel for CPython 3.11-3.13 on manylinux
x86_64 and aarch64 (tools/wheels.json, written online by `make check-wheels`); checked offline."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tools import wheels

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(wheels.RECORD.read_text())


def pyproject_with(tmp_path: Path, old: str, new: str) -> Path:
    text = wheels.PYPROJECT.read_text()
    assert old in text
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace(old, new))
    return changed


def test_every_pin_has_a_recorded_wheel_on_every_supported_python_and_machine(recorded):
    problems = wheels.check(recorded)
    assert problems == [], "\n".join(problems)


def test_the_targets_follow_requires_python():
    assert [t.name for t in wheels.targets()] == [
        f"cp3{minor}-manylinux_{arch}" for minor in (11, 12, 13) for arch in ("x86_64", "aarch64")]


def test_upgrading_a_pin_fails_until_its_wheels_are_recorded(tmp_path, recorded):
    # PyYAML 6.0.1 publishes no wheels for 3.13: `make check-wheels` refuses to record it, so
    # the pin stays different from the record and this check keeps failing.
    changed = pyproject_with(tmp_path, '"pyyaml==6.0.3"', '"pyyaml==6.0.1"')
    problems = wheels.check(recorded, changed)
    assert any("pins differ" in p and "pyyaml==6.0.1" in p and "make check-wheels" in p for p in problems)
    assert "cp313-manylinux_x86_64: pyyaml==6.0.1 is pinned, the record has " \
        "pyyaml-6.0.3-cp313-cp313-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl" \
        in problems


def test_a_record_whose_wheel_is_for_another_python_is_refused(recorded):
    bad = copy.deepcopy(recorded)
    bad["targets"]["cp313-manylinux_aarch64"]["pyyaml"] = \
        "pyyaml-6.0.3-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"
    assert wheels.check(bad) == [
        "cp313-manylinux_aarch64: pyyaml-6.0.3-cp312-cp312-manylinux2014_aarch64.manylinux_2_17_aarch64.whl "
        "does not install on CPython 3.13 manylinux aarch64 (glibc <= 2.28)"]


@pytest.mark.parametrize("filename, fits", [
    ("numpy-2.4.6-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl", True),
    ("numpy-2.4.6-cp313-cp313-manylinux_2_34_x86_64.whl", False),  # needs a newer glibc
    ("numpy-2.4.6-cp313-cp313-musllinux_1_2_x86_64.whl", False),
    ("numpy-2.4.6-cp313-cp313-manylinux_2_28_aarch64.whl", False),  # the other machine
    ("numpy-2.4.6-cp313-cp313t-manylinux_2_28_x86_64.whl", False),  # free-threaded build
    ("numpy-2.4.6-cp311-abi3-manylinux_2_28_x86_64.whl", True),  # stable ABI from 3.11 on
    ("numpy-2.4.6-py3-none-any.whl", True),
])
def test_which_wheels_install_on_cpython_313_x86_64(filename, fits):
    problems = wheels.check_target(wheels.Target("3.13", "x86_64"), {"numpy": filename}, {"numpy": "2.4.6"})
    assert (problems == []) == fits, problems


def test_a_pin_missing_from_a_target_or_a_target_missing_is_reported(recorded):
    bad = copy.deepcopy(recorded)
    del bad["targets"]["cp312-manylinux_x86_64"]["matplotlib"]
    del bad["targets"]["cp311-manylinux_aarch64"]
    assert wheels.check(bad) == [
        "cp311-manylinux_aarch64: no wheels recorded for this target: run `make check-wheels`",
        "cp312-manylinux_x86_64: no wheel recorded for matplotlib==3.11.2",
    ]


def test_a_requirement_not_pinned_with_double_equals_is_reported(tmp_path, recorded):
    changed = pyproject_with(tmp_path, '"babel==2.18.0"', '"babel>=2.18"')
    assert "babel>=2.18: not pinned to one version with ==" in wheels.check(recorded, changed)


def test_python_3_14_in_requires_python_needs_its_wheels_recorded(tmp_path, recorded):
    changed = pyproject_with(tmp_path, 'requires-python = ">=3.11,<3.14"', 'requires-python = ">=3.11,<3.15"')
    assert [t.name for t in wheels.targets(changed)][-2:] == ["cp314-manylinux_x86_64",
                                                               "cp314-manylinux_aarch64"]
    assert "cp314-manylinux_x86_64: no wheels recorded for this target: run `make check-wheels`" \
        in wheels.check(recorded, changed)
