"""The package as users install it: the wheel holds `betavae` (its configs and FID network inside) and Hydra's
`hydra_plugins` namespace, nothing else, and every door runs from it in another directory, with no source tree on
the path."""

import json
import os
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import EVALUATE_FEW, REPO, WITHOUT_FIGURES, limits

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project's wheel, built and installed (without its dependencies, which this environment has) into a
    folder of its own; returns the wheel and that folder."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root, REPO],
                   check=True, capture_output=True, cwd=root)  # fmt: skip
    wheel = next(root.glob("betavae-*.whl"))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
                   check=True, capture_output=True)  # fmt: skip
    return wheel, site


def run_installed(site, cwd, *args):
    """``python -m <args>`` in ``cwd`` with the installed package first on the path (the checkout is not on it)."""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_the_wheel_holds_betavae_with_its_configs_and_fid_network_and_the_hydra_plugin_alone(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"betavae", "hydra_plugins"}
    assert "betavae/conf/train.yaml" in names and "betavae/conf/callbacks/default.yaml" in names
    assert "betavae/metrics/fid_features.pt" in names
    assert "hydra_plugins/betavae_slurm/__init__.py" in names


def test_every_door_runs_from_the_installed_wheel_in_another_directory(installed, tmp_path, real_data_dir):
    _, site = installed
    sweep, out = tmp_path / "sweep", tmp_path / "models"
    doors = [["betavae.train", "-m", "beta=0.5,1.0", "trainer.max_epochs=1", *limits(train=3, val=1, test=1),
              *WITHOUT_FIGURES, "udr=none", f"hydra.sweep.dir={sweep}"],
             ["betavae.evaluate", f"sweep_dir={sweep}", *EVALUATE_FEW, "udr=none"],
             ["betavae.summarize", f"sweep_dir={sweep}", "udr=none"],
             ["betavae.export", f"sweep_dir={sweep}", f"out={out}"]]  # fmt: skip
    code = ("import runpy, sys, betavae\n"
            "print(betavae.__file__)\n"
            f"for sys.argv in {doors!r}:\n"
            "    try:\n        runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as stop:\n        assert not stop.code, stop.code\n")  # fmt: skip
    shown = run_installed(site, tmp_path, "-c", code)  # the four commands in one interpreter: 15 s of imports less
    assert shown.stdout.startswith(str(site / "betavae"))
    jobs = sorted(path for path in sweep.iterdir() if (path / "metrics.json").is_file())
    assert [job.name.split(",")[0] for job in jobs] == ["beta=0.5", "beta=1.0"]
    assert all(json.loads((job / "evaluation.json").read_text())["test/nll_iw"] > 0 for job in jobs)
    assert "| beta=0.5 |" in shown.stdout and "| beta=1.0 |" in shown.stdout
    exported = sorted(path for path in out.iterdir() if path.is_dir())
    assert len(exported) == 2 and all((path / "model.safetensors").is_file() for path in exported)
