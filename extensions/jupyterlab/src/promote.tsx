/** The body of the Promote dialog: the candidate against the current holder, and the gates. */

import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Badge, Notice } from './components';
import { deltaTone, formatDelta, formatValue, shortHash } from './format';
import { Lineage, PromotionComparison } from './types';

export function promotionBody(comparison: PromotionComparison): ReactWidget {
  const body = ReactWidget.create(<PromotionView comparison={comparison} />);
  body.addClass('jp-wb-Promotion');
  return body;
}

interface LineageRow {
  label: string;
  candidate: string;
  current: string;
  differs: boolean;
}

/** The code commit and each tracked input's DVC hash, side by side. */
function lineageRows(candidate: Lineage | null, current: Lineage | null, compared: boolean): LineageRow[] {
  const row = (label: string, a: string, b: string): LineageRow => ({
    label,
    candidate: a,
    current: b,
    differs: compared && a !== b
  });
  const describe = (lineage: Lineage | null): string =>
    lineage?.commit ? `${shortHash(lineage.commit)}${lineage.dirty ? ' (dirty)' : ''}` : 'not recorded';
  const paths = [...new Set([...Object.keys(candidate?.data ?? {}), ...Object.keys(current?.data ?? {})])].sort();
  return [
    row('commit', describe(candidate), describe(current)),
    ...paths.map(path =>
      row(path, shortHash(candidate?.data[path], 8) || '—', shortHash(current?.data[path], 8) || '—')
    )
  ];
}

function PromotionView(props: { comparison: PromotionComparison }): JSX.Element {
  const { comparison } = props;
  const { candidate, current } = comparison;
  const params = Object.entries(comparison.params_differ);
  return (
    <div className="jp-wb-Promotion-body" data-testid="promotion">
      <p>
        {current ? (
          <>
            <code>@{comparison.alias}</code> now points at <strong>v{current.version}</strong>. Promoting moves it to{' '}
            <strong>v{candidate.version}</strong>; v{current.version} stays one rollback away.
          </>
        ) : (
          <>
            Nothing holds <code>@{comparison.alias}</code> yet: it will point at <strong>v{candidate.version}</strong>.
          </>
        )}
      </p>
      <div className="jp-wb-Subheading">Gates</div>
      {comparison.gates.length === 0 ? (
        <Notice tone="neutral">
          No gates for {comparison.model}: set <code>promotion_gates</code> in workbench.toml to require some.
        </Notice>
      ) : (
        <ul className="jp-wb-Gates" data-testid="gates">
          {comparison.gates.map(gate => (
            <li key={gate.gate}>
              <Badge tone={gate.passed ? 'ok' : 'error'}>{gate.passed ? 'pass' : 'fail'}</Badge>
              <code>{gate.gate}</code>
              <span className="jp-wb-Row-meta">{gate.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {!comparison.gates_passed && (
        <Notice tone="error">Gates failed: promoting anyway records the override in the audit log.</Notice>
      )}
      <table className="jp-wb-CompareTable">
        <thead>
          <tr>
            <th>metric</th>
            <th>v{candidate.version} (candidate)</th>
            {current && <th>v{current.version} (current)</th>}
            {current && <th>change</th>}
          </tr>
        </thead>
        <tbody>
          {comparison.metrics.map(metric => {
            const delta = typeof metric.delta === 'number' ? metric.delta : null;
            return (
              <tr key={metric.key} data-metric={metric.key}>
                <th>{metric.key}</th>
                <td>{formatValue(metric.candidate)}</td>
                {current && <td>{formatValue(metric.current)}</td>}
                {current && (
                  <td className={`jp-wb-delta-${deltaTone(metric.lower_is_better, delta)}`}>{formatDelta(delta)}</td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {params.length > 0 && (
        <>
          <div className="jp-wb-Subheading">Params that differ</div>
          <table className="jp-wb-CompareTable">
            <thead>
              <tr>
                <th>param</th>
                <th>v{candidate.version}</th>
                <th>{current ? `v${current.version}` : ''}</th>
              </tr>
            </thead>
            <tbody>
              {params.map(([key, values]) => (
                <tr key={key}>
                  <th>{key}</th>
                  <td>{values.candidate ?? '—'}</td>
                  <td>{values.current ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      <div className="jp-wb-Subheading">Trained on</div>
      <table className="jp-wb-CompareTable" data-testid="lineage-comparison">
        <tbody>
          {lineageRows(candidate.lineage, current?.lineage ?? null, current !== null).map(row => (
            <tr key={row.label} className={row.differs ? 'jp-wb-differs' : ''}>
              <th>{row.label}</th>
              <td>
                <code>{row.candidate}</code>
              </td>
              {current && (
                <td>
                  <code>{row.current}</code>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="jp-wb-Row-meta">candidate run {shortHash(candidate.run_id, 8)}</div>
    </div>
  );
}
