import re

import pytest
import torch

from betavae.base.errors import ConfigError, Diverged, RunError
from betavae.model.checkpoints import load_module
from betavae.model.module import BetaVAEModule
from betavae.model.networks import MLPVAE, ConvVAE, build
from betavae.model.objectives import BetaObjective


def test_reference_architecture_shapes():
    model = MLPVAE()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 400),
        (400, 400),
        (400, 40),
        (20, 400),
        (400, 400),
        (400, 784),
    ]
    logits, mu, logvar = model(torch.rand(5, 784))
    assert logits.shape == (5, 784)
    assert mu.shape == (5, 20)
    assert logvar.shape == (5, 20)


def test_conv_vae_maps_28x28_images_to_4x4_features_and_back():
    model = ConvVAE(latent_dim=7)
    convs = [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    x = torch.rand(5, 784)
    sizes = [x.view(5, 1, 28, 28)]
    for conv in convs:
        sizes.append(torch.relu(conv(sizes[-1])))
    assert [tuple(t.shape[1:]) for t in sizes] == [(1, 28, 28), (32, 14, 14), (32, 7, 7), (32, 4, 4)]
    logits, mu, logvar = model(x)
    assert logits.shape == (5, 784)
    assert mu.shape == logvar.shape == (5, 7)
    assert model.decode(torch.zeros(3, 5, 7)).shape == (3, 5, 784)  # leading sample dimensions, as IW uses


@pytest.mark.parametrize(("side", "channels", "sizes"), [(32, [32, 32, 32], [16, 8, 4]),
                                                        (64, [32, 32, 32, 32], [32, 16, 8, 4])])  # fmt: skip
def test_conv_vae_halves_any_image_size_to_the_same_features_and_back(side, channels, sizes):
    model = ConvVAE(image_size=side, channels=channels, latent_dim=5)
    x = torch.rand(2, side * side)
    found = [x.view(2, 1, side, side)]
    for conv in [m for m in model.encoder if isinstance(m, torch.nn.Conv2d)]:
        found.append(conv(found[-1]))
    assert [t.shape[-1] for t in found[1:]] == sizes
    assert model(x)[0].shape == (2, side * side)
    assert MLPVAE(image_size=side, latent_dim=5)(x)[0].shape == (2, side * side)


@pytest.mark.parametrize("network", [MLPVAE, ConvVAE])
def test_both_networks_take_and_give_colour_images_channel_first(network):
    model = network(image_size=16, image_channels=3, latent_dim=4)
    x = torch.rand(2, 3 * 16 * 16)
    logits, mu, _ = model(x)
    assert logits.shape == (2, 3 * 16 * 16)
    assert mu.shape == (2, 4)
    assert tuple(model.image_shape) == (3, 16, 16)
    assert model.sample(5).shape == (5, 3 * 16 * 16)
    channel = torch.zeros_like(x).view(2, 3, 16, 16)
    channel[:, 1] = 1.0  # the green channel alone: the encoder sees which channel carries it
    red = torch.zeros_like(channel)
    red[:, 0] = 1.0
    assert not torch.allclose(model.encode(channel.flatten(1)).mu, model.encode(red.flatten(1)).mu)


def test_a_checkpoint_of_a_network_from_before_channels_rebuilds_gray():
    before = {"name": "conv", "image_size": 28, "channels": [32, 32, 32], "hidden_dims": [256, 256], "latent_dim": 20,
              "likelihood": "bernoulli"}  # fmt: skip  # 0.7.0's net hyperparameters
    rebuilt = build(before)
    assert tuple(rebuilt.image_shape) == (1, 28, 28)
    assert rebuilt(torch.rand(2, 784))[0].shape == (2, 784)


def test_build_rebuilds_each_network_by_name_and_refuses_others():
    for model in (MLPVAE(latent_dim=3), ConvVAE(latent_dim=3)):
        rebuilt = build(model.architecture)
        assert type(rebuilt) is type(model)
        assert rebuilt.architecture == model.architecture
    older = {"input_dim": 784, "hidden_dims": [400, 400], "latent_dim": 20, "likelihood": "bernoulli"}
    rebuilt = build(older)  # a checkpoint from before networks had names, and took a pixel count
    assert type(rebuilt) is MLPVAE
    assert rebuilt.architecture["image_size"] == 28
    with pytest.raises(ConfigError, match=r"model='os\.system': must be one of mlp, conv"):
        build({"name": "os.system"})
    with pytest.raises(ConfigError, match="channels"):
        ConvVAE(channels=[])


def test_dimensions_come_from_arguments():
    model = MLPVAE(image_size=3, hidden_dims=[7], latent_dim=2)
    logits, mu, _ = model(torch.rand(3, 9))
    assert logits.shape == (3, 9)
    assert mu.shape == (3, 2)
    assert model.decode(torch.zeros(4, 2)).shape == (4, 9)


def test_reparameterize_uses_sigma():
    mu = torch.zeros(10_000, 1)
    z = MLPVAE.reparameterize(mu, torch.full_like(mu, 2 * torch.tensor(3.0).log()))
    assert abs(z.std().item() - 3.0) < 0.1


def test_reparameterize_with_given_noise_broadcasts_over_sample_dimensions():
    mu, logvar = torch.randn(3, 2), torch.randn(3, 2)
    eps = torch.randn(5, 3, 2)
    z = MLPVAE.reparameterize(mu, logvar, eps)
    assert z.shape == (5, 3, 2)
    assert torch.allclose(z[4], mu + eps[4] * (0.5 * logvar).exp())


def test_sample_draws_seeded_codes_scaled_by_temperature():
    model = MLPVAE(image_size=2, hidden_dims=[5], latent_dim=2)
    first = model.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(first, model.sample(4, torch.Generator().manual_seed(3)))  # same seed, same images
    assert not torch.equal(first, model.sample(4, torch.Generator().manual_seed(4)))
    z = 0.5 * torch.randn(4, 2, generator=torch.Generator().manual_seed(3))
    cold = model.sample(4, torch.Generator().manual_seed(3), temperature=0.5)
    assert torch.equal(cold, torch.sigmoid(model.decode(z)))
    assert ((cold > 0) & (cold < 1)).all()


def test_reconstruct_decodes_the_posterior_mean():
    model = MLPVAE(image_size=2, hidden_dims=[5], latent_dim=2)
    x = torch.rand(3, 4)
    assert torch.equal(model.reconstruct(x), torch.sigmoid(model.decode(model.encode(x).mu)))


def test_passes_without_gradients_take_cpu_chunks_and_equal_one_whole_pass():
    from betavae.metrics.fid import FashionFeatures
    from betavae.model.networks import CPU_CHUNK, encode_all, in_chunks

    model, features = ConvVAE(latent_dim=3).eval(), FashionFeatures().eval()
    rows = []
    for network in (model.encoder, model.decoder, features.body):
        network.register_forward_hook(lambda module, args, out: rows.append(len(args[0])))
    x, n = torch.rand(2 * CPU_CHUNK + 5, 784), 2 * CPU_CHUNK + 5
    with torch.no_grad():
        whole_mu, whole_logvar = model.encode(x)
        whole_reconstruction = model.decode_mean(whole_mu)
        z = torch.randn(n, 3, generator=torch.Generator().manual_seed(0))
        whole_samples, whole_features = model.decode_mean(z), features.body(x.view(-1, 1, 28, 28))
    rows.clear()
    chunked = encode_all(model, x)
    assert rows == [CPU_CHUNK, CPU_CHUNK, 5]  # 2,000 images at a time before: a conv layer's activations outgrow caches
    assert torch.allclose(chunked.mu, whole_mu, atol=1e-6) and torch.allclose(chunked.logvar, whole_logvar, atol=1e-6)
    assert torch.allclose(model.reconstruct(x), whole_reconstruction, atol=1e-6)
    assert torch.allclose(model.sample(n, torch.Generator().manual_seed(0)), whole_samples, atol=1e-6)
    rows.clear()
    with torch.no_grad():
        assert torch.allclose(features(x), whole_features, atol=1e-6)
    assert rows == [CPU_CHUNK, CPU_CHUNK, 5]
    assert in_chunks(x, torch.device("cuda"))[0] is x  # an accelerator takes the batch whole, as before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latent_dim": 0}, "latent_dim=0: must be an integer >= 1"),
        ({"hidden_dims": []}, "hidden_dims=[]: must be a non-empty list of positive integers"),
        ({"hidden_dims": [400, -1]}, "hidden_dims=[400, -1]: must be"),
        ({"image_size": 2.5}, "image_size=2.5: must be an integer >= 1"),
    ],
)
def test_constructor_refuses_bad_architecture_naming_the_argument(kwargs, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        MLPVAE(**kwargs)


def test_a_checkpoint_alone_rebuilds_its_module(tmp_path):
    """load_module needs no config: the architecture travels in the checkpoint's hyperparameters."""
    import lightning.pytorch as pl

    module = BetaVAEModule(MLPVAE(image_size=28, hidden_dims=[32], latent_dim=3), BetaObjective(0.25), lr=0.01)
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = load_module(tmp_path / "model.ckpt")
    architecture = {"name": "mlp", "image_size": 28, "image_channels": 1, "hidden_dims": [32], "latent_dim": 3,
                    "likelihood": "bernoulli"}  # fmt: skip
    assert loaded.net.architecture == architecture
    assert (loaded.beta, loaded.lr, loaded.training) == (0.25, 0.01, False)
    x = torch.rand(4, 784)
    assert torch.equal(loaded.net.encode(x).mu, module.net.encode(x).mu)
    torch.save({"state_dict": module.state_dict()}, tmp_path / "bare.ckpt")
    with pytest.raises(RunError, match="not a betavae checkpoint"):
        load_module(tmp_path / "bare.ckpt")


def test_a_checkpoint_whose_weights_do_not_fit_its_hyperparameters_is_refused_in_one_line(tmp_path):
    import lightning.pytorch as pl

    module = BetaVAEModule(MLPVAE(image_size=28, hidden_dims=[32], latent_dim=3), BetaObjective(1.0))
    trainer = pl.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    edited = torch.load(tmp_path / "model.ckpt", weights_only=True)
    edited["hyper_parameters"]["net"]["latent_dim"] = 2  # a hand-edited latent_dim
    torch.save(edited, tmp_path / "model.ckpt")
    with pytest.raises(RunError) as refused:
        load_module(tmp_path / "model.ckpt")
    message = str(refused.value)
    assert "\n" not in message
    expected = "its weights do not fit the network its hyperparameters describe (size mismatch for net.encoder.2"
    assert message.startswith(f"{tmp_path}/model.ckpt: {expected}")


def batch(loss: float, recon: float, kl: float, images: int = 4) -> tuple[torch.Tensor, int]:
    """A training batch's record as the module keeps it: its (loss, recon, KL) means and image count."""
    return torch.tensor([loss, recon, kl]), images


def test_divergence_check_names_the_first_non_finite_step_since_the_last_check():
    """The training loss is checked every few steps without a sync per step; the error names the first bad one."""
    from types import SimpleNamespace

    module = BetaVAEModule(MLPVAE(image_size=2, hidden_dims=[3], latent_dim=2))
    module._trainer = SimpleNamespace(global_step=10, current_epoch=2, world_size=1)  # 10 optimizer steps taken
    nan, inf, one = float("nan"), float("inf"), 1.0
    module._epoch.batches["train"] = [batch(one, one, one)] * 6  # steps 0-5, checked
    module._check_training()
    module._epoch.batches["train"] += [
        batch(one, one, one),
        batch(one, one, one),
        batch(inf, one, inf),
        batch(nan, nan, one),
    ]
    with pytest.raises(Diverged, match=r"non-finite training loss at step 8, epoch 2 \(KL = inf\)"):
        module._check_training()


def test_a_process_with_no_batch_still_joins_the_epoch_sums():
    """Under DDP the epoch's sums are reduced over every process; one that had no batch must take part too, or
    the others wait for it."""
    from types import SimpleNamespace

    reduced = []
    strategy = SimpleNamespace(reduce=lambda totals, reduce_op: reduced.append(totals) or totals)
    module = BetaVAEModule(MLPVAE(image_size=2, hidden_dims=[3], latent_dim=2))
    module._trainer = SimpleNamespace(strategy=strategy)
    module._log_epoch("val")  # no batch here, and none on the other processes either: nothing to log
    assert len(reduced) == 1
    assert torch.equal(reduced[0], torch.zeros(4))


def test_a_non_finite_loss_on_another_ddp_process_stops_this_one_with_the_same_message():
    """Each process checks its own losses, then all agree: the first bad step of any rank stops every rank."""
    from types import SimpleNamespace

    module = BetaVAEModule(MLPVAE(image_size=2, hidden_dims=[3], latent_dim=2))
    module._trainer = SimpleNamespace(global_step=4, current_epoch=0, world_size=2)
    module._epoch.batches["train"] = [batch(1.0, 1.0, 1.0)] * 4  # finite here
    other = torch.tensor([1.0, float("nan"), 2.0, 3.0])  # rank 1: its batch 1 had a NaN recon
    module.all_gather = lambda found: torch.stack([found, other])
    with pytest.raises(Diverged, match=r"non-finite training loss at step 1, epoch 0 \(recon = nan\)"):
        module._check_training()
