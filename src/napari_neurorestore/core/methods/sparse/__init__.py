"""Sparse-axis reconstruction, one package.

``spec`` (light: numpy only) holds its parameters, its :class:`~..base.Method`, the
sampling geometry and the cubic baseline; ``heavy`` (torch) trains, predicts and runs the
simulation, with the network in ``net``; ``figures`` (numpy only) measures a simulation
against the full stack and writes its text (the CLI's and the Restore dock's).

Importing this package imports nothing of its modules (so no torch).
"""
