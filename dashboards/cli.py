"""``workbench dashboard``: serve the standalone dashboard (attach with ``main.add_command(dashboard)``)."""

from __future__ import annotations

import sys

import click

from workbench.errors import WorkbenchError

GPU_SOURCES = ("auto", "nvml", "none", "simulated", "prometheus")


def _say(line: str) -> None:
    """The URL goes to standard output; warnings, in yellow, to standard error."""
    warning = line.startswith("Warning")
    click.secho(line, fg="yellow" if warning else None, err=warning)


@click.command("dashboard")
@click.option(
    "--workspace",
    "-w",
    type=click.Path(file_okay=False),
    default=None,
    help="The workspace (a folder inside a git + DVC repository). Default: the current folder.",
)
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=None, help="Default: 5006, else a free port.")
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback needs --basic-auth or OAuth (or --insecure).",
)
@click.option("--show", is_flag=True, help="Open the dashboard in a web browser.")
@click.option(
    "--gpu-source",
    type=click.Choice(GPU_SOURCES),
    default=None,
    help="Where GPU readings come from (default: the workspace setting, auto). 'simulated' is for demos.",
)
@click.option(
    "--basic-auth",
    metavar="PASSWORD|FILE",
    envvar="WORKBENCH_DASHBOARD_BASIC_AUTH",
    default=None,
    help="One password for everyone, or a JSON file of {user: password}. Env: WORKBENCH_DASHBOARD_BASIC_AUTH.",
)
@click.option("--oauth-provider", envvar="WORKBENCH_DASHBOARD_OAUTH_PROVIDER", default=None, help="e.g. github.")
@click.option("--oauth-key", envvar="WORKBENCH_DASHBOARD_OAUTH_KEY", default=None, help="The OAuth client id.")
@click.option("--oauth-secret", envvar="WORKBENCH_DASHBOARD_OAUTH_SECRET", default=None, help="The client secret.")
@click.option("--oauth-redirect-uri", default=None, help="The redirect URI registered with the provider.")
@click.option("--oauth-encryption-key", envvar="WORKBENCH_DASHBOARD_OAUTH_ENCRYPTION_KEY", default=None)
@click.option(
    "--cookie-secret", envvar="WORKBENCH_DASHBOARD_COOKIE_SECRET", default=None, help="Default: a random one."
)
@click.option(
    "--allow-origin",
    multiple=True,
    metavar="HOST:PORT",
    help="Another host:port browsers may reach the dashboard by (e.g. behind a proxy). Repeatable.",
)
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without authentication (warns).")
def dashboard(
    workspace: str | None,
    port: int | None,
    address: str,
    show: bool,
    gpu_source: str | None,
    basic_auth: str | None,
    oauth_provider: str | None,
    oauth_key: str | None,
    oauth_secret: str | None,
    oauth_redirect_uri: str | None,
    oauth_encryption_key: str | None,
    cookie_secret: str | None,
    allow_origin: tuple[str, ...],
    insecure: bool,
) -> None:
    """Serve the team dashboard (Overview, Data, Experiments, Registry & deploy, GPUs) until Ctrl-C."""
    from dashboards.app import OAuth, serve
    from workbench.config import load_settings

    try:
        settings = load_settings(workspace)
        oauth = (
            OAuth(oauth_provider, oauth_key or "", oauth_secret or "", oauth_redirect_uri, oauth_encryption_key)
            if oauth_provider
            else None
        )
        serve(
            settings,
            port=port,
            address=address,
            show=show,
            gpu_source=gpu_source,
            basic_auth=basic_auth,
            oauth=oauth,
            cookie_secret=cookie_secret,
            insecure=insecure,
            allow_origins=allow_origin,
            say=_say,
        )
    except WorkbenchError as exc:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(1)
