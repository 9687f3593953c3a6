"""Serve a variant over HTTP: `POST /predict`, `/health`, `/info`, `/metrics` and a page at /.

    slimformer serve outputs/optimize-full/variants/student-3l-1-3-5/student-3l-1-3-5-onnx-O2-int8
    slimformer serve --run outputs/optimize-full        # the variant the run chose
    curl -s localhost:8080/predict -d '{"inputs": "what is my balance"}'

ONNX folders run on the lean predictor (onnxruntime + tokenizers): the service never imports
torch. Requests arriving together are batched (--max_batch_size, --max_wait_ms); beyond
--max_queue waiting texts a request gets 429 at once; SIGTERM finishes the requests in flight
and exits 0.
"""

from __future__ import annotations

from pathlib import Path


def build_parser():
    import argparse

    from slimformer.cli.light_args import Parser, add_fields
    from slimformer.serving.serve_settings import ServeSettings

    parser = Parser(prog="slimformer serve", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default=None, help="a variant folder")
    parser.add_argument("--run", default=None,
                        help="an optimize run folder: serve the variant its best.json chose")
    add_fields(parser, ServeSettings)
    return parser


def main(argv: list[str] | None = None) -> None:
    from slimformer.cli.light_args import instance, parse
    from slimformer.errors import fail
    from slimformer.serving.serve_settings import ServeSettings

    parser = build_parser()
    args = parse(parser, argv)
    settings = instance(ServeSettings, args)
    if bool(args.folder) == bool(args.run):
        fail("give a variant folder or --run RUN_FOLDER (one of them)")
    from slimformer.serving.server import chosen_variant, serve

    summary = None
    if args.run:
        folder, summary = chosen_variant(Path(args.run))
    else:
        folder = Path(args.folder)
    print(f"serving {folder} on http://{settings.host}:{settings.port} "
          f"({settings.workers} worker(s) x {settings.threads} thread(s)); Ctrl-C stops")
    serve(folder, settings, summary)
