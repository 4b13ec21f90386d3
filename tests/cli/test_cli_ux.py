"""One CLI: the same training budget and words for every method, help text for every
option, errors that name the flags, and a progress bar fit for logs."""

import pytest

from napari_neurorestore.cli.main import build_parser
from napari_neurorestore.core.params import PARAMS

METHODS = sorted(PARAMS)


def _length_field(method):
    return "epochs" if "epochs" in PARAMS[method].__dataclass_fields__ else "steps"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("word", ["--steps", "--epochs"])
def test_steps_is_the_word_everywhere_and_epochs_an_alias(method, word):
    args = build_parser().parse_args([method, "in.tif", "-o", "o.tif", word, "7"])
    assert getattr(args, _length_field(method)) == 7


@pytest.mark.parametrize("method", METHODS)
def test_cli_defaults_are_the_dataclass_defaults(method):
    from napari_neurorestore.cli.restore import request_from

    extra = ["--z-ratio", "2"] if method == "isotropize" else []
    args = build_parser().parse_args([method, "in.tif", "-o", "o.tif", *extra])
    req = request_from(args)
    assert req.params == PARAMS[method](**req.given)
    assert req.params.train_seconds == 60.0 and getattr(req.params, _length_field(method)) is None
