/**
 * The Models panel: registered models, versions with alias chips and the
 * lineage behind each (data version and commit), promote / rollback / deploy,
 * and the deployments with health, URL, logs and "Try it".
 */

import { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import { requestAPI } from './api';
import {
  ActionButton,
  AliasChip,
  Badge,
  ErrorBanner,
  HealthDot,
  Loading,
  Notice,
  ProgressBar,
  useResource,
  useSignal
} from './components';
import { deploymentTone, formatAgo, formatValue, shortHash } from './format';
import { modelsIcon } from './icons';
import { CommandIDs, PanelIDs } from './ids';
import { WorkbenchModel } from './model';
import { WorkbenchPanel } from './panel';
import { segment } from './url';
import { Deployment, Lineage, ModelDetail, ModelInfo, ModelVersionInfo, PredictionResult } from './types';

export function createModelsPanel(model: WorkbenchModel, commands: CommandRegistry): WorkbenchPanel {
  const panel = new WorkbenchPanel({
    id: PanelIDs.models,
    label: 'Models & Deploy',
    icon: modelsIcon,
    model,
    topics: ['models', 'deployments']
  });
  panel.addSection('Registered models', () => <ModelsView panel={panel} commands={commands} />);
  panel.addSection('Deployments', () => <DeploymentsView panel={panel} commands={commands} />);
  panel.setSectionSizes([3, 2]);
  return panel;
}

function ModelsView(props: { panel: WorkbenchPanel; commands: CommandRegistry }): JSX.Element {
  const { panel, commands } = props;
  const models = useResource(() => requestAPI<ModelInfo[]>('models'), [], panel.refreshed);
  const [open, setOpen] = React.useState<string | null>(null);
  useSignal(panel.model.actionErrorChanged);
  const list = models.data ?? [];
  const expanded = open ?? (list.length === 1 ? list[0].name : null);
  return (
    <div className="jp-wb-Models">
      <ErrorBanner error={models.error} onRetry={models.reload} />
      <ErrorBanner
        error={panel.model.actionError('models')}
        onDismiss={() => panel.model.setActionError('models', null)}
      />
      {!models.data && models.loading && <Loading what="registered models" />}
      {models.data && list.length === 0 && (
        <Notice>
          No registered model yet: `mlflow.sklearn.log_model(..., registered_model_name=...)` registers one.
        </Notice>
      )}
      <ul className="jp-wb-List" aria-label="Registered models">
        {list.map(info => (
          <li key={info.name} className="jp-wb-Row jp-wb-Model" data-model={info.name}>
            <button
              className="jp-wb-Row-main"
              aria-expanded={expanded === info.name}
              onClick={() => setOpen(expanded === info.name ? '' : info.name)}
            >
              <span className={`jp-wb-Caret ${expanded === info.name ? 'jp-mod-open' : ''}`} />
              <span className="jp-wb-Row-title">{info.name}</span>
              <span className="jp-wb-Row-meta">latest v{info.latest_version ?? '–'}</span>
            </button>
            <div className="jp-wb-Badges">
              {Object.entries(info.aliases).map(([alias, version]) => (
                <AliasChip key={alias} alias={alias} version={version} />
              ))}
            </div>
            {expanded === info.name && (
              <VersionsView panel={panel} commands={commands} info={info} listFailed={models.error !== null} />
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function VersionsView(props: {
  panel: WorkbenchPanel;
  commands: CommandRegistry;
  info: ModelInfo;
  listFailed: boolean;
}): JSX.Element {
  const { panel, commands, info } = props;
  const detail = useResource(
    () => requestAPI<ModelDetail>(`models/${segment(info.name)}`),
    [info.name],
    panel.refreshed
  );
  const [open, setOpen] = React.useState<string | null>(null);
  return (
    <div className="jp-wb-Versions">
      {/* the list above already says when the registry is away */}
      {!props.listFailed && <ErrorBanner error={detail.error} onRetry={detail.reload} />}
      {!detail.data && detail.loading && <Loading what="versions" />}
      {Object.keys(info.aliases).length > 0 && (
        <div className="jp-wb-Actions">
          {Object.keys(info.aliases).map(alias => (
            <ActionButton
              key={alias}
              label={`Roll back @${alias}`}
              title={`Move @${alias} back to the version that held it before`}
              onClick={() => void commands.execute(CommandIDs.rollback, { model: info.name, alias })}
              testid={`rollback-${alias}`}
            />
          ))}
        </div>
      )}
      <ul className="jp-wb-List" aria-label={`Versions of ${info.name}`}>
        {detail.data?.versions.map(version => (
          <li key={version.version} className="jp-wb-Version" data-version={version.version}>
            <div className="jp-wb-Row-line">
              <button
                className="jp-wb-Row-main"
                aria-expanded={open === version.version}
                onClick={() => setOpen(open === version.version ? null : version.version)}
              >
                <span className={`jp-wb-Caret ${open === version.version ? 'jp-mod-open' : ''}`} />
                <span className="jp-wb-Row-title">v{version.version}</span>
                {version.aliases.map(alias => (
                  <AliasChip key={alias} alias={alias} />
                ))}
                <span className="jp-wb-Row-meta">{formatAgo(version.created)}</span>
              </button>
            </div>
            <VersionSummary panel={panel} name={info.name} version={version.version} />
            <div className="jp-wb-Actions">
              <ActionButton
                label="Promote…"
                accent="accept"
                disabled={version.aliases.includes('champion')}
                title="Compare with the current @champion, check the gates, then move the alias"
                onClick={() =>
                  void commands.execute(CommandIDs.promote, {
                    model: info.name,
                    version: version.version,
                    alias: 'champion'
                  })
                }
                testid={`promote-${version.version}`}
              />
              <ActionButton
                label="Deploy"
                title="Serve this version as a REST endpoint"
                onClick={() => void commands.execute(CommandIDs.deploy, { model: `${info.name}/${version.version}` })}
                testid={`deploy-${version.version}`}
              />
              <ActionButton
                label="Insert code"
                title="A cell that loads this version goes into the active notebook"
                onClick={() =>
                  void commands.execute(CommandIDs.insertModelCode, { model: info.name, version: version.version })
                }
              />
            </div>
            {open === version.version && <VersionDetail name={info.name} version={version.version} />}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** One line under a version: its headline metric and what trained it (data version, commit). */
function VersionSummary(props: { panel: WorkbenchPanel; name: string; version: string }): JSX.Element | null {
  const detail = useResource(
    () => requestAPI<ModelVersionInfo>(`models/${segment(props.name)}/versions/${segment(props.version)}`),
    [props.name, props.version],
    props.panel.refreshed
  );
  const version = detail.data;
  if (!version) {
    return null;
  }
  const metric = headlineMetric(version.metrics);
  const dataVersion = version.params['data_version'];
  return (
    <div className="jp-wb-Row-meta jp-wb-VersionSummary">
      {metric && (
        <span>
          {metric[0]} <strong>{formatValue(metric[1])}</strong>
        </span>
      )}
      {dataVersion && <span>data {dataVersion}</span>}
      {version.lineage?.commit && (
        <span>
          commit <code>{shortHash(version.lineage.commit)}</code>
        </span>
      )}
      {!version.lineage && <Badge tone="warn">no lineage</Badge>}
    </div>
  );
}

/** The metric a person looks at first: accuracy-like if logged, else the first one. */
function headlineMetric(metrics: Record<string, number | string>): [string, number | string] | null {
  const keys = Object.keys(metrics);
  const key = ['accuracy', 'val_accuracy', 'f1', 'auc', 'r2', 'rmse', 'loss'].find(k => k in metrics) ?? keys.sort()[0];
  return key === undefined ? null : [key, metrics[key]];
}

function VersionDetail(props: { name: string; version: string }): JSX.Element {
  const detail = useResource(
    () => requestAPI<ModelVersionInfo>(`models/${segment(props.name)}/versions/${segment(props.version)}`),
    [props.name, props.version]
  );
  const version = detail.data;
  return (
    <div className="jp-wb-Row-detail">
      <ErrorBanner error={detail.error} onRetry={detail.reload} />
      {!version && detail.loading && <Loading what={`v${props.version}`} />}
      {version && (
        <>
          <LineageView lineage={version.lineage} runId={version.run_id} />
          <div className="jp-wb-Subheading">Metrics</div>
          <dl className="jp-wb-KeyValues">
            {Object.entries(version.metrics)
              .sort(([a], [b]) => a.localeCompare(b))
              .map(([key, value]) => (
                <React.Fragment key={key}>
                  <dt>{key}</dt>
                  <dd>{formatValue(value)}</dd>
                </React.Fragment>
              ))}
          </dl>
          <div className="jp-wb-Subheading">Params</div>
          <dl className="jp-wb-KeyValues">
            {Object.entries(version.params).map(([key, value]) => (
              <React.Fragment key={key}>
                <dt>{key}</dt>
                <dd>{value}</dd>
              </React.Fragment>
            ))}
          </dl>
        </>
      )}
    </div>
  );
}

/** Which code and data trained a version. */
function LineageView(props: { lineage: Lineage | null; runId: string | null }): JSX.Element {
  const { lineage } = props;
  if (!lineage) {
    return (
      <div className="jp-wb-Lineage">
        <Badge tone="warn">no lineage</Badge> run {shortHash(props.runId, 8)} recorded no commit or data versions
      </div>
    );
  }
  return (
    <div className="jp-wb-Lineage" data-testid="lineage">
      <div className="jp-wb-Subheading">Lineage</div>
      <div>
        commit <code>{shortHash(lineage.commit)}</code>
        {lineage.branch && ` on ${lineage.branch}`}
        {lineage.dirty && (
          <Badge tone="warn" title="The code had uncommitted changes">
            dirty
          </Badge>
        )}
        {lineage.data_dirty && (
          <Badge tone="warn" title="Tracked data differed from the commit">
            data dirty
          </Badge>
        )}
        {props.runId && <span className="jp-wb-Row-meta"> · run {shortHash(props.runId, 8)}</span>}
      </div>
      <ul className="jp-wb-Lineage-data">
        {Object.entries(lineage.data).map(([path, hash]) => (
          <li key={path}>
            <span>{path}</span> <code>{shortHash(hash, 8)}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}

function DeploymentsView(props: { panel: WorkbenchPanel; commands: CommandRegistry }): JSX.Element {
  const { panel, commands } = props;
  const deployments = useResource(() => requestAPI<Deployment[]>('deployments'), [], panel.refreshed);
  useSignal(panel.model.jobs.changed);
  const starting = deployments.data?.some(d => d.state === 'starting' || d.state === 'restarting') ?? false;
  // while one starts, follow it closely (the jobs stream says when its job ends; its health is polled)
  React.useEffect(() => {
    if (!starting) {
      return;
    }
    const timer = window.setInterval(deployments.reload, 2000);
    return () => window.clearInterval(timer);
  }, [starting]);
  const jobs = panel.model.jobs.jobs.filter(
    job => job.kind === 'deploy' && (job.state === 'running' || job.state === 'queued')
  );
  const list = deployments.data ?? [];
  return (
    <div className="jp-wb-Deployments">
      <ErrorBanner error={deployments.error} onRetry={deployments.reload} />
      {jobs.map(job => (
        <div key={job.id} className="jp-wb-Job" data-job="deploy">
          <div className="jp-wb-Row-meta">
            Deploying {job.target.replace(/^deployment:/, '')}: {job.message || 'starting'}
          </div>
          <ProgressBar done={job.done} total={job.total} />
        </div>
      ))}
      {!deployments.data && deployments.loading && <Loading what="deployments" />}
      {deployments.data && list.length === 0 && (
        <Notice>Nothing deployed. "Deploy" on a version serves it here.</Notice>
      )}
      <ul className="jp-wb-List" aria-label="Deployments">
        {list.map(deployment => (
          <DeploymentRow key={deployment.name} deployment={deployment} commands={commands} />
        ))}
      </ul>
    </div>
  );
}

function DeploymentRow(props: { deployment: Deployment; commands: CommandRegistry }): JSX.Element {
  const { deployment, commands } = props;
  const [logs, setLogs] = React.useState<string | null>(null);
  const [prediction, setPrediction] = React.useState<PredictionResult | null>(null);
  const [trying, setTrying] = React.useState(false);
  const live = deployment.state !== 'stopped' && deployment.state !== 'failed' && deployment.state !== 'dead';
  const healthy = deployment.state === 'healthy';
  React.useEffect(() => {
    if (!healthy) {
      setPrediction(null);
    }
  }, [healthy]);
  const showLogs = async (): Promise<void> => {
    if (logs !== null) {
      setLogs(null);
      return;
    }
    try {
      setLogs(await requestAPI<string>(`deployments/${segment(deployment.name)}/logs`, { query: { lines: 60 } }));
    } catch (reason) {
      setLogs(`Could not read the log: ${String((reason as Error).message)}`);
    }
  };
  const tryIt = async (): Promise<void> => {
    setTrying(true);
    try {
      const result = (await commands.execute(CommandIDs.tryDeployment, {
        name: deployment.name
      })) as PredictionResult | null;
      setPrediction(result);
    } finally {
      setTrying(false);
    }
  };
  return (
    <li className="jp-wb-Row jp-wb-Deployment" data-deployment={deployment.name} data-state={deployment.state}>
      <div className="jp-wb-Row-line">
        <HealthDot tone={deploymentTone(deployment.state)} label={deployment.state} />
        <span className="jp-wb-Row-title">{deployment.name}</span>
        <span className="jp-wb-Row-meta">
          {deployment.state} · {deployment.model_ref}
          {deployment.version && ` (v${deployment.version})`}
        </span>
      </div>
      {deployment.endpoint && (
        <div className="jp-wb-Endpoint">
          <code>{deployment.endpoint}</code>
          <button
            className="jp-wb-LinkButton"
            onClick={() => void navigator.clipboard?.writeText(deployment.endpoint ?? '')}
          >
            Copy
          </button>
        </div>
      )}
      {deployment.last_error && <div className="jp-wb-Job-error">{deployment.last_error}</div>}
      <div className="jp-wb-Actions">
        <ActionButton
          label={trying ? 'Trying…' : 'Try it'}
          accent="accept"
          disabled={!healthy || trying}
          onClick={() => void tryIt()}
          testid="try-it"
        />
        <ActionButton label={logs === null ? 'Logs' : 'Hide logs'} onClick={() => void showLogs()} />
        <ActionButton
          label="Restart"
          onClick={() => void commands.execute(CommandIDs.restartDeployment, { name: deployment.name })}
        />
        {live && (
          <ActionButton
            label="Stop"
            accent="warn"
            onClick={() => void commands.execute(CommandIDs.stopDeployment, { name: deployment.name })}
          />
        )}
      </div>
      {prediction && (
        <div className="jp-wb-Prediction" data-testid="prediction">
          <div className="jp-wb-Row-meta">
            <Badge tone={prediction.status_code < 300 ? 'ok' : 'error'}>{prediction.status_code}</Badge> from v
            {prediction.version ?? '?'} in {prediction.latency_ms.toFixed(0)} ms
          </div>
          <pre className="jp-wb-Prediction-response">{JSON.stringify(prediction.response)}</pre>
          <details>
            <summary>Sample input sent</summary>
            <pre>{JSON.stringify(prediction.request)}</pre>
          </details>
        </div>
      )}
      {logs !== null && <pre className="jp-wb-Logs">{logs || '(empty log)'}</pre>}
    </li>
  );
}
