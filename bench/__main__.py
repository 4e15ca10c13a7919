"""Every speed figure in one table: ``python -m bench [--repeats 10] [--official PATH]``."""
from __future__ import annotations

import argparse

from bench import app, browser, capture, explanation_time, export, forward, training
from bench.timing import parse_bench_arguments, print_table


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split(":")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--official", help="path of the official classification/dualvit.py, to time it too")
    arguments = parse_bench_arguments(parser)
    figures = forward.measure(arguments.repeats, arguments.official) + capture.measure(arguments.repeats) \
        + app.measure(arguments.repeats) + browser.measure(max(3, arguments.repeats // 2)) \
        + explanation_time.measure(1) + export.measure(max(1, arguments.repeats // 3)) \
        + training.measure(max(5, arguments.repeats))
    print_table("Dual-ViT Explorer performance", figures)


if __name__ == "__main__":
    main()
