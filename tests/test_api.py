"""The Python API for notebooks (`betavae.api`) on a real sweep: docs/api.md's examples run as written, and
what they return is what the model computes."""

import re
import shutil
from pathlib import Path

import pytest
import torch

from betavae.api import load_run, load_sweep, summary_rows
from tests.helpers import REPO, WITHOUT_FIGURES, limits, run_module, strict_json

pytestmark = pytest.mark.slow
PAGE = REPO / "docs" / "api.md"


@pytest.fixture(scope="module")
def example(tmp_path_factory, real_data_dir):
    """The page's sweep, multirun/example under a fresh directory, made small: two β, one epoch of 5 batches."""
    root = tmp_path_factory.mktemp("api")
    command = re.search(r"```bash\n(python -m betavae\.train .*)\n```", PAGE.read_text()).group(1).split()
    run_module(*command[2:], *limits(train=5, val=1, test=1), *WITHOUT_FIGURES, cwd=root)
    return root


def test_the_python_examples_of_the_api_page_run_on_the_sweep_it_describes(example, monkeypatch):
    monkeypatch.chdir(example)
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S):
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert [r.config.beta for r in namespace["runs"]] == [0.5, 2.0]
    assert namespace["images"].shape == (8, 784)
    assert namespace["posterior"].mu.shape == (8, 20)
    assert namespace["reconstructions"].shape == (8, 784)
    assert namespace["samples"].shape == (16, 784)
    assert namespace["row"].shape == (5, 784)
    assert torch.equal(namespace["codes"], namespace["runs"][0].encode(namespace["images"]).mu)  # the exported one
    assert torch.allclose(namespace["mu"], namespace["codes"], atol=1e-6)  # rebuilt with safetensors and torch alone
    assert namespace["record"].finished and namespace["record"].epochs == 1
    job = Path("notebook", "beta=4.0")  # as the page names it, in the sweep's folder
    assert namespace["results"] == {job: strict_json(example / job / "evaluation.json")}


def test_a_traversal_through_the_posterior_mean_is_the_reconstruction(example):
    run = load_sweep(example / "multirun" / "example")[0]
    image = run.images("test")[:1]
    mu = run.encode(image).mu[0]
    row = run.traverse(image[0], 3, [float(mu[3]), float(mu[3]) + 2.0])
    assert torch.allclose(row[0], run.model.reconstruct(image)[0])
    assert not torch.allclose(row[1], row[0])


def test_a_run_decodes_and_samples_as_its_model_does(example):
    run = load_run(next((example / "multirun" / "example").glob("beta=2.0*")))
    assert not run.module.training
    assert run.module.beta == 2.0
    z = torch.randn(4, 20, generator=torch.Generator().manual_seed(1))
    assert torch.equal(run.decode(z), run.model.decode_mean(z))
    assert torch.equal(run.sample(4, seed=1), run.model.decode_mean(z))  # the same seeded codes


def test_a_run_whose_best_checkpoint_is_gone_loads_the_last_saying_its_metrics_are_not_of_it(example, tmp_path, caplog):
    job = tmp_path / "job"
    shutil.copytree(next((example / "multirun" / "example").glob("beta=2.0*")), job)
    best = job / load_run(job).record.best_checkpoint
    best.unlink()
    run = load_run(job)
    assert run.checkpoint.name == "last.ckpt"
    assert (
        run.untested
        == f"{best} is gone: loaded last.ckpt, which the run's metrics (of the best checkpoint) do not describe"
    )
    assert run.untested in caplog.text
    assert load_run(next((example / "multirun" / "example").glob("beta=2.0*"))).untested is None


def test_load_run_on_a_device_this_machine_lacks_names_the_device_not_the_checkpoint(example):
    from betavae.base.errors import UsageError

    with pytest.raises(UsageError, match=r"^device='bogus': must be 'cpu', 'cuda' or 'cuda:N'$"):
        load_run(next((example / "multirun" / "example").glob("beta=2.0*")), device="bogus")


def test_a_sweep_loads_its_finished_jobs_and_summarises_every_job(example, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(example / "multirun" / "example", sweep)
    unfinished = next(sweep.glob("beta=0.5*"))
    (unfinished / "metrics.json").unlink()
    (sweep / "summary.json").unlink()
    assert [run.directory.name for run in load_sweep(sweep)] == [next(sweep.glob("beta=2.0*")).name]
    rows = summary_rows(sweep)  # written again, as the sweep is now
    assert [(row["group"], row["status"]) for row in rows] == [("beta=2.0", "ok"), ("beta=0.5", "unfinished")]
