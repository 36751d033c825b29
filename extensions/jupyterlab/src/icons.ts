/** The sidebar icons, drawn for Workbench; `jp-icon3` lets JupyterLab's themes colour them. */

import { LabIcon } from '@jupyterlab/ui-components';

const svg = (body: string): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">` +
  `<g class="jp-icon3" fill="#616161">${body}</g></svg>`;

export const dataIcon = new LabIcon({
  name: 'workbench:data',
  svgstr: svg(
    '<path d="M12 2C7.6 2 4 3.5 4 5.5v13C4 20.5 7.6 22 12 22s8-1.5 8-3.5v-13C20 3.5 16.4 2 12 2zm0 2c3.9 0 6 1.2 6 1.5S15.9 7 12 7 6 5.8 6 5.5 8.1 4 12 4zM6 8.1C7.5 8.7 9.6 9 12 9s4.5-.3 6-.9V12c0 .3-2.1 1.5-6 1.5S6 12.3 6 12V8.1zm0 6.5c1.5.6 3.6.9 6 .9s4.5-.3 6-.9v3.9c0 .3-2.1 1.5-6 1.5s-6-1.2-6-1.5v-3.9z"/>'
  )
});

export const experimentsIcon = new LabIcon({
  name: 'workbench:experiments',
  svgstr: svg(
    '<path d="M9 2h6v2h-1v5.2l5.6 9.7c.8 1.4-.2 3.1-1.8 3.1H6.2c-1.6 0-2.6-1.7-1.8-3.1L10 9.2V4H9V2zm3 8.1L9.4 14.6h5.2L12 10.1zm-3.8 6.5L6.2 20h11.6l-2-3.4H8.2z"/>'
  )
});

export const modelsIcon = new LabIcon({
  name: 'workbench:models',
  svgstr: svg(
    '<path d="M12 1.8l9 5.1v10.2l-9 5.1-9-5.1V6.9l9-5.1zm0 2.3L6.1 7.4 12 10.8l5.9-3.4L12 4.1zM5 9.1v6.8l6 3.4v-6.8L5 9.1zm14 0l-6 3.4v6.8l6-3.4V9.1z"/>'
  )
});

export const gpuIcon = new LabIcon({
  name: 'workbench:gpu',
  svgstr: svg(
    '<path d="M9 1h2v3h2V1h2v3h2a3 3 0 013 3v2h3v2h-3v2h3v2h-3v2a3 3 0 01-3 3h-2v3h-2v-3h-2v3H9v-3H7a3 3 0 01-3-3v-2H1v-2h3v-2H1V9h3V7a3 3 0 013-3h2V1zM7 6a1 1 0 00-1 1v10a1 1 0 001 1h10a1 1 0 001-1V7a1 1 0 00-1-1H7zm2 3h6v6H9V9z"/>'
  )
});

export const dashboardIcon = new LabIcon({
  name: 'workbench:dashboard',
  svgstr: svg(
    '<path d="M3 3h8v10H3V3zm2 2v6h4V5H5zm8-2h8v6h-8V3zm2 2v2h4V5h-4zM3 15h8v6H3v-6zm2 2v2h4v-2H5zm8-6h8v10h-8V11zm2 2v6h4v-6h-4z"/>'
  )
});
