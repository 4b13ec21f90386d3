"""The temporal denoiser (FAST-like), one package.

``spec`` (light: numpy only) holds its parameters and its :class:`~..base.Method`
(geometry, cost model); ``heavy`` (torch) trains and predicts, with the network in ``net``
and its stages: ``frames`` (each frame's window, the chunk reader), ``check`` (the checks
after training), ``centre`` (the centre-frame correction and the self-check: their fit;
``post`` applies them), ``context`` (the long-context step: fit and apply) and ``motion``
(registration of the prediction to each frame).

Importing this package imports nothing of its modules (so no torch).
"""
