"""The :class:`~napari_neurorestore.core.methods.base.Method` contract's identity and presentation: what the faces call the method and print about its runs.

A mixin of :class:`~napari_neurorestore.core.methods.base.Method`; its module docstring
tables every attribute and hook. Importing this module does not import torch.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .shared import Grid


class Presentation:
    """The part of the :class:`~napari_neurorestore.core.methods.base.Method` contract on
    identity and presentation: what the faces call the method and print about its runs."""

    #: the name in the registry, the CLI subcommand and ``TrainedModel.method``
    name: ClassVar[str] = ""
    #: the method picker's label (empty: the name)
    label: ClassVar[str] = ""
    #: one line of help (the CLI subcommand's)
    help: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: what a model of this method is called, with its article ("a denoising model")
    noun: ClassVar[str] = ""
    #: axes of the input this method takes (for help texts)
    input_help: ClassVar[str] = ""
    #: the suffix of the output layer's / file's name
    suffix: ClassVar[str] = ""

    def output_suffix(self, params: Any) -> str:
        """The suffix of the result layer's (and output file's) name.

        Parameters
        ----------
        params : params_class
            The run's parameters.

        Returns
        -------
        str
            :attr:`suffix` unless a subclass says otherwise.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.output_suffix(sp.params_class()), sp.output_suffix(sp.params_class(simulate=True))
        ('sparse-restored', 'sparse-simulated')
        """
        return self.suffix

    def describe(self, model: Any, params: Any, grid: Grid) -> str:
        """What the CLI prints after 'wrote OUT ': the output's shape and type, and what the
        method wants to add.

        Parameters
        ----------
        model : TrainedModel
            The trained model.
        params : params_class
            The run's parameters.
        grid : Grid
            The output's grid (:meth:`grid`).

        Returns
        -------
        str
            One line.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> dn = get("denoise")
        >>> p = dn.params_class()
        >>> dn.describe(None, p, dn.grid((300, 128, 128), p))
        '(300x128x128, float32)'
        """
        return f"({'x'.join(map(str, grid.shape))}, float32)"

    def after(self, result: Any, params: Any) -> str | None:
        """Lines the CLI prints after a run.

        Parameters
        ----------
        result : RestoreResult
            The run's result.
        params : params_class
            The run's parameters.

        Returns
        -------
        str or None
            None: nothing.

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> sp = get("sparse")
        >>> sp.after(None, sp.params_class(factor=4))
        "pixel size along y is the input's / 4 (acquired line i is output line i*4)"
        """
        return None

    def training_summary(self, info: dict[str, Any]) -> str | None:
        """What every face says after training, from a model's training record.

        The CLI, the Restore dock and the trust report show it.

        Parameters
        ----------
        info : dict
            ``TrainedModel.info``, also the output provenance's ``"training"``.

        Returns
        -------
        str or None
            None: nothing (the denoiser reports its truth-free self-check against the best
            Gaussian filter).

        Examples
        --------
        >>> from napari_neurorestore.core.methods import get
        >>> print(get("upsample").training_summary({"steps": 900, "train_seconds": 60.0}))
        None
        """
        return None
