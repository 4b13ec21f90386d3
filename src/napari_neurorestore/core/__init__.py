"""Restoration core: numpy/torch only, no Qt and no napari.

torch is imported only by the modules that need it (``nets``, ``train``, ``methods``).
"""
