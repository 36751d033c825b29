/**
 * What the panels, the status bar and the commands share: the live GPU
 * stream, the jobs stream, the user's settings and a "something changed" signal.
 */

import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { WorkbenchError, requestAPI } from './api';
import { GpuHistory, appendSample } from './history';
import { Stream, StreamState } from './stream';
import { DEFAULT_OPTIONS, Options } from './options';
import { GpuSample, Job, JobEvent, WorkspaceStatus } from './types';

/** What changed after an action, so the panels that show it read it again. */
export type Topic = 'data' | 'models' | 'deployments' | 'experiments' | 'gpus';

/** The latest GPU sample from the stream and a short history per GPU. */
export class GpuMonitor implements IDisposable {
  constructor(private options: Options) {
    this.stream = new Stream<GpuSample>('gpu/stream', { interval: options.gpuInterval });
    this.stream.message.connect((_, sample) => {
      this._sample = sample;
      this._histories = appendSample(this._histories, sample.gpus, this.options.gpuHistoryPoints);
      this._changed.emit();
    });
    this.stream.stateChanged.connect(() => this._changed.emit());
  }

  get sample(): GpuSample | null {
    return this._sample;
  }

  get state(): StreamState {
    return this.stream.state;
  }

  history(key: string): GpuHistory | undefined {
    return this._histories.get(key);
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this.stream.isDisposed;
  }

  configure(options: Options): void {
    const rateChanged = options.gpuInterval !== this.options.gpuInterval;
    this.options = options;
    if (rateChanged) {
      this.stream.reconnect({ interval: options.gpuInterval });
    }
  }

  /** Reconnect, forgetting the history: the server now samples another source. */
  restart(): void {
    this._sample = null;
    this._histories = new Map();
    this.stream.reconnect({ interval: this.options.gpuInterval });
    this._changed.emit();
  }

  dispose(): void {
    this.stream.dispose();
    Signal.clearData(this);
  }

  private readonly stream: Stream<GpuSample>;
  private _sample: GpuSample | null = null;
  private _histories = new Map<string, GpuHistory>();
  private _changed = new Signal<this, void>(this);
}

/** Long actions (push, pull, checkout, deploy) and their progress, from the jobs stream. */
export class JobsMonitor implements IDisposable {
  constructor() {
    this.stream.message.connect((_, event) => this.update(event.job, event.event === 'finished'));
    this.stream.stateChanged.connect((_, state) => {
      if (state === 'open') {
        void this.reload();
      }
    });
  }

  /** Jobs newest first. */
  get jobs(): Job[] {
    return [...this._jobs.values()].sort((a, b) => b.created.localeCompare(a.created));
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** A job ended (succeeded, failed or cancelled). */
  get finished(): ISignal<this, Job> {
    return this._finished;
  }

  get isDisposed(): boolean {
    return this.stream.isDisposed;
  }

  /** A job the panel just started (the stream reports it too; this shows it at once). */
  track(job: Job): void {
    this.update(job, false);
  }

  dispose(): void {
    this.stream.dispose();
    Signal.clearData(this);
  }

  private async reload(): Promise<void> {
    try {
      const jobs = await requestAPI<Job[]>('jobs');
      jobs.forEach(job => this._jobs.set(job.id, job));
      this._changed.emit();
    } catch {
      // the stream's own state already tells the panels the server is away
    }
  }

  private update(job: Job, finished: boolean): void {
    this._jobs.set(job.id, job);
    this._changed.emit();
    if (finished) {
      this._finished.emit(job);
    }
  }

  private readonly stream = new Stream<JobEvent>('jobs/stream');
  private _jobs = new Map<string, Job>();
  private _changed = new Signal<this, void>(this);
  private _finished = new Signal<this, Job>(this);
}

/** The shared state of the extension. */
export class WorkbenchModel implements IDisposable {
  constructor(options: Options = DEFAULT_OPTIONS) {
    this._options = options;
    this.gpu = new GpuMonitor(options);
    this.jobs.finished.connect((_, job) => {
      this.notify(job.kind === 'deploy' ? 'deployments' : 'data');
    });
  }

  readonly gpu: GpuMonitor;
  readonly jobs = new JobsMonitor();

  get options(): Options {
    return this._options;
  }

  get optionsChanged(): ISignal<this, Options> {
    return this._optionsChanged;
  }

  /** Emitted after an action changed something a panel shows. */
  get topicChanged(): ISignal<this, Topic> {
    return this._topicChanged;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  configure(options: Options): void {
    this._options = options;
    this.gpu.configure(options);
    this._optionsChanged.emit(options);
  }

  notify(topic: Topic): void {
    this._topicChanged.emit(topic);
  }

  /** The last failed action about `topic`, shown in its panel until dismissed. */
  actionError(topic: Topic): WorkbenchError | null {
    return this.actionErrors.get(topic) ?? null;
  }

  /** Record (or with null, clear) the failure of an action about `topic`. */
  setActionError(topic: Topic, error: WorkbenchError | null): void {
    if (error) {
      this.actionErrors.set(topic, error);
    } else {
      this.actionErrors.delete(topic);
    }
    this._actionErrorChanged.emit(topic);
  }

  get actionErrorChanged(): ISignal<this, Topic> {
    return this._actionErrorChanged;
  }

  /** The workspace's tracking URI (for code snippets); null when the server cannot say. */
  async trackingUri(): Promise<string | null> {
    this.status = this.status ?? requestAPI<WorkspaceStatus>('status').catch(() => null);
    const status = await this.status;
    if (status === null) {
      this.status = null;
    }
    return status?.tracking_uri ?? null;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this.gpu.dispose();
    this.jobs.dispose();
    Signal.clearData(this);
  }

  private actionErrors = new Map<Topic, WorkbenchError>();
  private _actionErrorChanged = new Signal<this, Topic>(this);
  private status: Promise<WorkspaceStatus | null> | null = null;
  private _options: Options;
  private _disposed = false;
  private _optionsChanged = new Signal<this, Options>(this);
  private _topicChanged = new Signal<this, Topic>(this);
}
