"""The ``zoo`` command. The only module that knows about Hydra: ``zoo run`` composes ``conf/`` into the typed
``RunConfig`` and calls ``zoo.run.run``; ``zoo eval`` composes ``conf/eval.yaml`` (the same groups) into ``EvalConfig``
and calls ``zoo.eval_run.eval_run``; the other subcommands are plain argparse.

Errors users can cause (``ZooError``) are printed as one line, ``error: ...``, with exit status 2.
``zoo run`` exit statuses: 0 done (a multirun: every job attempted; failed jobs are rows with status "failed"),
1 config error (in a multirun: before any job starts) or unexpected exception, 2 ``ZooError``, 75 pre-empted after
writing a checkpoint (run the same command again to resume).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # before any cv2 import

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from zoo.errors import ZooError  # noqa: E402

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("zoo")


# ----------------------------------------------------------------------------------------------------------------------
# zoo run: the Hydra app


def _hydra_app(argv: list[str], command: str = "run") -> int:
    """``zoo run`` (config ``conf/config.yaml`` → ``zoo.run.run``) or ``zoo eval`` (``conf/eval.yaml`` →
    ``zoo.eval_run.eval_run``): the same config groups, the same error handling."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import DictConfig, OmegaConf

    from zoo.config import register_schema

    if not CONF_DIR.is_dir():
        raise ZooError(f"{CONF_DIR}: config folder not found; install the zoo from its repository (pip install -e .)")
    register_schema()

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config" if command == "run" else "eval")
    def app(cfg: DictConfig) -> None:
        from zoo.job import isolated, run_isolated
        from zoo.report import format_rows

        if command == "run":
            from zoo.run import run
        else:
            from zoo.eval_run import eval_run as run

        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
        if multirun and command == "run" and isolated(HydraConfig.get().launcher):
            row = run_isolated(cfg, Path(HydraConfig.get().runtime.output_dir))  # zoo.job: a killed job is a row
            if row:
                print(format_rows([row]))
            return
        try:
            run_cfg = OmegaConf.to_object(cfg)
            row = run(run_cfg)
        except ZooError as exc:
            if multirun:  # fault isolation: the failed row is written; the other jobs go on
                log.error("run failed: %s", exc)
                return
            print(f"error: {exc}", file=sys.stderr)  # once: Hydra's console log would repeat it
            raise SystemExit(2) from None  # as the other subcommands
        except Exception as exc:
            if multirun:
                log.exception("run failed: %s: %s", type(exc).__name__, exc)
                return
            raise
        if row:  # under torchrun only rank 0 returns its row
            print(format_rows([row]))

    check_hydra_dirs(argv)
    sys.argv = [f"zoo {command}", *map(open_ended_override, argv)]
    app()
    return 0


OPEN_ENDED = ("model.args.", "model.recipe.")  # free-form dicts: each model has its own keys


def open_ended_override(arg: str) -> str:
    """``model.args.KEY=V`` / ``model.recipe.KEY=V`` → ``++...``: these dicts are open-ended (a model's own arguments,
    not a schema), so a key the model's YAML does not list is added instead of being refused as "not in struct";
    the model itself then rejects a key it does not know, naming it."""
    return f"++{arg}" if arg.startswith(OPEN_ENDED) and "=" in arg else arg


def check_hydra_dirs(argv: list[str]) -> None:
    """Hydra creates its run/sweep folder before the job starts and reports a failure as a traceback; check the
    folder given on the command line first (up to its first ``${...}``), for a one-line error naming the key."""
    from zoo.io import check_writable_folder

    for arg in argv:
        key, _, value = arg.lstrip("+").partition("=")
        if key in ("hydra.run.dir", "hydra.sweep.dir") and value:
            fixed = value.split("${", 1)[0]
            folder = Path(fixed) if fixed.endswith("/") or fixed == value else Path(fixed).parent
            check_writable_folder(folder if str(folder) else Path("."), f"{key}={value}")


# ----------------------------------------------------------------------------------------------------------------------
# plain subcommands


def _cmd_list(args: argparse.Namespace) -> int:
    import zoo
    from zoo import pretrained

    shipped = set(pretrained.available())
    for name in zoo.list_models():
        spec = zoo.get_spec(name)
        kind = "baseline" if spec.is_baseline else "model"
        weights = "-" if spec.is_baseline else ("pretrained" if name in shipped else "no weights")
        print(
            f"{name:14s} {kind:8s} {weights:10s} output={spec.output_domain:15s} multiple={spec.size_multiple:<3d} "
            f"{spec.paper}"
        )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from zoo.score import score_folders

    report = score_folders(args.reference_dir, args.result_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "mean": report.means(),
                    "per_image": report.per_image,
                    "missing": report.missing,
                    "extra": report.extra,
                },
                indent=1,
            )
        )
    else:
        for image_id, values in report.per_image.items():
            print(image_id, " ".join(f"{k}={v:.4f}" for k, v in values.items()))
        print("mean", " ".join(f"{k}={v:.4f}" for k, v in report.means().items()), f"(n={len(report.per_image)})")
        if report.extra:
            print(f"extra results without a reference (ignored): {', '.join(report.extra)}", file=sys.stderr)
    if report.missing:
        print(f"error: results missing for references: {', '.join(report.missing)}", file=sys.stderr)
        return 1
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from zoo.report import write_report

    print(write_report(Path(args.runs), Path(args.out), plots=not args.no_plots))  # `make sweep` ends with the tables
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    if args.kind == "singlehdr-tf":
        from zoo.models.singlehdr.convert import convert_tf_checkpoint

        convert_tf_checkpoint(args.source, args.out)
    elif args.kind == "twostage-official":
        from zoo.models.twostage.convert import convert_official_checkpoint

        convert_official_checkpoint(args.source, args.out, trust=args.trust)
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from zoo.weights import zoo_version

    parser = argparse.ArgumentParser(prog="zoo", description="Single-image HDR reconstruction model zoo.")
    parser.add_argument("--version", action="version", version=f"hdr-zoo {zoo_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="train + evaluate (Hydra app: `zoo run model=hdrunet train=smoke`, `-m` for sweeps)", add_help=False
    )
    sub.add_parser(
        "eval",
        help="evaluate models/checkpoints without training (Hydra app: `zoo eval model=hdrunet "
        "data=real`, `-m` for a models × datasets matrix)",
        add_help=False,
    )
    sub.add_parser("list", help="list registered models and which have shipped weights").set_defaults(func=_cmd_list)

    score = sub.add_parser("score", help="score NTIRE-format results against references, pairing by image ID")
    score.add_argument("reference_dir", help="folder with NNNN_gt.png + NNNN_alignratio.npy")
    score.add_argument("result_dir", help="folder with NNNN.png + NNNN_alignratio.npy")
    score.add_argument("--json", action="store_true", help="print JSON instead of text")
    score.set_defaults(func=_cmd_score)

    report = sub.add_parser("report", help="regenerate tables and plots in results/ from results/runs/")
    report.add_argument("--runs", default="results/runs", help="folder of run rows (default: results/runs)")
    report.add_argument("--out", default="results", help="output folder (default: results)")
    report.add_argument("--no-plots", action="store_true", help="tables only")
    report.set_defaults(func=_cmd_report)

    convert = sub.add_parser("convert", help="convert an official checkpoint into a zoo checkpoint")
    convert.add_argument("kind", choices=["singlehdr-tf", "twostage-official"])
    convert.add_argument("source", help="official checkpoint (TF checkpoint prefix, or the two-stage .pth)")
    convert.add_argument("out", help="output .pt path")
    convert.add_argument(
        "--trust",
        action="store_true",
        help="two-stage only: allow unpickling the official file (do this only for files you trust)",
    )
    convert.set_defaults(func=_cmd_convert)

    try:
        from zoo.predict import add_predict_parser

        add_predict_parser(sub)
    except ImportError:
        pass
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if argv and argv[0] in ("run", "eval"):
            return _hydra_app(argv[1:], argv[0])
        args = build_parser().parse_args(argv)
        if args.verbose:
            logging.getLogger().setLevel(logging.DEBUG)
        return args.func(args)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `zoo run --help | head`: the reader left; nothing more to say
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
