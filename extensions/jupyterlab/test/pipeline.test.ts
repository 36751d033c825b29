import assert from 'node:assert/strict';
import { test } from 'node:test';

import { upstreamFirst } from '../src/pipeline';

const stage = (name: string, upstream: string[] = []) => ({ name, upstream });

test('stages come after what they depend on', () => {
  const stages = [
    stage('evaluate', ['prepare', 'train']),
    stage('prepare', ['data/wine.csv.dvc']),
    stage('train', ['prepare']),
    stage('data/wine.csv.dvc')
  ];
  assert.deepEqual(
    upstreamFirst(stages).map(s => s.name),
    ['data/wine.csv.dvc', 'prepare', 'train', 'evaluate']
  );
});

test('unknown upstreams and cycles do not lose stages', () => {
  const ordered = upstreamFirst([stage('b', ['a']), stage('a', ['b']), stage('c', ['gone'])]).map(s => s.name);
  assert.deepEqual([...ordered].sort(), ['a', 'b', 'c']);
  assert.equal(ordered.length, 3);
});
