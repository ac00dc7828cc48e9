"""Training on several processes with DistributedDataParallel, started by ``torchrun``.

``torchrun --nproc_per_node N -m stylecraft train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; each process
then trains on its shard of the photos with ``--batch-size`` photos a step, gradients are averaged across
processes (NCCL on GPUs, one GPU a process; gloo on CPUs), and only rank 0 reports and writes files.
Without those variables everything runs in one process as usual.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        """True for the process that reports progress and writes the files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when gradients must be averaged across processes."""
        return self.world_size > 1


#: A single process: what training uses when torchrun did not start it.
SINGLE = Processes()


def from_environment() -> Processes:
    """The processes torchrun started (one process when not run by torchrun)."""
    return Processes(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def start(device: torch.device) -> tuple[Processes, torch.device]:
    """Join the process group if torchrun started several processes; return them and this process's device
    (its own GPU, ``LOCAL_RANK``, when ``device`` is CUDA)."""
    processes = from_environment()
    if not processes.distributed:
        return processes, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return processes, device


def stop(processes: Processes) -> None:
    """Leave the process group joined by :func:`start`, all processes together: one that tears its connections
    down while another still writes its files can abort at exit."""
    if processes.distributed and dist.is_initialized():
        with contextlib.suppress(RuntimeError):  # another process has gone already
            dist.barrier()
        dist.destroy_process_group()


def all_agree(processes: Processes, value: bool, device: torch.device) -> bool:
    """True only if ``value`` is true in every process (so that all take the same branch, or none)."""
    if not processes.distributed:
        return value
    flag = torch.tensor([1 if value else 0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def total(processes: Processes, value: float, device: torch.device) -> float:
    """The sum of ``value`` over all processes."""
    if not processes.distributed:
        return value
    summed = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(summed)
    return float(summed.item())
