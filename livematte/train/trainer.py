"""The training loop: AdamW with a cosine schedule, fp16 autocast and loss scaling on CUDA,
gradient clipping, Hungarian-matched losses, checkpoints with exact resume, a JSONL log and plot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader

from livematte.model.checkpoint import InstalledWeights
from livematte.model.e2ehim import E2EHIM
from livematte.train.checkpoints import TrainCheckpointError, TrainingState, load_network, restore, save_checkpoint
from livematte.train.config import ModelConfig, TrainConfig
from livematte.train.datasets import RunOrder, TrainBatch, TrainingSet, collate, open_source
from livematte.train.export import install_trained
from livematte.train.log import TrainLog, plot_losses, read_log
from livematte.train.losses import LossTerms, criterion
from livematte.train.matcher import match_batch
from livematte.train.taps import TapRecorder


@dataclass(frozen=True)
class TrainResult:
    step: int
    checkpoint: Path
    log: Path
    plot: Path
    first_loss: float
    last_loss: float
    installed: InstalledWeights | None


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device is cuda but torch sees no CUDA device: install a CUDA build of torch, "
                           "or --set run.device=cpu")
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else "cpu" if name == "auto" else name)


def build_training_model(cfg: ModelConfig) -> E2EHIM:
    """From scratch or from weights. The alpha head runs as its two literal convolutions: the same
    function, and its backward is several times faster than the fused head's."""
    model = load_network(cfg.init) if cfg.init else E2EHIM()
    model.alpha.fused = False
    if cfg.freeze_backbone:
        model.stem.requires_grad_(False)
        model.backbone.requires_grad_(False)
    return model


class Trainer:
    """One run: `step()` trains on one batch; `run()` goes to cfg.run.steps with logs and checkpoints."""

    def __init__(self, cfg: TrainConfig, resume: Path | None = None) -> None:
        self.cfg = cfg
        self.device = pick_device(cfg.run.device)
        torch.manual_seed(cfg.run.seed)
        model = build_training_model(cfg.model).to(self.device).train()
        self.params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(self.params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.run.steps, eta_min=cfg.optim.min_lr)
        self.amp = cfg.run.amp and self.device.type == "cuda"
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.state = TrainingState(model, optimizer, scheduler, scaler)
        self.start = restore(resume, self.state) if resume is not None else 0
        if self.start >= cfg.run.steps:
            raise TrainCheckpointError(f"{resume} is at step {self.start}, which already reaches run.steps "
                                       f"({cfg.run.steps}); raise run.steps to train further")
        self.taps = TapRecorder(model)
        self.dataset = TrainingSet(open_source(cfg.data), cfg.size, cfg.augment, cfg.targets, cfg.run.seed)
        self.log = TrainLog(cfg.run.out / "log.jsonl", resume_step=self.start if resume is not None else None)

    def batches(self, stop: int) -> DataLoader:
        """The batches of steps start+1 .. stop."""
        b = self.cfg.run.batch_size
        order = RunOrder(len(self.dataset), self.cfg.run.seed, self.start * b, stop * b)
        return DataLoader(self.dataset, batch_size=b, sampler=order, collate_fn=collate,
                          num_workers=self.cfg.run.workers, pin_memory=self.device.type == "cuda")

    def step(self, batch: TrainBatch) -> LossTerms:
        batch = batch.to(self.device)
        model, optimizer = self.state.model, self.state.optimizer
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            output = model(batch.images)
            taps = self.taps()
        matches = match_batch(output.class_logits, taps.seg_logits, [t.seg for t in batch.targets], self.cfg.matcher,
                              self.cfg.loss.focal_alpha, self.cfg.loss.focal_gamma)
        terms = criterion(output, taps, batch.targets, matches, self.cfg.loss)
        optimizer.zero_grad(set_to_none=True)
        self.state.scaler.scale(terms.total).backward()
        if self.cfg.optim.clip_grad is not None:
            self.state.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.clip_grad)
        self.state.scaler.step(optimizer)
        self.state.scaler.update()
        self.state.scheduler.step()
        return terms

    def run(self, stop: int | None = None, show_progress: bool = False) -> TrainResult:
        """Train to step `stop` (default run.steps), checkpoint there; install the weights when the run is done."""
        cfg, out = self.cfg.run, self.cfg.run.out
        stop = cfg.steps if stop is None else min(stop, cfg.steps)
        if stop <= self.start:
            raise ValueError(f"nothing to train: the run is at step {self.start}, asked to stop at {stop}")
        config = self.cfg.model_dump(mode="json")
        sums: dict[str, float] = {}
        count, began, checkpoint, step = 0, time.monotonic(), None, self.start
        columns = (TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("lr {task.fields[lr]:.2e}"),
                   TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), disable=not show_progress) as progress:
            task = progress.add_task("train", total=stop, completed=self.start, loss=float("nan"),
                                     lr=self.state.scheduler.get_last_lr()[0])
            for step, batch in enumerate(self.batches(stop), start=self.start + 1):
                lr = self.state.scheduler.get_last_lr()[0]
                losses = self.step(batch).as_floats()
                sums = {k: sums.get(k, 0.0) + v for k, v in losses.items()}
                count += 1
                progress.update(task, completed=step, loss=losses["total"], lr=lr)
                if step % cfg.log_every == 0 or step == stop:
                    self.log.append({"step": step, "lr": lr, "loss": {k: v / count for k, v in sums.items()},
                                     "seconds": round(time.monotonic() - began, 3)})
                    sums, count = {}, 0
                if step % cfg.checkpoint_every == 0 or step == stop:
                    checkpoint = save_checkpoint(out, self.state, step, config, cfg.keep_checkpoints)
                    plot_losses(self.log.path, out / "loss.png")
        self.start = step
        records = read_log(self.log.path)
        installed = install_trained(checkpoint, cfg.install_as) if cfg.install_as and step == cfg.steps else None
        return TrainResult(step, checkpoint, self.log.path, out / "loss.png", records[0]["loss"]["total"],
                           records[-1]["loss"]["total"], installed)
