"""Where training runs: device, precision, DDP process group and cross-rank reductions.

DDP follows torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``) with ``env://`` initialisation: nccl on CUDA, gloo on
CPU. Without those variables everything runs in one process and the reductions are
no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mrirecon.device import torchrun_env
from mrirecon.errors import ConfigError
from mrirecon.train.config import RunConfig

__all__ = [
    "Runtime",
    "setup_runtime",
    "teardown",
    "all_reduce_sum",
    "barrier",
]


@dataclass(frozen=True)
class Runtime:
    """Resolved execution settings of this process.

    Attributes:
        device: the torch device of this rank.
        rank, world_size, local_rank: DDP coordinates (0, 1, 0 without DDP).
        amp_dtype: autocast dtype, or None for full fp32.
        channels_last: run convolutions in NHWC memory format.
        compile: wrap the model in ``torch.compile``.
    """

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0, the one that writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def setup_runtime(cfg: RunConfig) -> Runtime:
    """Pick the device and precision and join the DDP group when launched by torchrun.

    Raises:
        ConfigError: ``run.device=cuda`` without a CUDA device, or a bad torchrun
            environment.
    """
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device=cuda but no CUDA device is available")
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    rank, world, local_rank = torchrun_env()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp)
    if cfg.amp == "auto":
        amp = torch.bfloat16 if use_cuda else None
    if not use_cuda:
        # AMP only on CUDA: CPU runs stay fp32 (bf16 autocast was slower than fp32 on CPUs
        # without AMX; with AMX it was 1.5x faster per VarNet step, docs/benchmarks.md)
        amp = None
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif use_cuda:
        torch.backends.cudnn.benchmark = True
    return Runtime(
        device=device,
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        amp_dtype=amp,
        channels_last=cfg.channels_last and use_cuda,
        compile=cfg.compile and use_cuda,
    )


def teardown(rt: Runtime) -> None:
    """Leave the process group (if this process joined one).

    All ranks first meet at a barrier: rank 0 hosts torchrun's rendezvous store, and a
    rank 0 that leaves while another rank still talks to the store makes that rank abort
    at exit ("terminate called without an active exception").
    """
    if rt.distributed and dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """Sum a float64 tensor over ranks (identity without DDP)."""
    if not rt.distributed:
        return values
    t = values.to(rt.device, torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu()


def barrier(rt: Runtime) -> None:
    """Wait for all ranks (no-op without DDP)."""
    if rt.distributed:
        dist.barrier()
