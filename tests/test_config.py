import re

import pytest
from hydra import compose, initialize_config_dir

from betavae.config import ConfigError, validate
from tests.conftest import REPO, run_module


def compose_train(*overrides: str):
    """The composed `train` config, as `python -m betavae.train` would see it."""
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_defaults_reproduce_the_reference_study():
    cfg = compose_train()
    validate(cfg)
    assert (cfg.beta, cfg.seed, cfg.lr, cfg.ckpt_path) == (1.0, 42, 1e-3, None)
    assert (cfg.model.latent_dim, list(cfg.model.hidden_dims), cfg.model.input_dim) == (20, [400, 400], 784)
    assert (cfg.data.batch_size, cfg.data.val_size, cfg.trainer.max_epochs) == (128, 5000, 30)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("beta=-0.5", "beta=-0.5"),
        ("model.latent_dim=0", "model.latent_dim=0"),
        ("model.hidden_dims=[]", "model.hidden_dims=[]"),
        ("data.batch_size=0", "data.batch_size=0"),
        ("lr=0", "lr=0"),
        ("lr=-1e-3", "lr=-0.001"),
        ("data.val_size=60000", "data.val_size=60000"),
        ("data.val_size=-1", "data.val_size=-1"),
        ("beta=abc", "beta='abc'"),
        ("ckpt_path=/nonexistent/last.ckpt", "ckpt_path='/nonexistent/last.ckpt'"),
    ],
)
def test_invalid_values_are_refused_naming_the_key(override, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key) + ": must"):
        validate(compose_train(override))


def test_every_config_group_option_composes():
    for override in ("trainer=cpu", "trainer=gpu", "trainer=ddp", "logger=csv", "callbacks=none", "experiment=smoke"):
        validate(compose_train(override))
    assert compose_train("experiment=smoke").trainer.limit_train_batches == 20


def test_cli_refuses_bad_config_in_one_line_before_training(tmp_path):
    result = run_module("betavae.train", "beta=-1", f"hydra.run.dir={tmp_path}/run", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[-1] == "Invalid config: beta=-1: must be a number >= 0"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "tensorboard").exists()


def test_cli_unknown_key_gets_hydras_error(tmp_path):
    result = run_module("betavae.train", "betta=1", f"hydra.run.dir={tmp_path}/run", check=False)
    assert result.returncode != 0 and "Could not override 'betta'" in result.stderr


def test_callbacks_are_tunable_and_removable_from_the_command_line():
    from hydra.utils import instantiate

    cfg = compose_train("callbacks.latent_evolution.every_n_epochs=5", "~callbacks.interpolation")
    built = {name: instantiate(node) for name, node in cfg.callbacks.items()}
    assert built["latent_evolution"].every_n_epochs == 5 and "interpolation" not in built
    assert len(compose_train("callbacks=none").callbacks or {}) == 0
