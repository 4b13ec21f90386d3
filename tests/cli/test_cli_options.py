"""A method's extra inputs are declared as data (``Method.cli_options``: Option), and the
CLI's flags are made from them."""

import pytest

from napari_neurorestore.cli.main import build_parser
from napari_neurorestore.cli.restore import request_from
from napari_neurorestore.core.methods import get
from napari_neurorestore.core.methods.base import Option


def test_the_flags_come_from_the_declared_options(monkeypatch):
    up = type(get("upsample"))
    extra = Option("test_level", "int", "a test-only input", metavar="N", default=2)
    monkeypatch.setattr(up, "cli_options", (*up.cli_options, extra))
    args = build_parser().parse_args(["upsample", "in.tif", "-o", "o.tif", "--test-level", "5",
                                      "--memory-budget", "0.5"])
    assert request_from(args).options == {"memory_budget": 0.5, "test_level": 5}
    args = build_parser().parse_args(["upsample", "in.tif", "-o", "o.tif"])
    assert request_from(args).options == {"memory_budget": 1.25, "test_level": 2}


def test_sparse_options_and_their_aliases():
    args = build_parser().parse_args(["sparse", "in.tif", "-o", "o.tif", "--labels", "r.tif",
                                      "--reference", "ref.tif"])
    assert request_from(args).options == {"labels": "r.tif", "reference": "ref.tif"}
    # what a widget would offer as layer pickers
    assert [o.name for o in get("sparse").cli_options if o.layer] == ["labels", "reference"]
    assert [o.cli_flag for o in get("sparse").cli_options] == ["--rois", "--reference"]


def test_an_option_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be path, int or float"):
        Option("x", "layer", "no such kind")
