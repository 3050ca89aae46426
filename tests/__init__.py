"""betavae test suite: a regular package, so a top-level `tests` that other distributions install cannot shadow it."""
