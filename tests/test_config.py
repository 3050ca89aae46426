"""The composed configs: defaults, group options, and bad values refused in one line naming the key."""

import pytest
from hydra.utils import instantiate

from betavae.base.config import config_error, instantiate_copy
from tests.helpers import REPO, compose_config, compose_train, run_module


def test_defaults_reproduce_the_reference_study():
    cfg = compose_train()
    module = instantiate(cfg.model)
    assert (module.beta, module.lr, cfg.seed, cfg.ckpt_path) == (1.0, 1e-3, 42, None)
    assert module.net.architecture == {"name": "mlp", "image_size": 28, "image_channels": 1, "hidden_dims": [400, 400],
                                       "latent_dim": 20, "likelihood": "bernoulli"}  # fmt: skip
    assert type(module.objective).__name__ == "BetaObjective"
    assert module.objective.warmup_epochs == 0
    assert (cfg.data.batch_size, cfg.data.val_size, cfg.trainer.max_epochs) == (128, 5000, 30)


def test_top_level_beta_and_lr_reach_the_module():
    module = instantiate(compose_train("beta=0.5", "lr=0.01").model)
    assert (module.beta, module.lr) == (0.5, 0.01)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("beta=-0.5", "beta=-0.5: must be a finite number >= 0"),
        ("beta=abc", "beta='abc': must be a finite number >= 0"),
        ("beta=inf", "beta=inf: must be a finite number >= 0"),
        ("lr=0", "lr=0: must be a finite number > 0"),
        ("lr=-1e-3", "lr=-0.001: must be a finite number > 0"),
        ("model.net.latent_dim=0", "model.net.latent_dim=0: must be an integer >= 1"),
        ("model.net.hidden_dims=[]", "model.net.hidden_dims=[]: must be a non-empty list of positive integers"),
        ("data.batch_size=0", "data.batch_size=0: must be an integer >= 1"),
        ("data.val_size=60000", "data.val_size=60000: must be an integer in [1, 60000)"),
        ("data.val_size=0", "data.val_size=0: must be an integer in [1, 60000)"),
        ("fid.num_images=1", "fid.num_images=1: must be null or >= 2"),
        ("fid.sample_seeds=[]", "fid.sample_seeds=[]: must be a non-empty list of integers >= 0"),
        ("objective=capacity objective.c_steps=0", "objective.c_steps=0: must be an integer >= 1"),
        ("objective.warmup_epochs=-1", "objective.warmup_epochs=-1: must be >= 0"),
        ("objective=capacity objective.gamma=0", "objective.gamma=0: must be a finite number > 0"),
        ("objective=capacity objective.c_max=-1", "objective.c_max=-1: must be a finite number >= 0"),
        ("objective=tcvae objective.alpha=-1", "objective.alpha=-1: must be a finite number >= 0"),
        ("objective=tcvae objective.gamma=nan", "objective.gamma=nan: must be a finite number >= 0"),
        ("objective=tcvae beta=-4", "beta=-4: must be a finite number >= 0"),
        (
            "objective=tcvae data.batch_size=1",
            "data.batch_size=1: must be an integer >= 2 for objective=tcvae: with one "
            "image a batch its MI and TC estimates are 0 whatever the code",
        ),
        (
            "objective=tcvae objective.dataset_size=100",
            "objective.dataset_size=100: must be an integer >= 128, the "
            "training batch: the estimator takes a batch for a sample of the data set",
        ),
        ("objective=factorvae objective.gamma=-1", "objective.gamma=-1: must be a finite number >= 0"),
        ("objective=factorvae objective.hidden=0", "objective.hidden=0: must be an integer >= 1"),
        ("objective=factorvae objective.layers=1.5", "objective.layers=1.5: must be an integer >= 1"),
        ("objective=factorvae objective.lr=0", "objective.lr=0: must be a finite number > 0"),
        (
            "objective=factorvae objective.betas=[0.5,1]",
            "objective.betas=[0.5, 1]: must be two numbers in [0, 1), Adam's β₁ and β₂",
        ),
        ("objective=dipvae objective.type=iii", "objective.type='iii': must be i or ii"),
        ("objective=dipvae objective.lambda_od=-1", "objective.lambda_od=-1: must be a finite number >= 0"),
        ("objective=dipvae objective.lambda_d=-1", "objective.lambda_d=-1: must be a finite number >= 0"),
        (
            "objective=dipvae objective.lambda_d=1 objective.lambda_d_factor=2",
            "objective.lambda_d=1: give lambda_d or lambda_d_factor, not both",
        ),
        (
            "objective=dipvae data.batch_size=1",
            "data.batch_size=1: must be an integer >= 2 for objective=dipvae: a covariance needs two codes",
        ),
        (
            "model=locatello",
            "data.image_size=28: must be a multiple of 16 for model=locatello (four halvings; theirs is 64)",
        ),
        ("model=conv model.net.channels=[]", "model.net.channels=[]: must be a non-empty list of positive integers"),
        (
            "model=conv model.net.hidden_dims=[0]",
            "model.net.hidden_dims=[0]: must be a non-empty list of positive integers",
        ),
        ("model.net.latent_dim=2.5", "model.net.latent_dim=2.5: must be an integer >= 1"),
        ("data.image_size=32", "data.image_size=32: must be 28: Fashion-MNIST's images are 28×28"),
        ("data.channels=3", "data.channels=3: must be 1: Fashion-MNIST's images are gray"),
        ("model.net.image_channels=0", "model.net.image_channels=0: must be an integer >= 1"),
        ("data=shapes data.channels=3", "data.channels=3: must be 1: the sprites are binary"),
        ("data.eval_batch_size=0", "data.eval_batch_size=0: must be an integer >= 1"),
        ("data.split_seed=abc", "data.split_seed='abc': must be an integer in [0, 2**32)"),
        ("data.seed=-1", "data.seed=-1: must be an integer in [0, 2**32)"),
        ("data.binarize_seed=1.5", "data.binarize_seed=1.5: must be an integer in [0, 2**32)"),
        ("data.binarize=maybe", "data.binarize='maybe': must be true or false"),
        ("data=shapes data.split_seed=-3", "data.split_seed=-3: must be an integer in [0, 2**32)"),
        ("data=shapes data.image_size=4", "data.image_size=4: must be an integer >= 8"),
        ("data=shapes data.shapes=4", "data.shapes=4: must be in [1, 3]"),
        ("data=shapes data.scales=0", "data.scales=0: must be an integer >= 1"),
        ("data=shapes data.orientations=0", "data.orientations=0: must be an integer >= 1"),
        ("data=shapes data.orientation_span=0", "data.orientation_span=0: must be a number in (0, 360]"),
        (
            "data=shapes data.positions=17",
            "data.positions=17: must be in [1, image_size // 2 = 16]: the sprite is "
            "image_size − positions + 1 pixels wide",
        ),
        ("data=shapes data.val_size=0", "data.val_size=0: must be an integer >= 1"),
        ("data=shapes data.test_size=0", "data.test_size=0: must be an integer >= 1"),
        (
            "data=shapes data.test_size=46000",
            "data.val_size=2000: with test_size=46000 must leave training images of the 46080",
        ),
        ("fid.batch_size=0", "fid.batch_size=0: must be an integer >= 1"),
        ("fid.feature=pixels", "fid.feature='pixels': must be 'fashion' or 'inception'"),
        ("disentanglement.compute=maybe", "disentanglement.compute='maybe': must be auto, true or false"),
        ("disentanglement.seed=-1", "disentanglement.seed=-1: must be an integer >= 0"),
        ("disentanglement.num_train=1", "disentanglement.num_train=1: must be an integer >= 2"),
        ("disentanglement.num_test=0", "disentanglement.num_test=0: must be an integer >= 2"),
        ("disentanglement.bins=1", "disentanglement.bins=1: must be an integer >= 2"),
        ("disentanglement.batch_size=1", "disentanglement.batch_size=1: must be an integer >= 2"),
        ("disentanglement.num_variance_estimate=1", "disentanglement.num_variance_estimate=1: must be an integer >= 2"),
        ("disentanglement.prune_threshold=-1", "disentanglement.prune_threshold=-1: must be >= 0"),
        (
            "disentanglement.families=[mig]",
            "disentanglement.families=['mig']: must be a list of distinct families of "
            "disentanglement, modularity, irs, infomec, sample_efficiency",
        ),
        (
            "disentanglement.families=[]",
            "disentanglement.families=[]: must be a list of distinct families of "
            "disentanglement, modularity, irs, infomec, sample_efficiency",
        ),
        (
            "disentanglement.representation=samples",
            "disentanglement.representation='samples': must be mean, sampled or [mean, sampled]",
        ),
        (
            "disentanglement.representation=[mean,mean]",
            "disentanglement.representation=['mean', 'mean']: must be mean, sampled or [mean, sampled]",
        ),
    ],
)
def test_invalid_values_are_refused_by_their_constructor_naming_the_key(override, message):
    cfg = compose_train(*override.split())
    with pytest.raises(Exception) as err:
        for key in ("data", "model", "fid", "disentanglement"):
            instantiate_copy(cfg, key)
    assert config_error(err.value, cfg) == message


@pytest.mark.parametrize(
    ("entry", "override", "message"),
    [
        ("train", "seed=-1", "seed=-1: must be an integer in [0, 2**32)"),
        ("train", "trainer.max_epochs=0", "trainer.max_epochs=0: must be an integer >= 1"),
        ("train", "trainer.max_epochs=-1", "trainer.max_epochs=-1: must be an integer >= 1"),
        ("train", "tracking_unreachable=wait", "tracking_unreachable='wait': must be stop or skip"),
        ("train", "beta=abc", "beta='abc': must be a finite number >= 0"),
        ("train", "lr=0", "lr=0: must be a finite number > 0"),
        ("train", "flush_denormal=maybe", "flush_denormal='maybe': must be true or false"),
        ("evaluate", "eval.batch_images=0", "eval.batch_images=0: must be an integer >= 1"),
        ("evaluate", "eval.batch_samples=0", "eval.batch_samples=0: must be an integer >= 1"),
        ("evaluate", "eval.iw_samples=0", "eval.iw_samples=0: must be an integer >= 1"),
        ("evaluate", "eval.elbo_samples=0", "eval.elbo_samples=0: must be an integer >= 1"),
        ("evaluate", "eval.limit=-5", "eval.limit=-5: must be null or >= 1"),
        ("evaluate", "eval.limit=0", "eval.limit=0: must be null or >= 1"),
        ("evaluate", "eval.probe=maybe", "eval.probe='maybe': must be true or false"),
        ("evaluate", "eval.figures=1", "eval.figures=1: must be true or false"),
    ],
)
def test_keys_no_constructor_checks_are_refused_by_their_entry_point_naming_the_key(entry, override, message):
    from betavae.evaluate import check_eval
    from betavae.train import check_job

    check, settings = (check_job, compose_train(override)) if entry == "train" else (
        check_eval, compose_config("evaluate", override))  # fmt: skip
    with pytest.raises(Exception) as err:
        check(settings)
    assert config_error(err.value) == message


def test_fid_cache_dir_under_a_regular_file_is_refused_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    cfg = compose_train(f"fid.cache_dir={tmp_path}/file/fid")
    with pytest.raises(Exception) as err:
        instantiate(cfg.callbacks.fid)  # as train builds it: the callback's `scorer: ${fid}`
    assert (
        config_error(err.value, cfg)
        == f"fid.cache_dir='{tmp_path}/file/fid': must be a writable directory (or creatable)"
    )


def test_every_config_group_option_composes():
    for override in (
        "trainer=cpu",
        "trainer=gpu",
        "trainer=ddp",
        "trainer=gpu_per_job",
        "logger=csv",
        "callbacks=none",
        "experiment=smoke",
    ):
        instantiate(compose_train(override).model)
    assert compose_train("experiment=smoke").trainer.limit_train_batches == 20


def test_callbacks_group_composes_every_callback_and_fid_none_leaves_nothing():
    cfg = compose_train()
    assert list(cfg.callbacks)[:4] == ["checkpoint", "last_checkpoint", "timer", "progress_bar"]
    assert "fid" in cfg.callbacks
    assert "fid" in cfg
    none = ["checkpoint", "last_checkpoint", "timer", "progress_bar", "fid"]
    assert list(compose_train("callbacks=none").callbacks) == none
    for overrides in (["fid=none"], ["fid=none", "experiment=smoke"]):
        off = compose_train(*overrides)
        assert "fid" not in off
        assert "fid" not in off.callbacks
    assert "fid" not in compose_config("evaluate", "fid=none")
    assert "disentanglement" not in compose_train("disentanglement=none")


FACTOR_FAMILIES = ["disentanglement", "modularity", "irs", "infomec", "sample_efficiency"]  # one scorer's


@pytest.mark.parametrize(
    ("overrides", "families"),
    [
        ([], ["latents", "fid", "probe", *FACTOR_FAMILIES]),
        (["callbacks=none"], ["fid", *FACTOR_FAMILIES]),
        (["callbacks=none", "fid=none", "disentanglement.families=[irs]"], ["irs"]),
        (["callbacks.latent_stats.probe=false", "fid=none", "disentanglement=none"], ["latents"]),
        (["experiment=shapes_smoke", "disentanglement=none"], ["latents", "fid", "probe"]),  # its keys stay inert
    ],
)
def test_the_test_pass_scores_the_families_whose_settings_the_config_holds(overrides, families):
    from betavae.metrics.registry import Stage
    from betavae.metrics.suite import Suite

    assert list(Suite.configured(compose_train(*overrides), Stage.TEST).scorers) == families


@pytest.mark.parametrize(
    ("overrides", "families"),
    [
        ([], ["latents", "bounds", "fid", "probe", *FACTOR_FAMILIES]),
        (["eval.probe=false", "fid=none", "disentanglement=none"], ["latents", "bounds"]),
    ],
)
def test_evaluate_scores_the_families_whose_settings_its_config_holds(overrides, families):
    from betavae.metrics.registry import Stage
    from betavae.metrics.suite import Suite

    assert list(Suite.configured(compose_config("evaluate", *overrides), Stage.EVALUATE).scorers) == families


EXPERIMENTS = sorted(path.stem for path in (REPO / "betavae" / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
@pytest.mark.parametrize("callbacks", ["none", "default"])
def test_every_experiment_composes_with_either_callbacks_choice_into_callbacks_alone(experiment, callbacks):
    import lightning.pytorch as pl

    from betavae.train import chosen

    cfg = compose_train(f"experiment={experiment}", f"callbacks={callbacks}")
    nodes = chosen(cfg.callbacks, "callbacks")
    built = [instantiate(node) for name, node in nodes.items() if not name.endswith("checkpoint")]  # Hydra's dir
    assert all(isinstance(callback, pl.Callback) for callback in built)
    assert set(cfg.callbacks) - set(nodes) <= {"latent_evolution"}  # what shapes_smoke tunes, not chosen by none


@pytest.mark.parametrize("experiment", [name for name in EXPERIMENTS if name != "smoke"])
@pytest.mark.parametrize("model", ["mlp", "conv", "burgess"])
def test_every_experiment_builds_either_network(experiment, model):
    cfg = compose_train(f"experiment={experiment}", f"model={model}")
    net = instantiate(cfg.model.net)
    assert type(net).__name__ == ("MLPVAE" if model == "mlp" else "ConvVAE")
    if model != "mlp":
        assert net.architecture["channels"] == ([32, 32, 32, 32] if model == "burgess" else [32, 32, 32])


def test_callbacks_are_tunable_and_removable_from_the_command_line():
    cfg = compose_train("callbacks.latent_evolution.every_n_epochs=5", "~callbacks.interpolation")
    # the checkpoint callback needs a Hydra run for its directory
    built = {name: instantiate(node) for name, node in cfg.callbacks.items() if not name.endswith("checkpoint")}
    assert built["latent_evolution"].every_n_epochs == 5
    assert "interpolation" not in built
    assert type(built["fid"].scorer).__name__ == "FIDScorer"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("beta=-1", "Invalid config: beta=-1: must be a finite number >= 0"),
        ("seed=-1", "Invalid config: seed=-1: must be an integer in [0, 2**32)"),
        ("model.net.latent_dim=0", "Invalid config: model.net.latent_dim=0: must be an integer >= 1"),
        ("ckpt_path=/nonexistent/last.ckpt", "Invalid config: ckpt_path='/nonexistent/last.ckpt': must be null or"),
    ],
)
def test_cli_refuses_bad_config_in_one_line_before_training(tmp_path, override, message):
    result = run_module("betavae.train", override, f"hydra.run.dir={tmp_path}/run", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "run" / "tensorboard").exists()


@pytest.mark.slow
def test_cli_unknown_key_gets_hydras_error(tmp_path):
    result = run_module("betavae.train", "betta=1", f"hydra.run.dir={tmp_path}/run", check=False)
    assert result.returncode != 0
    assert "Could not override 'betta'" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("door", "keys"),
    [
        ("export", ["run_dir=<job>", "out=<folder>", "overwrite=true"]),
        ("summarize", ["sweep_dir=<multirun>", "data.path=<file>"]),
        ("evaluate", ["run_dir=<job>", "sweep_dir=<multirun>", "eval.<key>"]),
    ],
)
def test_each_doors_help_says_what_it_takes_and_lists_no_training_group(door, keys):
    shown = run_module(f"betavae.{door}", "--help").stdout
    assert shown.startswith(f"python -m betavae.{door} ")
    assert all(key in shown for key in keys)
    assert "objective" not in shown and "likelihood" not in shown  # training's groups
