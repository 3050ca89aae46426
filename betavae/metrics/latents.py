"""Posterior statistics of a trained encoder: batched encoding, per-dimension KL, active units, the KL's
decomposition, linear probes; the `latents` and `probe` metric families."""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig

from betavae.data.contract import ImageData
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import VAE, Posterior, encode_all
from betavae.model.objectives import KLParts, gaussian_kl, log_normal

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Var_x(E_q[z_d]) > 0.01


def kl_per_dim(posterior: Posterior) -> torch.Tensor:
    """Average KL(q(z_d|x) ‖ N(0, 1)) over the images, per latent dimension, shape [D]."""
    return gaussian_kl(posterior.mu, posterior.logvar).mean(0)


@torch.no_grad()
def kl_decomposition(posterior: Posterior, draws: int = 1, seed: int = 0, floats: int = 2**22) -> dict[str, float]:
    """Index-code MI, total correlation and dimension-wise KL of these n posteriors (Chen et al. 2018, eq. 2),
    with q(z) the mixture of all n, from ``draws`` seeded samples z ~ q(z|x_i) per image; each with its
    standard error over the samples (`<part>_se`). MI cannot exceed log n: the sample's own component alone
    gives q(z) ≥ q(z|x)/n. Memory: a buffer of about ``floats`` floats (16 MB)."""
    posterior = Posterior(posterior.mu.float(), posterior.logvar.float())
    chunk = max(1, floats // posterior.mu.numel())
    parts = [_kl_parts_exact(posterior_sample(posterior, seed + d), *posterior, chunk) for d in range(draws)]
    values = {name: torch.cat([p[i] for p in parts]).double() for i, name in enumerate(KLParts._fields)}
    result = {name: float(v.mean()) for name, v in values.items()}
    return result | {f"{name}_se": float(v.std() / math.sqrt(len(v))) for name, v in values.items()}


def _kl_parts_exact(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, chunk: int) -> KLParts:
    """`loss.kl_parts` of samples z [n, D], z_i ~ q(z|x_i), over the uniform mixture of the n posteriors,
    ``chunk`` samples at a time in one reused [D, chunk, n] buffer, with no new tensor per chunk. The
    marginals sum exp(log N − shift) with a fixed shift per dimension, the largest density any component has
    there, so nothing overflows and no max pass is needed. A sample's own term is at least
    exp(−(log σ²_own − min log σ²)/2 − ε²/2), so nothing it needs underflows float32 unless a dimension's log
    variances span more than ~150 (trained encoders span ~25), where σ itself nears float32's limits."""
    # Written out because `kl_parts` (new [chunk, n, D] tensors, logsumexp over a strided axis) took 40 s where
    # this takes 7 s, for n = 10,000 and D = 20 on the project's 2-core CPU (measured with 0.3.0).
    n, dims = mu.shape
    log_n = math.log(n)
    # log N(z_d; μ_id, σ_id) = c_id − (z_d·h_id − μ_id·h_id)², h = 1/(σ√2)
    mu, logvar = mu.T.contiguous(), logvar.T.contiguous()  # [D, n]: broadcasts over contiguous rows are fast
    c = -0.5 * (math.log(2 * math.pi) + logvar)
    shift = c.max(1, keepdim=True).values  # [D, 1]
    h = (-0.5 * logvar).exp() * math.sqrt(0.5)
    mh, c_shifted = mu * h, (c - shift)[:, None, :]
    log_pz = log_normal(z, z.new_zeros(()), z.new_zeros(())).sum(1)
    buf = torch.empty(dims, chunk, n, device=mu.device)
    out: list[torch.Tensor] = []
    for start in range(0, n, chunk):
        zc = z[start : start + chunk].T.contiguous()[:, :, None]  # [D, c, 1]
        b = buf[:, : zc.shape[1]]
        torch.mul(zc, h[:, None, :], out=b).sub_(mh[:, None, :]).square_()
        torch.sub(c_shifted, b, out=b)  # log N − shift, per dimension
        rows = torch.arange(zc.shape[1])
        own = b[:, rows, rows + start].sum(0)  # [c]: each sample's own posterior
        log_qz = b.sum(0).logsumexp(-1) - log_n  # [c], still less Σ shift
        log_qzj = b.exp_().sum(-1).log_().sum(0) - dims * log_n  # [c]
        out.append(torch.stack([own - log_qz, log_qz - log_qzj, log_qzj + shift.sum() - log_pz[start : start + chunk]]))
    mi, tc, dimwise = torch.cat(out, 1)
    return KLParts(mi, tc, dimwise)


def active_mask(posterior: Posterior, threshold: float = ACTIVE_THRESHOLD) -> torch.Tensor:
    """Per dimension: does its posterior mean vary across the data by more than ``threshold``? Shape [D]."""
    return posterior.mu.var(0) > threshold


def active_units(posterior: Posterior, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of active dimensions (see active_mask)."""
    return int(active_mask(posterior, threshold).sum())


def unit_counts(posterior: Posterior) -> dict[str, float]:
    """`active_units` of these posteriors, by name: what the `latents` family and the validation log give."""
    return {"active_units": float(active_units(posterior))}


def linear_probe_accuracy(
    train_x: torch.Tensor, train_labels: torch.Tensor, test_x: torch.Tensor, test_labels: torch.Tensor
) -> float:
    """Test accuracy (%) of a logistic regression (on standardised features) fitted on training codes: how
    linearly the classes separate in them. With no features, the majority class's share of the test set."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if train_x.shape[1] == 0:
        probe, train_x, test_x = DummyClassifier(), train_x.new_zeros(len(train_x), 1), test_x.new_zeros(len(test_x), 1)
    probe.fit(train_x.cpu().numpy(), train_labels.cpu().numpy())
    return 100.0 * float(probe.score(test_x.cpu().numpy(), test_labels.cpu().numpy()))


def posterior_sample(posterior: Posterior, seed: int = 0) -> torch.Tensor:
    """One seeded draw z ~ q(z|x) per image (drawn on the CPU, so a seed gives the same z on every device)."""
    eps = torch.randn(posterior.mu.shape, generator=torch.Generator().manual_seed(seed)).to(posterior.mu.device)
    return VAE.reparameterize(posterior.mu, posterior.logvar, eps)


def probe_metrics(
    train: Posterior, train_labels: torch.Tensor, test: Posterior, test_labels: torch.Tensor, seed: int = 0
) -> dict[str, float]:
    """Linear probes that cannot read collapsed dimensions: `probe_accuracy` on posterior samples z ~ q (a
    collapsed dimension is prior noise there), `probe_accuracy_active` on the posterior means of the dimensions
    active on the training images only. Standardising the means of collapsed dimensions (variance ~5e-4) would
    blow their residual class signal up to unit scale and let the probe read it."""
    active = active_mask(train)
    return {
        "probe_accuracy": linear_probe_accuracy(
            posterior_sample(train, seed), train_labels, posterior_sample(test, seed + 1), test_labels
        ),
        "probe_accuracy_active": linear_probe_accuracy(
            train.mu[:, active], train_labels, test.mu[:, active], test_labels
        ),
    }


class LatentScores(Scorer):
    """The `latents` family: active units and the KL's decomposition (with standard errors) of the posteriors of
    the first ``limit`` test images, the images training's test pass tested, so the parts sum to their KL."""

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        posterior = encode_all(model, data.images("test")[0][:limit])
        return Evaluation(unit_counts(posterior) | kl_decomposition(posterior))

    @classmethod
    def configured(cls, node: DictConfig | None) -> LatentScores:
        return cls()  # no settings of its own: on wherever its node (the latent_stats callback, eval) is


class ProbeScores(Scorer):
    """The `probe` family: `probe_metrics` fitted on the training split's codes, scored on the first ``limit``
    test images; off where its settings say ``probe: false``."""

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        test, test_labels = (t[:limit] for t in data.images("test"))
        train, train_labels = data.images("train")
        return Evaluation(probe_metrics(encode_all(model, train), train_labels, encode_all(model, test), test_labels))

    @classmethod
    def configured(cls, node: DictConfig | None) -> ProbeScores | None:
        return cls() if node is None or node.get("probe", True) else None
