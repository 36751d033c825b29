import assert from 'node:assert/strict';
import { test } from 'node:test';

import { chartGeometry, niceTicks, sparklinePath } from '../src/sparkline';

test('a sparkline spans the box, clamps and breaks at gaps', () => {
  assert.equal(sparklinePath([0, 50, 100], 100, 20), 'M0,20 L50,10 L100,0');
  assert.equal(sparklinePath([150, -5], 10, 10), 'M0,0 L10,10');
  assert.equal(sparklinePath([10, null, 30, 40], 30, 10), 'M0,9 M20,7 L30,6');
  assert.equal(sparklinePath([], 100, 20), '');
  assert.equal(sparklinePath([42], 100, 20), 'M0,11.6');
});

test('nice ticks are round numbers covering the range', () => {
  assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0.93, 0.99, 3), [0.94, 0.96, 0.98]);
  assert.deepEqual(niceTicks(5, 5), [5]);
  assert.deepEqual(niceTicks(0, Number.NaN), []);
});

test('chart geometry overlays runs on one scale, gaps split lines, lone points become dots', () => {
  const pad = { left: 10, right: 10, top: 10, bottom: 10 };
  const geometry = chartGeometry(
    [0, 1, 2],
    [
      [0, 1, 2],
      [2, null, 0]
    ],
    120,
    120,
    pad
  );
  assert.equal(geometry.series[0].path, 'M10,110 L60,60 L110,10');
  assert.equal(geometry.series[1].path, 'M10,10 M110,110');
  assert.deepEqual(geometry.series[1].dots, [
    { x: 10, y: 10 },
    { x: 110, y: 110 }
  ]);
  assert.deepEqual(
    geometry.xTicks.map(t => t.value),
    [0, 1, 2]
  );
  assert.ok(geometry.yTicks.every(t => t.y >= 10 && t.y <= 110));

  const flat = chartGeometry([3], [[0.5]], 120, 120, pad);
  assert.deepEqual(flat.series[0].dots, [{ x: 60, y: 60 }], 'one step, one value: a centred dot');
  assert.deepEqual(chartGeometry([], [[]], 120, 120, pad).series, [{ path: '', dots: [] }]);
});
