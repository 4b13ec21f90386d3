"""The parser is built from the registry and the Params fields; every old flag still works."""

import subprocess
import sys
from dataclasses import fields

import pytest

from napari_neurorestore.cli import build_parser
from napari_neurorestore.cli.restore import flag_of
from napari_neurorestore.core.methods import get, names

#: the flags of each subcommand before the CLI was generated from the Params fields
OLD_FLAGS = {
    "denoise": ["--window", "--stride", "--epochs", "--width", "--chunk-frames", "--workers",
                "--dask-scheduler"],
    "sparse": ["--factor", "--axis", "--simulate", "--labels", "--reference", "--context",
               "--no-denoise", "--epochs", "--width", "--chunk-frames"],
    "upsample": ["--factor", "--lateral-only", "--prior", "--steps", "--patch-size", "--width",
                 "--no-back-projection", "--ensemble", "--two-stage", "--tile-size",
                 "--memory-budget", "--workers", "--dask-scheduler"],
    "isotropize": ["--z-ratio", "--degradation", "--sigma-z", "--steps", "--width",
                   "--tile-size"],
}
COMMON = ["-o", "--output", "--train-seconds", "--seed", "--device", "--save-model", "--model",
          "--overwrite", "-q", "--quiet", "--force"]


def _options(parser, command):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s for a in sub._actions for s in a.option_strings}


def test_every_method_has_a_subcommand_with_its_fields_and_old_flags():
    parser = build_parser()
    for name in names():
        opts = _options(parser, name)
        assert set(OLD_FLAGS[name] + COMMON) <= opts, set(OLD_FLAGS[name] + COMMON) - opts
        for f in fields(get(name).params_class):
            assert flag_of(f) in opts
    for other in ("traces", "report", "demo", "gui"):
        assert _options(parser, other) is not None


def test_options_not_given_keep_the_dataclass_defaults():
    from napari_neurorestore.cli.restore import request_from

    args = build_parser().parse_args(["sparse", "in.tif", "-o", "o.tif", "--factor", "2",
                                      "--no-denoise", "--labels", "r.tif"])
    req = request_from(args)
    assert req.given == {"factor": 2, "denoise": False}
    assert req.params.axis == "y" and req.params.context == 6 and not req.params.denoise
    assert req.options == {"labels": "r.tif", "reference": None}
    up = request_from(build_parser().parse_args(["upsample", "v.tif", "-o", "o.zarr"]))
    assert up.params.train_seconds == 60.0 and "tile_size" not in up.given
    assert up.options == {"memory_budget": 1.25}


def test_bad_choice_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["upsample", "v.tif", "-o", "o.tif", "--factor", "5"])
    assert e.value.code == 2


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "napari_neurorestore", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert all(n in out for n in (*names(), "traces", "report", "demo", "gui"))
