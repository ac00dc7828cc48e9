"""A video painting's defaults, free of torch so that the command line's ``--help`` reads them without loading
it (:mod:`stylecraft.api.video` paints)."""

#: Stability by default: how much of the previous painted frame, moved by the flow, each frame keeps where
#: the flow is reliable (chosen by benchmarks/video.py; see docs/performance.md).
STABILITY = 0.85
#: The optimiser's temporal loss weight at stability 1 (the term is a mean squared difference in [0, 1] pixel
#: units); stability s gives the weight s times this.
TEMPORAL_WEIGHT = 200.0
#: Iterations of each frame after the first, which starts from the previous result (optimiser).
FRAME_ITERATIONS = 100
