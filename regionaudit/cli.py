"""The command line: parse options, call the library, write outputs, turn errors into exit codes.

Exit codes: 0 success, 1 a gate failed, 2 usage error / bad input / rejected model, 3 internal error.
"""

from __future__ import annotations

import signal
import sys
import traceback

import click

from regionaudit.version import __version__
from regionaudit.errors import Interrupted, RegionAuditError, Stopped, Terminated, TimeLimit, one_line
from regionaudit.heap import keep_freed_memory
from regionaudit.limits import signals_deferred, time_limit
from regionaudit.options import Options, Spec, option_defaults, option_flag, option_specs, slice_option_names

EXIT_GATE, EXIT_USAGE, EXIT_INTERNAL = 1, 2, 3


# Sections of the help, by option name; anything not named goes under "Other options".
SECTIONS = (
    ("Probe options (what the analysis looks at)", tuple(n for n in option_specs() if n not in slice_option_names())),
    ("2-D slice options", (*slice_option_names(), "slice_png")),
    ("Output options", ("output", "json_out", "card", "card_append", "junit")),
    ("Gates", ("fail_if", "baseline", "max_increase")),
)


def option_sections(command: click.Command, ctx: click.Context) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, help rows) per section of `command`'s options, in SECTIONS order. Arguments are in
    the usage line: click gives them a help row too, which would list MODEL as an option."""
    rows: dict[str, list] = {title: [] for title, _ in SECTIONS}
    other = []
    for param in command.get_params(ctx):
        record = None if isinstance(param, click.Argument) else param.get_help_record(ctx)
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


def _click_type(spec: Spec):
    """The click type that checks an option's range as it is parsed (the range `Options` checks)."""
    if spec.file:
        return click.Path(dir_okay=False)
    if spec.choices is not None:
        return click.Choice(list(spec.choices))
    if spec.parse is not None or spec.low is None:
        return None  # text, parsed by spec.parse
    if spec.low_open or isinstance(spec.high, float):
        return PositiveRange(spec.low, spec.high, min_open=spec.low_open)
    return Range(spec.low, spec.high)


def _click_option(name: str, spec: Spec):
    if spec.flag:
        return click.option(option_flag(name), is_flag=True, default=None, help=spec.help)
    shown = spec.default_text if spec.default_text is not None else option_defaults()[name]
    help = spec.help if shown is None else f"{spec.help.rstrip('.')} [{shown}]."
    if spec.switch:
        flag = option_flag(name)
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help)
    kind = float if spec.nargs > 1 else _click_type(spec)
    return click.option(
        option_flag(name), type=kind, nargs=spec.nargs, default=None, help=help, metavar=spec.metavar
    )


def click_options(names):
    """Decorator: the click options of these fields of `Options`, from their one definition."""
    specs = option_specs()

    def decorate(f):
        for name in reversed(names):
            f = _click_option(name, specs[name])(f)
        return f

    return decorate


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress, estimate or status lines on stderr (warnings and errors stay)."
)


def probe_options(f):
    """Options shared by `regionaudit MODEL` and `regionaudit compare`: every field of `Options`
    but the 2-D slice's, the probe files first."""
    f = quiet_option(f)
    specs = {name: spec for name, spec in option_specs().items() if name not in slice_option_names()}
    return click_options(sorted(specs, key=lambda name: not specs[name].file))(f)


def slice_options(f):
    """The 2-D slice's options (the audit command only), and its picture."""
    f = click.option(
        "--slice-png", type=click.Path(dir_okay=False), metavar="FILE", help="Write the slice's picture: .png or .svg."
    )(f)
    return click_options(list(slice_option_names()))(f)


def options_from_cli(kw: dict) -> Options:
    """`Options` from click's values, built once: only what was given; text parsed by its Spec."""
    given = {}
    for name, spec in option_specs().items():
        value = kw.pop(name, None)
        if value is not None and spec.parse is not None:
            value = spec.parse(value)
        if spec.flag and not value:
            value = None  # a switch left off is not given: a baseline may still fill it
        given[name] = value
    return Options.from_given(given)


def _wanted(kw: dict):
    """What a command was asked to write and check, typed once (the options that change numbers
    went into `Options`)."""
    from regionaudit.commands import Wanted

    return Wanted(
        report=kw.get("output"),
        json=kw.get("json_out"),
        card=kw.get("card"),
        card_append=kw.get("card_append"),
        junit=kw.get("junit"),
        slice_png=kw.get("slice_png"),
        fail_if=tuple(kw.get("fail_if") or ()),
        max_increase=tuple(kw.get("max_increase") or ()),
        baseline=kw.get("baseline"),
        quiet=bool(kw.get("quiet")),
    )


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
    regionaudit inspect MODEL.onnx [--json OUT] [-q]
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
    # a --timeout, Ctrl-C or SIGTERM that comes while numpy loads would reach onnxruntime's native
    # import as a failed "import numpy": it is held until the libraries are loaded, then acted on
    with signals_deferred():
        import onnxruntime

        from regionaudit import commands

    # onnxruntime's own warnings (e.g. a deprecated attribute in the model) would reach stderr
    # as raw log lines; what matters of them reaches the user as the import check's result
    onnxruntime.set_default_logger_severity(3)
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
    opts = options_from_cli(kw)
    with time_limit(opts.timeout):
        return _commands(kw.get("quiet")).run_audit(model, opts, _wanted(kw))


@cli.command("inspect", short_help="Import MODEL and show its layers, units and check against onnxruntime.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the model record as JSON.")
@click_options(["input_shape", "output_name", "max_file_size", "timeout"])
@quiet_option
def inspect_cmd(model, json_out, **kw):
    """Import MODEL and show its IR: nodes, units, parameters, validation against onnxruntime."""
    quiet = bool(kw.pop("quiet"))
    opts = options_from_cli(kw)
    with time_limit(opts.timeout, less_work=None):  # (inspect measures nothing: no option asks for less)
        return _commands(quiet).run_inspect(model, opts, json_out, quiet)


@cli.command("compare", cls=SectionedCommand, short_help="Measure models A and B on the same probes, paired per segment.")
@click.argument("model_a", type=click.Path(dir_okay=False))
@click.argument("model_b", type=click.Path(dir_okay=False))
@probe_options
@output_options
def compare_cmd(model_a, model_b, **kw):
    """Measure A and B on the same probes; paired differences B - A per segment."""
    opts = options_from_cli(kw)
    with time_limit(opts.timeout):
        return _commands(kw.get("quiet")).run_compare(model_a, model_b, opts, _wanted(kw))


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
    keep_freed_memory()  # this process is ours: large tensors are reused, not faulted in again
    previous = _stop_on_signals()
    try:
        code = cli.main(args=args, prog_name="regionaudit", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # click's own turn of Ctrl-C
            click.echo(f"regionaudit: {Interrupted.what}; no output was left half-written", err=True)
            code = Interrupted.exit_code
        else:
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
        click.echo(f"regionaudit: {Interrupted.what}; no output was left half-written", err=True)
        code = Interrupted.exit_code
    except Stopped as e:
        click.echo(f"regionaudit: {e.what}; no output was left half-written", err=True)
        code = e.exit_code
    except TimeLimit as e:
        click.echo(f"regionaudit: error: {one_line(str(e))}", err=True)
        code = TimeLimit.exit_code
    except MemoryError:
        click.echo("regionaudit: error: out of memory; lower --max-memory or ask for less work (--pairs, --max-points)", err=True)
        code = EXIT_USAGE
    except Exception as e:  # anything else is our bug: one line, traceback only with --debug
        if debug:
            traceback.print_exc()
        click.echo(
            f"regionaudit: internal error: {type(e).__name__}: {one_line(str(e))} "
            "(please report it; rerun with --debug for the traceback)",
            err=True,
        )
        code = EXIT_INTERNAL
    finally:
        _restore(previous)
    sys.exit(code or 0)


def help_command(ctx: click.Context | None) -> str:
    """The help that lists the option at fault: the audit's options are in `regionaudit --help`,
    a subcommand's in its own."""
    if ctx is None or ctx.parent is None or ctx.info_name == "audit":
        return "regionaudit --help"
    return f"regionaudit {ctx.info_name} --help"


def _stop_on_signals() -> dict:
    """SIGINT and SIGTERM unwind the run (temporary files removed; exit code 130 / 143) instead
    of killing the process where it stands. A SIGINT ignored by whoever started us (a background
    job) stays ignored. Returns the handlers to put back."""

    def interrupt(signum, frame):
        raise Interrupted()

    def terminate(signum, frame):
        raise Terminated()

    try:
        previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
        return previous
    except ValueError:  # not the main thread (an embedding application): leave its signals alone
        return {}


def _restore(previous: dict) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

