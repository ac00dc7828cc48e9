"""The names settings choose from and the largest picture, kept free of torch, numpy and Pillow so that the
command line's ``--help`` and its usage errors answer without loading them; the modules that use each name
import it from here.
"""

#: Devices by name: ``auto`` is CUDA if present, else Apple's MPS, else the CPU (:mod:`stylecraft.runtime`).
DEVICES = ("auto", "cpu", "cuda", "mps")
#: Precisions of the optimiser and of training (:mod:`stylecraft.runtime`).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: The ways of comparing style, by name: Gram matrices, mean and standard deviation, Wasserstein-2
#: (:mod:`stylecraft.losses`).
STYLE_LOSSES = ("gram", "mean-std", "wasserstein")
#: Where batches and studio jobs run: in this process, or on a Ray cluster (:mod:`stylecraft.api.batch`).
ENGINES = ("local", "ray")
#: Bit depths a result can be written in (:mod:`stylecraft.images`).
BIT_DEPTHS = (8, 16)
#: Largest image accepted, in pixels: above any camera, below Pillow's own decompression-bomb refusal (2 x
#: Image.MAX_IMAGE_PIXELS, about 179 MP), which a larger ``max_pixels`` cannot lift.
MAX_PIXELS = 178_000_000
