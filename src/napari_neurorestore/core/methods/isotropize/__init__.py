"""Isotropic restoration of volumes (axial resolution from lateral), one package.

``spec`` (light: numpy only) holds its parameters, its :class:`~..base.Method`, the output
grid and its tiles; ``axial`` (numpy only) the axial geometry and what is measured on the
volume itself (z ratio, axial blur, noise); ``heavy`` (torch) trains and predicts, with the
networks in ``net`` and the training pairs in ``data``.

Importing this package imports nothing of its modules (so no torch).
"""
