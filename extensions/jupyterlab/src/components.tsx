/**
 * Small React pieces every panel uses: error banners with hints, badges,
 * chips, progress bars, health dots, sparklines, and a data-loading hook that
 * keeps the last good data on screen while it reloads or fails.
 */

import { ISignal } from '@lumino/signaling';
import * as React from 'react';

import { WorkbenchError } from './api';
import { Tone } from './format';
import { sparklinePath } from './sparkline';

/** The state of one request: the last data, the last error, whether one is in flight. */
export interface Resource<T> {
  data: T | null;
  error: WorkbenchError | null;
  loading: boolean;
  reload: () => void;
}

/**
 * Load `load()` now, again whenever `deps` change or `signal` fires. On a
 * failure the previous data stays (a panel never goes blank) next to the error.
 */
export function useResource<T>(
  load: () => Promise<T>,
  deps: React.DependencyList,
  signal?: ISignal<unknown, unknown>
): Resource<T> {
  const [data, setData] = React.useState<T | null>(null);
  const [error, setError] = React.useState<WorkbenchError | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [tick, setTick] = React.useState(0);
  const reload = React.useCallback(() => setTick(t => t + 1), []);

  React.useEffect(() => {
    if (!signal) {
      return;
    }
    signal.connect(reload);
    return () => {
      signal.disconnect(reload);
    };
  }, [signal, reload]);

  React.useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      value => {
        if (current) {
          setData(value);
          setError(null);
          setLoading(false);
        }
      },
      reason => {
        if (current) {
          setError(WorkbenchError.from(reason));
          setLoading(false);
        }
      }
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);

  return { data, error, loading, reload };
}

/** Re-render whenever `signal` fires. */
export function useSignal(signal: ISignal<unknown, unknown>): void {
  const [, setCount] = React.useState(0);
  React.useEffect(() => {
    const bump = (): void => setCount(c => c + 1);
    signal.connect(bump);
    return () => {
      signal.disconnect(bump);
    };
  }, [signal]);
}

/** A backend error as a person reads it: what went wrong, what to do, and a retry. */
export function ErrorBanner(props: {
  error: WorkbenchError | null;
  onRetry?: () => void;
  onDismiss?: () => void;
}): JSX.Element | null {
  const { error } = props;
  if (!error) {
    return null;
  }
  return (
    <div className="jp-wb-ErrorBanner" role="alert" data-kind={error.kind}>
      <div className="jp-wb-ErrorBanner-text">
        <div className="jp-wb-ErrorBanner-message">{error.message}</div>
        {error.hint && <div className="jp-wb-ErrorBanner-hint">{error.hint}</div>}
      </div>
      <div className="jp-wb-ErrorBanner-actions">
        {props.onRetry && (
          <button className="jp-wb-LinkButton" onClick={props.onRetry}>
            Retry
          </button>
        )}
        {props.onDismiss && (
          <button className="jp-wb-LinkButton" onClick={props.onDismiss} aria-label="Dismiss">
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}

/** A plain notice (no GPU, nothing logged yet...). */
export function Notice(props: { tone?: Tone; children: React.ReactNode; className?: string }): JSX.Element {
  return (
    <div className={`jp-wb-Notice jp-wb-tone-${props.tone ?? 'info'} ${props.className ?? ''}`} role="status">
      {props.children}
    </div>
  );
}

export function Badge(props: { tone: Tone; children: React.ReactNode; title?: string }): JSX.Element {
  return (
    <span className={`jp-wb-Badge jp-wb-tone-${props.tone}`} title={props.title}>
      {props.children}
    </span>
  );
}

/** An alias chip: `@champion`. */
export function AliasChip(props: { alias: string; version?: string }): JSX.Element {
  return (
    <span
      className="jp-wb-Chip"
      data-alias={props.alias}
      title={props.version ? `@${props.alias} → v${props.version}` : undefined}
    >
      @{props.alias}
      {props.version && <span className="jp-wb-Chip-version">v{props.version}</span>}
    </span>
  );
}

/** Progress of a job: a bar of done/total, or a moving bar while the total is unknown. */
export function ProgressBar(props: { done: number | null; total: number | null; tone?: Tone }): JSX.Element {
  const known = props.total !== null && props.total > 0 && props.done !== null;
  const percent = known ? Math.min(100, (100 * (props.done as number)) / (props.total as number)) : 0;
  return (
    <div
      className={`jp-wb-Progress jp-wb-tone-${props.tone ?? 'info'} ${known ? '' : 'jp-mod-indeterminate'}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={known ? Math.round(percent) : undefined}
    >
      <div className="jp-wb-Progress-fill" style={known ? { width: `${percent}%` } : undefined} />
    </div>
  );
}

/** A coloured dot with its meaning for screen readers and tooltips. */
export function HealthDot(props: { tone: Tone; label: string }): JSX.Element {
  return (
    <span className={`jp-wb-Dot jp-wb-tone-${props.tone}`} title={props.label} aria-label={props.label} role="img" />
  );
}

/** A small line chart of recent percentages. */
export function Sparkline(props: {
  values: readonly (number | null)[];
  label: string;
  width?: number;
  height?: number;
}): JSX.Element {
  const width = props.width ?? 120;
  const height = props.height ?? 24;
  const path = sparklinePath(props.values, width, height);
  return (
    <svg
      className="jp-wb-Sparkline"
      width={width}
      height={height}
      viewBox={`0 0 ${width} ${height}`}
      role="img"
      aria-label={props.label}
    >
      <line x1={0} y1={height - 0.5} x2={width} y2={height - 0.5} className="jp-wb-Sparkline-base" />
      {path && <path d={path} className="jp-wb-Sparkline-line" />}
    </svg>
  );
}

/** A bar of a percentage with its text. */
export function Meter(props: { percent: number | null; label: string; text: string }): JSX.Element {
  const percent = props.percent === null ? 0 : Math.max(0, Math.min(100, props.percent));
  const tone: Tone = percent >= 90 ? 'error' : percent >= 70 ? 'warn' : 'ok';
  return (
    <div className="jp-wb-Meter" title={props.label}>
      <span className="jp-wb-Meter-text">{props.text}</span>
      <div className="jp-wb-Meter-track">
        <div className={`jp-wb-Meter-fill jp-wb-tone-${tone}`} style={{ width: `${percent}%` }} />
      </div>
    </div>
  );
}

/** A small text button in JupyterLab's style. */
export function ActionButton(props: {
  label: string;
  onClick: () => void;
  disabled?: boolean;
  title?: string;
  accent?: 'accept' | 'warn' | 'reject';
  testid?: string;
}): JSX.Element {
  return (
    <button
      className={`jp-wb-Button ${props.accent ? `jp-wb-mod-${props.accent}` : ''}`}
      onClick={props.onClick}
      disabled={props.disabled}
      title={props.title}
      data-testid={props.testid}
    >
      {props.label}
    </button>
  );
}

/** "Loading..." that only shows when there is nothing else to show yet. */
export function Loading(props: { what: string }): JSX.Element {
  return (
    <div className="jp-wb-Loading" role="status">
      <span className="jp-wb-Spinner" />
      Loading {props.what}…
    </div>
  );
}
