"""A colour data set for the tests: the shapes grid with one more factor, colour, each binary sprite drawn in red,
green or blue on black, 3 channels. It lives in the tests, a file and its YAML (tests/conf/data/rgb_shapes.yaml)
and nothing else, to show what a new data set takes."""

from __future__ import annotations

import numpy as np
import torch

from betavae.base.config import require
from betavae.data.contract import Factor
from betavae.data.shapes import ShapesDataModule, render

COLOURS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}


class ColouredShapesDataModule(ShapesDataModule):
    """The shapes grid × ``colours`` colours (the last, fastest factor), images [N, 3, S, S]."""

    name = "rgb_shapes"
    channels = 3

    def __init__(self, channels: int = 3, colours: int = 3, **shapes: object) -> None:
        require(channels == 3, "channels", channels, "must be 3: the sprites are coloured")
        require(colours in (1, 2, 3), "colours", colours, "must be 1, 2 or 3")
        super().__init__(**shapes)
        self.channels = 3
        self.factors = (*self.factors, Factor("colour", tuple(COLOURS)[:colours]))

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """Every image, the colour the fastest factor, image g at row ``positions[g]``: [N, 3, S, S] uint8."""
        gray = torch.from_numpy(render(self.image_size, self.factors[:-1]))[:, None]  # [n, 1, S, S], 0/255
        rgb = torch.tensor(list(COLOURS.values())[: len(self.factors[-1])], dtype=torch.int32)  # [colours, 3]
        coloured = ((gray[:, None].int() * rgb[None, :, :, None, None]) // 255).to(torch.uint8).flatten(0, 1)
        stored = torch.empty_like(coloured)
        stored[torch.from_numpy(positions)] = coloured  # a small set: a copy costs nothing here
        return stored
