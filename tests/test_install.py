"""The Quick start's install on a Python that refuses system-wide installs (PEP 668, as Debian 12 and Ubuntu 24.04
ship it): the Makefile makes the project's .venv and installs there, adding python3-venv where it is missing.
Run on a copy of the Makefile with a one-module project, so that the install itself takes seconds."""

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow
SYSTEM_PYTHON = Path("/usr/bin/python3")
PROBE = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "probe"
version = "0"
"""


def refuses_system_installs(python: Path) -> bool:
    """Whether ``python`` carries PEP 668's EXTERNALLY-MANAGED marker in its standard library."""
    if not python.is_file():
        return False
    stdlib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


@pytest.fixture
def project(tmp_path):
    """A directory with the project's Makefile and a one-module package to install."""
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text(PROBE)
    (tmp_path / "probe.py").write_text("ANSWER = 42\n")
    return tmp_path


def make_install(project: Path, base_python: Path | str, path: str | None = None) -> subprocess.CompletedProcess:
    """`make install` in ``project`` as a user outside any virtual environment runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON", "PIP")}
    env["PATH"] = path or env["PATH"]
    command = ["make", "install", f"BASE_PYTHON={base_python}"]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_make_install_on_a_python_that_refuses_system_installs_installs_into_the_project_venv(project):
    if not refuses_system_installs(SYSTEM_PYTHON):
        pytest.skip(f"{SYSTEM_PYTHON} does not refuse system-wide installs here (no PEP 668 marker)")
    refused = subprocess.run([SYSTEM_PYTHON, "-m", "pip", "install", "--dry-run", "--no-index", "probe"],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode != 0  # the premise: the user's `pip install -e .` would fail
    stock_path = f"{SYSTEM_PYTHON.parent}:{os.environ['PATH']}"  # python3 is the system's, as on a stock machine
    installed = make_install(project, SYSTEM_PYTHON, path=stock_path)
    assert installed.returncode == 0, installed.stderr
    venv_python = project / ".venv" / "bin" / "python"
    answer = subprocess.run([venv_python, "-c", "import probe; print(probe.ANSWER, probe.__file__)"],
                            capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert answer == ["42", str(project / "probe.py")]
    again = make_install(project, SYSTEM_PYTHON, path=stock_path)  # the environment is made once
    assert "-m venv" not in again.stdout


def test_make_install_with_a_base_python_that_does_not_exist_says_so_in_one_line_before_anything_else(
    project, tmp_path
):
    apt = tmp_path / "bin" / "apt-get"
    apt.parent.mkdir()
    apt.write_text(f"#!/bin/sh\ntouch {tmp_path / 'apt-ran'}\n")
    apt.chmod(0o755)
    result = make_install(project, "/nonexistent/python3", path=f"{apt.parent}:{os.environ['PATH']}")
    assert result.returncode != 0
    assert "BASE_PYTHON=/nonexistent/python3: no such Python" in result.stderr
    assert "python3-venv" not in result.stdout + result.stderr
    assert not (tmp_path / "apt-ran").exists()
    assert not (project / ".venv").exists()


@pytest.mark.parametrize("target", ["test-fast", "test"])
def test_make_test_and_test_fast_install_the_dev_extras_before_pytest(project, target):
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON", "PIP")}
    planned = subprocess.run(["make", "-n", target], cwd=project, env=env, capture_output=True, text=True, check=True)
    commands = planned.stdout.splitlines()
    install = next(i for i, c in enumerate(commands) if "pip install -q -e '.[dev]'" in c)
    assert install < next(i for i, c in enumerate(commands) if "-m pytest" in c)


def test_make_install_adds_python3_venv_where_the_python_cannot_make_environments(project, tmp_path):
    """A Python without ensurepip (Debian's without python3-venv) until apt-get installs the package."""
    bin_dir, installed = tmp_path / "bin", tmp_path / "apt-installed"
    bin_dir.mkdir()
    real = sysconfig.get_config_var("BINDIR") + "/python3"
    python = bin_dir / "python3"
    python.write_text(f"#!/bin/sh\n[ \"$1 $2\" = '-c import ensurepip' ] && [ ! -e {installed} ] && exit 1\n"
                      f"exec {real} \"$@\"\n")  # fmt: skip
    apt = bin_dir / "apt-get"
    apt.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'apt.log'}\n[ \"$1\" = install ] && touch {installed}\n"
                   "exit 0\n")  # fmt: skip
    for script in (python, apt):
        script.chmod(0o755)
    result = make_install(project, python, path=f"{bin_dir}:{os.environ['PATH']}")
    assert result.returncode == 0, result.stderr
    assert "python3 -m venv needs python3-venv: installing it" in result.stdout
    assert (tmp_path / "apt.log").read_text().splitlines() == ["update -qq", "install -y -qq python3-venv"]
    assert (project / ".venv" / "bin" / "python").is_file()


def test_make_sweep_continues_the_sweep_it_started_last_until_that_one_finishes(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    fake = tmp_path / "python"  # records each command; exits with $FAKE_EXIT, as a stopped or a finished sweep
    fake.write_text('#!/bin/sh\necho "$@" >> calls.log\nexit "${FAKE_EXIT:-0}"\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX")}

    def make_sweep(code):
        command = ["make", "-o", "install", "-o", "data", "sweep", f"PYTHON={fake}"]
        return subprocess.run(command, cwd=tmp_path, env={**env, "FAKE_EXIT": str(code)}, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    stopped = make_sweep(1)
    assert stopped.returncode != 0
    first = (tmp_path / "multirun" / ".make-sweep").read_text().strip()
    assert first.startswith("multirun/")
    finished = make_sweep(0)
    assert finished.returncode == 0
    assert f"make sweep: continuing the unfinished sweep {first}" in finished.stdout
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == [f"-m betavae.train -m beta=0.1,0.5,1.0 hydra.sweep.dir={first}"] * 2
    assert not (tmp_path / "multirun" / ".make-sweep").exists()  # finished: the next one is new
    assert "continuing" not in make_sweep(0).stdout
