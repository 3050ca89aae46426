"""What a GPU or a multi-process job does, made to happen on a CPU: given to `python -m betavae.train` by
`_target_` overrides in the tests (``+trainer.strategy._target_=tests.faults.LeavesAtTeardown``)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.strategies import SingleDeviceStrategy

from betavae.base.errors import RunError


class LeavesAtTeardown(SingleDeviceStrategy):
    """Lightning's CPU strategy whose teardown, like a GPU job's, takes the module away from the device its data
    are on: to the meta device, where it holds no weights, so any use of it there fails as a CPU module fed
    CUDA images does. The next stage (test) brings it back with the weights it left with."""

    def __init__(self) -> None:
        super().__init__(device=torch.device("cpu"))
        self._left: dict[str, torch.Tensor] | None = None

    def teardown(self) -> None:
        module = self.lightning_module
        super().teardown()
        if module is not None:
            self._left = {name: value.clone() for name, value in module.state_dict().items()}
            module.to("meta")

    def connect(self, model: pl.LightningModule) -> None:
        if self._left is not None and next(model.parameters()).is_meta:
            model.to_empty(device=self.root_device)
            model.load_state_dict(self._left)
        super().connect(model)


class FailOnRank(pl.Callback):
    """Fail on one process of a DDP job only, at the end of its first training epoch: a fault (an out-of-memory
    error on one GPU, a bad disk on one node) that the other processes do not share."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == self.rank:
            raise RunError("simulated fault")


class RecordNoise(pl.Callback):
    """Write the unit noise each process would draw next, at the start of training, to noise-rank<N>.pt in the
    job's directory, leaving the process's generator as it was."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = torch.get_rng_state()
        torch.save(torch.randn(8), Path(trainer.default_root_dir) / f"noise-rank{trainer.global_rank}.pt")
        torch.set_rng_state(state)


class CopiesFirstEpoch(pl.Callback):
    """Copy the job's .hydra/ and its first epoch's last.ckpt into ``to`` as the second epoch starts (rank 0): the
    directory a job stopped after its first epoch leaves, without running that job."""

    def __init__(self, to: str) -> None:
        self.to = Path(to)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1 and trainer.is_global_zero:
            root = Path(trainer.default_root_dir)
            shutil.copytree(root / ".hydra", self.to / ".hydra")
            (self.to / "checkpoints").mkdir()
            shutil.copy2(root / "checkpoints" / "last.ckpt", self.to / "checkpoints" / "last.ckpt")


class TermsAfterCheckpoint(Checkpoint):
    """Send this process SIGTERM as training epoch 0 ends, once its last.ckpt is written and before its means reach
    the loggers (Lightning runs a `Checkpoint` callback's epoch end after the module's, and after the checkpoint
    callbacks listed before it), and write that checkpoint's epoch to sigterm-sent in the job's directory: once for
    the job, however often it is run again. A SIGTERM that lands in that window."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        root = Path(trainer.default_root_dir)
        if trainer.current_epoch == 0 and not (root / "sigterm-sent").exists():
            last = root / "checkpoints" / "last.ckpt"
            assert last.is_file(), "epoch 0's last.ckpt must be written before the signal"
            (root / "sigterm-sent").write_text(str(torch.load(last, weights_only=True)["epoch"]))
            os.kill(os.getpid(), signal.SIGTERM)


class KillsAtEpoch(pl.Callback):
    """SIGKILL another process's group (a tracking server) as training epoch ``epoch`` starts, the epochs before it
    saved, and write the moment (this process's monotonic clock) to ``record``: a service that dies mid-run."""

    def __init__(self, pid: int, epoch: int, record: str) -> None:
        self.pid, self.epoch, self.record = pid, epoch, Path(record)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not self.record.exists():
            os.killpg(self.pid, signal.SIGKILL)
            self.record.write_text(str(time.monotonic()))


class SlowUntilRequeued(pl.Callback):
    """Wait ``seconds`` before each training epoch but the first until Slurm has requeued the job
    (SLURM_RESTART_COUNT set): a first run that saves its first checkpoint at once and is still training when
    Slurm's periodic time-limit check comes, up to 30 s after its limit is cut, however fast this machine trains;
    the requeued run goes at full speed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0 and int(os.environ.get("SLURM_RESTART_COUNT", "0")) == 0:
            time.sleep(self.seconds)
