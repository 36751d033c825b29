/** The user's settings of the extension (schema/plugin.json). Pure, unit tested. */

export interface Options {
  refreshInterval: number; // seconds between re-reads of a visible panel
  gpuInterval: number; // seconds between GPU samples
  gpuHistoryPoints: number; // points in each sparkline
}

export const DEFAULT_OPTIONS: Options = { refreshInterval: 15, gpuInterval: 1, gpuHistoryPoints: 60 };

/** The options in the user's settings, with defaults for anything missing or out of range. */
export function optionsFrom(raw: { [key: string]: unknown }): Options {
  const number = (key: keyof Options, min: number, max: number): number => {
    const value = raw[key];
    return typeof value === 'number' && Number.isFinite(value)
      ? Math.min(max, Math.max(min, value))
      : DEFAULT_OPTIONS[key];
  };
  return {
    refreshInterval: number('refreshInterval', 2, 3600),
    gpuInterval: number('gpuInterval', 0.2, 60),
    gpuHistoryPoints: Math.round(number('gpuHistoryPoints', 10, 600))
  };
}

/** GPU sources the server knows (workbench/gpu/source.py); '' leaves the workspace's own choice. */
export const GPU_SOURCES = ['', 'auto', 'nvml', 'none', 'simulated', 'prometheus'];

/** What the settings editor overrides on the server (PUT settings); '' means "the workspace's own". */
export interface ServerOverrides {
  workspace: string;
  tracking_uri: string;
  gpu_source: string;
}

export function serverOverridesFrom(raw: { [key: string]: unknown }): ServerOverrides {
  const text = (key: string): string => (typeof raw[key] === 'string' ? (raw[key] as string).trim() : '');
  const source = text('gpuSource');
  return {
    workspace: text('workspace'),
    tracking_uri: text('trackingUri'),
    gpu_source: GPU_SOURCES.includes(source) ? source : ''
  };
}
