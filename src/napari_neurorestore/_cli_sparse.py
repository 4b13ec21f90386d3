"""``neurorestore sparse``: sparse-axis reconstruction (IRIS) from the command line.

    neurorestore sparse IN.tif -o OUT.tif --factor M [--axis y|x] [--context K]
                 [--reference REF.tif] [--no-denoise] [--train-seconds T] [--seed N]
                 [--device ...] [--save-model M.pt | --model M.pt] [--overwrite]
    neurorestore sparse FULL.tif --simulate --factor M -o OUT.tif [--labels ROIS.tif]

IN.tif holds the acquired lines only; OUT.tif has M times more lines along the sparse axis
(acquired line i at output line i*M; pixel size along that axis divided by M). With
``--simulate`` the input is a fully sampled stack: every M-th line is kept, reconstructed,
and the figures against the full stack (and cubic interpolation's) are printed.
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    from .cli import _add_common
    from .core.params import SparseParams

    d = SparseParams()
    p = sub.add_parser(
        "sparse", help="sparse-axis reconstruction (IRIS): restore skipped scan lines",
        description="Restore the lines a scan skipped along one axis, with a network trained "
                    "on the sparse data itself (the fully sampled axis is the teacher).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("input", help="(y, x), (t|z, y, x) or (t, z, y, x) TIFF of the acquired lines "
                                 "(a fully sampled stack with --simulate)")
    p.add_argument("-o", "--output", required=True,
                   help="output: OUT.tif (float32, input's units, memory-mapped) or OUT.zarr "
                        "(chunked --chunk-frames frames, compressed); written chunk by chunk")
    p.add_argument("--factor", type=int, default=None,
                   help=f"skip factor M, 2-16: one line in M was acquired (default {d.factor})")
    p.add_argument("--axis", choices=["y", "x"], default=None,
                   help="the under-sampled axis (default y, the slow scan axis)")
    p.add_argument("--simulate", action="store_true",
                   help="the input is fully sampled: keep every M-th line, reconstruct, and "
                        "print PSNR/SSIM/trace NRMSE against the full stack")
    p.add_argument("--labels", metavar="ROIS.tif",
                   help="with --simulate: ROI label image for the trace figures "
                        "(default: the 20 most active 8x8 tiles)")
    p.add_argument("--reference", metavar="REF.tif",
                   help="train on this fully sampled stack from the same rig (supervised "
                        "pairs by dropping lines) instead of on the input")
    p.add_argument("--context", type=int, default=d.context,
                   help=f"neighbouring frames on each side given to the network (default {d.context})")
    p.add_argument("--no-denoise", action="store_true",
                   help="keep the acquired lines exactly as measured (default: denoise them too)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--width", type=int, default=d.width, help=f"network width (default {d.width})")
    p.add_argument("--chunk-frames", type=int, default=d.chunk_frames,
                   help=f"frames per inference chunk (memory bound; default {d.chunk_frames})")
    _add_common(p)
    p.set_defaults(func=run_sparse)


def run_sparse(args) -> int:
    from . import _cli_stream as _stream
    from .cli import ProgressBar, _preflight
    from .core.io import ChunkRecorder, check_output_path, open_output, read_tiff
    from .core.models import load_model, save_model
    from .core.params import SparseParams
    from .core.progress import drain

    # fail before any work: output paths and the model file
    check_output_path(args.output, args.overwrite)
    if args.save_model:
        check_output_path(args.save_model, args.overwrite)
    if args.model and args.reference:
        raise ValueError("--model and --reference exclude each other (a saved model is "
                         "applied without training)")
    model = load_model(args.model) if args.model else None
    if model is not None:
        if model.method != "sparse":
            raise ValueError(f"{args.model} holds a {model.method!r} model, not a sparse-axis model")
        mp = model.params
        for name, given in (("factor", args.factor), ("axis", args.axis)):
            if given is not None and given != mp[name]:
                raise ValueError(f"the model was trained for {name} {mp[name]!r}, not {given!r}")
        params = SparseParams.from_dict({**mp, "device": args.device, "simulate": args.simulate,
                                         "chunk_frames": args.chunk_frames,
                                         "denoise": mp.get("denoise", True) and not args.no_denoise})
    else:
        d = SparseParams()
        params = SparseParams(
            factor=d.factor if args.factor is None else args.factor,
            axis=args.axis or d.axis, simulate=args.simulate, context=args.context,
            denoise=not args.no_denoise, epochs=args.epochs, train_seconds=args.train_seconds,
            seed=args.seed, device=args.device, width=args.width, chunk_frames=args.chunk_frames)
    if args.labels and not args.simulate:
        raise ValueError("--labels is used with --simulate only")
    data, axes = _stream.open_input(args.input)
    reference = read_tiff(args.reference, lazy=True)[0] if args.reference else None
    labels = read_tiff(args.labels, lazy=False)[0] if args.labels else None

    from .core.methods import sparse as method

    if params.simulate:
        method.check_input(data, params.factor, params.axis, sparse=False)
        shape = tuple(data.shape)
    else:
        method.check_input(data, params.factor, params.axis)
        shape = method.output_shape(tuple(data.shape), params.factor, params.axis)
    _stream.check_target(args, shape)  # existing output, zarr, disk space: before training
    _preflight(args, "sparse", data, params, model, streaming=not params.simulate)
    bar = ProgressBar(quiet=args.quiet)
    try:
        if model is None:
            train_on = method.make_sparse(data, params.factor, params.axis) if params.simulate else data
            model = drain(method.train(train_on, params, None, reference=reference), bar)
            if args.save_model:
                save_model(model, args.save_model, args.overwrite)
        n = 1 if len(shape) == 2 else shape[0]
        out = open_output(args.output, shape, args.overwrite, chunks=params.chunk_frames,
                          metadata=method.metadata_for(model, {"source": str(args.input)}),
                          axes=axes if len(axes) == len(shape) else None, total=n)
        recorder = ChunkRecorder(out, n)
        try:
            if params.simulate:
                result = drain(method.run(data, params, None, model=model, out=out,
                                          labels=labels), bar)
            else:  # chunk by chunk into the output, recorded as it goes
                _stream.drain_into(args, method.predict(
                    data, model, None, out=out, chunk_frames=params.chunk_frames,
                    device=params.device, denoise=params.denoise, on_chunk=recorder),
                    recorder, bar)
            _stream.close_output(out)
        finally:
            del out
    finally:
        bar.close()
    info = model.info
    print(f"wrote {args.output} ({'x'.join(map(str, shape))}, float32); "
          f"training {info.get('train_seconds', 0)} s, {info.get('steps', 0)} steps"
          + (f"; model saved to {args.save_model}" if args.save_model else ""))
    if params.simulate:
        print(method.format_simulation(result.metadata["neurorestore"]["simulation"]))
    else:
        ax = params.axis
        print(f"pixel size along {ax} is the input's / {params.factor} "
              f"(acquired line i is output line i*{params.factor})")
    return 0
