"""Every metric: the registry that declares each key once (`registry`), what a scorer is (`scorer`), the per-run
suite that runs them (`suite`) and each per-run family's scorer (`bounds`, `latents`, `fid`, `disentanglement`);
the across-runs room (`across`) and its families (`selection`: UDR with `udr`'s functions; `paired`)."""
