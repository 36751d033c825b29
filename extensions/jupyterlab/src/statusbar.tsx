/** The status-bar item: a compact GPU summary from the shared stream; a click opens the GPUs panel. */

import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { useSignal } from './components';
import { gpuSummary } from './history';
import { gpuIcon } from './icons';
import { GpuMonitor } from './model';

export class GpuStatusItem extends ReactWidget {
  constructor(
    private readonly monitor: GpuMonitor,
    private readonly onOpen: () => void
  ) {
    super();
    this.addClass('jp-wb-GpuStatus');
    this.node.title = 'GPUs: open the Workbench GPUs panel';
  }

  protected render(): JSX.Element {
    return <GpuStatusText monitor={this.monitor} onOpen={this.onOpen} />;
  }
}

function GpuStatusText(props: { monitor: GpuMonitor; onOpen: () => void }): JSX.Element {
  useSignal(props.monitor.changed);
  const sample = props.monitor.sample;
  const text = sample === null ? 'GPU …' : props.monitor.state === 'closed' ? 'GPU: disconnected' : gpuSummary(sample);
  return (
    <button className="jp-wb-GpuStatus-button" onClick={props.onOpen} data-testid="gpu-status">
      <gpuIcon.react tag="span" className="jp-wb-GpuStatus-icon" />
      <span>{text}</span>
    </button>
  );
}
