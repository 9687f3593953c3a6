"""Closed-loop load on a running service, at several concurrency levels (wrk).

    slimformer serve --run outputs/optimize-full --port 8080 &
    slimformer loadtest http://127.0.0.1:8080 --data_file ../shared/data/clinc150 \
        --concurrency 1 8 32 128 --server_pid $! --output_dir outputs/loadtest

Sends the test split's queries (or --queries FILE, one a line) and writes loadtest.json,
loadtest.md and loadtest.png (p99 against throughput) with the machine it ran on. Send load
only to services on this machine or your own test hosts.
"""

from __future__ import annotations

import json
from pathlib import Path


def test_queries(data_file: str | None, queries: str | None) -> list[str]:
    """The queries to send: a file of lines, or CLINC150's test split (raw JSON)."""
    from slimformer.errors import fail

    if queries:
        path = Path(queries)
        if not path.is_file():
            fail(f"--queries {path}: no such file")
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [t for t in texts if t]
    if not data_file:
        fail("give --data_file (CLINC150's raw JSON) or --queries FILE")
    path = Path(data_file)
    path = path / "data_oos_plus.json" if path.is_dir() else path
    if not path.is_file():
        fail(f"--data_file {path}: no such file")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        return [row[0] for key in ("test", "oos_test") for row in content[key]]
    except (ValueError, KeyError, TypeError, IndexError) as err:
        fail(f"{path} is not CLINC150's raw JSON with a test split: {err}")


def build_parser():
    import argparse

    from slimformer.cli.light_args import Parser

    parser = Parser(prog="slimformer loadtest", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the service, e.g. http://127.0.0.1:8080")
    parser.add_argument("--data_file", default=None)
    parser.add_argument("--queries", default=None)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--duration_s", type=float, default=10.0)
    parser.add_argument("--warmup_s", type=float, default=2.0)
    parser.add_argument("--timeout_s", type=float, default=10.0)
    parser.add_argument("--server_pid", type=int, default=None,
                        help="the server's pid, to record its CPU time")
    parser.add_argument("--name", default=None, help="what the report calls the service")
    parser.add_argument("--output_dir", default="outputs/loadtest")
    return parser


def main(argv: list[str] | None = None) -> None:
    from slimformer.checks import check_writable
    from slimformer.cli.light_args import parse
    from slimformer.errors import fail
    from slimformer.evaluation.environment import environment
    from slimformer.evaluation.loadtest import LoadSettings, check_service, load_test
    from slimformer.evaluation.loadtest_report import markdown, write_report
    from slimformer.files import check_target, staged_folder, write_marker

    parser = build_parser()
    args = parse(parser, argv)
    for name, value, low in (("duration_s", args.duration_s, 1), ("warmup_s", args.warmup_s, 0),
                             ("timeout_s", args.timeout_s, 0.1)):
        if not (value == value and low <= value < 86_400):
            fail(f"--{name} must be in [{low}, 86400), got {value}")
    if any(not 1 <= c <= 10_000 for c in args.concurrency):
        fail(f"--concurrency levels must be in [1, 10000], got {args.concurrency}")
    if not args.url.startswith(("http://", "https://")):
        fail(f"the URL must start with http:// or https://, got {args.url!r}")
    check_writable(args.output_dir, "output_dir")
    flag = "another --output_dir"  # (an earlier load test's report there is replaced)
    check_target(args.output_dir, "loadtest", flag=flag)
    texts = test_queries(args.data_file, args.queries)
    check_service(args.url)  # before anything is written
    settings = LoadSettings(url=args.url, concurrency=args.concurrency,
                            duration_s=args.duration_s, warmup_s=args.warmup_s,
                            server_pid=args.server_pid, timeout_s=args.timeout_s)
    with staged_folder(args.output_dir, step="loadtest", flag=flag) as stage:
        result = load_test(settings, texts)
        result.update(name=args.name, environment=environment(threads=0))
        write_report(result, stage)
        write_marker(stage, "loadtest")
    print(markdown(result))
