"""One CLI: the same training budget and words for every method, help text for every
option, errors that name the flags, and a progress bar fit for logs."""

import pytest

from napari_neurorestore.cli.main import build_parser
from napari_neurorestore.core.methods import names, params_for

METHODS = sorted(names())


def _length_field(method):
    return "epochs" if "epochs" in params_for(method).__dataclass_fields__ else "steps"


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
    assert req.params == params_for(method)(**req.given)
    assert req.params.train_seconds == 60.0 and getattr(req.params, _length_field(method)) is None


def _subparsers():
    p = build_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def test_every_option_has_help_text():
    missing = [(name, a.option_strings or a.dest) for name, sp in _subparsers().items()
               for a in sp._actions if not a.help]
    assert not missing
    demo = _subparsers()["demo"].format_help()
    for flag in ("--frames", "--size", "--train-seconds", "--seed"):
        assert flag in demo
    assert "compute device: auto" in _subparsers()["denoise"].format_help()


@pytest.mark.parametrize("method", METHODS)
def test_help_has_no_docstring_markup(method):
    text = _subparsers()[method].format_help()
    for markup in ("``", ":class:", ":func:", ":meth:", "~."):
        assert markup not in text, (method, markup)


@pytest.mark.parametrize("word", ["--rois", "--labels"])
def test_rois_is_the_word_for_sparse_too(word):
    args = build_parser().parse_args(["sparse", "in.tif", "-o", "o.tif", "--simulate", word,
                                      "r.tif"])
    assert args.labels == "r.tif"
    assert "--rois ROIS.tif" in _subparsers()["sparse"].format_help()
    assert "--rois" in _subparsers()["traces"].format_help()


def test_with_flags_maps_field_names_to_flags():
    from napari_neurorestore.cli.restore import with_flags
    from napari_neurorestore.core.methods.denoise.spec import DenoiseParams
    from napari_neurorestore.core.methods.upsample.spec import UpsampleParams

    assert (with_flags("set epochs or train_seconds (or both): training needs an end",
                       DenoiseParams)
            == "set --steps or --train-seconds (or both): training needs an end")
    assert (with_flags("patch_size must be a multiple of 4, got 30", DenoiseParams)
            == "--patch-size must be a multiple of 4, got 30")
    assert with_flags("window must be odd", DenoiseParams) == "--window must be odd"
    msg = with_flags("needs at least 4 (or use lateral_only)", UpsampleParams)
    assert msg == "needs at least 4 (or use --lateral-only)"
    assert with_flags("the image is too small", UpsampleParams) == "the image is too small"


def test_errors_name_the_flags(tmp_path, capsys):
    import numpy as np
    import tifffile

    from napari_neurorestore.cli.main import main

    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, np.random.default_rng(0).poisson(5, (12, 24, 24)).astype(np.uint16))
    assert main(["denoise", str(movie), "-o", str(tmp_path / "o.tif"), "--patch-size", "30",
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "--patch-size must be a multiple of 4" in err and "patch_size" not in err
    vol = tmp_path / "v.tif"
    tifffile.imwrite(vol, np.random.default_rng(0).random((3, 40, 40), dtype=np.float32),
                     photometric="minisblack")
    assert main(["upsample", str(vol), "-o", str(tmp_path / "u.tif"), "--factor", "2",
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert "--lateral-only" in err and "lateral_only" not in err


class _Log:
    """A stream that is not a terminal (a file, a pipe, a cluster job's log)."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return False


def test_progress_bar_writes_whole_lines_to_a_log(monkeypatch):
    from napari_neurorestore.cli import common
    from napari_neurorestore.core.progress import Progress

    clock = [0.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: clock[0])
    log = _Log()
    bar = common.ProgressBar(stream=log)
    assert not bar.tty
    bar(Progress("prepare", message="reading"))
    for i in range(1, 1001):  # 1000 updates, 0.1 % and 1 ms apart
        clock[0] += 0.001
        bar(Progress("train", i, 1000, loss=0.5))
    clock[0] += 30.0  # a slow stretch: a line every 10 s even without 5 % of progress
    bar(Progress("predict", 0, 1000))
    for i in range(1, 4):
        clock[0] += 10.5
        bar(Progress("predict", i, 1000))
    bar.close()
    assert "\r" not in log.text
    lines = log.text.splitlines()
    train = [ln for ln in lines if ln.strip().startswith("train")]
    assert 20 <= len(train) <= 22 and "100.0%" in train[-1]  # one per 5 %, and the last
    predict = [ln for ln in lines if ln.strip().startswith("predict")]
    assert len(predict) == 4  # its start, then one per 10 s
    assert len(lines) == 1 + len(train) + len(predict)


def test_progress_bar_updates_in_place_on_a_terminal():
    from napari_neurorestore.cli.common import ProgressBar
    from napari_neurorestore.core.progress import Progress

    log = _Log()
    bar = ProgressBar(stream=log, tty=True)
    bar(Progress("train", 1, 2))
    bar(Progress("train", 2, 2))
    bar.close()
    assert log.text.count("\r") == 2 and log.text.endswith("\n")
