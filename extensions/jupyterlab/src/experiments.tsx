/**
 * The Experiments panel: an experiment picker and a runs table that pages
 * from the server as it scrolls (only the rows in view are drawn), sorts by
 * any metric or param on the server, and filters with MLflow's syntax.
 * Selected runs open a comparison tab or put model-loading code in a notebook.
 */

import { HTMLSelect } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { WorkbenchError, requestAPI } from './api';
import { ActionButton, ErrorBanner, Loading, Notice, useResource } from './components';
import { formatAgo, formatDuration, formatValue } from './format';
import { experimentsIcon } from './icons';
import { CommandIDs, PanelIDs } from './ids';
import { WorkbenchModel } from './model';
import { WorkbenchPanel } from './panel';
import { Column, Sort, columnsOf, needsNextPage, nextSort, orderBy, visibleRange } from './runs';
import { Experiment, RunSummary, RunsPage } from './types';

const ROW_HEIGHT = 28;
const PAGE_SIZE = 100;

/** The runs picked in the table; the compare and insert-code commands read it. */
export class RunSelection {
  get ids(): string[] {
    return this._ids;
  }

  get changed(): ISignal<this, string[]> {
    return this._changed;
  }

  set(ids: string[]): void {
    this._ids = ids;
    this._changed.emit(ids);
  }

  private _ids: string[] = [];
  private _changed = new Signal<this, string[]>(this);
}

export function createExperimentsPanel(
  model: WorkbenchModel,
  commands: CommandRegistry,
  selection: RunSelection
): WorkbenchPanel {
  const panel = new WorkbenchPanel({
    id: PanelIDs.experiments,
    label: 'Experiments',
    icon: experimentsIcon,
    model,
    topics: ['experiments']
  });
  panel.addSection(
    'Runs',
    () => <RunsView panel={panel} commands={commands} selection={selection} />,
    'jp-wb-RunsSection'
  );
  return panel;
}

/**
 * The experiment a person most likely wants first: the one with the most runs
 * (counts are known on the SQL read path), else the latest one that is not
 * MLflow's "Default" (id 0, usually empty).
 */
function defaultExperiment(experiments: Experiment[]): string | null {
  const rank = (e: Experiment): [number, number, number] => [
    e.run_count ?? 0,
    e.experiment_id === '0' ? 0 : 1,
    e.last_update_time ?? e.creation_time ?? 0
  ];
  const best = [...experiments].sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return y[0] - x[0] || y[1] - x[1] || y[2] - x[2];
  })[0];
  return best?.experiment_id ?? null;
}

function RunsView(props: { panel: WorkbenchPanel; commands: CommandRegistry; selection: RunSelection }): JSX.Element {
  const { panel, commands, selection } = props;
  const experiments = useResource(() => requestAPI<Experiment[]>('experiments'), [], panel.refreshed);
  const [experimentId, setExperimentId] = React.useState<string | null>(null);
  const [filterText, setFilterText] = React.useState('');
  const [filter, setFilter] = React.useState('');
  const [sort, setSort] = React.useState<Sort | null>(null);
  const [runs, setRuns] = React.useState<RunSummary[]>([]);
  const [nextToken, setNextToken] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(false);
  const inFlight = React.useRef(false); // set at once, unlike state: no second request for the same page
  const failedToken = React.useRef<string | null>(null); // the page to ask again on Retry
  const [error, setError] = React.useState<WorkbenchError | null>(null);
  const [picked, setPicked] = React.useState<string[]>(selection.ids);
  const [scrollTop, setScrollTop] = React.useState(0);
  const [viewport, setViewport] = React.useState(400);
  const scroller = React.useRef<HTMLDivElement>(null);
  const query = React.useRef(0); // the newest query; answers to older ones are dropped

  const chosen = experimentId ?? defaultExperiment(experiments.data ?? []);
  const experiment = experiments.data?.find(e => e.experiment_id === chosen) ?? null;

  const fetchPage = React.useCallback(
    async (token: string | null, generation: number) => {
      inFlight.current = true;
      setLoading(true);
      try {
        const page = await requestAPI<RunsPage>('runs', {
          query: {
            experiment: chosen ? [chosen] : null,
            filter_string: filter,
            order_by: orderBy(sort),
            max_results: PAGE_SIZE,
            page_token: token
          }
        });
        if (generation === query.current) {
          setRuns(previous => (token ? [...previous, ...page.runs] : page.runs));
          setNextToken(page.next_page_token);
          setError(null);
        }
      } catch (reason) {
        if (generation === query.current) {
          failedToken.current = token;
          setError(WorkbenchError.from(reason));
        }
      } finally {
        if (generation === query.current) {
          inFlight.current = false;
          setLoading(false);
        }
      }
    },
    [chosen, filter, sort]
  );

  // a new experiment, filter or sort: start again from the first page
  const runCount = experiment?.run_count ?? null;
  React.useEffect(() => {
    if (!chosen) {
      return;
    }
    query.current += 1;
    scroller.current?.scrollTo({ top: 0 });
    setScrollTop(0);
    void fetchPage(null, query.current);
  }, [fetchPage, runCount]);

  React.useEffect(() => {
    selection.set(picked);
  }, [picked]);

  React.useLayoutEffect(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const observer = new ResizeObserver(() => setViewport(node.clientHeight));
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  const [start, end] = visibleRange(scrollTop, viewport, ROW_HEIGHT, runs.length);
  React.useEffect(() => {
    // after a failed page, the next one waits for Retry: no request loop against a failing server
    if (error === null && needsNextPage(end, runs.length, nextToken !== null, inFlight.current)) {
      void fetchPage(nextToken, query.current);
    }
  }, [end, runs.length, nextToken, loading, error]);

  const columns = React.useMemo(() => columnsOf(runs), [runs]);
  const toggle = (runId: string): void =>
    setPicked(p => (p.includes(runId) ? p.filter(id => id !== runId) : [...p, runId]));
  const total = filter === '' ? runCount : null;
  const template = `26px 150px ${columns.map(() => '84px').join(' ')}`;

  return (
    <div className="jp-wb-Runs">
      <ErrorBanner error={experiments.error} onRetry={experiments.reload} />
      <div className="jp-wb-Runs-controls">
        <HTMLSelect
          aria-label="Experiment"
          value={chosen ?? ''}
          onChange={e => {
            setExperimentId(e.currentTarget.value);
            setPicked([]);
          }}
          options={(experiments.data ?? []).map(e => ({
            label: `${e.name}${e.run_count !== null ? ` (${e.run_count})` : ''}`,
            value: e.experiment_id
          }))}
        />
        <input
          className="jp-wb-Input jp-mod-styled"
          type="search"
          aria-label="Filter runs"
          placeholder="Filter: metrics.accuracy > 0.9 and params.max_depth = '2'"
          value={filterText}
          onChange={e => setFilterText(e.target.value)}
          onKeyDown={e => {
            if (e.key === 'Enter') {
              setFilter(filterText.trim());
            }
          }}
        />
      </div>
      <ErrorBanner
        error={error}
        onRetry={() => {
          const token = failedToken.current;
          void fetchPage(token, token === null ? ++query.current : query.current);
        }}
      />
      {!experiments.data && experiments.loading && <Loading what="experiments" />}
      {experiments.data && experiments.data.length === 0 && (
        <Notice>No experiment yet: `mlflow.set_experiment(...)` and a run create one.</Notice>
      )}
      <div className="jp-wb-Runs-summary" data-testid="runs-summary">
        {total !== null ? `${runs.length} of ${total} runs` : `${runs.length}${nextToken ? '+' : ''} runs match`}
        {sort && ` · by ${sort.column.key} ${sort.descending ? '↓' : '↑'}`}
        {loading && ' · loading…'}
      </div>
      <div
        className="jp-wb-Table"
        ref={scroller}
        onScroll={e => setScrollTop(e.currentTarget.scrollTop)}
        role="grid"
        aria-rowcount={total ?? runs.length}
      >
        <div className="jp-wb-Table-header" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template }}>
          <span role="columnheader" className="jp-wb-Table-pin" />
          <span role="columnheader" className="jp-wb-Table-pin jp-wb-Table-pin2">
            Run
          </span>
          {columns.map(column => (
            <HeaderCell
              key={`${column.kind}.${column.key}`}
              column={column}
              sort={sort}
              onSort={c => setSort(nextSort(sort, c))}
            />
          ))}
        </div>
        <div className="jp-wb-Table-body" style={{ height: runs.length * ROW_HEIGHT }}>
          {runs.slice(start, end).map((run, i) => (
            <RunRowView
              key={run.run_id}
              run={run}
              index={start + i}
              columns={columns}
              template={template}
              picked={picked.includes(run.run_id)}
              onToggle={() => toggle(run.run_id)}
            />
          ))}
        </div>
      </div>
      <div className="jp-wb-Actions jp-wb-Runs-actions">
        <ActionButton
          label={`Compare (${picked.length})`}
          accent="accept"
          disabled={picked.length < 2}
          title="Pick two or more runs"
          onClick={() => void commands.execute(CommandIDs.compareRuns, { runIds: picked })}
          testid="compare-runs"
        />
        <ActionButton
          label="Insert code"
          disabled={picked.length !== 1}
          title="Pick one run: a cell that loads its model goes into the active notebook"
          onClick={() => void commands.execute(CommandIDs.insertRunCode, { runId: picked[0] })}
          testid="insert-run-code"
        />
        {picked.length > 0 && <ActionButton label="Clear" onClick={() => setPicked([])} />}
      </div>
    </div>
  );
}

function HeaderCell(props: { column: Column; sort: Sort | null; onSort: (column: Column) => void }): JSX.Element {
  const { column, sort } = props;
  const active = sort?.column.kind === column.kind && sort.column.key === column.key;
  return (
    <button
      role="columnheader"
      className={`jp-wb-Table-sort jp-wb-${column.kind} ${active ? 'jp-mod-active' : ''}`}
      title={`${column.kind}.${column.key}: sort on the server`}
      aria-sort={active ? (sort?.descending ? 'descending' : 'ascending') : 'none'}
      onClick={() => props.onSort(column)}
    >
      {column.key}
      {active ? (sort?.descending ? ' ↓' : ' ↑') : ''}
    </button>
  );
}

function RunRowView(props: {
  run: RunSummary;
  index: number; // in the runs loaded so far
  columns: Column[];
  template: string;
  picked: boolean;
  onToggle: () => void;
}): JSX.Element {
  const { run } = props;
  return (
    <div
      className={`jp-wb-Table-row ${props.picked ? 'jp-mod-selected' : ''}`}
      role="row"
      aria-selected={props.picked}
      data-run-id={run.run_id}
      aria-rowindex={props.index + 2 /* the header is row 1 */}
      style={{ top: props.index * ROW_HEIGHT, height: ROW_HEIGHT, gridTemplateColumns: props.template }}
      onClick={props.onToggle}
    >
      <span role="gridcell" className="jp-wb-Table-pin">
        <input
          type="checkbox"
          checked={props.picked}
          onChange={props.onToggle}
          onClick={e => e.stopPropagation()}
          aria-label={`Pick ${run.run_name}`}
        />
      </span>
      <span
        role="gridcell"
        className="jp-wb-Table-name jp-wb-Table-pin jp-wb-Table-pin2"
        title={`${run.run_name}\n${run.status} · started ${formatAgo(run.start_time)} · ${formatDuration(run.start_time, run.end_time)}\n${run.run_id}`}
      >
        <span className={`jp-wb-Dot jp-wb-status-${run.status.toLowerCase()}`} />
        {run.run_name || run.run_id.slice(0, 8)}
      </span>
      {props.columns.map(column => (
        <span role="gridcell" key={`${column.kind}.${column.key}`} className={`jp-wb-${column.kind}`}>
          {column.kind === 'metrics' ? formatValue(run.metrics[column.key]) : (run.params[column.key] ?? '')}
        </span>
      ))}
    </div>
  );
}
