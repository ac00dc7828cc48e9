"""Where work runs: the device and the precision, resolved once at the boundary and handed down.

The algorithms (``optimize``, ``feedforward``) never probe devices: they get a :class:`Runtime`. One rule
picks the device for the optimiser, training (each ``torchrun`` process then takes its own GPU) and
applying a network: ``auto`` is CUDA if present, else Apple's MPS, else the CPU. ``auto`` precision is bf16
autocast on CUDA and, for the optimiser and the one pass, on CPUs that compute bf16 natively (:func:`cpu_has_bf16`).
"""

from __future__ import annotations

import contextlib
import platform
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .choices import DEVICES as DEVICES
from .choices import PRECISIONS as PRECISIONS
from .errors import ConfigError

#: CPU flags (Linux's names) of native bf16 arithmetic: AVX-512 BF16 (recent Xeons, AMD Zen 4 and later) and
#: AMX (Xeon Sapphire Rapids and later). Elsewhere oneDNN emulates bf16 and it is slower than fp32.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA if present, else Apple MPS, else the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICES[1:]:
        raise ConfigError(f"`device`: {name!r} is not one of {', '.join(DEVICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`device` cuda: no CUDA GPU is available on this machine")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("`device` mps: Apple's MPS is not available on this machine")
    return torch.device(name)


def _cpuinfo_field(field: str, cpuinfo: str) -> str | None:
    """The first value of ``field`` in Linux's ``cpuinfo``; None where it is missing or cannot be read."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                name, _, value = line.partition(":")
                if name.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; none where ``cpuinfo`` cannot be read (macOS, Windows).

    torch's ``backends.cpu.get_cpu_capability()`` says "AVX512" with or without bf16, so it cannot tell."""
    return frozenset((_cpuinfo_field("flags", cpuinfo) or "").split())


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name as Linux reports it, else the platform's word for it (for records of where a
    model was trained)."""
    return _cpuinfo_field("model name", cpuinfo) or platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (:data:`BF16_FLAGS`): there bf16 autocast makes the feature
    network's forward and backward passes about twice as fast (docs/performance.md)."""
    return bool(BF16_FLAGS & cpu_flags())


class _IEEEConvolutions:
    """cuDNN's fp32 convolutions computed in IEEE fp32 while any of stylecraft's work is inside :meth:`held`.

    cuDNN's own default is TF32 (a 10-bit mantissa): faster, but then "fp32" is not fp32 and a tiled picture
    differs from the whole one by up to 2/255. The flag is process-wide, so it is set only while stylecraft
    works: the first of its runs (threads, nested runs) to enter sets it, the last to leave puts the user's
    value back.
    """

    def __init__(self) -> None:
        self.lock, self.users, self.saved = threading.Lock(), 0, ""

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """IEEE fp32 convolutions inside the block; the user's setting after it."""
        conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]  # not in the stubs
        with self.lock:
            if not self.users:
                self.saved, conv.fp32_precision = conv.fp32_precision, "ieee"
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if not self.users:
                    conv.fp32_precision = self.saved


_IEEE = _IEEEConvolutions()


def maxrss_bytes(maxrss: int) -> int:
    """``getrusage``'s ``ru_maxrss`` in bytes: macOS counts it in bytes, Linux and the other Unixes in KiB."""
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def peak_rss() -> int | None:
    """The process's peak resident set size in bytes, or None where it is unknown (Windows has no
    ``resource`` module)."""
    try:
        import resource
    except ImportError:
        return None
    return maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


@dataclass(frozen=True)
class Runtime:
    """A device and the precision of the forward passes run under :meth:`autocast` (the feature network's,
    and in training the transformer network's too). ``precision`` is resolved: fp32, bf16 or fp16."""

    device: torch.device
    precision: str = "fp32"

    @classmethod
    def resolve(cls, device: str | torch.device = "auto", precision: str = "auto", *,
                cpu_bf16: bool = False) -> Runtime:
        """The runtime for a device name and a precision. ``auto`` precision is bf16 on CUDA, and with
        ``cpu_bf16`` (the optimiser, whose losses and image stay fp32; the one pass) on a CPU that has native bf16
        (:func:`cpu_has_bf16`); fp32 elsewhere."""
        if precision not in PRECISIONS:
            raise ConfigError(f"`precision`: {precision!r} is not one of {', '.join(PRECISIONS)}")
        resolved = device if isinstance(device, torch.device) else resolve_device(device)
        if precision == "auto":
            native = resolved.type == "cuda" or (cpu_bf16 and resolved.type == "cpu" and cpu_has_bf16())
            precision = "bf16" if native else "fp32"
        return cls(resolved, precision)

    def work(self) -> contextlib.AbstractContextManager[None]:
        """The context for stylecraft's work on this runtime (forward and backward passes alike): at fp32 on
        CUDA, convolutions compute in IEEE fp32 inside it, not in cuDNN's TF32, and the user's setting is
        back after it; elsewhere it changes nothing."""
        if self.device.type == "cuda" and self.precision == "fp32":
            return _IEEE.held()
        return contextlib.nullcontext()

    def on(self, device: torch.device) -> Runtime:
        """The same precision on another device (a ``torchrun`` process's own GPU)."""
        return Runtime(device, self.precision)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """A context for forward passes: bf16/fp16 autocast, or nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def available_memory(self) -> int | None:
        """Bytes that a run can still allocate on the device, or None where that cannot be known."""
        if self.device.type == "cuda":
            return torch.cuda.mem_get_info(self.device)[0]
        if self.device.type == "cpu":
            try:
                with open("/proc/meminfo") as meminfo:
                    fields = dict(line.split(":", 1) for line in meminfo)
                return int(fields["MemAvailable"].split()[0]) * 1024
            except (OSError, KeyError, ValueError):
                return None
        return None

    def reset_peak_memory(self) -> None:
        """Start counting :meth:`peak_memory_mb` afresh (CUDA; a process's peak RSS cannot be reset)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_mb(self) -> float | None:
        """The peak memory in MiB: the GPU allocator's peak on CUDA, the process's peak RSS otherwise; None
        where the system does not tell."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = peak_rss()
        return None if peak is None else peak / 2**20
