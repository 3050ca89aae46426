import torch

from betavae.model import MLPVAE


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
    assert logits.shape == (5, 784) and mu.shape == (5, 20) and logvar.shape == (5, 20)


def test_dimensions_come_from_arguments():
    model = MLPVAE(input_dim=10, hidden_dims=[7], latent_dim=2)
    logits, mu, _ = model(torch.rand(3, 10))
    assert logits.shape == (3, 10) and mu.shape == (3, 2)
    assert model.decode(torch.zeros(4, 2)).shape == (4, 10)


def test_reparameterize_uses_sigma():
    mu = torch.zeros(10_000, 1)
    z = MLPVAE.reparameterize(mu, torch.full_like(mu, 2 * torch.tensor(3.0).log()))
    assert abs(z.std().item() - 3.0) < 0.1
