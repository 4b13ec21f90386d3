"""Upsampling (self-supervised super-resolution by integer factors), one package.

``spec`` (light: numpy only) holds its parameters, its :class:`~..base.Method`, the output
grid and its tiles; ``heavy`` (torch) trains and predicts tile by tile, with the network and
its fixed operators (cubic interpolation, binning) in ``net`` and the training pairs in
``data``.

Importing this package imports nothing of its modules (so no torch).
"""
