/**
 * Requests to the Workbench API through the Jupyter server's own connection
 * (`ServerConnection`: its base URL, authentication and XSRF token).
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { ErrorBody } from './types';
import { QueryValue, queryString } from './url';

const API_PATH = 'workbench/api';

/** A failure a person can act on: the server's message and hint, or a network failure. */
export class WorkbenchError extends Error {
  constructor(
    message: string,
    readonly hint: string,
    readonly kind: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'WorkbenchError';
  }

  /** Any thrown value as a WorkbenchError (a bug in the panel still reads as a message). */
  static from(reason: unknown): WorkbenchError {
    if (reason instanceof WorkbenchError) {
      return reason;
    }
    if (reason instanceof ServerConnection.NetworkError) {
      return new WorkbenchError(
        'The Jupyter server did not answer',
        'Check that JupyterLab is still running, then retry.',
        'network',
        0
      );
    }
    const message = reason instanceof Error ? reason.message : String(reason);
    return new WorkbenchError(message, '', 'error', 0);
  }
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  query?: Record<string, QueryValue>;
  body?: unknown;
}

let settings: ServerConnection.ISettings | null = null;

/** The server connection settings (made once: base URL, token, XSRF handling). */
function serverSettings(): ServerConnection.ISettings {
  settings = settings ?? ServerConnection.makeSettings();
  return settings;
}

/** Call one API route; resolves with its JSON, rejects with a WorkbenchError. */
export async function requestAPI<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const connection = serverSettings();
  const url = URLExt.join(connection.baseUrl, API_PATH, path) + queryString(options.query ?? {});
  const init: RequestInit = { method: options.method ?? 'GET' };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, connection);
  } catch (reason) {
    throw WorkbenchError.from(reason);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    throw errorFromResponse(response.status, data);
  }
  return data as T;
}

function errorFromResponse(status: number, data: unknown): WorkbenchError {
  const body = data as Partial<ErrorBody> | null;
  if (body && typeof body.error === 'string') {
    return new WorkbenchError(body.error, body.hint ?? '', body.kind ?? 'error', status);
  }
  if (status === 403) {
    return new WorkbenchError(
      'The Jupyter server refused the request (403)',
      'Reload the page to log in again.',
      'http',
      status
    );
  }
  return new WorkbenchError(
    `The Workbench API answered ${status}`,
    'Is the workbench server extension enabled? `jupyter server extension list` shows it.',
    'http',
    status
  );
}

/** The WebSocket URL of a stream route (`gpu/stream`), with the token where the server needs it. */
export function streamURL(path: string, query: Record<string, QueryValue> = {}): string {
  const connection = serverSettings();
  const withToken = connection.appendToken && connection.token ? { ...query, token: connection.token } : query;
  return URLExt.join(connection.wsUrl, API_PATH, path) + queryString(withToken);
}
