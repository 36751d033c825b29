/**
 * Text for numbers, sizes, times and statuses: pure functions, unit tested.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1536` -> `"1.5 KiB"`; `null` -> `"n/a"`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) {
    return 'n/a';
  }
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const sign = bytes < 0 ? '-' : '';
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${sign}${value.toFixed(digits)} ${BYTE_UNITS[unit]}`;
}

/** A percentage without decimals (`47.6` -> `"48%"`); `null` -> `"n/a"`. */
export function formatPercent(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return 'n/a';
  }
  return `${Math.round(value)}%`;
}

/**
 * A metric or other measured value with four significant digits.
 *
 * The server sends non-finite floats as strings (`"nan"`, `"inf"`), which are
 * shown as they are.
 */
export function formatValue(value: number | string | null | undefined): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'string') {
    return value;
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

/** A signed difference (`+0.012`, `-0.5`); zero is `"±0"`. */
export function formatDelta(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return '';
  }
  if (value === 0) {
    return '±0';
  }
  return `${value > 0 ? '+' : ''}${formatValue(value)}`;
}

/**
 * The tone of a change of a metric: "ok" when it improved, "error" when it got worse.
 * Which direction is better comes from the server (`lower_is_better`), so every surface agrees.
 */
export function deltaTone(lowerIsBetter: boolean, delta: number | null): 'ok' | 'error' | 'neutral' {
  if (delta === null || delta === 0 || !Number.isFinite(delta)) {
    return 'neutral';
  }
  return delta > 0 !== lowerIsBetter ? 'ok' : 'error';
}

/** How long ago a moment was, in words a person reads at a glance. */
export function formatAgo(then: number | string | null | undefined, now: number = Date.now()): string {
  if (then === null || then === undefined) {
    return '';
  }
  const ms = typeof then === 'number' ? then : Date.parse(then);
  if (!Number.isFinite(ms)) {
    return '';
  }
  const seconds = Math.round((now - ms) / 1000);
  if (seconds < 0) {
    return 'just now';
  }
  if (seconds < 60) {
    return `${seconds}s ago`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ago`;
  }
  const hours = Math.floor(minutes / 60);
  if (hours < 48) {
    return `${hours} h ago`;
  }
  return `${Math.floor(hours / 24)} days ago`;
}

/** A duration between two epoch-ms times (`end` null: still running). */
export function formatDuration(start: number | null, end: number | null, now: number = Date.now()): string {
  if (start === null) {
    return '';
  }
  const seconds = Math.max(0, Math.round(((end ?? now) - start) / 1000));
  if (seconds < 60) {
    return `${seconds}s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes}m ${seconds % 60}s`;
  }
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** The first characters of a hash or commit (`null` -> `""`). */
export function shortHash(hash: string | null | undefined, length = 7): string {
  return hash ? hash.slice(0, length) : '';
}

/** The tone of a data status badge: how worried a person should be. */
export type Tone = 'ok' | 'info' | 'warn' | 'error' | 'neutral';

const BADGE_TONES: Record<string, Tone> = {
  unchanged: 'ok',
  modified: 'warn',
  'not committed': 'warn',
  missing: 'error',
  'not in cache': 'error',
  'not pushed': 'info'
};

/** The badge a tracked output shows for one of the data service's status words. */
export function badgeTone(badge: string): Tone {
  return BADGE_TONES[badge] ?? 'neutral';
}

/** The text of a badge: "unchanged" reads "up to date" next to a file. */
export function badgeLabel(badge: string): string {
  return badge === 'unchanged' ? 'up to date' : badge;
}

/** The tone of a deployment's state, for its health dot. */
export function deploymentTone(state: string): Tone {
  switch (state) {
    case 'healthy':
      return 'ok';
    case 'starting':
    case 'restarting':
      return 'warn';
    case 'unhealthy':
    case 'failed':
    case 'dead':
      return 'error';
    default:
      return 'neutral';
  }
}
