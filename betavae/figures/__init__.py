"""Every figure of a model (`draw`) and the latent-evolution frames (`evolution`)."""
