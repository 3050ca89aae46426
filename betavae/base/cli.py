"""The command line of every door: its path keys, whose values are taken as written."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable

# Keys whose value is one path, taken as it is, in every door's config (train's, evaluate's, summarize's, export's,
# the data's). A job leaves them out of its directory's name, and a job continuing a directory may change them.
PATH_KEYS = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "data.root", "data.system_dir", "data.path",
             "data.cache_dir", "fid.cache_dir", "fid.inception_weights", "run_dir", "sweep_dir", "out")  # fmt: skip


def quote_path(value: str) -> str:
    """``value`` as one quoted string of Hydra's override grammar, whatever characters it holds."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value  # quoted already
    # Hydra unescapes backslashes only where they precede a quote or end the string.
    value = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value)
    return "'" + value.replace("'", "\\'") + "'"


def quote_path_arguments(argv: list[str] | None = None, keys: Iterable[str] = PATH_KEYS) -> list[str]:
    """Quote the values of ``key=value`` arguments whose key is a path key, in place in ``argv`` (default
    sys.argv), so the paths multiruns write (``.../beta=0.5,seed=1``) are taken as they are instead of failing
    on Hydra's reserved ``=`` and ``,``. A path key's value is always one path, never a sweep."""
    argv = sys.argv if argv is None else argv
    prefixes = tuple(f"{key}=" for key in keys)
    for i, arg in enumerate(argv[1:], start=1):
        if arg.startswith(prefixes):
            key, value = arg.split("=", 1)
            argv[i] = f"{key}={quote_path(value)}" if value else arg
    return argv
