/**
 * A WebSocket stream of the Workbench API that reconnects by itself.
 */

import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { streamURL } from './api';
import { QueryValue } from './url';

export type StreamState = 'connecting' | 'open' | 'closed';

/** JSON messages from one stream route; `state` says whether it is connected. */
export class Stream<T> implements IDisposable {
  constructor(
    private readonly path: string,
    private query: Record<string, QueryValue> = {}
  ) {
    this.connect();
  }

  get message(): ISignal<this, T> {
    return this._message;
  }

  get stateChanged(): ISignal<this, StreamState> {
    return this._stateChanged;
  }

  get state(): StreamState {
    return this._state;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Reconnect with other query parameters (a new rate, say). */
  reconnect(query: Record<string, QueryValue>): void {
    this.query = query;
    this.closeSocket();
    this.connect();
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.closeSocket();
    Signal.clearData(this);
  }

  private connect(): void {
    if (this._disposed) {
      return;
    }
    this.setState('connecting');
    const socket = new WebSocket(streamURL(this.path, this.query));
    this.socket = socket;
    socket.onopen = () => {
      this.retries = 0;
      this.setState('open');
    };
    socket.onmessage = event => {
      try {
        this._message.emit(JSON.parse(event.data as string) as T);
      } catch {
        // a message that is not JSON is not ours: ignore it
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      this.setState('closed');
      // back off: 1 s, 2 s, 4 s... up to 15 s between attempts
      const delay = Math.min(15000, 1000 * 2 ** this.retries);
      this.retries += 1;
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  private closeSocket(): void {
    window.clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
  }

  private setState(state: StreamState): void {
    if (state !== this._state) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private socket: WebSocket | null = null;
  private retries = 0;
  private timer = 0;
  private _disposed = false;
  private _state: StreamState = 'closed';
  private _message = new Signal<this, T>(this);
  private _stateChanged = new Signal<this, StreamState>(this);
}
