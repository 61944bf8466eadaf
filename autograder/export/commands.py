"""The ``export`` and ``bundle`` subcommands: their flags and what they run (``cli.py``
adds them to its parser and calls ``run``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import VISIBILITIES

__all__ = ["add_parsers", "run"]


def add_parsers(sub) -> None:
    e = sub.add_parser("export", help="turn a grading output into a course platform's files "
                                      "(no regrading)")
    e.add_argument("--format", required=True,
                   choices=("gradescope", "prairielearn", "canvas", "nbgrader"))
    e.add_argument("--out", required=True, type=Path, help="folder to write (created if "
                   "needed; nbgrader: the course folder)")
    e.add_argument("--visibility", default="visible", choices=VISIBILITIES,
                   help="Gradescope: the result's and the worked-example checks' visibility "
                        "(default visible)")
    e.add_argument("--hidden-visibility", default="after_published", choices=VISIBILITIES,
                   help="Gradescope: visibility of checks on hidden inputs "
                        "(default after_published)")
    e.add_argument("--roster", type=Path, help="Canvas: the gradebook export (CSV) to join to")
    e.add_argument("--roster-key", default="SIS Login ID",
                   help="Canvas: the roster column that holds the student ids "
                        "(default 'SIS Login ID')")
    e.add_argument("--canvas-assignment", metavar='"NAME (ID)"',
                   help='Canvas: the assignment\'s column, e.g. "Assignment 1 (12345)"')
    e.add_argument("grading_out", type=Path, metavar="GRADING_OUT",
                   help="the --out folder of 'python -m autograder grade'")
    b = sub.add_parser("bundle", help="build a platform's autograder package")
    b.add_argument("platform", choices=("gradescope",))
    b.add_argument("--assignment", required=True, help="assignment id, e.g. assignment1")
    b.add_argument("--out", required=True, type=Path, help="the zip to write")
    b.add_argument("--parts", metavar="NAME[,NAME]", help="grade only these parts there")
    b.add_argument("--profile", choices=("quick", "full"), help="size of parts that train")
    b.add_argument("--hidden-visibility", default="after_published", choices=VISIBILITIES)


def run(args: argparse.Namespace) -> int:
    if args.command == "bundle":
        from .bundle import build

        path = build(args.assignment, args.out, parts=args.parts, profile=args.profile,
                     hidden_visibility=args.hidden_visibility)
        print(f"wrote {path}: upload it as the Gradescope assignment's autograder")
        return 0
    from . import Settings, export

    settings = Settings(visibility=args.visibility, hidden_visibility=args.hidden_visibility,
                        roster=args.roster, roster_key=args.roster_key,
                        canvas_assignment=args.canvas_assignment)
    notes = export(args.format, args.grading_out, args.out, settings)
    for note in notes:
        print(note, file=sys.stderr)
    print(f"exported {args.grading_out} as {args.format} into {args.out}")
    return 0
