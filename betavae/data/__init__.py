"""The data sets, each a module of its own on the data contract (`contract`) through the in-memory DataModule of
`memory`. Configs name the classes here (`_target_: betavae.data.FashionMNISTDataModule`)."""

from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.data.shapes import ShapesDataModule

__all__ = ["FashionMNISTDataModule", "ShapesDataModule"]
