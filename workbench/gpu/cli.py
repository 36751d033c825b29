"""``workbench gpu``: the GPU view and the Prometheus exporter, as a click group.

``workbench gpu [--json] [--watch] [--source S]`` shows every GPU and its
processes (``n/a`` for what a GPU does not report); ``workbench gpu export
--port P`` serves the readings to Prometheus. Attach to the main command with
``main.add_command(gpu)``.
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import time
from typing import TYPE_CHECKING

import click

from workbench.cli_common import fail, table, workspace_option
from workbench.config import Settings, load_settings
from workbench.errors import WorkbenchError
from workbench.gpu.model import GpuSample, fmt
from workbench.gpu.source import SOURCE_NAMES
from workbench.records import to_dict

if TYPE_CHECKING:
    from workbench.gpu.sampler import Sampler

GIB = 1024**3
# how long a one-shot view waits for the first sample (Prometheus may take a few seconds)
FIRST_SAMPLE_TIMEOUT = 15.0
NO_GPU_HINT = (
    "Install the NVIDIA driver where there is a GPU, point --source prometheus at a fleet "
    "(WORKBENCH_PROMETHEUS_URL), or try --source simulated for a demo."
)

_source_option = click.option(
    "--source",
    "-s",
    type=click.Choice(SOURCE_NAMES),
    default=None,
    help="Where readings come from (default: the gpu_source setting, auto = NVML if present, else none).",
)


def _pair(a: object, b: object, unit: str = "") -> str:
    return "n/a" if a is None and b is None else f"{fmt(a)}/{fmt(b)}{unit}"


def _gib(value: int | None) -> float | None:
    return None if value is None else value / GIB


def render_text(sample: GpuSample) -> str:
    """The plain-text view of one sample, as the CLI prints it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sample.timestamp))
    head = f"GPUs  host {sample.host}  source {sample.source}"
    if sample.driver_version:
        head += f"  driver {sample.driver_version}"
    lines = [f"{head}  at {when}"]
    if sample.simulated:
        lines.append("SIMULATED READINGS: made-up numbers for a demo, not real GPUs")
    if not sample.available:
        lines += [f"No GPU readings: {sample.reason}", f"Hint: {NO_GPU_HINT}"]
        return "\n".join(lines)
    fleet = sample.source == "prometheus"
    rows = []
    for g in sample.gpus:
        row = [
            str(g.index),
            (g.name or "n/a") + (" [simulated]" if g.simulated and "simulated" not in (g.name or "") else ""),
            g.state,
            fmt(g.utilization_gpu, "%"),
            fmt(g.utilization_memory, "%"),
            _pair(_gib(g.memory_used), _gib(g.memory_total), " GiB"),
            fmt(g.temperature, " C"),
            _pair(g.power, g.power_limit, " W"),
            _pair(g.sm_clock, g.memory_clock, " MHz"),
            _pair(g.pcie_rx, g.pcie_tx, " KB/s"),
            "n/a" if g.mig_mode is None else ("on" if g.mig_mode else "off"),
        ]
        rows.append([g.host, *row] if fleet else row)
    headers = ["gpu", "name", "state", "util", "mem util", "memory used/total", "temp", "power/limit"]
    headers += ["sm/mem clock", "pcie rx/tx", "mig"]
    lines += ["", table(rows, ["host", *headers] if fleet else headers)]
    for key, error in sample.errors.items():
        lines.append(f"  error on {key}: {error}")
    lines += ["", "Processes"]
    if not sample.processes:
        lines.append("  none")
    else:
        proc_rows = [
            [
                *([p.host] if fleet else []),
                str(p.gpu_index),
                str(p.pid),
                p.user or "n/a",
                fmt(_gib(p.used_memory), " GiB"),
                fmt(p.sm_utilization, "%"),
                p.kernel_id[:8] if p.kernel_id else "-",
                p.notebook_path or "-",
                (p.command or "n/a")[:60],
            ]
            for p in sample.processes
        ]
        proc_headers = ["gpu", "pid", "user", "memory", "sm", "kernel", "notebook", "command"]
        lines.append(table(proc_rows, ["host", *proc_headers] if fleet else proc_headers))
    return "\n".join(lines)


def _settings(workspace: str | None, source: str | None) -> Settings:
    return load_settings(workspace, gpu_source=source)


@click.group("gpu", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the sample as JSON (one line per sample with --watch).")
@click.option("--watch", is_flag=True, help="Keep showing new samples until Ctrl-C.")
@click.option("--count", type=click.IntRange(min=1), default=None, help="With --watch: stop after this many samples.")
@_source_option
@workspace_option
@click.pass_context
def gpu(
    ctx: click.Context, as_json: bool, watch: bool, count: int | None, source: str | None, workspace: str | None
) -> None:
    """Live GPUs: utilization, memory, power, clocks, and who runs what (kernels and notebooks included)."""
    if ctx.invoked_subcommand is not None:
        return
    from workbench.gpu.sampler import close_samplers, get_sampler

    try:
        sampler = get_sampler(_settings(workspace, source))
    except WorkbenchError as exc:
        fail(exc, as_json)
    try:
        if watch:
            _watch(sampler, as_json, count)
            return
        sample = sampler.latest(wait=FIRST_SAMPLE_TIMEOUT)
        if sample is None:
            fail(WorkbenchError("No GPU sample came in time", "Try again; check the source's settings."), as_json)
        click.echo(json.dumps(to_dict(sample), indent=2) if as_json else render_text(sample))
    finally:
        close_samplers()


def _watch(sampler: Sampler, as_json: bool, count: int | None) -> None:
    samples: queue.Queue[GpuSample] = queue.Queue()
    unsubscribe = sampler.subscribe(samples.put)
    shown = 0
    try:
        while count is None or shown < count:
            sample = samples.get()
            if as_json:
                click.echo(json.dumps(to_dict(sample)))
            else:
                click.clear()
                click.echo(render_text(sample))
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        unsubscribe()


@gpu.command("export")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=9400, show_default=True, help="0: any free port.")
@click.option("--address", "-a", default="127.0.0.1", show_default=True, help="Address to bind (0.0.0.0: all).")
@click.option("--node-name", default=None, help="The Hostname label (default: this machine's host name).")
@_source_option
@workspace_option
def export(port: int, address: str, node_name: str | None, source: str | None, workspace: str | None) -> None:
    """Serve the GPU readings at /metrics in Prometheus format (DCGM exporter names)."""
    from workbench.gpu.exporter import MetricsServer
    from workbench.gpu.sampler import close_samplers, get_sampler

    try:
        sampler = get_sampler(_settings(workspace, source), host=node_name)
        server = MetricsServer(sampler, address, port)
    except WorkbenchError as exc:
        fail(exc, False)
    except OSError as exc:
        fail(WorkbenchError(f"Cannot listen on {address}:{port}: {exc.strerror}", "Pick another --port."), False)
    sampler.start()
    if address not in ("127.0.0.1", "localhost", "::1"):
        click.secho(f"Warning: {address} exposes GPU process users and commands to the network.", fg="yellow", err=True)
    label = sampler.source.name + (": made-up readings" if sampler.source.simulated else "")
    click.echo(f"Serving GPU metrics (source {label}) on {server.url}")
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        close_samplers()
