"""Notebook magics: ``%wb`` for every view and action, ``%%wb track`` to run a cell as a tracked MLflow run.

Load with ``%load_ext workbench`` (or list ``workbench`` in
``c.InteractiveShellApp.extensions`` of an IPython profile). Each subcommand
parses its arguments, calls one service function and returns its records:
``runs = %wb runs`` holds :class:`~workbench.tracking.RunSummary` records and
the cell shows them as a table (HTML in a notebook, text in a terminal).
Wrong arguments show that subcommand's usage, a failing backend shows the
error's message and hint; neither shows a traceback. ``%wb help`` lists the
subcommands.

This module imports no backend: services load on first use, so loading the
extension stays quick.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, SimpleMatcherResult, context_matcher
from IPython.core.error import StdinNotImplementedError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from workbench import _magics_render as render
from workbench.config import Settings, load_settings
from workbench.errors import InvalidInput, WorkbenchError
from workbench.gpu.source import SOURCE_NAMES

GPU_WATCH_SECONDS = 60.0
# how long a one-shot GPU view waits for the first sample (a Prometheus fleet may take a few seconds)
FIRST_SAMPLE_TIMEOUT = 15.0
COMPLETION_TTL_S = 30.0
_YES_HINT = "Pass --yes to promote without the question."


class MagicError(Exception):
    """A ``%wb`` command that could not run: shown as its lines (usage, or message and hint), never a traceback."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback."""
        return self.lines


class _HelpShown(Exception):
    """``--help`` printed a subcommand's help; nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises instead of exiting, so a bad argument never ends in a traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise MagicError([*self.format_usage().rstrip().splitlines(), f"{self.prog}: error: {message}"])

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            print(message)
        raise _HelpShown


# --------------------------------------------------------------------------- the command line of %wb

# subcommand -> one line of help; the parsers below follow this order
COMMANDS: dict[str, str] = {
    "status": "the workspace at a glance: data, experiments and run counts, models and aliases",
    "runs": "search runs with MLflow's filter and order_by syntax",
    "run": "one run: params, metrics, tags, lineage, artifacts",
    "compare": "runs side by side: metric curves and the params that differ",
    "models": "registered models and aliases; with NAME, that model's versions",
    "promote": "move an alias to a version, after comparing it with the current holder",
    "rollback": "move an alias back to its previous holder",
    "deploy": "serve a registered model as a REST endpoint",
    "deployments": "the deployments of this workspace",
    "gpu": "live GPUs: utilization, memory, power, and who runs what",
    "dashboard": "one page of the dashboard, inline in the notebook (default: overview)",
    "help": "this list, or one subcommand's usage",
    "track": "(a cell magic) run the cell as an MLflow run with lineage, duration and GPU use",
}


def _build_parsers() -> tuple[dict[str, _Parser], dict[str, dict[str, bool]]]:
    """A parser per subcommand, and per subcommand its options (flag -> whether it takes a value)."""
    parsers: dict[str, _Parser] = {}
    options: dict[str, dict[str, bool]] = {}
    for name, summary in COMMANDS.items():
        prog = "%%wb track" if name == "track" else f"%wb {name}"
        parsers[name] = _Parser(prog=prog, description=summary)
        options[name] = {}

    def option(name: str, *flags: str, **kwargs: Any) -> None:
        parsers[name].add_argument(*flags, **kwargs)
        options[name].update(dict.fromkeys(flags, kwargs.get("action") != "store_true"))

    def positional(name: str, dest: str, metavar: str, **kwargs: Any) -> None:
        parsers[name].add_argument(dest, metavar=metavar, **kwargs)

    option("runs", "--experiment", "-e", action="append", metavar="NAME", help="name or id (repeatable)")
    option("runs", "--filter", "-f", default="", metavar="F", help='e.g. "metrics.accuracy > 0.9"')
    option("runs", "--order-by", "-o", action="append", metavar="KEY", help='e.g. "metrics.accuracy DESC"')
    option("runs", "--max", type=int, default=50, metavar="N", help="runs per page (default 50)")
    option("runs", "--page-token", metavar="T", help="continue from a previous page")
    positional("run", "run_id", "RUN_ID")
    positional("compare", "run_ids", "RUN_ID", nargs="+")
    positional("models", "name", "NAME", nargs="?")
    positional("promote", "model", "MODEL")
    positional("promote", "version", "VERSION")
    option("promote", "--alias", "-a", default="champion", metavar="A", help="default: champion")
    option("promote", "--yes", "-y", action="store_true", help="do not ask for confirmation")
    option("promote", "--override-gates", action="store_true", help="promote even if gates fail (audited)")
    positional("rollback", "model", "MODEL")
    option("rollback", "--alias", "-a", default="champion", metavar="A", help="default: champion")
    positional("deploy", "model_ref", "MODEL@ALIAS", help="or MODEL/VERSION")
    option("deploy", "--name", metavar="N", help="deployment name (default: from the model)")
    option("deploy", "--port", type=int, metavar="P", help="endpoint port (default: a free one)")
    option("deploy", "--target", default="local", metavar="T", help="local, or a deployments plugin URI")
    option("deploy", "--no-wait", action="store_true", help="return at once; the start goes on as a job")
    option("gpu", "--seconds", type=float, default=GPU_WATCH_SECONDS, metavar="N", help="stay live N s (default 60)")
    option("gpu", "--source", choices=SOURCE_NAMES, metavar="S", help=f"one of {', '.join(SOURCE_NAMES)}")
    option("gpu", "--stop", action="store_true", help="stop every live GPU view of this kernel")
    positional("dashboard", "page", "PAGE", nargs="?", default="overview", help="default: overview")
    positional("help", "topic", "SUBCOMMAND", nargs="?", choices=list(COMMANDS))
    option("track", "--experiment", "-e", metavar="NAME", help="default: $MLFLOW_EXPERIMENT_NAME, else the workspace")
    option("track", "--run-name", "-n", metavar="N", help="default: a name MLflow makes up")
    return parsers, options


def help_text(parsers: dict[str, _Parser]) -> str:
    """``%wb help``: every subcommand's usage and what it is for."""
    lines = ["Workbench magics (add --help to a subcommand for its options):", ""]
    for name, summary in COMMANDS.items():
        usage = parsers[name].format_usage().removeprefix("usage: ").replace(" [-h]", "")
        lines += [f"  {' '.join(usage.split())}", f"      {summary}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the magics


@magics_class
class WorkbenchMagics(Magics):
    """``%wb SUBCOMMAND ...`` and ``%%wb track``."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.parsers, self.options = _build_parsers()
        self._handlers: dict[str, Callable[[argparse.Namespace], Any]] = {
            "status": self._status,
            "runs": self._runs,
            "run": self._run,
            "compare": self._compare,
            "models": self._models,
            "promote": self._promote,
            "rollback": self._rollback,
            "deploy": self._deploy,
            "deployments": self._deployments,
            "gpu": self._gpu,
            "dashboard": self._dashboard,
            "help": self._help,
        }

    @line_cell_magic
    def wb(self, line: str, cell: str | None = None) -> Any:
        """Workbench: ``%wb help`` lists the subcommands; ``%%wb track`` tracks a cell."""
        __tracebackhide__ = True
        try:
            args = self._parse(line)
        except _HelpShown:
            return None
        if args is None:
            print(help_text(self.parsers))
            return None
        if cell is not None and args.command != "track":
            raise MagicError([f"%%wb {args.command} is not a cell magic: only %%wb track runs a cell."])
        if cell is None and args.command == "track":
            raise MagicError(["track runs a cell: start the cell with %%wb track [--experiment X] [--run-name N]."])
        if args.command == "track":
            return self._track(args, cell or "")
        try:
            return self._handlers[args.command](args)
        except WorkbenchError as exc:
            raise MagicError(render.error_lines(exc)) from None

    def _parse(self, line: str) -> argparse.Namespace | None:
        """The parsed arguments (None for a bare ``%wb``); a MagicError with the usage when they are wrong."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise MagicError([f"%wb: cannot read the arguments: {exc}", "Close the quotes you opened."]) from None
        if not argv:
            return None
        command, *rest = argv
        if command not in self.parsers:
            known = ", ".join(n for n in COMMANDS if n != "track")
            raise MagicError([f"%wb: no subcommand {command!r}.", f"Subcommands: {known}; %wb help explains them."])
        args = self.parsers[command].parse_args(rest)
        args.command = command
        return args

    @property
    def _rich(self) -> bool:
        """True in a frontend that shows HTML (a notebook), False in a terminal IPython."""
        return "text/html" in self.shell.display_formatter.active_types

    # ------------------------------------------------------------------ views

    def _status(self, args: argparse.Namespace) -> Any:
        from workbench.overview import workspace_status

        return workspace_status(load_settings())

    def _runs(self, args: argparse.Namespace) -> render.RunList:
        from workbench import tracking

        page = tracking.search_runs(
            load_settings(),
            experiments=args.experiment,
            filter_string=args.filter,
            order_by=args.order_by,
            max_results=args.max,
            page_token=args.page_token,
        )
        return render.RunList(page.runs, page.next_page_token)

    def _run(self, args: argparse.Namespace) -> Any:
        from workbench import tracking

        return tracking.get_run(load_settings(), args.run_id)

    def _compare(self, args: argparse.Namespace) -> Any:
        from workbench import tracking

        comparison = tracking.compare_runs(load_settings(), args.run_ids)
        if self._rich:
            from IPython.display import display

            from workbench._magics_live import comparison_plot

            plot = comparison_plot(comparison)
            if plot is not None:
                display(plot)
        return comparison

    def _models(self, args: argparse.Namespace) -> Any:
        from workbench import registry

        settings = load_settings()
        if args.name:
            return registry.get_model(settings, args.name)
        return render.ModelList(registry.list_models(settings))

    def _deployments(self, args: argparse.Namespace) -> render.DeploymentList:
        from workbench import deploy

        return render.DeploymentList(deploy.list_deployments(load_settings()))

    # ------------------------------------------------------------------ actions

    def _promote(self, args: argparse.Namespace) -> Any:
        from IPython.display import display

        from workbench import registry

        settings = load_settings()
        comparison = registry.compare_for_promotion(settings, args.model, args.version, args.alias)
        display(comparison)
        if not args.yes:
            question = f"Move @{args.alias} of {args.model} to v{comparison.candidate.version}?"
            if not _confirm(question):
                raise InvalidInput("Promotion cancelled: nothing changed", _YES_HINT)
        return registry.promote(settings, args.model, args.version, args.alias, override_gates=args.override_gates)

    def _rollback(self, args: argparse.Namespace) -> Any:
        from workbench import registry

        return registry.rollback(load_settings(), args.model, args.alias)

    def _deploy(self, args: argparse.Namespace) -> Any:
        from workbench import deploy

        return deploy.deploy(
            load_settings(),
            args.model_ref,
            name=args.name,
            port=args.port,
            target=args.target,
            wait=not args.no_wait,
        )

    # ------------------------------------------------------------------ live views

    def _gpu(self, args: argparse.Namespace) -> Any:
        from workbench import _magics_live as live

        if args.stop:
            print(f"Stopped {live.stop_watches()} live GPU view(s).")
            return None
        if args.seconds <= 0:
            raise InvalidInput(f"--seconds must be positive, got {args.seconds:g}", "Pass --seconds 60, say.")
        from workbench import gpu

        settings = load_settings(gpu_source=args.source)
        sampler = gpu.get_sampler(settings, args.source)
        if self._rich:
            return live.GpuWatch(sampler, args.seconds).start()
        sample = sampler.latest(wait=FIRST_SAMPLE_TIMEOUT)
        if sample is None:
            from workbench.errors import BackendUnavailable

            raise BackendUnavailable(
                f"No GPU sample arrived within {FIRST_SAMPLE_TIMEOUT:g} s from the {sampler.source.name} source",
                "Check the source (WORKBENCH_GPU_SOURCE, WORKBENCH_PROMETHEUS_URL), or try --source simulated.",
            )
        return sample

    def _dashboard(self, args: argparse.Namespace) -> Any:
        if not self._rich:
            print(
                "The dashboard is a notebook view. Here, use %wb status, %wb runs, %wb models, "
                "%wb deployments or %wb gpu."
            )
            return None
        from workbench._magics_live import dashboard

        return dashboard(load_settings(), args.page)

    def _help(self, args: argparse.Namespace) -> None:
        if args.topic:
            self.parsers[args.topic].print_help()
        else:
            print(help_text(self.parsers))

    # ------------------------------------------------------------------ %%wb track

    def _track(self, args: argparse.Namespace, cell: str) -> Any:
        """Run the cell as IPython would (magics, last expression shown) inside a tracked run."""
        __tracebackhide__ = True
        from IPython.display import display

        from workbench import tracked_run

        body, last = self._compile(cell)
        namespace = self.shell.user_ns
        raised: list[BaseException] = []

        def work() -> None:
            __tracebackhide__ = True
            try:
                exec(body, self.shell.user_global_ns, namespace)
                if last is not None:
                    value = eval(last, self.shell.user_global_ns, namespace)
                    if value is not None:
                        display(value)
            except BaseException as exc:
                raised.append(exc)
                raise

        try:
            settings = load_settings()
            return tracked_run.track(settings, work, experiment=args.experiment, run_name=args.run_name, code=cell)
        except WorkbenchError as exc:
            if exc in raised:
                raise  # the cell's own error keeps its traceback
            raise MagicError(render.error_lines(exc)) from None

    def _compile(self, cell: str) -> tuple[Any, Any]:
        """The cell's statements and, when it ends in an expression, that expression, compiled separately.

        The code is cached under the cell's name, so tracebacks show the
        cell's own lines.
        """
        shell = self.shell
        code = shell.transform_cell(cell)
        tree = shell.transform_ast(shell.compile.ast_parse(code))
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        filename = shell.compile.cache(code, shell.execution_count, raw_code=cell)
        body = shell.compile(tree, filename, "exec")
        return body, (shell.compile(last, filename, "eval") if last is not None else None)

    # ------------------------------------------------------------------ completion

    def completions(self, text_until_cursor: str, cursor_line: int = 0) -> tuple[str, list[str]]:
        """What may follow ``text_until_cursor`` on a ``%wb`` line: (the word being completed, candidates)."""
        match = re.match(r"\s*(%%?)wb\s+", text_until_cursor)
        if not match or (match.group(1) == "%%" and cursor_line != 0):
            return "", []
        words = text_until_cursor[match.end() :].split()
        word = "" if not words or text_until_cursor[-1].isspace() else words.pop()
        if not words:
            names = ["track"] if match.group(1) == "%%" else [n for n in COMMANDS if n != "track"]
            return word, [n for n in names if n.startswith(word)]
        command, previous = words[0], words[-1]
        if command not in self.parsers:
            return word, []
        if word.startswith("-"):
            return word, sorted(f for f in self.options[command] if f.startswith("--") and f.startswith(word))
        if previous in ("--experiment", "-e"):
            return word, [n for n in _catalog.experiments() if n.startswith(word)]
        if previous == "--source":
            return word, [s for s in SOURCE_NAMES if s.startswith(word)]
        if previous in ("--alias", "-a"):
            model = next((w for w in words[1:-1] if not w.startswith("-")), None)
            found = {a for m in _catalog.models() if model in (None, m.name) for a in m.aliases}
            return word, sorted(a for a in found if a.startswith(word))
        if self.options[command].get(previous):
            return word, []
        position = _positional_index(words[1:], self.options[command])
        candidates: list[str] = []
        if position == 0 and command in ("models", "promote", "rollback"):
            candidates = [m.name for m in _catalog.models()]
        elif position == 0 and command == "deploy":
            candidates = [f"{m.name}@{a}" for m in _catalog.models() for a in sorted(m.aliases)]
        elif position == 0 and command == "dashboard":
            candidates = _catalog.dashboard_pages()
        elif position == 0 and command == "help":
            candidates = list(COMMANDS)
        return word, [c for c in candidates if c.startswith(word)]


def _positional_index(words: list[str], options: dict[str, bool]) -> int:
    """How many positional arguments come before the word being completed."""
    count, skip = 0, False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = options.get(word, False)
        else:
            count += 1
    return count


def _confirm(question: str) -> bool:
    """Ask a yes/no question in the frontend; InvalidInput where the frontend cannot ask."""
    try:
        answer = input(f"{question} [y/N] ")
    except (StdinNotImplementedError, EOFError, OSError) as exc:
        raise InvalidInput("Not promoted: this frontend cannot ask for a confirmation", _YES_HINT) from exc
    return answer.strip().lower() in ("y", "yes")


class _Catalog:
    """Model and experiment names for completion, cached briefly; an unreachable backend gives none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, list[Any]]] = {}

    def _get(self, kind: str, fetch: Callable[[Settings], list[Any]]) -> list[Any]:
        try:
            settings = load_settings()
        except WorkbenchError:
            return []
        key = (kind, settings.tracking_uri)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < COMPLETION_TTL_S:
                return hit[1]
        try:
            found = fetch(settings)
        except Exception:  # completion must never raise into the frontend, whatever the backend does
            found = []
        with self._lock:
            self._cache[key] = (time.monotonic(), found)
        return found

    def dashboard_pages(self) -> list[str]:
        try:
            from workbench._magics_live import dashboard_pages

            return dashboard_pages()
        except Exception:  # completion must never raise into the frontend (Panel missing or broken)
            return []

    def models(self) -> list[Any]:
        from workbench import registry

        return self._get("models", registry.list_models)

    def experiments(self) -> list[str]:
        from workbench import tracking

        return self._get("experiments", lambda settings: [e.name for e in tracking.list_experiments(settings)])


_catalog = _Catalog()


# --------------------------------------------------------------------------- the extension

_loaded: dict[int, tuple[WorkbenchMagics, Callable[[], None], Any]] = {}


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext workbench``: register ``%wb``/``%%wb``, the record formatters and the completer."""
    if id(ipython) in _loaded:
        return
    magics = WorkbenchMagics(ipython)
    ipython.register_magics(magics)

    @context_matcher()
    def complete_wb(context: CompletionContext) -> SimpleMatcherResult:
        word, candidates = magics.completions(context.text_until_cursor, context.cursor_line)
        return {
            "completions": [SimpleCompletion(text=c, type="workbench") for c in candidates],
            "matched_fragment": word,
            "suppress": bool(candidates),
            "ordered": True,
        }

    ipython.Completer.custom_matchers.append(complete_wb)
    _loaded[id(ipython)] = (magics, render.register_formatters(ipython), complete_wb)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext workbench``: remove what loading added and stop live GPU views."""
    entry = _loaded.pop(id(ipython), None)
    if entry is None:
        return
    magics, restore_formatters, matcher = entry
    from workbench._magics_live import stop_watches

    stop_watches()
    restore_formatters()
    if matcher in ipython.Completer.custom_matchers:
        ipython.Completer.custom_matchers.remove(matcher)
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("wb", None)
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
