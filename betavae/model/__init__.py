"""The model: networks (`networks`), pixel likelihoods (`likelihoods`), objectives (`objectives`), the
LightningModule (`module`), checkpoints written and read safely (`checkpoints`), and a trained run rebuilt from its
directory (`run`)."""
