import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  columnsOf,
  needsNextPage,
  nextSort,
  orderBy,
  registeredModelSnippet,
  runModelSnippet,
  searchKey,
  visibleRange
} from '../src/runs';

const run = (id: string, metrics: Record<string, number>, params: Record<string, string>) => ({
  run_id: id,
  run_name: id,
  metrics,
  params
});

test('columns: metrics then params, each sorted, over all runs', () => {
  const columns = columnsOf([
    run('a', { f1: 1, accuracy: 0.9 }, { depth: '2' }),
    run('b', { loss: 0.1 }, { lr: '0.1' })
  ]);
  assert.deepEqual(
    columns.map(c => `${c.kind}.${c.key}`),
    ['metrics.accuracy', 'metrics.f1', 'metrics.loss', 'params.depth', 'params.lr']
  );
});

test('sort keys follow MLflow grammar; a click flips the direction', () => {
  assert.equal(searchKey({ kind: 'metrics', key: 'val_accuracy' }), 'metrics.val_accuracy');
  assert.equal(searchKey({ kind: 'params', key: 'learning rate' }), 'params.`learning rate`');
  assert.equal(searchKey({ kind: 'metrics', key: 'system/gpu_0' }), 'metrics.`system/gpu_0`');
  const accuracy = { kind: 'metrics' as const, key: 'accuracy' };
  const first = nextSort(null, accuracy);
  assert.deepEqual(orderBy(first), ['metrics.accuracy DESC'], 'metrics sort best-first');
  assert.deepEqual(orderBy(nextSort(first, accuracy)), ['metrics.accuracy ASC']);
  assert.deepEqual(orderBy(nextSort(first, { kind: 'params', key: 'lr' })), ['params.lr ASC']);
  assert.deepEqual(orderBy(null), []);
});

test('the visible window stays small at 100,000 runs', () => {
  const rows = 100_000;
  assert.deepEqual(visibleRange(0, 560, 28, rows), [0, 30]);
  const [start, end] = visibleRange(28 * 50_000, 560, 28, rows);
  assert.deepEqual([start, end], [49_990, 50_030]);
  assert.ok(end - start <= 40, 'only the rows in view and a small overscan are drawn');
  assert.deepEqual(visibleRange(28 * rows, 560, 28, rows), [rows - 10, rows]);
  assert.deepEqual(visibleRange(0, 560, 28, 0), [0, 0]);
});

test('the next page is fetched near the end of what is loaded, once at a time', () => {
  assert.equal(needsNextPage(30, 100, true, false), false);
  assert.equal(needsNextPage(60, 100, true, false), true);
  assert.equal(needsNextPage(60, 100, true, true), false, 'not while a page is loading');
  assert.equal(needsNextPage(100, 100, false, false), false, 'not after the last page');
});

test('snippets load the model and quote what they embed', () => {
  const code = runModelSnippet('abc123', 'models:/m-0f1e', 'sqlite:////ws/.workbench/mlflow.db');
  assert.match(code, /mlflow\.set_tracking_uri\("sqlite:\/\/\/\/ws\/\.workbench\/mlflow\.db"\)/);
  assert.match(code, /mlflow\.get_run\("abc123"\)/);
  assert.match(code, /mlflow\.pyfunc\.load_model\("models:\/m-0f1e"\)/);
  assert.doesNotMatch(runModelSnippet('abc', 'models:/m-1', null), /set_tracking_uri/);
  assert.match(registeredModelSnippet('wine-classifier', '1', null), /"models:\/wine-classifier\/1"/);
  assert.match(registeredModelSnippet('wine-classifier', 'champion', null), /"models:\/wine-classifier@champion"/);
  assert.match(registeredModelSnippet('a"b', 'champion', 'http://x'), /"models:\/a\\"b@champion"/);
});
