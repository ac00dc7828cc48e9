"""Video: frames in and out of files (``io``), and the optical flow that keeps painted frames steady
(``flow``), and a painting's defaults (``settings``)."""
