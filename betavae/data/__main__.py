"""`python -m betavae.data [data.root=<dir>] [data.download=false]`: find (or download) Fashion-MNIST as training
would, and print the directory it is in."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from betavae.base.cli import quote_path_arguments
from betavae.base.errors import DataError
from betavae.base.files import cache_path
from betavae.data.idx import locate


@hydra.main(version_base="1.3", config_path="../conf", config_name="find_data")
def main(cfg: DictConfig) -> None:
    """`python -m betavae.data [data.root=<dir>] [data.download=false]`: find (or download) the data and print
    the directory it is in."""
    data = cfg.data
    try:
        files = locate(cache_path("BETAVAE_DATA", given=data.root), data.system_dir, data.download)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    print(next(iter(files.values())).parent)


if __name__ == "__main__":
    quote_path_arguments()
    main()
