/**
 * The Compare tab (main area): every metric's curves overlaid, one colour per
 * run, and the params whose values differ between the runs.
 */

import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { requestAPI } from './api';
import { ErrorBanner, Loading, Notice, useResource } from './components';
import { formatValue } from './format';
import { experimentsIcon } from './icons';
import { chartGeometry } from './sparkline';
import { RunComparison } from './types';

// a categorical palette that reads on light and dark backgrounds
const COLORS = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f'
];
const WIDTH = 360;
const HEIGHT = 200;
const PAD = { left: 48, right: 12, top: 10, bottom: 26 };

export function createCompareWidget(runIds: string[]): MainAreaWidget<ReactWidget> {
  const content = ReactWidget.create(<CompareView runIds={runIds} />);
  content.addClass('jp-wb-Compare');
  const widget = new MainAreaWidget({ content });
  widget.id = `workbench-compare-${runIds.join('-').slice(0, 120)}`;
  widget.title.label = `Compare ${runIds.length} runs`;
  widget.title.icon = experimentsIcon;
  widget.title.closable = true;
  return widget;
}

function CompareView(props: { runIds: string[] }): JSX.Element {
  const comparison = useResource(() => requestAPI<RunComparison>('compare', { query: { run_ids: props.runIds } }), []);
  const data = comparison.data;
  if (!data) {
    return (
      <div className="jp-wb-Compare-body">
        <ErrorBanner error={comparison.error} onRetry={comparison.reload} />
        {comparison.loading && <Loading what="the comparison" />}
      </div>
    );
  }
  const color = (i: number): string => COLORS[i % COLORS.length];
  const paramKeys = Object.keys(data.params_differ);
  // a metric logged once per run reads best as numbers side by side; a history as curves
  const entries = Object.entries(data.metrics);
  const single = entries.filter(([, metric]) => metric.steps.length <= 1);
  const curves = entries.filter(([, metric]) => metric.steps.length > 1);
  const lastValue = (key: string, runId: string): number | null => {
    const values = (data.metrics[key].values[runId] ?? []).filter((v): v is number => v !== null);
    return values.length ? values[values.length - 1] : null;
  };
  return (
    <div className="jp-wb-Compare-body">
      <ErrorBanner error={comparison.error} onRetry={comparison.reload} />
      <h2>Compare {data.runs.length} runs</h2>
      <ul className="jp-wb-Legend" aria-label="Runs">
        {data.runs.map((run, i) => (
          <li key={run.run_id}>
            <span className="jp-wb-Legend-swatch" style={{ background: color(i) }} />
            {run.run_name || run.run_id}
            <code>{run.run_id.slice(0, 8)}</code>
          </li>
        ))}
      </ul>
      <h3>Metrics</h3>
      {entries.length === 0 && <Notice>These runs logged no metrics.</Notice>}
      {single.length > 0 && (
        <table className="jp-wb-ParamsTable jp-wb-MetricsTable" data-testid="final-metrics">
          <thead>
            <tr>
              <th>metric</th>
              {data.runs.map((run, i) => (
                <th key={run.run_id} style={{ color: color(i) }}>
                  {run.run_name || run.run_id.slice(0, 8)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {single.map(([key]) => {
              const values = data.runs.map(run => lastValue(key, run.run_id));
              const known = values.filter((v): v is number => v !== null);
              const best = known.length
                ? data.metrics[key].lower_is_better
                  ? Math.min(...known)
                  : Math.max(...known)
                : null;
              return (
                <tr key={key}>
                  <th>{key}</th>
                  {values.map((value, i) => (
                    <td key={i} className={value !== null && value === best && known.length > 1 ? 'jp-wb-best' : ''}>
                      {formatValue(value)}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <div className="jp-wb-Charts">
        {curves.map(([key, metric]) => {
          const series = data.runs.map(run => metric.values[run.run_id] ?? []);
          const geometry = chartGeometry(metric.steps, series, WIDTH, HEIGHT, PAD);
          const last = data.runs.map(run => lastValue(key, run.run_id));
          return (
            <figure key={key} className="jp-wb-Chart" data-metric={key}>
              <figcaption>
                <span className="jp-wb-Chart-title">{key}</span>
                <span className="jp-wb-Chart-last">
                  {last.map((value, i) => (
                    <span key={i} style={{ color: color(i) }}>
                      {formatValue(value)}
                    </span>
                  ))}
                </span>
              </figcaption>
              <svg
                width={WIDTH}
                height={HEIGHT}
                viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
                role="img"
                aria-label={`${key} by step`}
              >
                {geometry.yTicks.map(tick => (
                  <g key={`y${tick.value}`} className="jp-wb-Chart-grid">
                    <line x1={PAD.left} x2={WIDTH - PAD.right} y1={tick.y} y2={tick.y} />
                    <text x={PAD.left - 6} y={tick.y + 4} textAnchor="end">
                      {formatValue(tick.value)}
                    </text>
                  </g>
                ))}
                {geometry.xTicks.map(tick => (
                  <text
                    key={`x${tick.value}`}
                    className="jp-wb-Chart-axis"
                    x={tick.x}
                    y={HEIGHT - 8}
                    textAnchor="middle"
                  >
                    {tick.value}
                  </text>
                ))}
                {geometry.series.map((s, i) => (
                  <g key={i} stroke={color(i)} fill={color(i)}>
                    {s.path && <path d={s.path} fill="none" strokeWidth={1.6} />}
                    {s.dots.map(dot => (
                      <circle key={`${dot.x},${dot.y}`} cx={dot.x} cy={dot.y} r={3.5} />
                    ))}
                  </g>
                ))}
              </svg>
            </figure>
          );
        })}
      </div>
      <h3>Params that differ</h3>
      {paramKeys.length === 0 ? (
        <Notice>All params are the same in these runs.</Notice>
      ) : (
        <table className="jp-wb-ParamsTable" data-testid="params-differ">
          <thead>
            <tr>
              <th>param</th>
              {data.runs.map((run, i) => (
                <th key={run.run_id} style={{ color: color(i) }}>
                  {run.run_name || run.run_id.slice(0, 8)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {paramKeys.map(key => (
              <tr key={key}>
                <th>{key}</th>
                {data.runs.map(run => (
                  <td key={run.run_id}>{data.params_differ[key][run.run_id] ?? '—'}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
