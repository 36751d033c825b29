"""Deployment commands of the ``workbench`` command line.

Thin wrappers over :mod:`workbench.deploy`; ``workbench.cli`` attaches
:data:`COMMANDS` to its main group. Errors print their message and hint and
exit 1, as everywhere in the CLI (``_handles_errors``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.cli_common import handles_errors as _handles_errors
from workbench.cli_common import json_option as _json_option
from workbench.cli_common import print_json as _print_json
from workbench.cli_common import settings_for as _settings
from workbench.cli_common import table
from workbench.cli_common import workspace_option as _workspace_option
from workbench.errors import InvalidInput


def _echo_deployment(record) -> None:
    click.echo(f"{record.name}: {record.model_ref} v{record.version or '-'} is {record.state}")
    if record.endpoint:
        click.echo(f"  endpoint: {record.endpoint}/invocations")
    if record.last_error:
        click.secho(f"  last error: {record.last_error}", fg="yellow")
    if record.job_id:
        click.echo(f"  starting in job {record.job_id}")


@click.command("deploy")
@click.argument("model_ref")
@click.option("--name", "-n", default=None, help="Deployment name. Default: MODEL-ALIAS or MODEL-vVERSION.")
@click.option("--port", "-p", type=int, default=None, help="Endpoint port on 127.0.0.1. Default: a free one.")
@click.option("--target", "-t", default="local", show_default=True, help="local, or an MLflow deployments plugin URI.")
@click.option(
    "--restart-policy",
    default="on-failure",
    show_default=True,
    help="What to do when the model server dies: off, on-failure or on-failure:N.",
)
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting until the endpoint is healthy.")
@_workspace_option
@_json_option
@_handles_errors
def deploy_command(
    model_ref: str,
    name: str | None,
    port: int | None,
    target: str,
    restart_policy: str,
    no_wait: bool,
    workspace: str | None,
    as_json: bool,
) -> None:
    """Serve MODEL_REF (NAME@ALIAS or NAME/VERSION) as a REST endpoint."""
    from workbench import deploy

    record = deploy.deploy(
        _settings(workspace),
        model_ref,
        name=name,
        port=port,
        target=target,
        restart_policy=restart_policy,
        wait=not no_wait,
    )
    if as_json:
        _print_json(record)
    else:
        _echo_deployment(record)


@click.command("deployments")
@_workspace_option
@_json_option
@_handles_errors
def deployments_command(workspace: str | None, as_json: bool) -> None:
    """Deployments of this workspace and their state."""
    from workbench import deploy

    records = deploy.list_deployments(_settings(workspace))
    if as_json:
        _print_json(records)
    elif not records:
        click.echo("No deployments yet.")
    else:
        rows = (
            (d.name, d.model_ref, d.version and f"v{d.version}", d.state, d.endpoint, d.restarts, d.target)
            for d in records
        )
        click.echo(table(rows, ["name", "model", "version", "state", "endpoint", "restarts", "target"]))


@click.command("undeploy")
@click.argument("name")
@click.option("--forget", is_flag=True, help="Also delete the deployment's record and log.")
@_workspace_option
@_json_option
@_handles_errors
def undeploy_command(name: str, forget: bool, workspace: str | None, as_json: bool) -> None:
    """Stop deployment NAME and everything it runs."""
    from workbench import deploy

    record = deploy.stop(_settings(workspace), name, forget=forget)
    if as_json:
        _print_json(record)
    else:
        click.echo(f"{record.name}: stopped" + (" and forgotten" if forget else ""))


@click.command("redeploy")
@click.argument("name")
@_workspace_option
@_json_option
@_handles_errors
def redeploy_command(name: str, workspace: str | None, as_json: bool) -> None:
    """Restart deployment NAME on the version its alias names now (no downtime when it runs)."""
    from workbench import deploy

    record = deploy.restart(_settings(workspace), name)
    if as_json:
        _print_json(record)
    else:
        _echo_deployment(record)


@click.command("deploy-logs")
@click.argument("name")
@click.option("--lines", "-n", default=100, show_default=True, type=int, help="How many lines from the end.")
@_workspace_option
@_handles_errors
def deploy_logs_command(name: str, lines: int, workspace: str | None) -> None:
    """The end of deployment NAME's log (model server output and supervisor events)."""
    from workbench import deploy

    click.echo(deploy.logs(_settings(workspace), name, lines))


@click.command("predict")
@click.argument("name")
@click.option(
    "--json-input",
    "json_input",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A request body for /invocations. Default: a sample from the model's input example or signature.",
)
@_workspace_option
@_json_option
@_handles_errors
def predict_command(name: str, json_input: str | None, workspace: str | None, as_json: bool) -> None:
    """Send one prediction request to deployment NAME."""
    from workbench import deploy

    payload = None
    if json_input is not None:
        try:
            payload = json.loads(Path(json_input).read_text())
        except ValueError as exc:
            raise InvalidInput(f"{json_input} is not JSON ({exc})", "Write a dataframe_split or inputs body.") from exc
    result = deploy.predict(_settings(workspace), name, payload)
    if as_json:
        _print_json(result)
        return
    click.echo(f"{result.deployment} v{result.version} answered in {result.latency_ms:.1f} ms:")
    click.echo(json.dumps(result.response, indent=2))


COMMANDS: list[click.Command] = [
    deploy_command,
    deployments_command,
    undeploy_command,
    redeploy_command,
    deploy_logs_command,
    predict_command,
]


@click.group()
def _standalone() -> None:
    """The deployment commands alone (``python -m workbench.deploy_cli``)."""


for _command in COMMANDS:
    _standalone.add_command(_command)

if __name__ == "__main__":
    _standalone()
