"""Command line: `frlib prepare | train | evaluate | predict | demo` (also `python -m frlib`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from frlib.config import Config

EPILOG = (
    "Data specs: KIND:PATH_OR_URL, e.g. dataturks:Face_Recognition.json, synthetic:data/synthetic"
)


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", help="data spec (repeat to combine sources)")
    parser.add_argument("--image-size", type=int, help="crop side in pixels")
    parser.add_argument("--seed", type=int, help="the one seed for splits, shuffles and weights")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny data and epochs (as FRLIB_SMOKE=1)"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="any Config field"
    )


def _train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--backbone", help="resnet (default), tcs2019, mobilenetv3, efficientnetb0")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--weights", help="'imagenet' for pretrained keras.applications backbones")
    parser.add_argument("--strategy", help="auto, default, mirrored or tpu")


def build_config(args: argparse.Namespace, **extra) -> Config:
    """Config from defaults (or smoke), then the command-line overrides."""
    overrides = {}
    fields = {f.name: f for f in dataclasses.fields(Config)}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {item}: unknown field {key!r}; fields: {', '.join(fields)}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    for name in fields:
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    overrides.update({k: v for k, v in extra.items() if v is not None})
    if isinstance(overrides.get("data"), str):  # --set data=SPEC
        overrides["data"] = [overrides["data"]]
    return Config.smoke(**overrides) if args.smoke else Config.from_env(**overrides)


def cmd_prepare(args) -> int:
    from frlib.data import prepare

    config = build_config(args)
    data = prepare(config)
    out = Path(args.out)
    report = {
        "images": data.report["images"],
        "faces": {
            "usable": data.report["faces"]["usable"],
            "skipped": data.report["faces"]["skipped"],
        },
        "splits": data.report["splits"],
    }
    from frlib.files import write_json

    write_json(out / "report.json", report)
    if args.to_tfrecord:
        from frlib.records_io import write_tfrecords

        paths = write_tfrecords(data, args.to_tfrecord, shards=args.shards, seed=config.seed)
        print(f"wrote {len(paths)} TFRecord shards under {args.to_tfrecord}")
    from frlib.summary import print_summary

    print_summary(data)
    print(f"report: {out / 'report.json'}")
    return 0 if data.report["faces"]["usable"] else 1


def cmd_train(args) -> int:
    from frlib.train import train

    run = train(build_config(args, out=args.out), verbose=args.verbose)
    print(f"run directory: {run}")
    return 0


def cmd_evaluate(args) -> int:
    from frlib.evaluate import evaluate_run, report_table
    from frlib.files import write_json

    report = evaluate_run(args.model, args.data)
    print(report_table(report).to_string())
    if args.report:
        write_json(args.report, report)
        print(f"report: {args.report}")
    return 0


def cmd_predict(args) -> int:
    from frlib.predict import Predictor, annotate

    predictor = Predictor.load(args.model)
    results = predictor.predict_many(args.inputs)
    for index, (item, result) in enumerate(zip(args.inputs, results, strict=True)):
        if args.json:
            print(json.dumps({k: v for k, v in result.items() if k != "image_size"}))
        else:
            print(format_result(result))
        if args.annotate and "error" not in result:
            target = Path(args.annotate)
            if len(args.inputs) > 1:
                target = target.with_name(f"{target.stem}_{index}{target.suffix}")
            annotate(item, result).save(target)
    return 1 if any("error" in r for r in results) else 0


def format_result(result: dict) -> str:
    """A readable table of one prediction result."""
    if "error" in result:
        return f"{result['input']}: ERROR {result['error']}"
    head = f"{result['input']}: {len(result['faces'])} face(s)"
    if not result["face_detected"]:
        head += " (no face detected: whole image classified)"
    lines = [head]
    for face in result["faces"]:
        parts = [
            f"{t}={face[t]['label']} ({max(face[t]['probs'].values()):.0%})"
            for t in ("emotion", "age", "ethnicity", "gender")
        ]
        lines.append(f"  box={face['box']}  " + "  ".join(parts))
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from frlib.demo import run_demo

    run_demo(Path(args.out), smoke=args.smoke, epochs=args.epochs)
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frlib", description=__doc__, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="load annotations, download images, split, report")
    _config_args(p)
    p.add_argument("--out", required=True, help="folder for report.json")
    p.add_argument("--to-tfrecord", metavar="DIR", help="also export crops as sharded TFRecords")
    p.add_argument("--shards", type=int, default=8)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("train", help="train a model into a run directory (resumes if interrupted)")
    _config_args(p)
    _train_args(p)
    p.add_argument("--out", help="run directory")
    p.add_argument("--verbose", type=int, default=2, help="1 = progress bar, 2 = a line per epoch")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="score a run on its test split or on other data")
    p.add_argument("--model", required=True, help="run directory")
    p.add_argument("--data", action="append", help="data spec (default: the run's own test split)")
    p.add_argument("--report", help="write the JSON report here")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("predict", help="detect and label faces in images or URLs")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_URL")
    p.add_argument("--model", help="run directory (default: shipped model, else latest run)")
    p.add_argument("--json", action="store_true", help="one JSON line per input")
    p.add_argument("--annotate", metavar="OUT.png", help="save the picture with boxes and labels")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("demo", help="the whole job offline: data, train, evaluate, predict")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=int)
    p.add_argument("--smoke", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
