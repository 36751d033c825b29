/**
 * The records the Workbench API returns (see workbench/server/openapi.json and
 * the dataclasses of the Python services); field names are the JSON keys.
 */

/** A non-finite float arrives as a string ("nan", "inf"). */
export type Num = number | string;

export interface ErrorBody {
  error: string;
  hint: string;
  kind?: string;
}

// ---------------------------------------------------------------- data (DVC)

export interface TrackedOutput {
  path: string;
  kind: 'file' | 'dir';
  owner: string;
  stage: string | null;
  hash: string | null;
  size: number | null;
  nfiles: number | null;
  cached: boolean;
  badges: string[];
}

export interface GitState {
  branch: string | null;
  head: string | null;
  dirty: boolean;
  staged: string[];
  unstaged: string[];
  untracked: string[];
}

export interface DataStatus {
  root: string;
  entries: TrackedOutput[];
  remote_checked: boolean;
  remote: string | null;
  git: GitState | null;
  notes: string[];
}

export interface DataRevision {
  path: string;
  sha: string;
  short_sha: string;
  date: string;
  author: string;
  message: string;
  hash: string | null;
  size: number | null;
  nfiles: number | null;
  source: string;
}

export interface DataChange {
  change: 'added' | 'deleted' | 'modified' | 'renamed' | string;
  path: string;
  old_hash: string | null;
  new_hash: string | null;
  old_path: string | null;
}

export interface DataDiff {
  rev_a: string;
  rev_b: string;
  changes: DataChange[];
  not_in_cache: string[];
}

export interface PipelineStage {
  name: string;
  kind: 'stage' | 'source';
  source: string;
  cmd: string[];
  deps: string[];
  outs: string[];
  params: string[];
  metrics: string[];
  frozen: boolean;
  stale: boolean;
  changes: string[];
  upstream: string[];
}

export interface Pipeline {
  root: string;
  stages: PipelineStage[];
  edges: { stage: string; upstream: string }[];
}

// ---------------------------------------------------------------- experiments

export interface Experiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  artifact_location: string;
  tags: Record<string, string>;
  creation_time: number | null;
  last_update_time: number | null;
  run_count: number | null;
}

export interface RunSummary {
  run_id: string;
  run_name: string;
  experiment_id: string;
  status: string;
  start_time: number | null;
  end_time: number | null;
  user: string | null;
  lifecycle_stage: string;
  artifact_uri: string | null;
  params: Record<string, string>;
  metrics: Record<string, Num>;
  tags: Record<string, string>;
}

/** A model a run logged (MLflow 3 logged models); `uri` loads it: `models:/<model_id>`. */
export interface LoggedModelInfo {
  name: string;
  model_id: string;
  uri: string;
  status: string | null;
}

/** The parts of `GET runs/{id}` the panels use. */
export interface RunDetail extends RunSummary {
  models: LoggedModelInfo[];
}

export interface RunsPage {
  runs: RunSummary[];
  next_page_token: string | null;
  source: 'sql' | 'mlflow';
}

export interface RunComparison {
  runs: RunSummary[];
  params_differ: Record<string, Record<string, string | null>>;
  metrics: Record<string, { steps: number[]; lower_is_better: boolean; values: Record<string, (number | null)[]> }>;
}

// ---------------------------------------------------------------- registry

export interface Lineage {
  commit: string | null;
  branch: string | null;
  dirty: boolean | null;
  data: Record<string, string>;
  data_dirty: boolean | null;
  params_sha256: string | null;
  source: string;
}

export interface ModelInfo {
  name: string;
  description: string;
  tags: Record<string, string>;
  aliases: Record<string, string>;
  latest_version: string | null;
  created: number | null;
  updated: number | null;
}

export interface ModelVersionInfo {
  name: string;
  version: string;
  aliases: string[];
  status: string;
  run_id: string | null;
  source: string;
  description: string;
  tags: Record<string, string>;
  created: number | null;
  updated: number | null;
  metrics: Record<string, Num>;
  params: Record<string, string>;
  lineage: Lineage | null;
}

export interface ModelDetail {
  model: ModelInfo;
  versions: ModelVersionInfo[];
}

export interface GateResult {
  gate: string;
  passed: boolean;
  detail: string;
}

export interface PromotionComparison {
  model: string;
  alias: string;
  candidate: ModelVersionInfo;
  current: ModelVersionInfo | null;
  metrics: { key: string; candidate: Num | null; current: Num | null; delta: Num | null; lower_is_better: boolean }[];
  params_differ: Record<string, { candidate: string | null; current: string | null }>;
  gates: GateResult[];
  gates_passed: boolean;
}

export interface AliasMove {
  model: string;
  alias: string;
  before: string | null;
  after: string | null;
  overridden_gates: string[];
  deployment_errors: ErrorBody[];
}

/** One step of an alias's history: `v` held the alias until `by` replaced it. */
export interface AliasStep {
  v: string | null;
  by: string;
}

// ---------------------------------------------------------------- deployments

export interface Deployment {
  name: string;
  target: string;
  model: string;
  alias: string | null;
  version: string | null;
  model_ref: string;
  endpoint: string | null;
  port: number | null;
  state: string;
  restart_policy: string;
  restarts: number;
  last_error: string | null;
  started: string | null;
  updated: string | null;
  job_id: string | null;
}

export interface PredictionResult {
  deployment: string;
  version: string | null;
  endpoint: string | null;
  request: unknown;
  response: unknown;
  status_code: number;
  latency_ms: number;
}

// ---------------------------------------------------------------- GPUs

export interface GpuReading {
  index: number;
  name: string | null;
  uuid: string | null;
  host: string;
  state: 'ok' | 'error' | 'lost' | string;
  utilization_gpu: number | null;
  utilization_memory: number | null;
  memory_used: number | null;
  memory_total: number | null;
  temperature: number | null;
  power: number | null;
  power_limit: number | null;
  sm_clock: number | null;
  memory_clock: number | null;
  mig_mode: boolean | null;
  unsupported: string[];
  error: string | null;
  simulated: boolean;
}

export interface GpuProcess {
  pid: number;
  gpu_index: number;
  host: string;
  used_memory: number | null;
  sm_utilization: number | null;
  user: string | null;
  command: string | null;
  kernel_id: string | null;
  notebook_path: string | null;
  simulated: boolean;
}

export interface GpuSample {
  timestamp: number;
  host: string;
  source: string;
  simulated: boolean;
  available: boolean;
  reason: string | null;
  gpus: GpuReading[];
  processes: GpuProcess[];
  errors: Record<string, string>;
  driver_version: string | null;
}

// ---------------------------------------------------------------- jobs and workspace

export interface Job {
  id: string;
  kind: string;
  target: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  done: number | null;
  total: number | null;
  message: string;
  result: unknown;
  error: ErrorBody | null;
  created: string;
  started: string | null;
  ended: string | null;
  actor: string | null;
}

export interface JobEvent {
  event: 'created' | 'progress' | 'finished';
  job: Job;
}

export interface WorkspaceStatus {
  workspace: string;
  git: boolean;
  dvc: boolean;
  tracking_uri: string;
  settings_sources: Record<string, string>;
}
