"""``neurorestore upsample``: zero-shot upsampling of a (z, y, x) volume or a (y, x) image.

    neurorestore upsample IN.tif -o OUT.tif --factor F [--lateral-only]
                 [--prior none|simulated] [--train-seconds T] [--steps N] [--patch-size P]
                 [--no-back-projection] [--ensemble] [--two-stage] [--tile-size T]
                 [--seed N] [--device auto|cpu|cuda|mps] [--save-model M.pt] [--model M.pt]
                 [--overwrite] [-q]
"""

from __future__ import annotations


def add_parser(sub) -> None:
    from .cli import _add_common
    from .core.params import UpsampleParams

    d = UpsampleParams()
    p = sub.add_parser(
        "upsample", help="zero-shot 2-4x upsampling of a volume or image (Self-Vision)",
        description="Train on the input itself (crops binned by the factor -> crops) and "
                    "return it with factor-times finer sampling (area-sampling convention: "
                    "binning the output by the factor gives the input back).")
    p.add_argument("input", help="(z, y, x) or (y, x) TIFF or zarr store (read tile by tile)")
    p.add_argument("-o", "--output", required=True,
                   help="output: OUT.tif (float32, input's units, memory-mapped) or OUT.zarr "
                        "(one chunk per tile, compressed); written tile by tile")
    p.add_argument("--factor", type=int, default=d.factor, choices=[2, 3, 4],
                   help=f"upsampling factor per axis (default {d.factor})")
    p.add_argument("--lateral-only", action="store_true", help="upsample y and x only")
    p.add_argument("--prior", default=d.prior, choices=["none", "simulated"],
                   help="'simulated': also train on a simulated neuron volume at the true "
                        f"scale (default {d.prior!r}: the input alone)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"training steps (default {d.steps}; --train-seconds caps the time, "
                        f"default {d.train_seconds:g} s)")
    p.add_argument("--patch-size", type=int, default=d.patch_size,
                   help=f"training crop side in input pixels (default {d.patch_size})")
    p.add_argument("--width", type=int, default=d.width, help=f"network width (default {d.width})")
    p.add_argument("--no-back-projection", action="store_true",
                   help="do not force the output to bin back to the input")
    p.add_argument("--ensemble", action="store_true", help="average over flips (8x slower)")
    p.add_argument("--two-stage", action="store_true", help="factor 4 as two 2x stages")
    p.add_argument("--tile-size", type=int, default=None,
                   help=f"inference tile side in input pixels (memory bound; default: the "
                        f"largest up to {d.tile_size} whose working memory fits "
                        f"--memory-budget)")
    p.add_argument("--memory-budget", type=float, default=1.25, metavar="GB",
                   help="working memory of one tile when --tile-size is not given, in GiB "
                        "(default 1.25)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="N",
                   help="run inference on a local dask cluster of N worker processes, tiles "
                        "as tasks (needs the 'large' extra; output must be .zarr)")
    g.add_argument("--dask-scheduler", metavar="ADDR",
                   help="run inference on a running dask cluster, e.g. tcp://host:8786 "
                        "(paths must be visible to the workers)")
    _add_common(p)
    p.set_defaults(func=run_upsample)


def run_upsample(args) -> int:
    from . import _cli_stream as _stream
    from .cli import ProgressBar, _preflight
    from .core.io import ChunkRecorder, check_output_path, open_output
    from .core.models import load_model, save_model
    from .core.params import UpsampleParams
    from .core.progress import drain

    d = UpsampleParams()
    params = UpsampleParams(
        factor=args.factor, lateral_only=args.lateral_only, prior=args.prior, steps=args.steps,
        train_seconds=args.train_seconds if args.train_seconds is not None else d.train_seconds,
        patch_size=args.patch_size, width=args.width,
        back_projection=not args.no_back_projection, ensemble=args.ensemble,
        two_stage=args.two_stage, seed=args.seed, device=args.device,
        tile_size=args.tile_size or d.tile_size)
    distributed = args.workers is not None or args.dask_scheduler is not None
    # fail before any work: output paths, the model file and the input
    check_output_path(args.output, args.overwrite)
    if distributed:
        _stream.check_distributed(args)
    if args.save_model:
        check_output_path(args.save_model, args.overwrite)
    model = load_model(args.model) if args.model else None
    if model is not None:
        if model.method != "upsample":
            raise ValueError(f"{args.model} is a {model.method!r} model, not an upsampling model")
        params = UpsampleParams.from_dict({**model.params, "device": args.device,
                                           "tile_size": args.tile_size or d.tile_size,
                                           "back_projection": not args.no_back_projection,
                                           "ensemble": args.ensemble})
    data, _axes = _stream.open_input(args.input)

    from .core.methods import upsample as method

    factors = method.check_volume(data, params, training=model is None)
    shape_out = method.output_shape(data.shape, factors)
    _stream.check_target(args, shape_out)  # existing output, zarr, disk space: before training
    _preflight(args, "upsample", data, params, model)
    bar = ProgressBar(quiet=args.quiet)
    if model is None:
        model = drain(method.train(data, params, None), bar)
        if args.save_model:
            save_model(model, args.save_model, args.overwrite)
    tile = args.tile_size or method.auto_tile_size(model, data.ndim,
                                                   int(args.memory_budget * 2**30))
    if distributed:
        _stream.run_distributed_upsample(args, model, tile, params, bar)
        return 0
    tiles = method.output_tiles(model, tuple(data.shape), tile)
    out = open_output(args.output, shape_out, args.overwrite,
                      chunk_shape=method.output_chunks(model, tuple(data.shape), tile),
                      metadata=method.metadata_for(model, {"factors": list(factors),
                                                           "source": str(args.input)}),
                      axes="ZYX" if data.ndim == 3 else "YX", unit="tiles",
                      total=tiles["total"])
    recorder = ChunkRecorder(out, tiles["total"], "tiles", tiles["extra"])
    try:
        _stream.drain_into(args, method.predict(
            data, model, None, out=out, device=params.device, tile_size=tile,
            ensemble=params.ensemble, back_projection=params.back_projection,
            on_chunk=recorder), recorder, bar)
        _stream.close_output(out)
    finally:
        del out
        bar.close()
    info = model.info
    print(f"wrote {args.output} ({'x'.join(map(str, shape_out))}, float32, pixel size = input's "
          f"/ {'x'.join(map(str, factors))}); training {info.get('train_seconds', 0)} s, "
          f"{info.get('steps', 0)} steps"
          + (f"; model saved to {args.save_model}" if args.save_model else ""))
    return 0
