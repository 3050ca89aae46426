"""`python -m betavae.export`: a trained model in the Hugging Face Hub's layout, rebuilt by `betavae.api.load_model`
from the folder alone with identical encodings and metrics; a sweep exported with its spreads and an index."""

import json
import shutil
import statistics

import pytest
import torch
from hydra.utils import instantiate

from betavae.api import load_model
from betavae.base.config import composed
from betavae.base.errors import RunError
from betavae.export import export
from betavae.metrics.registry import Stage
from betavae.metrics.suite import Suite
from betavae.model.run import load_run
from tests.helpers import WITHOUT_FIGURES, compose_train, run_module, strict_json

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two seeds on the small shapes grid, one short epoch, then the sweep exported."""
    root = tmp_path_factory.mktemp("export")
    run_module("betavae.train", "-m", "seed=1,2", "experiment=shapes_smoke", *WITHOUT_FIGURES,
               f"hydra.sweep.dir={root / 'sweep'}")  # fmt: skip
    run_module("betavae.export", f"sweep_dir={root / 'sweep'}", f"out={root / 'models'}")
    return root


def test_an_exported_model_is_weights_config_and_card_in_the_hubs_layout(sweep):
    folders = sorted(d for d in (sweep / "models").iterdir() if d.is_dir())
    assert len(folders) == 2
    assert sorted(p.name for p in folders[0].iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = strict_json(folders[0] / "config.json")
    assert config["architecture"]["name"] == "mlp"
    assert config["image_shape"] == [1, 16, 16]
    assert config["data"]["class"] == "ShapesDataModule"
    assert config["weight"] == {"beta": 1.0}
    assert "test/mig" in config["metrics"]
    card = (folders[0] / "README.md").read_text()
    for key in ("test/modularity", "test/explicitness", "test/irs", "test/infomec_m", "test/infomec_e"):
        assert f"| `{key}` |" in card, key  # every score against the factors, with its group's spread
    assert card.startswith("---\nlicense: mit\nlibrary_name: betavae\n")
    assert "python -m betavae.train" in card
    assert " ± " in card  # the group's spread over the two seeds


def test_an_exported_cards_metadata_is_what_the_hub_reads(sweep):
    from huggingface_hub import ModelCard

    folders = sorted(d for d in (sweep / "models").iterdir() if d.is_dir())  # the two seeds of one group
    folder = folders[0]
    data = ModelCard.load(folder / "README.md").data  # the Hub's own parser of the header and its model-index
    elbos = [strict_json(f / "config.json")["metrics"]["test/elbo"] for f in folders]
    assert (data.license, data.library_name) == ("mit", "betavae")
    assert "test/elbo" in data.metrics
    results = {r.metric_type: r for r in data.eval_results}
    assert results["test/elbo"].metric_value == elbos[0]
    assert {r.dataset_type for r in data.eval_results} == {"ShapesDataModule"}  # no Hub id: the class
    assert {r.dataset_name for r in data.eval_results} == {"betavae's rendered shapes"}
    spread = results["test/elbo"].metric_args
    assert spread["group_seeds"] == [1, 2]
    assert spread["group_mean"] == pytest.approx(statistics.fmean(elbos))
    assert spread["group_std"] == pytest.approx(statistics.stdev(elbos))
    assert data.model_name == folder.name
    index = json.loads((sweep / "models" / "index.json").read_text())
    assert sorted(m["folder"] for m in index["models"]) == [f.name for f in folders]


def test_a_model_rebuilt_from_its_folder_alone_encodes_and_scores_as_its_run_does(sweep, tmp_path):
    job = sorted(d for d in (sweep / "sweep").iterdir() if d.is_dir())[0]
    folder = tmp_path / "moved"
    shutil.copytree(sweep / "models" / job.name, folder)  # no run directory beside it
    model, run = load_model(folder), load_run(job)
    images = run.images("test")
    assert torch.equal(model.encode(images).mu, run.model.encode(images).mu)
    suite = Suite.configured(compose_train("experiment=shapes_smoke", "disentanglement.families=[disentanglement,irs]"),
                             Stage.TEST)  # fmt: skip  # the same scores from the same codes: two families show it
    shapes = instantiate(run.config.data)
    assert suite.evaluate(model, shapes, None, "x").metrics == suite.evaluate(run.model, shapes, None, "x").metrics


def test_one_run_exports_from_the_command_line_and_a_folder_without_a_model_is_refused_in_one_line(sweep, tmp_path):
    job = sorted(d for d in (sweep / "sweep").iterdir() if d.is_dir())[1]
    run_module("betavae.export", f"run_dir={job}", f"out={tmp_path / 'one'}")
    assert (tmp_path / "one" / "model.safetensors").is_file()
    with pytest.raises(RunError, match=r"config.json: not a betavae model's config"):
        load_model(tmp_path)
    refused = run_module("betavae.export", f"out={tmp_path / 'x'}", check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].startswith("error: give exactly one of run_dir=")


def test_export_refuses_a_folder_it_did_not_make_and_replaces_an_export_only_when_asked(sweep, tmp_path, monkeypatch):
    job = sorted(d for d in (sweep / "sweep").iterdir() if d.is_dir())[0]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes")
    with pytest.raises(RunError, match=r"^out=.*mine: holds files no export wrote \(README.md, \.\.\.\); give a new"):
        export(composed("export", [f"run_dir={job}", f"out={mine}", "overwrite=true"]))
    assert [p.name for p in mine.iterdir()] == ["README.md"] and (mine / "README.md").read_text() == "my notes"
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match=r"^out=.*file: not a folder"):
        export(composed("export", [f"run_dir={job}", f"out={tmp_path / 'file'}"]))

    monkeypatch.setenv("HOME", str(tmp_path))
    (folder,) = export(composed("export", [f"run_dir={job}", "out=~/one"]))  # the user's home, not a folder "~"
    assert folder == tmp_path / "one" and (folder / "model.safetensors").is_file()
    with pytest.raises(RunError, match=r"^out=.*one: holds an export already; give overwrite=true to replace it$"):
        export(composed("export", [f"run_dir={job}", "out=~/one"]))
    assert export(composed("export", [f"run_dir={job}", "out=~/one", "overwrite=true"])) == [folder]

    with pytest.raises(RunError, match=r"^out=.*models: holds an export already"):
        export(composed("export", [f"sweep_dir={sweep / 'sweep'}", f"out={sweep / 'models'}"]))
    again = export(composed("export", [f"sweep_dir={sweep / 'sweep'}", f"out={sweep / 'models'}", "overwrite=true"]))
    assert len(again) == 2


def test_an_export_is_as_readable_as_its_other_files_and_a_run_that_did_not_finish_is_refused(sweep, tmp_path):
    job = sorted(d for d in (sweep / "sweep").iterdir() if d.is_dir())[0]
    (folder,) = export(composed("export", [f"run_dir={job}", f"out={tmp_path / 'model'}"]))
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"] == modes["README.md"]
    assert "1 epoch, seed 1;" in (folder / "README.md").read_text()  # one epoch, not "1 epochs"
    stopped = tmp_path / "stopped"
    shutil.copytree(job, stopped)
    (stopped / "metrics.json").write_text(json.dumps({"status": "interrupted", "reason": "killed", "beta": 1.0,
                                                       "seed": 1}))  # fmt: skip
    with pytest.raises(RunError, match=rf"^{stopped}: not a finished run \(it is interrupted\); export a run that"):
        export(composed("export", [f"run_dir={stopped}", f"out={tmp_path / 'none'}"]))
    assert not (tmp_path / "none").exists()


def test_load_model_names_the_file_and_the_tensor_that_does_not_fit(sweep, tmp_path):
    folder = sweep / "models" / sorted(p.name for p in (sweep / "models").iterdir() if p.is_dir())[0]
    cut = tmp_path / "cut"
    shutil.copytree(folder, cut)
    weights = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(RunError, match=rf"^{cut}/model.safetensors: not a whole safetensors file \("):
        load_model(cut)
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    config["architecture"]["latent_dim"] = 7
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=r"its weights do not fit .*config.json's network \(size mismatch for \w"):
        load_model(other)
    config["architecture"]["latent_dim"] = "seven"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=r"config.json: its architecture does not build a network \(latent_dim="):
        load_model(other)
