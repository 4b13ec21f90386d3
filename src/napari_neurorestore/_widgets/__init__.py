"""napari widgets (thin faces over :mod:`napari_neurorestore.core`). Importing this package
does not import torch.

* ``base.py``: :class:`~.base.DockBase`, the base of every dock (declared layer types and
  pickers, status / refuse / error, one job at a time through ``worker.py``, Cancel);
  ``worker.py``: the core's generators in a napari thread worker (or inline);
  ``layers.py``: a result layer's name, scale, translate and metadata.
* Restore: ``restore.py`` (the panel), ``restore_jobs.py`` (Train / Run / Preview and the
  result layer), ``form.py`` (the parameter form from a Params dataclass),
  ``live_output.py`` (large results streamed into a store and shown while written; the
  methods' output grids), ``model_files.py`` (Save / Load model), ``formatting.py``.
* ROI traces: ``traces.py`` (the panel), ``traces_layers.py`` (pickers),
  ``traces_compute.py`` (refresh and the extraction job), ``traces_options.py`` (ΔF/F),
  ``traces_plot.py`` (the canvas), ``traces_table.py`` (fidelity table),
  ``traces_rois.py`` (ROI layers and masks).
* Trust report: ``trust.py``.
"""
