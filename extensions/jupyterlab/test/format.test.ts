import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  badgeLabel,
  badgeTone,
  deltaTone,
  deploymentTone,
  formatAgo,
  formatBytes,
  formatDelta,
  formatDuration,
  formatPercent,
  formatValue,
  shortHash
} from '../src/format';

test('bytes use binary units with sensible precision', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(34359738368), '32.0 GiB');
  assert.equal(formatBytes(85899345920), '80.0 GiB');
  assert.equal(formatBytes(-2048), '-2.00 KiB');
  assert.equal(formatBytes(null), 'n/a');
  assert.equal(formatBytes(Number.NaN), 'n/a');
});

test('percentages and values', () => {
  assert.equal(formatPercent(47.6), '48%');
  assert.equal(formatPercent(null), 'n/a');
  assert.equal(formatValue(0.9814814814814815), '0.9815');
  assert.equal(formatValue(60), '60');
  assert.equal(formatValue(0.0000123), '1.230e-5');
  assert.equal(formatValue(12345678.9), '1.235e+7');
  assert.equal(formatValue('nan'), 'nan', 'non-finite floats arrive as strings');
  assert.equal(formatValue(undefined), '');
  assert.equal(formatDelta(-0.03703703703703709), '-0.03704');
  assert.equal(formatDelta(0.5), '+0.5');
  assert.equal(formatDelta(0), '±0');
  assert.equal(formatDelta(null), '');
});

test('times', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  assert.equal(formatAgo(now - 5000, now), '5s ago');
  assert.equal(formatAgo('2026-01-01T11:50:00Z', now), '10 min ago');
  assert.equal(formatAgo(now - 3 * 3600 * 1000, now), '3 h ago');
  assert.equal(formatAgo(now - 5 * 86400 * 1000, now), '5 days ago');
  assert.equal(formatAgo(now + 1000, now), 'just now');
  assert.equal(formatAgo('not a date', now), '');
  assert.equal(formatDuration(now - 75000, now), '1m 15s');
  assert.equal(formatDuration(now - 2 * 3600 * 1000, null, now), '2h 0m');
  assert.equal(formatDuration(null, null, now), '');
});

test('badges and deployment states have tones', () => {
  assert.equal(badgeTone('modified'), 'warn');
  assert.equal(badgeTone('not in cache'), 'error');
  assert.equal(badgeTone('not pushed'), 'info');
  assert.equal(badgeTone('unchanged'), 'ok');
  assert.equal(badgeTone('something new'), 'neutral');
  assert.equal(badgeLabel('unchanged'), 'up to date');
  assert.equal(badgeLabel('not committed'), 'not committed');
  assert.equal(deploymentTone('healthy'), 'ok');
  assert.equal(deploymentTone('starting'), 'warn');
  assert.equal(deploymentTone('dead'), 'error');
  assert.equal(deploymentTone('stopped'), 'neutral');
  assert.equal(shortHash('2925c4a8cd201c79d97d3d283429ef23', 8), '2925c4a8');
  assert.equal(shortHash(null), '');
});

test('a change of a metric is good or bad by the direction the server says is better', () => {
  assert.equal(deltaTone(false, 0.02), 'ok'); // accuracy up
  assert.equal(deltaTone(false, -0.02), 'error');
  assert.equal(deltaTone(true, 0.148), 'error'); // a loss up
  assert.equal(deltaTone(true, -0.1), 'ok');
  assert.equal(deltaTone(false, 0), 'neutral');
  assert.equal(deltaTone(true, null), 'neutral');
});
