"""Lightning callbacks that turn a β-VAE run into figures and metrics."""
