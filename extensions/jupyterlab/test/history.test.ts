import assert from 'node:assert/strict';
import { test } from 'node:test';

import { appendSample, gpuSummary, memoryPercent } from '../src/history';
import { optionsFrom } from '../src/options';
import { queryString } from '../src/url';

const gpu = (index: number, util: number | null, used: number | null, total = 100) => ({
  index,
  host: 'h',
  utilization_gpu: util,
  memory_used: used,
  memory_total: total
});

test('histories keep the last points per GPU and drop GPUs that left', () => {
  let histories = appendSample(new Map(), [gpu(0, 10, 50), gpu(1, 20, 25)], 3);
  histories = appendSample(histories, [gpu(0, 30, 60), gpu(1, null, null)], 3);
  histories = appendSample(histories, [gpu(0, 40, 70)], 3);
  histories = appendSample(histories, [gpu(0, 50, 80)], 3);
  assert.deepEqual(histories.get('h/0'), { utilization: [30, 40, 50], memory: [60, 70, 80] });
  assert.equal(histories.has('h/1'), false);
  assert.equal(memoryPercent(gpu(0, 1, 5, 0)), null);
});

test('the status-bar summary', () => {
  assert.equal(gpuSummary({ available: false, simulated: false, gpus: [] }), 'GPU: none');
  assert.equal(gpuSummary({ available: true, simulated: false, gpus: [gpu(0, 47.4, 32, 80)] }), 'GPU 47% · mem 40%');
  assert.equal(
    gpuSummary({ available: true, simulated: true, gpus: [gpu(0, 40, 10), gpu(1, 60, 30)] }),
    '2× GPU 50% · mem 20% (simulated)'
  );
  assert.equal(gpuSummary({ available: true, simulated: false, gpus: [gpu(0, null, null, 0)] }), 'GPU n/a');
});

test('settings fall back to defaults and stay in range', () => {
  assert.deepEqual(optionsFrom({}), { refreshInterval: 15, gpuInterval: 1, gpuHistoryPoints: 60 });
  assert.deepEqual(optionsFrom({ refreshInterval: 0.5, gpuInterval: 'fast', gpuHistoryPoints: 99.6 }), {
    refreshInterval: 2,
    gpuInterval: 1,
    gpuHistoryPoints: 100
  });
});

test('query strings repeat arrays and skip empty values', () => {
  assert.equal(
    queryString({ experiment: ['1', '2'], filter_string: '', max_results: 50, page_token: null, remote: false }),
    '?experiment=1&experiment=2&max_results=50&remote=false'
  );
  assert.equal(queryString({ order_by: ['metrics.accuracy DESC'] }), '?order_by=metrics.accuracy+DESC');
  assert.equal(queryString({}), '');
});
