"""β-VAE experiments on Fashion-MNIST with PyTorch Lightning and Hydra."""
