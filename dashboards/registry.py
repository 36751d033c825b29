"""The Registry & deploy page: models, versions, aliases and lineage; promote (with the comparison,
the gate results and a confirmation) and rollback; deployments with health, logs and "try it".
"""

from __future__ import annotations

import html
import json
from typing import Any

import panel as pn

from dashboards import format as fmt
from dashboards.components import (
    Banner,
    JobProgress,
    Section,
    card,
    html_pane,
    kpis,
    run_action,
    table,
)
from dashboards.page import Page
from workbench import deploy, jobs, overview, registry, tracking
from workbench.config import Settings
from workbench.errors import InvalidInput

MAX_VERSIONS = 12  # newest versions shown with their metrics (one call each)
LOG_LINES = 100


def _lineage_html(lineage: Any) -> str:
    """Commit, branch and data hashes of a run's lineage, flagged when trained from uncommitted changes."""
    if lineage is None:
        return '<span class="wb-muted">no lineage</span>'
    flags = []
    if lineage.dirty:
        flags.append(fmt.badge("uncommitted code", "warn"))
    if lineage.data_dirty:
        flags.append(fmt.badge("uncommitted data", "warn"))
    data = ", ".join(f"{html.escape(path)} {fmt.short_id(digest)}" for path, digest in lineage.data.items())
    commit = f'<span class="wb-mono">{fmt.short_id(lineage.commit, 10)}</span>'
    branch = f" on {html.escape(lineage.branch)}" if lineage.branch else ""
    data_part = f'<div class="wb-muted wb-mono">{data}</div>' if data else ""
    return f"{commit}{branch} {' '.join(flags)}{data_part}"


class PromoteFlow(pn.viewable.Viewer):
    """Compare a version with the alias's holder, show the gates, ask for confirmation, then promote.

    Rollback follows the same steps: what it would do, a confirmation, the move.
    ``on_moved()`` runs after an alias moved so the page can reload.
    """

    def __init__(self, settings: Settings, on_moved: Any) -> None:
        super().__init__()
        self.settings = settings
        self._on_moved = on_moved
        self.model: str | None = None
        self.version = pn.widgets.Select(label="Version", options={}, width=130)
        self.alias = pn.widgets.TextInput(label="Alias", value="champion", width=160)
        self.compare = pn.widgets.Button(label="Compare", color="primary", margin=(22, 6, 0, 6), width=130)
        self.rollback = pn.widgets.Button(label="Roll back…", margin=(22, 6, 0, 6), width=130)
        self.area = pn.Column(sizing_mode="stretch_width")
        self.compare.on_click(lambda _event: self._compare())
        self.rollback.on_click(lambda _event: self._ask_rollback())
        self._layout = card(
            "Promote or roll back",
            "Compare a version with the current holder of an alias, check the gates, then move the alias.",
            pn.Row(self.version, self.alias, self.compare, self.rollback),
            self.area,
        )

    def __panel__(self) -> pn.Column:
        return self._layout

    def set_model(self, model: str, versions: list[registry.ModelVersionInfo]) -> None:
        """Offer the versions of ``model`` (newest first); preselect the newest that does not hold the alias."""
        if model != self.model:
            self.area[:] = []
        self.model = model
        numbers = [v.version for v in versions]
        self.version.options = {f"v{n}": n for n in numbers}
        if self.version.value not in numbers and versions:
            alias = self.alias.value.strip()
            candidates = [v.version for v in versions if alias not in v.aliases]
            self.version.value = (candidates or numbers)[0]

    # ------------------------------------------------------------------ promote

    def _compare(self) -> None:
        if not self.model or not self.version.value:
            return
        model, version, alias = self.model, self.version.value, self.alias.value.strip() or "champion"
        run_action(
            self.area,
            lambda: registry.compare_for_promotion(self.settings, model, version, alias),
            self._show_comparison,
            f"Comparing v{version} with @{alias}",
            buttons=(self.compare, self.rollback),
        )

    def _show_comparison(self, comparison: registry.PromotionComparison) -> list[Any]:
        candidate, current = comparison.candidate, comparison.current
        now = f"v{current.version}" if current else "nobody"
        rows = []
        for m in comparison.metrics:
            better = m.delta is not None and m.delta != 0 and (m.delta < 0) == m.lower_is_better
            worse = m.delta is not None and m.delta != 0 and not better
            tone = "color:#1f7a45" if better else "color:#b3261e" if worse else ""
            rows.append(
                [
                    html.escape(m.key),
                    fmt.number(m.candidate),
                    fmt.number(m.current),
                    f'<span style="{tone};font-weight:600">{fmt.signed(m.delta)}</span>',
                ]
            )
        metrics = table(
            ["metric", f"candidate v{candidate.version}", f"current {now}", "change"], rows, {1, 2, 3}, "compare"
        )
        params = ""
        if comparison.params_differ:
            param_rows = [
                [html.escape(k), html.escape(str(v["candidate"])), html.escape(str(v["current"]))]
                for k, v in comparison.params_differ.items()
            ]
            params = "<h4>Params that differ</h4>" + table(["param", "candidate", "current"], param_rows)
        if comparison.gates:
            gate_rows = [
                [fmt.badge("passed" if g.passed else "failed gate"), html.escape(g.gate), html.escape(g.detail)]
                for g in comparison.gates
            ]
            gates = "<h4>Gates</h4>" + table(["result", "gate", "detail"], gate_rows, testid="gates")
        else:
            gates = (
                f'<p class="wb-muted" data-testid="gates">No promotion gates are configured for '
                f"{html.escape(comparison.model)} ([tool.workbench.promotion_gates] in the workspace settings).</p>"
            )
        lineage = f"<h4>Lineage of v{candidate.version}</h4>{_lineage_html(candidate.lineage)}"
        headline = Banner(
            title=f"v{candidate.version} of {comparison.model} against @{comparison.alias} (now {now})",
            text="All gates pass." if comparison.gates_passed else "Some gates fail: promotion needs an override.",
            tone="info" if comparison.gates_passed else "warn",
            testid="comparison",
        )
        promote = pn.widgets.Button(
            label=f"Promote v{candidate.version} to @{comparison.alias}…",
            color="warning",
            width=260,
            disabled=current is not None and current.version == candidate.version,
        )
        confirm_area = pn.Column(sizing_mode="stretch_width")
        promote.on_click(lambda _event: self._ask_promote(comparison, confirm_area, promote))
        return [headline, html_pane(metrics + params + gates + lineage), promote, confirm_area]

    def _ask_promote(
        self, comparison: registry.PromotionComparison, area: pn.Column, promote: pn.widgets.Button
    ) -> None:
        candidate, current = comparison.candidate, comparison.current
        now = f"v{current.version}" if current else "no version"
        override = pn.widgets.Checkbox(label="Override the failing gates (recorded in the audit log)", value=False)
        confirm = pn.widgets.Button(label="Confirm promotion", color="danger", width=180)
        cancel = pn.widgets.Button(label="Cancel", variant="outline", width=110)
        question = Banner(
            title=f"Move @{comparison.alias} of {comparison.model} from {now} to v{candidate.version}?",
            text="Deployments that serve this alias switch to the new version. Rollback is one step.",
            tone="warn",
            testid="confirm-promote",
        )
        parts: list[Any] = [question]
        if not comparison.gates_passed:
            parts.append(override)
        parts.append(pn.Row(confirm, cancel))
        area[:] = parts
        promote.disabled = True

        def cancelled(_event: Any) -> None:
            area[:] = []
            promote.disabled = False

        def confirmed(_event: Any) -> None:
            model, alias = comparison.model, comparison.alias
            forced = bool(override.value)
            run_action(
                self.area,  # the outcome replaces the comparison, which no longer holds after the move
                lambda: registry.promote(self.settings, model, candidate.version, alias, override_gates=forced),
                self._moved,
                f"Promoting v{candidate.version} to @{alias}",
                buttons=(confirm, cancel),
            )

        cancel.on_click(cancelled)
        confirm.on_click(confirmed)

    # ------------------------------------------------------------------ rollback

    def _ask_rollback(self) -> None:
        if not self.model:
            return
        model, alias = self.model, self.alias.value.strip() or "champion"

        def ask(history: list[dict[str, str | None]]) -> Any:
            if not history:
                return Banner(
                    title=f"@{alias} of {model} has no earlier holder to roll back to",
                    text="Workbench keeps the holders of an alias from its promotions; promote a version instead.",
                    tone="muted",
                    testid="confirm-rollback",
                )
            step = history[-1]
            back_to = f"v{step['v']}" if step["v"] else "no version (the alias is removed)"
            confirm = pn.widgets.Button(label="Confirm rollback", color="danger", width=180)
            cancel = pn.widgets.Button(label="Cancel", variant="outline", width=110)
            area = pn.Column(
                Banner(
                    title=f"Roll @{alias} of {model} back from v{step['by']} to {back_to}?",
                    text="Deployments that serve this alias switch back too.",
                    tone="warn",
                    testid="confirm-rollback",
                ),
                pn.Row(confirm, cancel),
                sizing_mode="stretch_width",
            )
            cancel.on_click(lambda _event: self.area.clear())
            confirm.on_click(
                lambda _event: run_action(
                    self.area,
                    lambda: registry.rollback(self.settings, model, alias),
                    self._moved,
                    f"Rolling back @{alias}",
                    buttons=(confirm, cancel),
                )
            )
            return area

        run_action(
            self.area,
            lambda: registry.alias_history(self.settings, model, alias),
            ask,
            f"Reading the history of @{alias}",
            buttons=(self.compare, self.rollback),
        )

    def _moved(self, move: registry.AliasMove) -> list[Any]:
        before = f"v{move.before}" if move.before else "nobody"
        after = f"v{move.after}" if move.after else "nobody"
        parts: list[Any] = [
            Banner(
                title=f"@{move.alias} of {move.model} now names {after} (was {before})",
                text=("Gates overridden: " + ", ".join(move.overridden_gates)) if move.overridden_gates else "",
                tone="ok",
                testid="alias-moved",
            )
        ]
        for d in move.deployments:
            parts.append(Banner(title=f"Deployment {d.name} serves v{d.version} ({d.state})", tone="ok"))
        for error in move.deployment_errors:
            parts.append(Banner(title=error.get("error", ""), text=error.get("hint", ""), tone="bad"))
        self._on_moved()
        return parts


class RegistryPage(Page):
    """Registered models and versions with lineage, promote/rollback, and deployments."""

    title = "Registry & deploy"
    slug = "registry"
    description = "Models, aliases, promotion and deployments"

    def __init__(self, settings: Settings, **params: Any) -> None:
        super().__init__(settings, **params)
        self.model = pn.widgets.Select(label="Model", options=[], width=260)
        self.models = Section("Registered models", lambda: overview.champions(self.settings), self._render_models)
        self.versions = Section(
            "Versions",
            self._load_versions,
            self._render_versions,
            subtitle="Newest first, with the run each came from and the code and data it was trained on.",
            tools=[self.model],
        )
        self.promote = PromoteFlow(settings, on_moved=self._alias_moved)

        self.deployment = pn.widgets.Select(label="Deployment", options=[], width=220)
        self.show_logs = pn.widgets.Button(label="Logs", margin=(22, 4, 0, 4), width=100)
        self.restart = pn.widgets.Button(label="Restart", margin=(22, 4, 0, 4), width=100)
        self.stop = pn.widgets.Button(label="Stop", margin=(22, 4, 0, 4), width=100)
        self.model_ref = pn.widgets.TextInput(label="Deploy model", placeholder="name@alias or name/version", width=220)
        self.deploy = pn.widgets.Button(label="Deploy", color="primary", margin=(22, 4, 0, 4), width=100)
        self.deployments = Section(
            "Deployments",
            lambda: deploy.list_deployments(self.settings),
            self._render_deployments,
            subtitle="Model servers managed by Workbench, health-checked and restarted on failure.",
            tools=[self.deployment, self.show_logs, self.restart, self.stop, self.model_ref, self.deploy],
        )
        self.payload = pn.widgets.TextAreaInput(
            label="Request body (JSON; empty: a sample from the model's input example)",
            height=110,
            sizing_mode="stretch_width",
        )
        self.send = pn.widgets.Button(label="Send", color="primary", width=110)
        self.answer = pn.Column(sizing_mode="stretch_width")
        self.try_it = card(
            "Try it",
            "Send one request to the selected deployment's endpoint.",
            self.payload,
            self.send,
            self.answer,
        )
        self.sections = [self.models, self.deployments]
        self.layout[:] = [
            self.models,
            self.versions,
            self.promote,
            self.deployments,
            self.try_it,
        ]
        self.model.param.watch(lambda _event: self.versions.refresh(), "value")
        self.show_logs.on_click(lambda _event: self._logs())
        self.restart.on_click(lambda _event: self._deployment_action("Restarting", deploy.restart))
        self.stop.on_click(lambda _event: self._deployment_action("Stopping", deploy.stop))
        self.deploy.on_click(lambda _event: self._deploy())
        self.send.on_click(lambda _event: self._try())

    # ------------------------------------------------------------------ models and versions

    def _render_models(self, models: list[overview.ModelHealth]) -> list[Any]:
        names = [m.model.name for m in models]
        if self.model.options != names:
            self.model.options = names
            if self.model.value not in names and names:
                self.model.value = names[0]
            elif names:
                self.versions.refresh()
        else:
            self.versions.refresh()
        if not models:
            self.versions.show(Banner(title="No registered models yet", tone="muted"))
            return [Banner(title="No registered models", text="Register a model version from a run.", tone="muted")]
        if not self.model_ref.value and names:
            self.model_ref.value = f"{self.model.value}@champion"
        rows = []
        for m in models:
            aliases = " ".join(
                fmt.badge(f"@{a} v{v}", "ok" if a == m.alias else "info") for a, v in m.model.aliases.items()
            )
            serving = " ".join(f"{fmt.badge(d.state)} {html.escape(d.name)}" for d in m.deployments)
            rows.append(
                [
                    f"<b>{html.escape(m.model.name)}</b>",
                    aliases or '<span class="wb-muted">no aliases</span>',
                    f"v{m.model.latest_version}" if m.model.latest_version else fmt.DASH,
                    serving or '<span class="wb-muted">not deployed</span>',
                    html.escape(m.model.description) or fmt.DASH,
                ]
            )
        return html_pane(table(["model", "aliases", "latest", "deployments", "description"], rows, testid="models"))

    def _load_versions(self) -> tuple[str | None, list[registry.ModelVersionInfo]]:
        name = self.model.value
        if not name:
            return None, []
        detail = registry.get_model(self.settings, name)
        versions = [registry.get_version(self.settings, name, v.version) for v in detail.versions[:MAX_VERSIONS]]
        return name, versions

    def _render_versions(self, loaded: tuple[str | None, list[registry.ModelVersionInfo]]) -> Any:
        name, versions = loaded
        if name is None:
            return Banner(title="Pick a model", tone="muted")
        self.promote.set_model(name, versions)
        metric = tracking.primary_metric({k for v in versions for k in v.metrics})
        rows = []
        for v in versions:
            aliases = " ".join(fmt.badge(f"@{a}", "ok" if a == "champion" else "info") for a in v.aliases)
            rows.append(
                [
                    f"<b>v{html.escape(v.version)}</b>",
                    aliases or fmt.DASH,
                    fmt.badge(v.status),
                    fmt.number(v.metrics.get(metric)) if metric else fmt.DASH,
                    f'<span class="wb-mono">{fmt.short_id(v.run_id)}</span>',
                    _lineage_html(v.lineage),
                    fmt.timestamp(v.created),
                ]
            )
        headers = ["version", "aliases", "status", metric or "metric", "run", "lineage (commit, data)", "registered"]
        return html_pane(table(headers, rows, {3}, "versions"))

    def _alias_moved(self) -> None:
        self.models.refresh()
        self.deployments.refresh()

    # ------------------------------------------------------------------ deployments

    def _render_deployments(self, deployments: list[deploy.Deployment]) -> list[Any]:
        names = [d.name for d in deployments]
        self.deployment.options = names
        if self.deployment.value not in names and names:
            self.deployment.value = names[0]
        for button in (self.show_logs, self.restart, self.stop, self.send):
            button.disabled = not names
        healthy = sum(1 for d in deployments if d.state == "healthy")
        cards = kpis(
            [
                ("Deployments", fmt.number(len(deployments)), "managed by Workbench", "kpi-deployments"),
                ("Healthy", f"{healthy} / {len(deployments)}", "answering their health check", "kpi-healthy"),
            ]
        )
        if not deployments:
            return [
                cards,
                Banner(
                    title="Nothing is deployed",
                    text="Deploy a model above (e.g. wine-classifier@champion) to serve it as a REST endpoint.",
                    tone="muted",
                ),
            ]
        rows = [
            [
                f"<b>{html.escape(d.name)}</b>",
                html.escape(d.model_ref),
                f"v{html.escape(d.version)}" if d.version else fmt.DASH,
                fmt.badge(d.state),
                f'<span class="wb-mono">{html.escape(d.endpoint or fmt.DASH)}</span>',
                fmt.number(d.restarts),
                html.escape(d.last_error or "") or fmt.DASH,
            ]
            for d in deployments
        ]
        headers = ["name", "serves", "version", "health", "endpoint", "restarts", "last error"]
        return [cards, html_pane(table(headers, rows, {5}, "deployments"))]

    def _deployment_action(self, what: str, action: Any) -> None:
        name = self.deployment.value
        if not name:
            return

        def done(record: deploy.Deployment) -> Any:
            self.deployments.refresh()
            return Banner(title=f"{record.name}: {record.state}", tone=fmt.STATE_TONES.get(record.state, "info"))

        run_action(
            self.deployments.outcome,
            lambda: action(self.settings, name),
            done,
            f"{what} {name}",
            buttons=(self.restart, self.stop),
        )

    def _logs(self) -> None:
        name = self.deployment.value
        if not name:
            return
        run_action(
            self.deployments.outcome,
            lambda: deploy.logs(self.settings, name, LOG_LINES),
            lambda text: html_pane(
                f"<h4>Last {LOG_LINES} log lines of {html.escape(name)}</h4>"
                f'<pre class="wb-mono" style="max-height:320px;overflow:auto;white-space:pre-wrap">'
                f"{html.escape(text) or '(empty)'}</pre>"
            ),
            f"Reading the log of {name}",
        )

    def _deploy(self) -> None:
        ref = self.model_ref.value.strip()
        if not ref:
            return

        def follow(record: deploy.Deployment) -> Any:
            if record.job_id is None:
                self.deployments.refresh()
                return Banner(title=f"{record.name}: {record.state}", tone="ok")
            job = jobs.manager().get(record.job_id)
            return JobProgress(job, on_finished=lambda _job: self.deployments.refresh())

        run_action(
            self.deployments.outcome,
            lambda: deploy.deploy(self.settings, ref, wait=False),
            follow,
            f"Deploying {ref}",
            buttons=(self.deploy,),
        )

    def _try(self) -> None:
        name = self.deployment.value
        if not name:
            return
        text = self.payload.value.strip()
        try:
            payload = json.loads(text) if text else None
        except json.JSONDecodeError as exc:
            error = InvalidInput(f"The request body is not JSON: {exc}", 'Example: {"dataframe_split": {...}}')
            self.answer[:] = [Banner(title=error.message, text=error.hint, tone="bad", testid="error-banner")]
            return

        def show(result: deploy.PredictionResult) -> Any:
            if not text:
                self.payload.value = json.dumps(result.request, indent=1)
            tone = "ok" if result.status_code < 400 else "bad"
            return [
                Banner(
                    title=f"HTTP {result.status_code} from v{result.version} in {result.latency_ms:.0f} ms",
                    text=result.endpoint or "",
                    tone=tone,
                    testid="prediction",
                ),
                html_pane(f'<pre class="wb-mono">{html.escape(json.dumps(result.response, indent=1))}</pre>'),
            ]

        run_action(self.answer, lambda: deploy.predict(self.settings, name, payload), show, f"Asking {name}")
