/**
 * The logic behind the runs table: columns, sort keys, the visible window,
 * when to fetch the next page, and the code snippets. Pure, unit tested.
 */

/** The part of a run the table needs (a subset of the server's RunSummary). */
export interface RunRow {
  run_id: string;
  run_name: string;
  params: Record<string, string>;
  metrics: Record<string, number | string>;
}

/** A column of the runs table: a metric or a param. */
export interface Column {
  kind: 'metrics' | 'params';
  key: string;
}

/** A server-side sort: MLflow's `order_by` for one column. */
export interface Sort {
  column: Column;
  descending: boolean;
}

/** Metrics first, then params, each sorted by name, over every run loaded so far. */
export function columnsOf(runs: readonly RunRow[]): Column[] {
  const metrics = new Set<string>();
  const params = new Set<string>();
  for (const run of runs) {
    Object.keys(run.metrics).forEach(key => metrics.add(key));
    Object.keys(run.params).forEach(key => params.add(key));
  }
  return [
    ...[...metrics].sort().map(key => ({ kind: 'metrics' as const, key })),
    ...[...params].sort().map(key => ({ kind: 'params' as const, key }))
  ];
}

/** The key in MLflow's search grammar; names other than plain identifiers are backquoted. */
export function searchKey(column: Column): string {
  const key = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(column.key) ? column.key : `\`${column.key.replace(/`/g, '')}\``;
  return `${column.kind}.${key}`;
}

/** MLflow's `order_by` value for a sort (`"metrics.accuracy DESC"`). */
export function orderBy(sort: Sort | null): string[] {
  return sort ? [`${searchKey(sort.column)} ${sort.descending ? 'DESC' : 'ASC'}`] : [];
}

/** The sort after a click on a column's header: new column descending, same column flips. */
export function nextSort(current: Sort | null, column: Column): Sort {
  if (current && current.column.kind === column.kind && current.column.key === column.key) {
    return { column, descending: !current.descending };
  }
  return { column, descending: column.kind === 'metrics' };
}

/** The rows to render: those in view plus `overscan` on each side, as `[start, end)`. */
export function visibleRange(
  scrollTop: number,
  viewportHeight: number,
  rowHeight: number,
  rowCount: number,
  overscan = 10
): [number, number] {
  if (rowCount <= 0 || rowHeight <= 0) {
    return [0, 0];
  }
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const last = Math.ceil((Math.max(0, scrollTop) + Math.max(0, viewportHeight)) / rowHeight);
  return [Math.max(0, first - overscan), Math.min(rowCount, last + overscan)];
}

/** Fetch the next page when the rendered window comes within `margin` rows of the loaded end. */
export function needsNextPage(
  rangeEnd: number,
  loaded: number,
  hasMore: boolean,
  loading: boolean,
  margin = 50
): boolean {
  return hasMore && !loading && rangeEnd + margin >= loaded;
}

/** A Python string literal for a value that may hold quotes or backslashes. */
function pyString(text: string): string {
  return JSON.stringify(text);
}

/** Notebook code that loads a model the run logged (`modelUri`: `models:/<model_id>`), with the run. */
export function runModelSnippet(runId: string, modelUri: string, trackingUri: string | null): string {
  return [
    'import mlflow',
    '',
    ...(trackingUri ? [`mlflow.set_tracking_uri(${pyString(trackingUri)})`] : []),
    `run = mlflow.get_run(${pyString(runId)})`,
    `model = mlflow.pyfunc.load_model(${pyString(modelUri)})`,
    'run.data.metrics, model'
  ].join('\n');
}

/** Notebook code that loads a registered model by version or alias (`"champion"` -> `@champion`). */
export function registeredModelSnippet(model: string, versionOrAlias: string, trackingUri: string | null): string {
  const ref = /^\d+$/.test(versionOrAlias) ? `${model}/${versionOrAlias}` : `${model}@${versionOrAlias}`;
  return [
    'import mlflow',
    '',
    ...(trackingUri
      ? [`mlflow.set_tracking_uri(${pyString(trackingUri)})`, `mlflow.set_registry_uri(${pyString(trackingUri)})`]
      : []),
    `model = mlflow.pyfunc.load_model(${pyString(`models:/${ref}`)})`,
    'model.metadata.get_input_schema()'
  ].join('\n');
}
