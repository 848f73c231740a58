"""Command-line entry point: ``scalecnn <command> ...`` (``--help`` on each)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from scalecnn import __version__
from scalecnn.study import (
    DATASET_NAMES,
    DISCO_EFFECTIVE_SIZE,
    DISCO_KERNEL_SIZE,
    DISCO_SCALES,
    EVALUATION_NAMES,
    EVALUATIONS,
    GENERATED_DATASETS,
    INPUT_SCALES,
    INTERPOLATION_MODES,
    PAPER_DISCO,
)

TRAIN_EXTRA = ("torch", "kornia")
"""The packages of the optional extra ``train``: a command that imports one of them
without it installed stops with a message naming the extra."""


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one run of the study's protocol",
        description="Train one run (seeded, Adam, batch 16, early stopping on "
        "validation accuracy) and write metrics.json, history.csv, model.pt and "
        "predictions.npy into --out. Re-running after a kill resumes.",
    )
    p.add_argument("--model", required=True, help="registered model name, e.g. pixel_pool")
    p.add_argument("--data", required=True, type=Path, help="path to a STIR .npz file")
    p.add_argument(
        "--evaluation",
        required=True,
        type=int,
        choices=EVALUATIONS,
        help=", ".join(f"{e} {name}" for e, name in EVALUATION_NAMES.items()),
    )
    p.add_argument("--kernel-size", type=int, default=7)
    p.add_argument("--interpolation", default="bicubic", choices=INTERPOLATION_MODES)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--reshuffle",
        action="store_true",
        help="new batch order every epoch (the paper kept one fixed order)",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--basis", default=None, help="basis file for models that need one (disco)")
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        help="module name or .py file registering extra models (repeatable)",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory of the run")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from scalecnn.training import RunConfig, train_run

    cfg = RunConfig(
        model=args.model,
        data=str(args.data),
        evaluation=args.evaluation,
        kernel_size=args.kernel_size,
        interpolation=args.interpolation,
        lr=args.lr,
        seed=args.seed,
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        patience=args.patience,
        reshuffle=args.reshuffle,
        device=args.device,
        threads=args.threads,
        basis=args.basis,
        plugins=list(args.plugin),
    )
    train_run(cfg, args.out)
    return 0


def _add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="download one STIR file from Zenodo and verify it",
        description="Download DATASET.npz of Zenodo record 6578038, verify size "
        "and md5 and the STIR format, and place it in --dest.",
    )
    p.add_argument("dataset", choices=DATASET_NAMES)
    p.add_argument("--dest", type=Path, required=True, help="destination folder")
    p.add_argument(
        "--api",
        default=None,
        help="Zenodo API base URL (default: $SCALECNN_ZENODO_API or https://zenodo.org/api)",
    )
    p.add_argument("--retries", type=int, default=3)
    p.set_defaults(func=_run_download)


def _run_download(args: argparse.Namespace) -> int:
    from scalecnn.data import download_dataset

    download_dataset(args.dataset, args.dest, api=args.api, retries=args.retries)
    return 0


def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="regenerate emoji.npz offline from Font Awesome icons",
        description="Render the 36 Font Awesome face icons into a STIR file.",
    )
    p.add_argument("dataset", choices=GENERATED_DATASETS)
    p.add_argument("--dest", type=Path, required=True, help="destination folder or .npz path")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_run_generate)


def _run_generate(args: argparse.Namespace) -> int:
    from scalecnn.data import generate_emoji

    generate_emoji(args.dest, seed=args.seed)
    return 0


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check that a file is a well-formed STIR file")
    p.add_argument("path", type=Path)
    p.set_defaults(func=_run_verify)


def _run_verify(args: argparse.Namespace) -> int:
    from scalecnn.data import validate_stir_file

    validate_stir_file(args.path)
    print(f"{args.path}: OK")
    return 0


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models and their parameter counts")
    p.add_argument("--plugin", action="append", default=[])
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from scalecnn.models import build_model, get_spec, list_models, load_plugins

    load_plugins(args.plugin)
    for name in list_models():
        if get_spec(name).needs_basis:
            print(f"{name:20s} (needs a basis file)")
            continue
        n = sum(p.numel() for p in build_model(name).parameters())
        print(f"{name:20s} {n:>9d} parameters (k=7, 1 channel, 36 classes)")
    return 0


def _add_mlflow_sync(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mlflow-sync",
        help="put every finished run into an MLflow tracking store",
        description="Put every finished run under RESULTS/runs/ into an MLflow experiment: "
        "one MLflow run per training with its parameters, final metrics, per-epoch curves, "
        "tags (status, chosen_rate, lr_source, commit) and the run folder's files. "
        "Idempotent and incremental: unchanged runs are skipped, changed ones replaced, "
        "runs an interrupted sync left incomplete redone. Needs the extra: "
        'pip install -e ".[mlflow]".',
    )
    p.add_argument("results", type=Path, help="the results folder (holding runs/)")
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="any MLflow tracking URI (default: sqlite:///RESULTS/mlflow.db, a local SQLite "
        "store; browse it with mlflow ui --backend-store-uri sqlite:///RESULTS/mlflow.db)",
    )
    p.add_argument("--experiment", default="scalecnn", help="experiment name (default scalecnn)")
    p.add_argument(
        "--artifacts",
        choices=["copy", "link"],
        default="copy",
        help="copy the run folder's files into the store, or log links to them",
    )
    p.add_argument(
        "--artifact-location",
        default=None,
        help="artifact location of a new experiment (default for SQLite: "
        "mlflow-artifacts/ beside the database)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="also delete the MLflow runs whose run folder no longer exists",
    )
    p.add_argument("--summary", type=Path, default=None, help="write the counts as JSON here")
    p.set_defaults(func=_run_mlflow_sync)


def _run_mlflow_sync(args: argparse.Namespace) -> int:
    from scalecnn import atomic

    try:
        from scalecnn.tracking import sync

        summary = sync(
            args.results,
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            artifacts=args.artifacts,
            prune=args.prune,
            artifact_location=args.artifact_location,
        )
    except ImportError as exc:
        print(f"scalecnn mlflow-sync: error: {exc}", file=sys.stderr)
        return 2
    if args.summary is not None:
        atomic.write_json(args.summary, summary.as_dict())
    print(summary.line())
    return 0


def _add_disco_basis(sub: argparse._SubParsersAction) -> None:
    paper = PAPER_DISCO
    p = sub.add_parser(
        "disco-basis",
        help="optimise the DISCO basis on noise images and write the final basis file",
        description="Optimise the DISCO basis (Sosnovik et al. 2021) on random-noise images, "
        "mix it by the Hermite matrix, normalise it and write the final (F, S, K, K) basis "
        "that `scalecnn train --model disco --basis FILE` takes. Defaults are the paper's "
        "setting (40 epochs of 157 steps, batch 64, 154x154 images: hours on a CPU); see "
        "docs/disco_basis.md for costs and a cheap setting.",
    )
    p.add_argument("--kernel-size", type=int, default=DISCO_KERNEL_SIZE)
    p.add_argument("--effective-size", type=int, default=DISCO_EFFECTIVE_SIZE)
    p.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(DISCO_SCALES),
        help="ascending scales, at least one integer (default: 1 1.26 1.59 2)",
    )
    p.add_argument("--out", type=Path, required=True, help="final basis file (.pt or .npy)")
    p.add_argument(
        "--raw-out", type=Path, default=None, help="also write the raw (unmixed) basis here"
    )
    p.add_argument("--epochs", type=int, default=paper["epochs"])
    p.add_argument("--steps-per-epoch", type=int, default=paper["steps_per_epoch"])
    p.add_argument("--batch-size", type=int, default=paper["batch_size"])
    p.add_argument("--image-size", type=int, default=paper["image_size"])
    p.add_argument("--lr", type=float, default=paper["lr"])
    p.add_argument(
        "--init-std",
        type=float,
        default=paper["init_std"],
        help="std of the free kernels' normal initialisation (paper: 1; the cheap "
        "setting uses 0.01 so that a few steps suffice)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write a JSON report: equivariance errors of DISCO, hermite_b and a "
        "random basis, and the cost in seconds",
    )
    p.add_argument(
        "--validation-images",
        type=int,
        default=16,
        help="held-out noise images for the report's errors",
    )
    p.set_defaults(func=_run_disco_basis)


def _run_disco_basis(args: argparse.Namespace) -> int:
    from scalecnn.bases.disco import write_disco_basis
    from scalecnn.device import set_threads
    from scalecnn.signals import abort_on_signals

    # no checkpoint: a stop signal (time limit, scancel) ends it at once, cleanly; the
    # workflow's retry starts it again with a longer time limit
    with abort_on_signals(f"disco-basis {args.out}"):
        set_threads(args.threads)
        write_disco_basis(
            args.out,
            kernel_size=args.kernel_size,
            effective_size=args.effective_size,
            scales=args.scales,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            batch_size=args.batch_size,
            image_size=args.image_size,
            lr=args.lr,
            init_std=args.init_std,
            seed=args.seed,
            raw_out=args.raw_out,
            report=args.report,
            validation_images=args.validation_images,
        )
    return 0


EVALUATE_METRICS = ("equivariance", "generalization", "indices")
"""The metrics of ``scalecnn evaluate`` (keys of :data:`scalecnn.evaluation.METRICS`)."""


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compute one metric of a trained run",
        description="Scale generalisation (CSV row), equivariance errors (npz) "
        "or scale-pooling indices (npz) of a trained run.",
    )
    p.add_argument("metric", choices=EVALUATE_METRICS)
    p.add_argument("--run", required=True, type=Path, help="run directory (metrics.json, model.pt)")
    p.add_argument("--data", required=True, type=Path, help="the run's STIR .npz file")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--input-scale",
        choices=sorted(INPUT_SCALES),
        default="unit",
        help="equivariance only: 'raw255' reproduces the paper's 0..255 inputs",
    )
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from scalecnn.device import set_threads, tune_allocator
    from scalecnn.evaluation import METRICS
    from scalecnn.signals import abort_on_signals

    set_threads(args.threads)
    tune_allocator()
    kwargs = {"input_scale": args.input_scale} if args.metric == "equivariance" else {}
    # no checkpoint: a stop signal (time limit, scancel) ends it at once, cleanly
    with abort_on_signals(f"evaluate {args.metric} of {args.run}"):
        METRICS[args.metric](args.run, args.data, args.out, args.device, **kwargs)
    return 0


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_train,
    _add_download,
    _add_generate,
    _add_verify,
    _add_models,
    _add_mlflow_sync,
    _add_disco_basis,
    _add_evaluate,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``scalecnn`` argument parser with all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="scalecnn",
        description="Scale-equivariance study on STIR: data, training, evaluation, figures.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--version", action="version", version=f"scalecnn {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def _expected_failure(exc: Exception) -> bool:
    """Whether ``exc`` is a failure that needs no traceback (tracebacks are for bugs): a
    full disk, or a download that cannot succeed (no network, 404, a wrong md5)."""
    from scalecnn.atomic import DiskFullError
    from scalecnn.data.download import DownloadError

    return isinstance(exc, (DiskFullError, DownloadError))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 2 with a one-line message on bad input, 1 with
    one on an expected failure (a full disk, a failed download)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("scalecnn").error("%s", exc)
        print(f"scalecnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAIN_EXTRA:
            raise
        print(
            f"scalecnn {args.command}: error: needs {exc.name.split('.')[0]}, which is not "
            "installed; install the extra 'train' (pip install 'scalecnn[train]', or "
            "-e '.[train]' in the repository)",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:
        if not _expected_failure(exc):
            raise
        print(f"scalecnn {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
