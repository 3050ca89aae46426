"""The data sets, each a module of its own on the data contract (`contract`) through the in-memory DataModule of
`memory`. Configs name the classes here (`_target_: betavae.data.FashionMNISTDataModule`)."""

from betavae.data.dsprites import DSpritesDataModule
from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.data.mpi3d import MPI3DDataModule
from betavae.data.shapes import ShapesDataModule
from betavae.data.shapes3d import Shapes3DDataModule

__all__ = ["DSpritesDataModule", "FashionMNISTDataModule", "MPI3DDataModule", "Shapes3DDataModule", "ShapesDataModule"]
