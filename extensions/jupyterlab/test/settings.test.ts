import assert from 'node:assert/strict';
import { test } from 'node:test';

import { serverOverridesFrom } from '../src/options';
import { DASHBOARD_PAGES, dashboardUrl } from '../src/url';

test('server overrides: trimmed strings, unknown GPU sources dropped, missing keys empty', () => {
  assert.deepEqual(serverOverridesFrom({}), { workspace: '', tracking_uri: '', gpu_source: '' });
  assert.deepEqual(
    serverOverridesFrom({ workspace: ' /data/ws ', trackingUri: 'http://127.0.0.1:5000 ', gpuSource: 'nvml' }),
    { workspace: '/data/ws', tracking_uri: 'http://127.0.0.1:5000', gpu_source: 'nvml' }
  );
  assert.equal(serverOverridesFrom({ gpuSource: 'quantum' }).gpu_source, '');
  assert.equal(serverOverridesFrom({ trackingUri: 42 }).tracking_uri, '');
});

test('dashboard URLs go through the authenticated open route, page alone', () => {
  assert.equal(dashboardUrl('/', 'experiments'), '/workbench/dashboard/open?page=experiments&embed=true');
  assert.equal(dashboardUrl('/user/ann', 'gpus'), '/user/ann/workbench/dashboard/open?page=gpus&embed=true');
  assert.equal(dashboardUrl('/', 'nonsense'), '/workbench/dashboard/open?page=overview&embed=true');
  assert.deepEqual(Object.keys(DASHBOARD_PAGES), ['overview', 'data', 'experiments', 'registry', 'gpus']);
});
