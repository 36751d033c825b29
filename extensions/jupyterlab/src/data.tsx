/**
 * The Data panel: tracked datasets and outputs with status badges, a path's
 * revisions and the diff of two of them, pipeline stages (stale ones marked),
 * and push / pull / checkout jobs with progress.
 */

import { CommandRegistry } from '@lumino/commands';
import { ToolbarButton } from '@jupyterlab/ui-components';
import * as React from 'react';

import { requestAPI } from './api';
import { ActionButton, Badge, ErrorBanner, Loading, Notice, ProgressBar, useResource, useSignal } from './components';
import { badgeLabel, badgeTone, formatAgo, formatBytes, shortHash } from './format';
import { dataIcon } from './icons';
import { CommandIDs, PanelIDs } from './ids';
import { WorkbenchModel } from './model';
import { WorkbenchPanel } from './panel';
import { upstreamFirst } from './pipeline';
import { DataDiff, DataRevision, DataStatus, Job, Pipeline, TrackedOutput } from './types';

export function createDataPanel(model: WorkbenchModel, commands: CommandRegistry): WorkbenchPanel {
  const panel = new WorkbenchPanel({ id: PanelIDs.data, label: 'Data', icon: dataIcon, model, topics: ['data'] });
  for (const [name, command] of [
    ['push', CommandIDs.dataPush],
    ['pull', CommandIDs.dataPull],
    ['checkout', CommandIDs.dataCheckout]
  ] as const) {
    panel.toolbar.addItem(
      name,
      new ToolbarButton({
        label: name[0].toUpperCase() + name.slice(1),
        tooltip: commands.caption(command),
        onClick: () => void commands.execute(command)
      })
    );
  }
  panel.addSection('Tracked data', () => <TrackedData panel={panel} commands={commands} />, 'jp-wb-DataSection');
  panel.addSection('Pipeline', () => <PipelineView panel={panel} />);
  panel.setSectionSizes([3, 2]);
  return panel;
}

function TrackedData(props: { panel: WorkbenchPanel; commands: CommandRegistry }): JSX.Element {
  const { panel } = props;
  const [checkRemote, setCheckRemote] = React.useState(false);
  const [open, setOpen] = React.useState<string | null>(null);
  const status = useResource(
    () => requestAPI<DataStatus>('data/status', { query: { remote: checkRemote } }),
    [checkRemote],
    panel.refreshed
  );
  useSignal(panel.model.actionErrorChanged);
  const data = status.data;
  return (
    <div className="jp-wb-TrackedData">
      <ErrorBanner error={status.error} onRetry={status.reload} />
      <ErrorBanner error={panel.model.actionError('data')} onDismiss={() => panel.model.setActionError('data', null)} />
      <JobsView model={panel.model} />
      {data?.git && (
        <div className="jp-wb-Meta" data-testid="git-state">
          <span title="git branch">⎇ {data.git.branch ?? 'detached'}</span>
          <span title="git HEAD">{data.git.head ?? 'no commits'}</span>
          {data.git.dirty ? <Badge tone="warn">uncommitted changes</Badge> : <Badge tone="ok">clean</Badge>}
        </div>
      )}
      <label className="jp-wb-Check">
        <input type="checkbox" checked={checkRemote} onChange={e => setCheckRemote(e.target.checked)} />
        Ask the remote what is not pushed
      </label>
      {data?.notes.map(note => (
        <Notice key={note} tone="warn">
          {note}
        </Notice>
      ))}
      {!data && status.loading && <Loading what="tracked data" />}
      {data && data.entries.length === 0 && (
        <Notice>Nothing is tracked yet: `dvc add data/…` or a dvc.yaml stage adds data here.</Notice>
      )}
      <ul className="jp-wb-List" aria-label="Tracked data">
        {data?.entries.map(entry => (
          <TrackedRow
            key={entry.path}
            entry={entry}
            open={open === entry.path}
            onToggle={() => setOpen(open === entry.path ? null : entry.path)}
            commands={props.commands}
          />
        ))}
      </ul>
    </div>
  );
}

function TrackedRow(props: {
  entry: TrackedOutput;
  open: boolean;
  onToggle: () => void;
  commands: CommandRegistry;
}): JSX.Element {
  const { entry, commands } = props;
  const badges = entry.badges.length ? entry.badges : entry.cached ? [] : ['git'];
  const targets = { targets: [entry.path] };
  return (
    <li className="jp-wb-Row jp-wb-TrackedRow" data-path={entry.path}>
      <button className="jp-wb-Row-main" onClick={props.onToggle} aria-expanded={props.open}>
        <span className={`jp-wb-Caret ${props.open ? 'jp-mod-open' : ''}`} />
        <span className="jp-wb-Row-title">
          {entry.path}
          {entry.kind === 'dir' && '/'}
        </span>
        <span className="jp-wb-Row-meta">
          {formatBytes(entry.size)}
          {entry.nfiles !== null && ` · ${entry.nfiles} files`}
        </span>
      </button>
      <div className="jp-wb-Badges">
        {badges.map(badge =>
          badge === 'git' ? (
            <Badge key={badge} tone="neutral" title="Not in DVC's cache: git tracks this file">
              in git
            </Badge>
          ) : (
            <Badge key={badge} tone={badgeTone(badge)}>
              {badgeLabel(badge)}
            </Badge>
          )
        )}
        <span className="jp-wb-Row-owner" title="Recorded by">
          {entry.owner}
        </span>
      </div>
      {props.open && (
        <div className="jp-wb-Row-detail">
          {entry.cached && (
            <div className="jp-wb-Actions">
              <ActionButton label="Push" onClick={() => void commands.execute(CommandIDs.dataPush, targets)} />
              <ActionButton label="Pull" onClick={() => void commands.execute(CommandIDs.dataPull, targets)} />
              <ActionButton label="Checkout" onClick={() => void commands.execute(CommandIDs.dataCheckout, targets)} />
            </div>
          )}
          <Revisions path={entry.path} />
        </div>
      )}
    </li>
  );
}

/** A path's revisions; pick two (or one, against the workspace) to see their diff. */
function Revisions(props: { path: string }): JSX.Element {
  const revisions = useResource(
    () => requestAPI<DataRevision[]>('data/revisions', { query: { path: props.path } }),
    [props.path]
  );
  const [picked, setPicked] = React.useState<string[]>([]);
  const [diffRevs, setDiffRevs] = React.useState<[string, string | null] | null>(null);
  const toggle = (sha: string): void =>
    setPicked(p => (p.includes(sha) ? p.filter(s => s !== sha) : [...p, sha].slice(-2)));
  const list = revisions.data ?? [];
  // older first in the diff: the list is newest first
  const ordered = list.filter(r => picked.includes(r.sha)).reverse();
  return (
    <div className="jp-wb-Revisions">
      <ErrorBanner error={revisions.error} onRetry={revisions.reload} />
      {!revisions.data && revisions.loading && <Loading what="revisions" />}
      {revisions.data && list.length === 0 && <Notice>No committed revision of this path yet.</Notice>}
      {list.length > 0 && <div className="jp-wb-Subheading">Revisions ({list.length})</div>}
      <ul className="jp-wb-Revisions-list">
        {list.map((rev, i) => (
          <li key={rev.sha} className="jp-wb-Revision">
            <label>
              <input
                type="checkbox"
                checked={picked.includes(rev.sha)}
                onChange={() => toggle(rev.sha)}
                aria-label={`Pick ${rev.short_sha} to compare`}
              />
              <code>{rev.short_sha}</code>
              <span className="jp-wb-Revision-message">{rev.message}</span>
            </label>
            <span className="jp-wb-Row-meta">
              {formatAgo(rev.date)} · {formatBytes(rev.size)} · {shortHash(rev.hash, 8)}
              {i === 0 && ' · latest'}
            </span>
          </li>
        ))}
      </ul>
      {list.length > 0 && (
        <div className="jp-wb-Actions">
          <ActionButton
            label={
              ordered.length === 2 ? `Diff ${ordered[0].short_sha}…${ordered[1].short_sha}` : 'Diff with workspace'
            }
            disabled={ordered.length === 0}
            title="Pick two revisions, or one to compare with the workspace"
            onClick={() => setDiffRevs([ordered[0].sha, ordered.length === 2 ? ordered[1].sha : null])}
          />
        </div>
      )}
      {diffRevs && <DiffView revA={diffRevs[0]} revB={diffRevs[1]} focus={props.path} />}
    </div>
  );
}

/** What changed between two revisions; changes to `focus` (the path the revisions are of) come first. */
function DiffView(props: { revA: string; revB: string | null; focus: string }): JSX.Element {
  const diff = useResource(
    () => requestAPI<DataDiff>('data/diff', { query: { rev_a: props.revA, rev_b: props.revB } }),
    [props.revA, props.revB]
  );
  const tone = (change: string) => (change === 'deleted' ? 'error' : change === 'added' ? 'ok' : 'warn');
  const inFocus = (path: string): boolean =>
    path === props.focus || path.startsWith(`${props.focus.replace(/\/$/, '')}/`);
  const changes = [...(diff.data?.changes ?? [])].sort((a, b) => Number(inFocus(b.path)) - Number(inFocus(a.path)));
  return (
    <div className="jp-wb-Diff" data-testid="data-diff">
      <ErrorBanner error={diff.error} onRetry={diff.reload} />
      {!diff.data && diff.loading && <Loading what="the diff" />}
      {diff.data && (
        <>
          <div className="jp-wb-Diff-title">
            Changes <code>{shortHash(diff.data.rev_a)}</code> →{' '}
            {diff.data.rev_b === 'workspace' ? 'workspace' : <code>{shortHash(diff.data.rev_b)}</code>}
          </div>
          {changes.length === 0 && <Notice tone="ok">No data changes.</Notice>}
          <ul className="jp-wb-Diff-list">
            {changes.map(change => (
              <li key={`${change.change}:${change.path}`} className={inFocus(change.path) ? 'jp-mod-focus' : ''}>
                <Badge tone={tone(change.change)}>{change.change}</Badge>
                <span className="jp-wb-Diff-path">
                  {change.old_path ? `${change.old_path} → ` : ''}
                  {change.path}
                </span>
                <span className="jp-wb-Row-meta">
                  {shortHash(change.old_hash, 8) || '∅'} → {shortHash(change.new_hash, 8) || '∅'}
                </span>
              </li>
            ))}
          </ul>
          {diff.data.not_in_cache.length > 0 && (
            <Notice tone="warn">Not in the local cache: {diff.data.not_in_cache.join(', ')} (pull them first).</Notice>
          )}
        </>
      )}
    </div>
  );
}

function PipelineView(props: { panel: WorkbenchPanel }): JSX.Element {
  const pipeline = useResource(() => requestAPI<Pipeline>('data/pipeline'), [], props.panel.refreshed);
  const stages = upstreamFirst(pipeline.data?.stages ?? []).filter(s => s.kind === 'stage');
  const stale = stages.filter(s => s.stale).length;
  return (
    <div className="jp-wb-Pipeline">
      <ErrorBanner error={pipeline.error} onRetry={pipeline.reload} />
      {!pipeline.data && pipeline.loading && <Loading what="the pipeline" />}
      {pipeline.data && stages.length === 0 && <Notice>No pipeline stages (dvc.yaml) in this repository.</Notice>}
      {stages.length > 0 && (
        <div className="jp-wb-Meta">
          {stages.length} stages ·{' '}
          {stale ? <Badge tone="warn">{stale} stale: run `dvc repro`</Badge> : <Badge tone="ok">all up to date</Badge>}
        </div>
      )}
      <ol className="jp-wb-List">
        {stages.map(stage => (
          <li
            key={stage.name}
            className={`jp-wb-Row jp-wb-Stage ${stage.stale ? 'jp-mod-stale' : ''}`}
            data-stage={stage.name}
          >
            <div className="jp-wb-Row-line">
              <span className="jp-wb-Row-title">{stage.name}</span>
              {stage.stale ? <Badge tone="warn">stale</Badge> : <Badge tone="ok">up to date</Badge>}
              {stage.frozen && <Badge tone="neutral">frozen</Badge>}
            </div>
            <code className="jp-wb-Stage-cmd">{stage.cmd.join(' && ')}</code>
            {stage.upstream.length > 0 && <div className="jp-wb-Row-meta">after {stage.upstream.join(', ')}</div>}
            {stage.outs.length > 0 && <div className="jp-wb-Row-meta">outputs {stage.outs.join(', ')}</div>}
            {stage.changes.map(change => (
              <div key={change} className="jp-wb-Stage-change">
                {change}
              </div>
            ))}
          </li>
        ))}
      </ol>
    </div>
  );
}

const DATA_JOBS = new Set(['dvc.push', 'dvc.pull', 'dvc.checkout']);

/** Push, pull and checkout jobs: running ones with their progress, then the last few that ended. */
function JobsView(props: { model: WorkbenchModel }): JSX.Element | null {
  useSignal(props.model.jobs.changed);
  const jobs = props.model.jobs.jobs.filter(job => DATA_JOBS.has(job.kind)).slice(0, 3);
  if (jobs.length === 0) {
    return null;
  }
  return (
    <ul className="jp-wb-List jp-wb-Jobs" aria-label="Data jobs">
      {jobs.map(job => (
        <JobRow key={job.id} job={job} />
      ))}
    </ul>
  );
}

function JobRow(props: { job: Job }): JSX.Element {
  const { job } = props;
  const running = job.state === 'running' || job.state === 'queued';
  const tone =
    job.state === 'succeeded'
      ? 'ok'
      : job.state === 'failed'
        ? 'error'
        : job.state === 'cancelled'
          ? 'neutral'
          : 'info';
  const cancel = (): void => {
    void requestAPI(`jobs/${job.id}/cancel`, { method: 'POST' }).catch(() => undefined);
  };
  return (
    <li className="jp-wb-Row jp-wb-Job" data-job={job.kind} data-state={job.state}>
      <div className="jp-wb-Row-line">
        <span className="jp-wb-Row-title">{job.kind.replace('.', ' ')}</span>
        <Badge tone={tone}>{job.state}</Badge>
        {running && <ActionButton label="Cancel" onClick={cancel} />}
      </div>
      {running && <ProgressBar done={job.done} total={job.total} />}
      <div className="jp-wb-Row-meta">
        {job.message}
        {job.total ? ` (${job.done ?? 0}/${job.total})` : ''}
      </div>
      {job.error && (
        <div className="jp-wb-Job-error">
          {job.error.error}
          {job.error.hint && <div className="jp-wb-ErrorBanner-hint">{job.error.hint}</div>}
        </div>
      )}
    </li>
  );
}
