"""``neurorestore isotropize``: axial isotropization (Self-Net) of a (z, y, x) TIFF volume.

    neurorestore isotropize IN.tif -o OUT.tif --z-ratio R [--degradation gaussian|learned]
                 [--sigma-z S] [--steps N] [--train-seconds T] [--seed N] [--device ...]
                 [--save-model M.pt | --model M.pt] [--overwrite] [-q]
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from .cli import _add_common
    from .core.params import IsotropizeParams

    d = IsotropizeParams()
    p = sub.add_parser(
        "isotropize", help="axial isotropization: make z as sharp and finely sampled as x, y",
        description="Train a restorer on the volume's own lateral slices (degraded the way z "
        "is) and restore every axial slice. The output has round((z - 1) R) + 1 slices; "
        "output slice k lies at input slice k / R (its z pixel size is the input's / R).")
    p.add_argument("input", help="(z, y, x) TIFF volume or zarr store (read block by block)")
    p.add_argument("-o", "--output", required=True,
                   help="output: OUT.tif (float32, input's units, memory-mapped) or OUT.zarr "
                        "(chunked by lateral block, compressed); written block by block")
    p.add_argument("--z-ratio", type=float, default=None, metavar="R",
                   help="z pixel size / lateral pixel size (required unless --model is given)")
    p.add_argument("--degradation", choices=("gaussian", "learned"), default=d.degradation,
                   help=f"training degradation model (default {d.degradation})")
    p.add_argument("--sigma-z", type=float, default=None, metavar="S",
                   help="axial blur beyond the lateral one, Gaussian sigma in lateral pixels "
                   "(default: estimated from the data)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps})")
    p.add_argument("--width", type=int, default=d.width, help=f"network width (default {d.width})")
    p.add_argument("--tile-size", type=int, default=d.tile_size,
                   help=f"lateral inference block size (memory bound; default {d.tile_size})")
    _add_common(p)
    p.set_defaults(func=run_isotropize)
    return p


def run_isotropize(args: Any) -> int:
    from . import _cli_stream as _stream
    from .cli import ProgressBar, _preflight
    from .core.axial import check_volume, output_slices
    from .core.io import ChunkRecorder, check_output_path, open_output
    from .core.models import load_model, save_model
    from .core.params import IsotropizeParams
    from .core.progress import drain

    # fail before any work: output paths, the model file and the parameters
    check_output_path(args.output, args.overwrite)
    if args.save_model:
        check_output_path(args.save_model, args.overwrite)
    model = load_model(args.model) if args.model else None
    if model is not None:
        if model.method != "isotropize":
            raise ValueError(f"{args.model} is a {model.method!r} model, not an isotropize model")
        if args.z_ratio is not None and abs(args.z_ratio - model.params["z_ratio"]) > 1e-6:
            raise ValueError(f"the model was trained for z ratio {model.params['z_ratio']}, "
                             f"not {args.z_ratio}")
        params = IsotropizeParams.from_dict({**model.params, "device": args.device,
                                             "tile_size": args.tile_size})
    else:
        if args.z_ratio is None:
            raise ValueError("--z-ratio is required (z pixel size / lateral pixel size)")
        params = IsotropizeParams(z_ratio=args.z_ratio, degradation=args.degradation,
                                  sigma_z=args.sigma_z, steps=args.steps,
                                  train_seconds=args.train_seconds, seed=args.seed,
                                  device=args.device, width=args.width,
                                  tile_size=args.tile_size)
    data, _axes = _stream.open_input(args.input)
    check_volume(data)

    from .core.methods import isotropize as method

    nz = output_slices(data.shape[0], params.z_ratio)
    shape = (nz, *data.shape[1:])
    _stream.check_target(args, shape)  # existing output, zarr, disk space: before training
    _preflight(args, "isotropize", data, params, model)
    bar = ProgressBar(quiet=args.quiet)
    if model is None:
        model = drain(method.train(data, params, None), bar)
        if args.save_model:
            save_model(model, args.save_model, args.overwrite)
    tiles = method.output_tiles(tuple(data.shape), params.z_ratio, params.tile_size)
    out = open_output(args.output, shape, args.overwrite,
                      chunk_shape=method.output_chunks(tuple(data.shape), params.z_ratio,
                                                       params.tile_size),
                      metadata=method.metadata_for(model, {"z_ratio": params.z_ratio,
                                                           "source": str(args.input)}),
                      axes="ZYX", unit="tiles", total=tiles["total"])
    recorder = ChunkRecorder(out, tiles["total"], "tiles", tiles["extra"])
    try:
        _stream.drain_into(args, method.predict(
            data, model, None, out=out, tile_size=params.tile_size, device=params.device,
            on_chunk=recorder), recorder, bar)
        _stream.close_output(out)
    finally:
        del out
        bar.close()
    info = model.info
    print(f"wrote {args.output} ({'x'.join(map(str, shape))}, float32, z pixel = input's / "
          f"{params.z_ratio:g}); sigma_z {info.get('sigma_z_used')} lateral px"
          + (" (estimated)" if info.get("sigma_z_estimated") is not None else "")
          + f"; training {info.get('train_seconds', 0)} s, {info.get('steps', 0)} steps"
          + (f"; model saved to {args.save_model}" if args.save_model else ""))
    return 0
