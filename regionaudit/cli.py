"""The command line: parse options, call the library, write outputs, turn errors into exit codes.

Exit codes: 0 success, 1 a gate failed, 2 usage error / bad input / rejected model, 3 internal error.
"""

from __future__ import annotations

import sys
import traceback

import click

from regionaudit import __version__
from regionaudit.errors import RegionAuditError

EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


# Sections of the help, by option name; anything not named goes under "Other options".
SECTIONS = (
    ("Probe options (what the analysis looks at)", (
        "data", "points", "segments", "pairs", "max_points", "loops", "loop_radius", "loop_steps", "layout",
        "data_layout", "seed", "device", "dtype", "max_knots", "max_memory", "keep_knots", "input_shape",
        "output_name",
    )),
    ("2-D slice options", (
        "slice", "slice_points", "slice_scale", "slice_box", "max_regions", "keep_polygons", "slice_color", "slice_png",
    )),
    ("Output options", ("output", "json_out", "card", "card_append", "junit")),
    ("Gates", ("fail_if", "baseline", "max_increase")),
)


def option_sections(command: click.Command, ctx: click.Context) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, help rows) per section of `command`'s options, in SECTIONS order."""
    rows: dict[str, list] = {title: [] for title, _ in SECTIONS}
    other = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        title = next((t for t, names in SECTIONS if param.name in names), None)
        (rows[title] if title else other).append(record)
    return [(t, r) for t, r in rows.items() if r] + ([("Other options", other)] if other else [])


class SectionedCommand(click.Command):
    """A command whose help groups its options into probes, outputs and gates."""

    def format_options(self, ctx, formatter):
        for title, rows in option_sections(self, ctx):
            with formatter.section(title):
                formatter.write_dl(rows)


class AuditGroup(click.Group):
    """`regionaudit MODEL.onnx ...` runs the audit; `inspect`, `compare`, `metrics` are subcommands.

    The main usage is the audit, so `regionaudit --help` lists the audit's options in full, then
    the subcommands.
    """

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["audit", *args]
        elif args and args[0].startswith("-") and args[0] not in ("--help", "-h", "--version", "--debug"):
            args = ["audit", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "MODEL.onnx [OPTIONS]")
        formatter.write_usage(ctx.command_path, "COMMAND [ARGS]...", prefix="   or: ")

    def format_options(self, ctx, formatter):
        audit = self.commands["audit"]
        audit_ctx = click.Context(audit, info_name="audit", parent=ctx)
        for title, rows in option_sections(audit, audit_ctx):
            if title != "Other options":
                with formatter.section(f"{title}, for regionaudit MODEL.onnx"):
                    formatter.write_dl(rows)
        super().format_options(ctx, formatter)  # the group's own options, then the commands


class Range(click.IntRange):
    """An integer range shown as a person writes it ("0 to 10^6", "at least 1"), in the help and
    in the error for a value outside it."""

    def _describe_range(self) -> str:
        if self.max is None:
            return f"at least {_power(self.min)}"
        return f"{_power(self.min)} to {_power(self.max)}"


class PositiveRange(click.FloatRange):
    def _describe_range(self) -> str:
        return f"more than {_power(self.min)}, at most {_power(self.max)}"


def _power(n) -> str:
    """10**6 as 10^6 and 2**63 - 1 as 2^63 - 1; small numbers as they are."""
    n = int(n) if float(n).is_integer() else n
    if isinstance(n, int) and n >= 10_000:
        for base in (10, 2):
            for exp in range(2, 64):
                if base**exp == n:
                    return f"{base}^{exp}"
                if base**exp - 1 == n:
                    return f"{base}^{exp} - 1"
    return str(n)


# Bounds that keep an absurd request a usage error instead of an out-of-memory crash.
MAX_PROBES = 10**6
MAX_LOOPS = 10**4
MAX_LOOP_STEPS = 4096
MAX_LOOP_RADIUS = 1e4  # pixels; a shift beyond any image leaves zeros
MAX_SEED = 2**63 - 1  # a seed fits a signed 64-bit integer, as every JSON reader holds it
COUNT = Range(0, MAX_PROBES)


def probe_options(f):
    """Options shared by `regionaudit MODEL` and `regionaudit compare`."""
    opts = [
        click.option("--data", type=click.Path(dir_okay=False), help="Data rows (.npy or one-array .npz), (N, *input_shape) or flat."),
        click.option("--points", type=click.Path(dir_okay=False), help="Points for boundary distance, (N, *input_shape)."),
        click.option("--segments", type=click.Path(dir_okay=False), help="Explicit segments, (N, 2, *input_shape)."),
        click.option("--pairs", type=COUNT, metavar="N", default=None, help="Segments between seeded random pairs of data rows [100]."),
        click.option("--max-points", type=COUNT, metavar="N", default=None, help="Points for boundary distance: the first rows [100]."),
        click.option("--loops", type=Range(0, MAX_LOOPS), metavar="N", default=None, help="Closed translation loops through the first N images [0]."),
        click.option("--loop-radius", metavar="PIXELS", type=PositiveRange(0, MAX_LOOP_RADIUS, min_open=True), default=None, help="Loop radius in pixels [2]."),
        click.option("--loop-steps", type=Range(3, MAX_LOOP_STEPS), metavar="M", default=None, help="Shifts per loop [16]."),
        click.option("--layout", type=click.Choice(["chw", "hwc"]), default=None, help="The model's image layout, for loops [chw]."),
        click.option(
            "--data-layout",
            type=click.Choice(["chw", "hwc"]),
            default=None,
            help="Layout of the image arrays in --data, --points and --segments; transposed to the model's --layout when they differ [chw].",
        ),
        click.option("--seed", type=Range(0, MAX_SEED), metavar="S", default=None, help="Seed for pairs and synthetic probes [0]."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", help="Where the analysis runs; auto takes cuda when available [cpu]."),
        click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None, help="Precision [float64]."),
        click.option("--max-knots", type=Range(min=1), metavar="K", default=None, help="Stop a segment after this many knots (noted in the result)."),
        click.option("--max-memory", default=None, metavar="SIZE", help="Memory bound for batched work, e.g. 2G [a fraction of free memory]."),
        click.option("--keep-knots", is_flag=True, help="Store knot positions per segment in the JSON."),
        click.option("--input-shape", default=None, metavar="SHAPE", help="Input shape without the batch axis, e.g. 3,32,32."),
        click.option("--output-name", default=None, metavar="NAME", help="Graph output to analyse [the first]."),
        click.option("--quiet", "-q", is_flag=True, help="No progress, estimate or status lines on stderr (warnings and errors stay)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def slice_options(f):
    """The 2-D slice's options (the audit command only)."""
    opts = [
        click.option("--slice/--no-slice", "slice", default=None, help="Exact 2-D slice through three data points [on]."),
        click.option("--slice-points", type=click.Path(dir_okay=False), metavar="P.npy", help="The slice's three points, (3, *input_shape)."),
        click.option("--slice-scale", type=PositiveRange(0, 10**6, min_open=True), metavar="S", default=None, help="Half-width of the slice's square / circumradius [1.25]."),
        click.option("--slice-box", type=float, nargs=4, default=None, metavar="XMIN XMAX YMIN YMAX", help="The slice's box, for models with a 2-D input [data range + 10%]."),
        click.option("--max-regions", type=Range(min=1), metavar="N", default=None, help="Stop the slice's partition at this many regions (noted) [200000]."),
        click.option("--keep-polygons", is_flag=True, help="Store every slice region's polygon in the JSON."),
        click.option("--slice-color", type=click.Choice(["region", "class"]), default="region", show_default=True, help="Colour slice regions apart, or by predicted class."),
        click.option("--slice-png", type=click.Path(dir_okay=False), metavar="FILE", help="Write the slice's picture: .png or .svg."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def output_options(f):
    opts = [
        click.option("-o", "--output", "output", type=click.Path(dir_okay=False), help="Report path: .html or .pdf."),
        click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the result JSON here."),
        click.option("--fail-if", "fail_if", multiple=True, metavar="GATE", help='Gate, e.g. "density.summary.median > 200" (repeatable).'),
        click.option("--junit", type=click.Path(dir_okay=False), help="Write gate results as JUnit XML."),
        click.option("--debug", is_flag=True, help="Show tracebacks for internal errors."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="regionaudit")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx, debug):
    """Exact linear-region audits of ReLU networks exported to ONNX.

    \b
    regionaudit MODEL.onnx [probe options] [-o report.html|report.pdf] [--json OUT] [--card OUT.md] [gates]
    regionaudit inspect MODEL.onnx [--json OUT]
    regionaudit compare A.onnx B.onnx [probe options] [-o ...] [--json OUT]
    regionaudit metrics [RESULT.json]
    """
    ctx.obj = {"debug": debug}


def _commands(quiet: bool = False):
    # imported here so `regionaudit --version` and `--help` stay fast; torch and onnxruntime take
    # seconds to import, so a person at a terminal is told first
    from regionaudit.progress import say

    if not quiet:
        say("starting: loading torch and onnxruntime...")
    from regionaudit import commands

    return commands


@cli.command(
    "audit",
    cls=SectionedCommand,
    short_help="Audit MODEL (the default: `regionaudit MODEL.onnx` runs this).",
)
@click.argument("model", type=click.Path(dir_okay=False))
@probe_options
@slice_options
@output_options
@click.option("--card", type=click.Path(dir_okay=False), help="Write a Markdown model-card section.")
@click.option("--card-append", type=click.Path(dir_okay=False), help="Insert or replace the section in an existing model card.")
@click.option("--baseline", type=click.Path(dir_okay=False), help="A previous result JSON to compare against.")
@click.option("--max-increase", multiple=True, metavar="PATH=BOUND", help="Bound on the increase over the baseline: PATH=10% or PATH=ABS.")
def audit_cmd(model, **kw):
    """Audit MODEL: density, deviation and boundary distance, as a report and/or JSON."""
    return _commands(kw.get("quiet")).run_audit(model, kw)


@cli.command("inspect", short_help="Import MODEL and show its layers, units and check against onnxruntime.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the model record as JSON.")
@click.option("--input-shape", default=None, help="Input shape without the batch axis, e.g. 3,32,32.")
@click.option("--output-name", default=None, help="Graph output to analyse [the first].")
def inspect_cmd(model, json_out, input_shape, output_name):
    """Import MODEL and show its IR: nodes, units, parameters, validation against onnxruntime."""
    return _commands().run_inspect(model, json_out, input_shape, output_name)


@cli.command("compare", cls=SectionedCommand, short_help="Measure models A and B on the same probes, paired per segment.")
@click.argument("model_a", type=click.Path(dir_okay=False))
@click.argument("model_b", type=click.Path(dir_okay=False))
@probe_options
@output_options
def compare_cmd(model_a, model_b, **kw):
    """Measure A and B on the same probes; paired differences B - A per segment."""
    return _commands(kw.get("quiet")).run_compare(model_a, model_b, kw)


@cli.command("metrics", short_help="List the metric paths that gates can name.")
@click.argument("result", required=False, type=click.Path(dir_okay=False))
def metrics_cmd(result):
    """List the gateable metric paths (of RESULT.json, or of an audit result in general)."""
    return _commands().run_metrics(result)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]  # accepted anywhere on the line
    if not args:
        click.echo(cli.get_help(click.Context(cli, info_name="regionaudit")))
        sys.exit(EXIT_USAGE)
    try:
        code = cli.main(args=args, prog_name="regionaudit", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.exceptions.Abort:
        click.echo("regionaudit: aborted", err=True)
        code = EXIT_USAGE
    except click.ClickException as e:
        hint = f" (see {help_command(e.ctx)})" if isinstance(e, click.UsageError) else ""
        click.echo(f"regionaudit: error: {one_line(e.format_message())}{hint}", err=True)
        code = EXIT_USAGE
    except RegionAuditError as e:
        click.echo(f"regionaudit: error: {one_line(str(e))}", err=True)
        code = e.exit_code
    except KeyboardInterrupt:
        click.echo("regionaudit: interrupted", err=True)
        code = 130
    except Exception as e:  # anything else is our bug: one line, traceback only with --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"regionaudit: internal error: {type(e).__name__}: {one_line(str(e))} "
            "(please report it; rerun with --debug for the traceback)",
            err=True,
        )
        code = EXIT_INTERNAL
    sys.exit(code or 0)


def help_command(ctx: click.Context | None) -> str:
    """The help that lists the option at fault: the audit's options are in `regionaudit --help`,
    a subcommand's in its own."""
    if ctx is None or ctx.parent is None or ctx.info_name == "audit":
        return "regionaudit --help"
    return f"regionaudit {ctx.info_name} --help"


def one_line(msg: str) -> str:
    return " ".join(msg.split())
