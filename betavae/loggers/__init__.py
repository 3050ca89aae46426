"""What a job gives its loggers (`job`), MLflow and W&B loggers that never stop training (`trackers`), and the
tracked runs a job records (`tracking`)."""
