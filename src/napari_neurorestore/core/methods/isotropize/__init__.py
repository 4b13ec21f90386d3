"""Isotropic restoration of volumes (axial resolution from lateral), one package.

``spec`` (light: numpy only) holds its parameters, its :class:`~..base.Method`, the output
grid and its tiles; ``axial`` (numpy only) the axial geometry and what is measured on the
volume itself (z ratio, axial blur, noise); ``heavy`` (torch) trains and predicts, with the
networks in ``net``, the training pairs in ``data`` and the truth-free self-check on
held-out lateral slices in ``check``.

Importing this package imports nothing of its modules (so no torch).
"""
