/**
 * The full Panel dashboards (dashboards/ in Python) as main-area tabs. The
 * Jupyter server serves them under `workbench/dashboard/`: `open` is
 * authenticated by Jupyter like every other route and hands the frame a
 * ticket for the app, so no other port or login is involved.
 */

import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { dashboardIcon } from './icons';
import { DASHBOARD_PAGES, dashboardUrl } from './url';

export function createDashboardWidget(page: string): MainAreaWidget<IFrame> {
  // scripts must run and reach their own server (same origin); nothing else is allowed
  const content = new IFrame({ sandbox: ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-downloads'] });
  content.url = dashboardUrl(ServerConnection.makeSettings().baseUrl, page);
  content.addClass('jp-wb-Dashboard');
  const widget = new MainAreaWidget({ content });
  widget.id = `workbench-dashboard-${page}`;
  widget.title.label = `Workbench: ${DASHBOARD_PAGES[page] ?? page}`;
  widget.title.icon = dashboardIcon;
  widget.title.closable = true;
  return widget;
}
