"""``neurorestore`` command line: the same core generators as the widgets, drained with a
text progress bar.

    neurorestore denoise IN.tif -o OUT.tif|OUT.zarr [--window C] [--stride S] [--epochs N]
                 [--train-seconds T] [--seed N] [--device auto|cpu|cuda|mps]
                 [--save-model M.pt] [--model M.pt] [--overwrite] [--chunk-frames N]
                 [--workers N | --dask-scheduler tcp://HOST:8786]
    neurorestore denoise A.tif B.tif -o OUTDIR [--model M.pt] [--workers N]
    neurorestore demo        # headless demo on a simulated movie with ground truth
    neurorestore gui         # napari with the plugin's widget and the sample movie
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__
from .core.progress import Cancelled, Progress


class ProgressBar:
    """A one-line text progress bar on stderr (carriage return updates; newline per stage)."""

    def __init__(self, stream=None, width: int = 30, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.width = width
        self.quiet = quiet
        self.stage = None
        self.last = 0.0

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        new_stage = p.stage != self.stage
        if new_stage and self.stage is not None:
            self.stream.write("\n")
        self.stage = p.stage
        if not new_stage and now - self.last < 0.2 and p.fraction < 1.0:
            return
        self.last = now
        fill = int(round(self.width * p.fraction))
        bar = "#" * fill + "-" * (self.width - fill)
        extra = []
        if p.loss is not None:
            extra.append(f"loss {p.loss:.4g}")
        if p.eta is not None:
            extra.append(f"{p.eta:5.0f} s left")
        line = f"\r{p.stage:>8} [{bar}] {100 * p.fraction:5.1f}% " + " ".join(extra)
        self.stream.write(line.ljust(78))
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-seconds", type=float, default=None,
                   help="cap on training wall time (whichever of epochs/seconds comes first)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--save-model", metavar="M.pt", help="save the trained model here")
    p.add_argument("--model", metavar="M.pt", help="apply this saved model; skip training")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="run even if the memory estimate exceeds free RAM")


#: probe the network's speed only when the nominal estimate of the run passes this (s):
#: a small run is not slowed down by its own estimate
PROBE_ABOVE_SECONDS = 20.0


def _preflight(args, method: str, data, params, model=None, streaming: bool = True):
    """Print the cost estimate of a run to stderr (unless ``-q``) and refuse one that would
    not fit in free memory (unless ``--force``). Returns the estimate."""
    from .core.cost import estimate_cost, refuse_if_too_big

    est = estimate_cost(method, data, params, model=model, device=params.device,
                        streaming=streaming, probe=False)
    total = est.infer_seconds + (est.train_seconds or 0.0)
    if not args.quiet and total > PROBE_ABOVE_SECONDS:
        est = estimate_cost(method, data, params, model=model, device=params.device,
                            streaming=streaming, probe=True)
    if not args.quiet:
        print(f"estimate: {est.summary()}", file=sys.stderr)
    if not getattr(args, "force", False):
        refuse_if_too_big(est, "-o OUT.zarr; --force runs it anyway")
    return est


def _denoise_parser(sub) -> None:
    from .core.params import DenoiseParams

    d = DenoiseParams()
    p = sub.add_parser(
        "denoise", help="self-supervised temporal denoising (FAST)",
        description="Train a denoiser on the movie itself and restore every frame. "
                    "Several inputs go into the folder given by -o (OUTDIR/<name>_denoised.zarr).")
    p.add_argument("input", nargs="+",
                   help="(t, y, x) or (t, z, y, x) TIFF stack(s) or zarr/OME-Zarr store(s)")
    p.add_argument("-o", "--output", required=True,
                   help="output: OUT.tif (float32, input's units, memory-mapped) or OUT.zarr "
                        "(chunked, compressed); a folder when there are several inputs")
    p.add_argument("--window", type=int, default=d.window, help=f"temporal window C, odd (default {d.window})")
    p.add_argument("--stride", type=int, default=d.stride, help=f"training window stride S (default {d.stride})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    p.add_argument("--width", type=int, default=d.width, help=f"network width (default {d.width})")
    p.add_argument("--chunk-frames", type=int, default=d.chunk_frames,
                   help=f"frames per inference chunk and per zarr chunk (memory bound; "
                        f"default {d.chunk_frames})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int, metavar="N",
                   help="run inference on a local dask cluster of N worker processes "
                        "(needs the 'large' extra; output must be .zarr)")
    g.add_argument("--dask-scheduler", metavar="ADDR",
                   help="run inference on a running dask cluster, e.g. tcp://host:8786 "
                        "(paths must be visible to the workers)")
    _add_common(p)
    p.set_defaults(func=_run_denoise)


def _denoise_outputs(inputs: list[str], output: str) -> list[Path]:
    """One output per input: ``-o`` itself for one input; OUTDIR/<stem>_denoised.zarr else."""
    if len(inputs) == 1:
        return [Path(output)]
    outdir = Path(output)
    if outdir.suffix.lower() in (".tif", ".tiff", ".zarr"):
        raise ValueError(f"with {len(inputs)} inputs, -o must be a folder (got {output})")
    if outdir.exists() and not outdir.is_dir():
        raise ValueError(f"{outdir} exists and is not a folder")
    outs = []
    for f in inputs:
        name = Path(f.rstrip("/")).name
        for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
                break
        outs.append(outdir / f"{name}_denoised.zarr")
    if len(set(outs)) != len(outs):
        raise ValueError("two inputs have the same name; their outputs would collide")
    outdir.mkdir(parents=True, exist_ok=True)
    return outs


def _run_denoise(args) -> int:
    from .core.io import (
        _require,
        check_movie,
        check_output_path,
        check_output_target,
        open_array,
    )
    from .core.models import load_model
    from .core.params import DenoiseParams

    params = DenoiseParams(window=args.window, stride=args.stride, epochs=args.epochs,
                           train_seconds=args.train_seconds, seed=args.seed,
                           device=args.device, width=args.width,
                           chunk_frames=args.chunk_frames)
    distributed = args.workers is not None or args.dask_scheduler is not None
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    # fail before any work: output paths, the model file and the inputs
    if args.save_model and len(args.input) > 1:
        raise ValueError("--save-model takes one input (each input trains its own model); "
                         "train on one recording, then pass --model for the others")
    outputs = _denoise_outputs(args.input, args.output)
    for o in outputs:
        check_output_path(o, args.overwrite)
        if distributed and o.suffix.lower() != ".zarr":
            raise ValueError(f"--workers/--dask-scheduler write zarr stores: use -o "
                             f"{o.with_suffix('.zarr')}")
    if any(o.suffix.lower() == ".zarr" for o in outputs):
        _require("zarr")
    if distributed:
        _require("distributed")
    if args.save_model:
        check_output_path(args.save_model, args.overwrite)
    model = load_model(args.model) if args.model else None
    if model is not None:
        if model.method != "denoise":
            raise ValueError(f"{args.model} is a {model.method!r} model, not a denoising model")
        params = DenoiseParams.from_dict({**model.params, "device": args.device,
                                          "chunk_frames": args.chunk_frames})
    opened = []
    for f, o in zip(args.input, outputs, strict=True):
        data, axes = open_array(f)
        check_movie(data, params.window)
        check_output_target(o, tuple(data.shape), args.overwrite)  # disk space, zarr
        _preflight(args, "denoise", data, params, model)
        opened.append((data, axes))
    bar = ProgressBar(quiet=args.quiet)
    try:
        if distributed:
            return _denoise_distributed(args, params, model, opened, outputs, bar)
        for f, (data, axes), o in zip(args.input, opened, outputs, strict=True):
            _denoise_one(args, params, model, f, data, axes, o, bar)
    finally:
        bar.close()
    return 0


def _train(args, params, data, bar):
    from .core.methods import denoise as method
    from .core.progress import drain

    return drain(method.train(data, params, None), bar)


def _denoise_one(args, params, model, src, data, axes, output, bar) -> None:
    from .core.io import ChunkRecorder, open_output
    from .core.methods import denoise as method
    from .core.models import save_model
    from .core.progress import Cancelled, drain

    if model is None:
        model = _train(args, params, data, bar)
        if args.save_model:
            save_model(model, args.save_model, args.overwrite)
    out = open_output(output, tuple(data.shape), args.overwrite, chunks=params.chunk_frames,
                      metadata=method.metadata_for(model, {"source": str(src)}),
                      axes=axes if len(axes) == data.ndim else None)
    recorder = ChunkRecorder(out)
    try:
        drain(method.predict(data, model, None, out=out, chunk_frames=params.chunk_frames,
                             device=params.device, on_chunk=recorder), bar)
    except (KeyboardInterrupt, Cancelled):
        bar.close()
        print(f"interrupted: {recorder.describe()} were restored and written to {output}"
              + (" (its 'neurorestore_progress' attribute lists them); " if
                 output.suffix.lower() == ".zarr" else "; ")
              + "run again with --overwrite to redo it", file=sys.stderr)
        raise
    finally:
        if hasattr(out, "flush"):
            out.flush()
        del out
    info = model.info
    print(f"wrote {output} ({'x'.join(map(str, data.shape))}, float32); "
          f"training {info.get('train_seconds', 0)} s, {info.get('steps', 0)} steps"
          + (f"; model saved to {args.save_model}" if args.save_model and
             not args.model else ""))


def _denoise_distributed(args, params, model, opened, outputs, bar) -> int:
    import os
    import tempfile

    from .core.distributed import DenoiseJob, denoise_files
    from .core.models import save_model
    from .core.progress import drain

    temp_models: list[Path] = []
    try:
        if model is not None:
            model_paths = [str(Path(args.model).resolve())] * len(outputs)
        else:  # train each input on itself here, then distribute the inference of all
            model_paths = []
            for (data, _), o in zip(opened, outputs, strict=True):
                m = _train(args, params, data, bar)
                if args.save_model:
                    path = Path(save_model(m, args.save_model, args.overwrite)).resolve()
                else:  # next to the output, where the workers can read it
                    fd, tmp = tempfile.mkstemp(suffix=".pt", prefix=".neurorestore-model-",
                                               dir=o.resolve().parent)
                    os.close(fd)
                    path = Path(save_model(m, tmp, overwrite=True)).resolve()
                    temp_models.append(path)
                model_paths.append(str(path))
        jobs = [DenoiseJob(str(Path(f).resolve()), str(o.resolve()), mp)
                for f, o, mp in zip(args.input, outputs, model_paths, strict=True)]
        done = drain(denoise_files(jobs, workers=args.workers, scheduler=args.dask_scheduler,
                                   chunk_frames=params.chunk_frames, device=params.device,
                                   overwrite=args.overwrite), bar)
    finally:
        for t in temp_models:
            t.unlink(missing_ok=True)
    bar.close()
    where = args.dask_scheduler or f"{args.workers} local dask worker(s)"
    for (data, _), o in zip(opened, done, strict=True):
        print(f"wrote {o} ({'x'.join(map(str, data.shape))}, float32) on {where}")
    return 0


def _demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="headless demo: denoise a simulated movie, print figures")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--train-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    import numpy as np

    from .api import denoise
    from .core.metrics import psnr
    from .core.simulate import simulate_calcium_movie

    sim = simulate_calcium_movie(n_frames=args.frames, shape=(args.size, args.size),
                                 seed=args.seed)
    print(f"simulated calcium movie {sim.raw.shape} uint16 with ground truth")
    bar = ProgressBar()
    out = denoise(sim.raw, train_seconds=args.train_seconds, epochs=1000, seed=args.seed,
                  progress=bar)
    bar.close()
    rng = float(np.ptp(sim.clean))
    print(f"PSNR raw      {psnr(sim.raw, sim.clean, rng):6.2f} dB")
    print(f"PSNR denoised {psnr(out, sim.clean, rng):6.2f} dB  (benchmarks/bench_denoise.py "
          "compares with a tuned Gaussian filter)")
    from .core.trust import assess

    rep = assess(sim.raw, out, {"method": "denoise"}, rois=sim.labels)
    print(f"noise model: gain {rep.noise.gain:.3g} (true {sim.gain:g}), offset "
          f"{rep.noise.offset:.4g} (true {sim.offset:g})")
    print("trust checks (neurorestore report): "
          + (", ".join(rep.flags) if rep.flags else "no warnings"))
    return 0


def _gui_parser(sub) -> None:
    p = sub.add_parser("gui", help="open napari with the Restore widget and the sample movie")
    p.add_argument("files", nargs="*", help="TIFF stacks to open instead of the sample")
    p.set_defaults(func=_run_gui)


def _run_gui(args) -> int:
    from ._display import display_problem

    if problem := display_problem():  # Qt would abort (134) with a misleading xcb message
        return print(problem, file=sys.stderr) or 2
    try:
        import napari
    except ImportError:
        print("napari is not installed: pip install 'napari-neurorestore[napari]'",
              file=sys.stderr)
        return 1
    viewer = napari.Viewer()
    if args.files:
        for f in args.files:
            viewer.open(f, plugin="napari-neurorestore")
    else:
        viewer.open_sample("napari-neurorestore", "calcium_movie")
    viewer.window.add_plugin_dock_widget("napari-neurorestore", "Restore")
    napari.run()
    return 0


_EXTRA_PARSERS = (
    "napari_neurorestore._cli_traces",
    "napari_neurorestore._cli_upsample",
    "napari_neurorestore._cli_isotropize",
    "napari_neurorestore._cli_sparse",
    "napari_neurorestore._cli_report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorestore",
        description="Self-supervised restoration of fluorescence neural imaging.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _denoise_parser(sub)
    import importlib

    for mod in _EXTRA_PARSERS:
        try:
            importlib.import_module(mod).add_parser(sub)
        except ModuleNotFoundError:
            pass
    _demo_parser(sub)
    _gui_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Cancelled as e:
        print(str(e) or "cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, FileExistsError, FileNotFoundError, PermissionError, ImportError,
            OSError) as e:
        print(f"neurorestore: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
