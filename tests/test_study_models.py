"""The reference study's other models against hand calculations: DIP-VAE's covariance penalties, FactorVAE's
permuted codes, density-ratio estimate and discriminator loss, the one backward pass that trains both as
disentanglement_lib does, a discriminator that learns a known total correlation, and Locatello et al.'s network
layer by layer."""

import math

import pytest
import torch

from betavae.base.errors import ConfigError
from betavae.model.networks import LocatelloVAE, build
from betavae.model.objectives import DIPObjective, FactorVAEObjective, objective_from
from betavae.model.objectives.dipvae import covariance
from betavae.model.objectives.factorvae import density_ratio_tc, discriminator_loss, permute_dims, roll_dims


def test_dip_covariance_is_the_batch_covariance_of_the_means_divided_by_the_batch_size():
    mu = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]]) + torch.tensor([3.0, -1.0])
    assert torch.allclose(covariance(mu), torch.tensor([[0.5, 0.0], [0.0, 2.0]]))


def test_dip_i_penalises_the_off_diagonal_and_the_diagonals_distance_from_one_apart():
    mu = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # Cov[μ] = [[1, 1], [1, 1]]
    logvar = torch.zeros(2, 2)
    objective = DIPObjective(type="i", lambda_od=2.0)  # λ_d = 10·λ_od, the study's type-i factor
    off, diagonal = objective.parts(mu, mu, logvar)
    assert (off.item(), diagonal.item()) == (2.0, 0.0)
    assert objective.lambda_d == 20.0
    loss = objective(torch.tensor(5.0), torch.tensor(1.5), parts=(off, diagonal))
    assert loss.item() == 5.0 + 1.5 + 2.0 * 2.0


def test_dip_ii_adds_the_mean_encoder_variance_to_the_diagonal():
    mu = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    logvar = torch.tensor([[math.log(0.5), 0.0], [math.log(0.5), 0.0]])  # E[diag σ²] = diag(0.5, 1)
    objective = DIPObjective(type="ii", lambda_od=3.0)  # λ_d = λ_od, the study's type-ii factor
    off, diagonal = objective.parts(mu, mu, logvar)  # C = [[1.5, 1], [1, 2]]
    assert off.item() == pytest.approx(2.0)
    assert diagonal.item() == pytest.approx(0.25 + 1.0)
    assert objective.lambda_d == 3.0
    assert objective(torch.tensor(0.0), torch.tensor(0.0), parts=(off, diagonal)).item() == pytest.approx(
        3.0 * 2.0 + 3.0 * 1.25
    )


def test_dip_lambda_d_is_given_directly_or_as_a_factor_of_lambda_od_and_both_is_refused():
    assert DIPObjective(lambda_od=5.0, lambda_d=7.0).lambda_d == 7.0
    assert DIPObjective(lambda_od=5.0, lambda_d_factor=2.0).lambda_d == 10.0
    with pytest.raises(ConfigError, match=r"lambda_d=7.0: give lambda_d or lambda_d_factor, not both"):
        DIPObjective(lambda_d=7.0, lambda_d_factor=2.0)
    assert objective_from(DIPObjective(type="ii", lambda_od=2.0).hparams()).lambda_d == 2.0


def test_permuted_codes_keep_each_dimensions_values_and_break_their_pairing():
    z = torch.arange(64.0).view(32, 2) * torch.tensor([1.0, -1.0])  # z_2 = −z_1 − 1: fully dependent
    permuted = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(2):
        assert torch.equal(permuted[:, j].sort().values, z[:, j].sort().values)
    assert not torch.equal(permuted[:, 1], -permuted[:, 0] - 1)


def test_validation_permutes_by_rolling_dimension_j_by_j_places():
    z = torch.tensor([[0.0, 10.0, 20.0], [1.0, 11.0, 21.0], [2.0, 12.0, 22.0]])
    assert roll_dims(z).tolist() == [[0.0, 12.0, 21.0], [1.0, 10.0, 22.0], [2.0, 11.0, 20.0]]


def test_density_ratio_and_discriminator_loss_by_hand():
    assert density_ratio_tc(torch.tensor([[2.0, 0.0], [0.0, 1.0]])).tolist() == [2.0, -1.0]
    ln3 = math.log(3.0)
    real, permuted = torch.tensor([[ln3, 0.0]]), torch.tensor([[0.0, ln3]])  # D(real) = 3/4, 1 − D(permuted) = 3/4
    assert discriminator_loss(real, permuted).item() == pytest.approx(-math.log(0.75))
    assert discriminator_loss(torch.zeros(4, 2), torch.zeros(4, 2)).item() == pytest.approx(math.log(2.0))


def test_factorvae_loss_adds_gamma_times_the_estimate_to_the_vae_loss():
    objective = FactorVAEObjective(gamma=30.0, latent_dim=3, hidden=8, layers=2)
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    tc, _ = objective.parts(z, z, torch.zeros_like(z))
    assert tc.item() == pytest.approx(density_ratio_tc(objective.discriminator(z)).mean().item())
    assert objective(torch.tensor(4.0), torch.tensor(2.0), parts=(tc, 0)).item() == pytest.approx(6.0 + 30.0 * tc)


def test_one_backward_pass_gives_the_model_and_the_discriminator_their_own_gradients():
    """The model's gradient reaches the codes through the discriminator with its weights held; the
    discriminator's comes from its loss alone, with the codes held: what disentanglement_lib's two minimize ops
    compute from one forward pass."""
    torch.manual_seed(0)
    objective = FactorVAEObjective(gamma=7.0, latent_dim=3, hidden=8, layers=2)
    z = torch.randn(16, 3, requires_grad=True)
    torch.manual_seed(1)  # the permutation parts draws
    parts = objective.parts(z, z, torch.zeros(16, 3))
    (objective(torch.tensor(0.0), torch.tensor(0.0), parts=parts) + objective.side_loss(parts)).backward()
    discriminator, codes = objective.discriminator, z.detach().requires_grad_()
    (expected_z,) = torch.autograd.grad(7.0 * density_ratio_tc(discriminator(codes)).mean(), codes)
    assert torch.allclose(z.grad, expected_z)
    torch.manual_seed(1)
    permuted = permute_dims(codes.detach())
    weights = list(discriminator.parameters())
    expected = torch.autograd.grad(discriminator_loss(discriminator(codes), discriminator(permuted)), weights)
    assert all(torch.allclose(p.grad, e) for p, e in zip(weights, expected, strict=True))


def test_the_discriminator_learns_the_total_correlation_of_correlated_codes_and_none_of_independent_ones():
    """Codes of a 2-d Gaussian with correlation ρ have TC = −½·log(1 − ρ²) (0.83 nats at ρ = 0.9); the
    discriminator's density ratio estimates it once trained, and tells real codes from permuted ones."""
    torch.manual_seed(0)
    rho = 0.9
    mix = torch.tensor([[1.0, rho], [0.0, math.sqrt(1 - rho**2)]])
    estimates = {}
    for name, transform in (("correlated", mix), ("independent", torch.eye(2))):
        objective = FactorVAEObjective(latent_dim=2, hidden=64, layers=3, lr=1e-3)
        (optimizer,) = objective.optimizers()
        for _ in range(600):
            z = torch.randn(256, 2) @ transform
            _, loss = objective.parts(z, z, z)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        z = torch.randn(20_000, 2) @ transform
        with torch.no_grad():
            estimates[name] = density_ratio_tc(objective.discriminator(z)).mean().item()
            real = objective.discriminator(z).argmax(1) == 0
            fake = objective.discriminator(permute_dims(z)).argmax(1) == 1
        if name == "correlated":
            assert (real.float().mean() + fake.float().mean()).item() / 2 > 0.7
    assert estimates["correlated"] == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.2)
    assert abs(estimates["independent"]) < 0.1


def test_the_reference_network_has_disentanglement_libs_layer_shapes_and_parameter_count():
    net = LocatelloVAE(image_size=64, latent_dim=10, image_channels=1)
    assert sum(p.numel() for p in net.parameters()) == 690_517
    x = torch.rand(2, 64 * 64)
    shapes = []
    h = x
    for layer in net.encoder:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv2d):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(32, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4)]
    kernels = [layer.kernel_size for layer in net.encoder if isinstance(layer, torch.nn.Conv2d)]
    assert kernels == [(4, 4), (4, 4), (2, 2), (2, 2)]
    assert [m.out_features for m in net.encoder if isinstance(m, torch.nn.Linear)] == [256, 20]
    assert [m.out_features for m in net.decoder if isinstance(m, torch.nn.Linear)] == [256, 1024]
    mu, logvar = net.encode(x)
    assert mu.shape == logvar.shape == (2, 10)
    assert net.decode(mu).shape == (2, 64 * 64)
    assert net.decode(torch.zeros(5, 2, 10)).shape == (5, 2, 64 * 64)  # leading sample dimensions
    colour = LocatelloVAE(image_size=64, latent_dim=10, image_channels=3)
    assert sum(p.numel() for p in colour.parameters()) == 690_517 + 2 * 4 * 4 * 32 + 2 * 4 * 4 * 32 + 2
    assert build(colour.architecture).architecture == colour.architecture


def test_the_reference_network_refuses_a_side_that_four_halvings_do_not_divide():
    with pytest.raises(ConfigError, match="image_size=28: must be a multiple of 16 for model=locatello"):
        LocatelloVAE(image_size=28)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FactorVAEObjective(gamma=-1), "gamma=-1: must be a finite number >= 0"),
        (lambda: FactorVAEObjective(hidden=0), "hidden=0: must be an integer >= 1"),
        (lambda: FactorVAEObjective(layers=0), "layers=0: must be an integer >= 1"),
        (lambda: FactorVAEObjective(lr=0), "lr=0: must be a finite number > 0"),
        (lambda: FactorVAEObjective(betas=[1.0, 0.9]), r"betas=\[1.0, 0.9\]: must be two numbers in \[0, 1\)"),
        (lambda: DIPObjective(type="iii"), "type='iii': must be i or ii"),
        (lambda: DIPObjective(lambda_od=-1), "lambda_od=-1: must be a finite number >= 0"),
        (lambda: DIPObjective(lambda_d_factor=-2), "lambda_d_factor=-2: must be a finite number >= 0"),
        (lambda: DIPObjective(batch_size=1), "batch_size=1: must be an integer >= 2 for objective=dipvae"),
    ],
)
def test_each_new_objective_key_out_of_range_is_refused_in_one_line(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


SMALL_FACTORVAE = ["objective=factorvae", "objective.hidden=16", "objective.layers=2", "trainer.limit_train_batches=5"]


@pytest.mark.slow
def test_a_factorvae_job_resumed_equals_two_straight_epochs_and_exports_the_vae_alone(tmp_path, real_data_dir):
    """The discriminator's weights and its Adam's state are in the checkpoint: one epoch, then a continuation
    for another, ends where two straight epochs do, both optimizers included."""
    from safetensors.torch import load_file

    from betavae.api import load_model
    from tests.helpers import run_module, strict_json, train_job

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_job(straight, *SMALL_FACTORVAE, "trainer.max_epochs=2")
    train_job(resumed, *SMALL_FACTORVAE, "trainer.max_epochs=1")
    train_job(resumed, *SMALL_FACTORVAE, "trainer.max_epochs=2")
    a, b = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, resumed))
    assert any(k.startswith("objective.discriminator.") for k in a["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert len(a["optimizer_states"]) == len(b["optimizer_states"]) == 2
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        assert sa["param_groups"] == sb["param_groups"]
        assert all(torch.equal(sa["state"][i][k], sb["state"][i][k]) for i in sa["state"] for k in sa["state"][i])
    assert a["optimizer_states"][1]["param_groups"][0]["betas"] == (0.5, 0.9)
    tc = [strict_json(d / "metrics.json")["test/tc_discriminator_batch"] for d in (straight, resumed)]
    assert tc[0] == tc[1]
    run_module("betavae.export", f"run_dir={straight}", f"out={tmp_path / 'model'}")
    weights = load_file(tmp_path / "model" / "model.safetensors")
    assert weights and not any("discriminator" in k for k in weights)
    model = load_model(tmp_path / "model")
    assert sum(p.numel() for p in model.parameters()) == sum(v.numel() for v in weights.values())


STUDY_SMOKE = [("study=beta_vae", "beta=1,4"), ("study=annealed_vae", "objective.c_max=5"),
               ("study=factor_vae", "objective.gamma=10"), ("study=dip_vae_i", "objective.lambda_od=1"),
               ("study=dip_vae_ii", "objective.lambda_od=1"), ("study=beta_tc_vae", "beta=1")]  # fmt: skip


@pytest.fixture(scope="module")
def six_models(tmp_path_factory, real_data_dir):
    """The study's six models on the small shapes grid, one value each (two for β-VAE), seeds 1 and 2, one
    multirun per model into one sweep directory, as docs/results.md's comparison runs them, the directory summarised
    by the last; then exported."""
    from tests.helpers import run_module

    root = tmp_path_factory.mktemp("six")
    for i, (study, value) in enumerate(STUDY_SMOKE):
        summary = [] if i == len(STUDY_SMOKE) - 1 else ["~hydra.callbacks.sweep_summary"]  # the last one reads all
        run_module("betavae.train", "-m", "experiment=shapes_smoke", study, value, "seed=1,2", "callbacks=none",
                   "trainer.limit_train_batches=4", "disentanglement=none", "udr=none", *summary,
                   f"hydra.sweep.dir={root / 'sweep'}")  # fmt: skip  # the reading along weights needs no scores
    run_module("betavae.export", f"sweep_dir={root / 'sweep'}", f"out={root / 'models'}")
    return root


@pytest.mark.slow
def test_a_sweep_over_the_six_models_reads_each_along_its_own_weight(six_models):
    import json

    summary = json.loads((six_models / "sweep" / "summary.json").read_text())
    assert summary["along"] == "weight"
    groups = {g["group"]: g for g in summary["groups"]}
    assert len(groups) == 7 and all(g["n"] == 2 for g in groups.values())
    assert groups["objective.gamma=10,study=factor_vae"]["series"] == "study=factor_vae"
    assert groups["objective.gamma=10,study=factor_vae"]["weight"] == 10
    assert groups["objective.c_max=5,study=annealed_vae"]["weight"] == 5
    assert [g["series"] for g in summary["groups"]][:2] == ["study=annealed_vae", "study=beta_tc_vae"]
    assert [g["weight"] for g in summary["groups"] if g["series"] == "study=beta_vae"] == [1, 4]
    text = (six_models / "sweep" / "summary.md").read_text()
    assert "| job group | own weight |" in text


@pytest.mark.slow
def test_each_other_model_is_compared_with_each_beta_vae_group_over_shared_seeds(six_models):
    import json

    summary = json.loads((six_models / "sweep" / "summary.json").read_text())
    pairs = {(p["from"], p["to"]) for p in summary["paired"]}
    beta = ["beta=1,study=beta_vae", "beta=4,study=beta_vae"]
    others = ["objective.c_max=5,study=annealed_vae", "objective.gamma=10,study=factor_vae",
              "objective.lambda_od=1,study=dip_vae_i", "objective.lambda_od=1,study=dip_vae_ii",
              "beta=1,study=beta_tc_vae"]  # fmt: skip
    within = {(beta[0], beta[1]), (others[2], others[3])}  # β 1 → 4; DIP-VAE-I → -II at one λ_od
    assert {(a, b) for a in beta for b in others} | within == pairs
    assert all(p["n"] == 2 for p in summary["paired"])


@pytest.mark.slow
def test_every_model_of_the_six_exports_its_network_alone(six_models):
    from safetensors.torch import load_file

    folders = sorted(path for path in (six_models / "models").iterdir() if path.is_dir())
    assert len(folders) == 14
    for folder in folders:
        assert not any("discriminator" in key for key in load_file(folder / "model.safetensors"))
