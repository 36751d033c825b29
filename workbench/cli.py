"""The ``workbench`` command: thin wrappers over the services.

Every command takes ``--workspace PATH``; ``--json`` prints the services'
records as they are. Errors print their message and hint, never a traceback,
and exit with status 1 (2 for bad usage, as click does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from workbench import __version__
from workbench.cli_common import (
    fmt,
    handles_errors,
    json_option,
    ms,
    print_json,
    settings_for,
    table,
    workspace_option,
)
from workbench.errors import InvalidInput


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
def main() -> None:
    """Workbench: data versions (DVC), experiments and models (MLflow), GPUs and deploys."""


# --------------------------------------------------------------------------- status


@main.command()
@workspace_option
@json_option
@handles_errors
def status(workspace: str | None, as_json: bool) -> None:
    """Data status, experiments and run counts, models and aliases."""
    from workbench.overview import workspace_status

    result = workspace_status(settings_for(workspace))
    if as_json:
        print_json(result)
        return
    click.secho(f"Workspace  {result.workspace}", bold=True)
    click.echo(f"git: {'yes' if result.git else 'no'}   dvc: {'yes' if result.dvc else 'no'}")
    click.echo(f"MLflow     {result.tracking_uri}")
    click.echo("")
    click.secho("Data", bold=True)
    if "data" in result.errors:
        _echo_part_error(result.errors["data"])
    else:
        _echo_data_status(result.data)
    click.echo("")
    click.secho("Experiments", bold=True)
    if "experiments" in result.errors:
        _echo_part_error(result.errors["experiments"])
    elif not result.experiments:
        click.echo("  no experiments yet")
    else:
        click.echo(table(((e.name, e.experiment_id, e.runs) for e in result.experiments), ["name", "id", "runs"]))
    click.echo("")
    click.secho("Models", bold=True)
    if "models" in result.errors:
        _echo_part_error(result.errors["models"])
    elif not result.models:
        click.echo("  no registered models yet")
    else:
        click.echo(_models_table(result.models))


def _echo_part_error(error: dict[str, str]) -> None:
    click.secho(f"  {error['error']}", fg="yellow")
    if error.get("hint"):
        click.echo(f"  Hint: {error['hint']}")


def _echo_data_status(data_status: Any) -> None:
    entries = getattr(data_status, "entries", None) or []
    if not entries:
        click.echo("  nothing tracked yet")
        return
    click.echo(
        table(
            ((e.path, e.kind, ", ".join(e.badges) or "unchanged", e.owner) for e in entries),
            ["path", "kind", "status", "tracked by"],
        )
    )


def _models_table(models: Iterable[Any]) -> str:
    rows = (
        (
            m.name,
            m.latest_version,
            ", ".join(f"@{a} -> v{v}" for a, v in sorted(m.aliases.items())) or "-",
            ms(m.updated),
        )
        for m in models
    )
    return table(rows, ["model", "latest", "aliases", "updated"])


# --------------------------------------------------------------------------- runs


@main.command()
@click.option("--experiment", "-e", multiple=True, help="Experiment name or id (repeatable). Default: all.")
@click.option("--filter", "-f", "filter_string", default="", help='MLflow filter, e.g. "metrics.accuracy > 0.9".')
@click.option("--order-by", "-o", multiple=True, help='Sort key, e.g. "metrics.accuracy DESC" (repeatable).')
@click.option("--max", "max_results", default=50, show_default=True, type=int, help="Runs per page.")
@click.option("--page-token", default=None, help="Continue from a previous page.")
@workspace_option
@json_option
@handles_errors
def runs(
    experiment: tuple[str, ...],
    filter_string: str,
    order_by: tuple[str, ...],
    max_results: int,
    page_token: str | None,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Search runs: server-side filter, order and pagination."""
    from workbench import tracking

    page = tracking.search_runs(
        settings_for(workspace),
        experiments=list(experiment) or None,
        filter_string=filter_string,
        order_by=list(order_by) or None,
        max_results=max_results,
        page_token=page_token,
    )
    if as_json:
        print_json(page)
        return
    if not page.runs:
        click.echo("No runs match.")
        return
    metric_keys = sorted({k for r in page.runs for k in r.metrics})[:6]
    rows = (
        (r.run_id[:8], r.run_name, r.status, ms(r.start_time), *(r.metrics.get(k) for k in metric_keys))
        for r in page.runs
    )
    click.echo(table(rows, ["run", "name", "status", "started", *metric_keys]))
    if page.next_page_token:
        click.echo(f"\nMore runs: --page-token {page.next_page_token}")


# --------------------------------------------------------------------------- models


@main.command()
@click.argument("name", required=False)
@workspace_option
@json_option
@handles_errors
def models(name: str | None, workspace: str | None, as_json: bool) -> None:
    """Registered models and aliases; with NAME, that model's versions."""
    from workbench import registry

    settings = settings_for(workspace)
    if name is None:
        result = registry.list_models(settings)
        if as_json:
            print_json(result)
        elif not result:
            click.echo("No registered models yet.")
        else:
            click.echo(_models_table(result))
        return
    detail = registry.get_model(settings, name)
    if as_json:
        print_json(detail)
        return
    click.secho(detail.model.name, bold=True)
    rows = (
        (f"v{v.version}", " ".join(f"@{a}" for a in v.aliases) or "-", v.status, (v.run_id or "-")[:8], ms(v.created))
        for v in detail.versions
    )
    click.echo(table(rows, ["version", "aliases", "status", "run", "created"]))


# --------------------------------------------------------------------------- promote / rollback / audit


def _echo_comparison(comparison: Any) -> None:
    current = f"v{comparison.current.version}" if comparison.current else "nobody"
    click.secho(
        f"Promote {comparison.model} v{comparison.candidate.version} to @{comparison.alias} (now: {current})",
        bold=True,
    )
    if comparison.metrics:
        rows = ((m.key, m.candidate, m.current, m.delta) for m in comparison.metrics)
        click.echo(table(rows, ["metric", f"v{comparison.candidate.version}", current, "delta"]))
    for key, values in comparison.params_differ.items():
        click.echo(f"  param {key}: {values['current']} -> {values['candidate']}")
    lineage = comparison.candidate.lineage
    if lineage and lineage.commit:
        dirty = " (dirty)" if lineage.dirty or lineage.data_dirty else ""
        click.echo(f"  lineage: commit {lineage.commit[:10]}{dirty}, data {', '.join(lineage.data) or '-'}")
    for gate in comparison.gates:
        mark = click.style("pass", fg="green") if gate.passed else click.style("FAIL", fg="red")
        click.echo(f"  gate [{mark}] {gate.gate}: {gate.detail}")


@main.command()
@click.argument("model")
@click.argument("version")
@click.option("--alias", "-a", default="champion", show_default=True, help="The alias to move.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--override-gates", is_flag=True, help="Promote even if gates fail (recorded in the audit log).")
@workspace_option
@json_option
@handles_errors
def promote(
    model: str, version: str, alias: str, yes: bool, override_gates: bool, workspace: str | None, as_json: bool
) -> None:
    """Move MODEL's alias to VERSION, after a comparison with the current holder."""
    from workbench import registry

    settings = settings_for(workspace)
    comparison = registry.compare_for_promotion(settings, model, version, alias)
    if not as_json:
        _echo_comparison(comparison)
    if not yes and not click.confirm("Move the alias?", default=False):
        raise InvalidInput("Promotion cancelled: nothing changed", "Pass --yes to promote without the question.")
    move = registry.promote(settings, model, version, alias, override_gates=override_gates)
    if as_json:
        print_json(move)
        return
    click.secho(f"@{alias} of {model}: v{move.before or '-'} -> v{move.after}", fg="green")
    if move.overridden_gates:
        click.secho(f"Gates overridden (audited): {', '.join(move.overridden_gates)}", fg="yellow")
    for deployment in move.deployments:
        click.echo(f"  deployment {deployment.name} now serves v{move.after}")
    for error in move.deployment_errors:
        click.secho(f"  deployment not switched: {error['error']}", fg="yellow")


@main.command()
@click.argument("model")
@click.option("--alias", "-a", default="champion", show_default=True, help="The alias to move back.")
@workspace_option
@json_option
@handles_errors
def rollback(model: str, alias: str, workspace: str | None, as_json: bool) -> None:
    """Move MODEL's alias back to its previous holder."""
    from workbench import registry

    move = registry.rollback(settings_for(workspace), model, alias)
    if as_json:
        print_json(move)
        return
    after = f"v{move.after}" if move.after else "nobody (alias removed)"
    click.secho(f"@{alias} of {model}: v{move.before} -> {after}", fg="green")


@main.command("audit")
@click.option("--limit", "-n", default=50, show_default=True, type=int, help="The last N entries.")
@click.option("--action", default=None, help="Only this action (promote, rollback, deploy, ...).")
@workspace_option
@json_option
@handles_errors
def audit_log(limit: int, action: str | None, workspace: str | None, as_json: bool) -> None:
    """The audit log of every state-changing action."""
    from workbench import audit

    entries = audit.read(settings_for(workspace), limit=limit, action=action)
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("The audit log is empty.")
        return
    rows = (
        (e.time[:19].replace("T", " "), e.actor, e.action, e.target, e.outcome, fmt(e.before), fmt(e.after))
        for e in entries
    )
    click.echo(table(rows, ["time (UTC)", "who", "action", "target", "outcome", "before", "after"]))


# --------------------------------------------------------------------------- data


@main.group()
def data() -> None:
    """DVC-tracked data: status and diffs."""


@data.command("status")
@workspace_option
@json_option
@handles_errors
def data_status(workspace: str | None, as_json: bool) -> None:
    """Tracked data with its status."""
    from workbench import data as data_service

    result = data_service.status(settings_for(workspace))
    if as_json:
        print_json(result)
    else:
        _echo_data_status(result)


@data.command("diff")
@click.argument("rev_a")
@click.argument("rev_b", required=False)
@workspace_option
@json_option
@handles_errors
def data_diff(rev_a: str, rev_b: str | None, workspace: str | None, as_json: bool) -> None:
    """What changed in tracked data between REV_A and REV_B (default: the workspace)."""
    from workbench import data as data_service

    result = data_service.diff(settings_for(workspace), rev_a, rev_b)
    if as_json:
        print_json(result)
        return
    rows = [(c.change, c.path, (c.old_hash or "-")[:10], (c.new_hash or "-")[:10]) for c in result.changes]
    if not rows:
        click.echo(f"No data changes between {rev_a} and {rev_b or 'the workspace'}.")
        return
    click.echo(table(rows, ["change", "path", "old", "new"]))


# --------------------------------------------------------------------------- demo


@main.command()
@click.option("--dir", "directory", default="demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-launch", is_flag=True, help="Only build the workspace; do not open the dashboard.")
@click.option("--replace", is_flag=True, help="Rebuild the folder if it holds an earlier demo workspace.")
@handles_errors
def demo(directory: str, no_launch: bool, replace: bool) -> None:
    """Build a demo workspace (git + DVC + MLflow) from nothing."""
    from workbench import demo as demo_service

    summary = demo_service.build(directory, say=click.echo, replace=replace)
    click.secho(f"\nDemo workspace ready in {summary.seconds} s: {summary.workspace}", fg="green", bold=True)
    click.echo(f"  data versions: {', '.join(f'{k} {v[:8]}' for k, v in summary.data_commits.items())}")
    click.echo(f"  DVC remote:    {summary.dvc_remote}")
    click.echo(f"  MLflow:        {summary.tracking_uri} ({len(summary.runs)} runs in '{summary.experiment}')")
    click.echo(f"  model:         {summary.model} v{', v'.join(summary.versions)}, @champion -> v{summary.champion}")
    click.echo("\nLook at it:")
    for step in summary.next_steps:
        click.echo(f"  {step}")
    if not no_launch:
        from dashboards.app import serve
        from workbench import gpu

        settings = settings_for(str(summary.workspace))
        probe = gpu.open_source(settings, "auto")
        real_gpus = probe.name == "nvml"
        probe.close()
        if not real_gpus:
            click.echo("No NVIDIA GPU here: the dashboard's GPU page shows simulated readings, labelled as such.")
        click.echo("\nOpening the dashboard (Ctrl-C stops it)...")
        serve(settings, show=True, gpu_source=None if real_gpus else "simulated")


# --------------------------------------------------------------------------- groups defined elsewhere

from dashboards.cli import dashboard  # noqa: E402 - attached after the core commands
from workbench.deploy_cli import COMMANDS as DEPLOY_COMMANDS  # noqa: E402
from workbench.gpu.cli import gpu  # noqa: E402

main.add_command(gpu)
main.add_command(dashboard)
for _command in DEPLOY_COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
