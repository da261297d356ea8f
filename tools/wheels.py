"""Every pinned dependency installs from a binary wheel on each supported Python and platform.

A newcomer's `make run` must not need a compiler: each pin in pyproject.toml, and everything it
pulls in, has to come as a wheel for CPython 3.11, 3.12 and 3.13 (the minors that
requires-python admits) on manylinux x86_64 and aarch64, up to glibc 2.28 (Debian 10, Ubuntu
20.04, RHEL 8 and newer; cibuildwheel's default baseline).

    python -m tools.wheels record   online (make check-wheels): pip's own resolver, binary only
                                    (--only-binary :all: --python-version --platform), for each
                                    target against PyPI; fails with pip's reason when a pin has no
                                    such wheel, else writes the wheels it chose to tools/wheels.json
    python -m tools.wheels check    offline (make lint; tests/unit/test_wheels.py): the pins in
                                    pyproject.toml are the recorded ones, and every recorded
                                    wheel's tags fit its target

So upgrading a pin fails `make test` until `make check-wheels` has found wheels for it on every
target and the new record is committed. pip evaluates environment markers for the interpreter
that runs it, not the target: a dependency required only on another Python or machine (say
`python_version >= "3.13"`) is not looked at by `record`; it is seen by `.ci/run`, which installs
the project on every Python of this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging import tags
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
RECORD = Path(__file__).resolve().parent / "wheels.json"
ARCHES = ("x86_64", "aarch64")
GLIBC = (2, 28)
# What a user's pip would see: PyPI, or the index they set; no local folders or extra indexes.
KEEP_PIP_ENV = ("PIP_INDEX_URL", "PIP_CERT", "PIP_CLIENT_CERT", "PIP_TRUSTED_HOST", "PIP_PROXY",
                "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES")


@dataclass(frozen=True)
class Target:
    python: str  # "3.13"
    arch: str  # "aarch64"

    @property
    def name(self) -> str:
        return f"cp{self.python.replace('.', '')}-manylinux_{self.arch}"

    @property
    def version(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    def platforms(self) -> list[str]:
        """manylinux platform tags up to GLIBC, newest first, with the legacy aliases."""
        major, top = GLIBC
        found = [f"manylinux_{major}_{minor}_{self.arch}" for minor in range(top, 4, -1)]
        legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
        return found + [f"{alias}_{self.arch}" for alias, minor in legacy.items() if minor <= top]

    def tags(self) -> set[tags.Tag]:
        platforms = self.platforms()
        return (set(tags.cpython_tags(self.version, platforms=platforms))
                | set(tags.compatible_tags(self.version, f"cp{self.python.replace('.', '')}", platforms)))


def project(pyproject: Path = PYPROJECT) -> dict:
    with pyproject.open("rb") as f:
        return tomllib.load(f)["project"]


def pins(pyproject: Path = PYPROJECT) -> list[str]:
    """The dependencies and every extra's, as written."""
    meta = project(pyproject)
    found = list(meta.get("dependencies", []))
    for extra in meta.get("optional-dependencies", {}).values():
        found.extend(extra)
    return found


def pinned_version(requirement: str) -> tuple[str, str | None]:
    """(canonical name, version) for `name[extras]==version`; version None when not so pinned."""
    req = Requirement(requirement)
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
        return canonicalize_name(req.name), specs[0].version
    return canonicalize_name(req.name), None


def targets(pyproject: Path = PYPROJECT) -> list[Target]:
    supported = SpecifierSet(project(pyproject)["requires-python"])
    pythons = [f"3.{minor}" for minor in range(30) if f"3.{minor}" in supported]
    return [Target(python, arch) for python in pythons for arch in ARCHES]


# --- offline: the record against pyproject.toml ----------------------------------------

def check(record: Mapping, pyproject: Path = PYPROJECT) -> list[str]:
    """What is wrong between pyproject.toml and the record; empty when nothing is."""
    problems: list[str] = []
    wanted = pins(pyproject)
    versions: dict[str, str] = {}
    for requirement in wanted:
        name, version = pinned_version(requirement)
        if version is None:
            problems.append(f"{requirement}: not pinned to one version with ==")
        else:
            versions[name] = version
    recorded = record.get("requirements", [])
    added = sorted(set(wanted) - set(recorded))
    dropped = sorted(set(recorded) - set(wanted))
    if added or dropped:
        problems.append(
            "pyproject.toml's pins differ from the recorded ones "
            f"(new: {', '.join(added) or 'none'}; gone: {', '.join(dropped) or 'none'}): "
            "run `make check-wheels` (asks PyPI) and commit tools/wheels.json")
    if tuple(record.get("glibc", "").split(".")) != tuple(str(n) for n in GLIBC):
        problems.append(f"the record is for glibc {record.get('glibc')}, the check for "
                        f"{'.'.join(map(str, GLIBC))}: run `make check-wheels`")
    expected = {t.name: t for t in targets(pyproject)}
    recorded_targets: Mapping[str, Mapping[str, str]] = record.get("targets", {})
    for name in sorted(set(recorded_targets) - set(expected)):
        problems.append(f"{name}: recorded, but not a supported target: run `make check-wheels`")
    for name, target in expected.items():
        wheels = recorded_targets.get(name)
        if wheels is None:
            problems.append(f"{name}: no wheels recorded for this target: run `make check-wheels`")
            continue
        problems.extend(check_target(target, wheels, versions))
    return problems


def check_target(target: Target, wheels: Mapping[str, str], versions: Mapping[str, str]) -> list[str]:
    """Each pin has a wheel at its version, and every wheel installs on the target."""
    problems = []
    accepted = target.tags()
    for package, filename in sorted(wheels.items()):
        try:
            name, version, _build, wheel_tags = parse_wheel_filename(filename)
        except ValueError:
            problems.append(f"{target.name}: {package}: {filename} is not a wheel")
            continue
        if name != package:
            problems.append(f"{target.name}: {package}: recorded as {filename}")
        if not wheel_tags & accepted:
            problems.append(f"{target.name}: {filename} does not install on CPython {target.python} "
                            f"manylinux {target.arch} (glibc <= {'.'.join(map(str, GLIBC))})")
        pin = versions.get(package)
        if pin is not None and str(version) != pin:
            problems.append(f"{target.name}: {package}=={pin} is pinned, the record has {filename}")
    for package, pin in sorted(versions.items()):
        if package not in wheels:
            problems.append(f"{target.name}: no wheel recorded for {package}=={pin}")
    return problems


# --- online: ask PyPI through pip's resolver ---------------------------------------------

def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in KEEP_PIP_ENV}
    env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf: no find-links, extra indexes or constraints
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def resolve(target: Target, requirements: Path, workdir: Path) -> dict[str, str] | str:
    """The wheels pip would install on `target` ({name: wheel file}), or pip's reason it can't."""
    report = workdir / f"{target.name}.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--target", str(workdir / target.name), "--report", str(report),
               "--only-binary", ":all:", "--implementation", "cp", "--python-version", target.python]
    for platform in target.platforms():
        command += ["--platform", platform]
    command += ["-r", str(requirements)]
    done = subprocess.run(command, capture_output=True, text=True, env=pip_env(), check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return "\n".join(errors or done.stderr.splitlines()[-5:])
    wheels = {}
    for item in json.loads(report.read_text())["install"]:
        filename = unquote(Path(urlsplit(item["download_info"]["url"]).path).name)
        wheels[canonicalize_name(item["metadata"]["name"])] = filename
    return dict(sorted(wheels.items()))


def record(pyproject: Path, out: Path, jobs: int) -> int:
    wanted = pins(pyproject)
    everything = targets(pyproject)
    print(f"Asking PyPI for binary wheels of {len(wanted)} pins and their dependencies on "
          f"{len(everything)} targets (glibc <= {'.'.join(map(str, GLIBC))}) ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="wheels-") as tmp:
        workdir = Path(tmp)
        requirements = workdir / "requirements.txt"
        requirements.write_text("\n".join(wanted) + "\n")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            answers = dict(zip(everything, pool.map(lambda t: resolve(t, requirements, workdir), everything),
                               strict=True))
    failed = {t: a for t, a in answers.items() if isinstance(a, str)}
    binary: set[str] = set()
    for target, answer in answers.items():
        if isinstance(answer, str):
            print(f"  {target.name}: NO\n" + "\n".join(f"      {line}" for line in answer.splitlines()))
        else:
            compiled = {n for n, f in answer.items() if not f.endswith("-none-any.whl")}
            binary |= compiled
            print(f"  {target.name}: {len(answer)} wheels, {len(compiled)} of them platform-specific")
    if binary:
        print(f"  platform-specific: {', '.join(sorted(binary))}")
    if failed:
        print(f"FAILED: {len(failed)} of {len(everything)} targets cannot install every pin from "
              f"wheels ({', '.join(t.name for t in failed)}). Pick versions that publish them; "
              f"the record ({out.name}) is left as it was.")
        return 1
    result = {
        "about": "Written by `make check-wheels` (python -m tools.wheels record); checked offline by "
                 "`make lint` and tests/unit/test_wheels.py. Do not edit by hand.",
        "glibc": ".".join(map(str, GLIBC)),
        "requirements": wanted,
        "targets": {t.name: answers[t] for t in everything},
    }
    problems = check(result, pyproject)
    if problems:  # pip chose something the tag check rejects: believe neither, say so
        print("FAILED: pip's choices do not pass the offline check:\n  " + "\n  ".join(problems))
        return 1
    text = json.dumps(result, indent=1) + "\n"
    before = out.read_text() if out.exists() else None
    if text == before:
        print(f"OK: every target installs from wheels; {out} unchanged")
    else:
        out.write_text(text)
        print(f"OK: every target installs from wheels; wrote {out} (commit it)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.wheels", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("check", "record"))
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    parser.add_argument("--record", type=Path, default=RECORD)
    parser.add_argument("--jobs", type=int, default=3, help="targets resolved at once (record)")
    args = parser.parse_args(argv)
    if args.command == "record":
        return record(args.pyproject, args.record, args.jobs)
    problems = check(json.loads(args.record.read_text()), args.pyproject)
    if problems:
        print(f"Wheels: {len(problems)} problem(s) between {args.pyproject.name} and {args.record.name}:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print(f"Wheels: every pin has a recorded wheel for {describe(targets(args.pyproject))}")
    return 0


def describe(found: Iterable[Target]) -> str:
    found = list(found)
    pythons = sorted({t.python for t in found}, key=lambda v: tuple(map(int, v.split("."))))
    arches = sorted({t.arch for t in found})
    return f"CPython {', '.join(pythons)} on manylinux {' and '.join(arches)}"


if __name__ == "__main__":
    sys.exit(main())
