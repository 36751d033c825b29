/**
 * The GPUs panel: live utilization and memory per GPU from the WebSocket
 * stream, short sparklines, and the processes on each GPU with their user,
 * command and, for Jupyter kernels, the notebook, which can be interrupted or
 * shut down from here.
 */

import { CommandRegistry } from '@lumino/commands';
import * as React from 'react';

import {
  ActionButton,
  Badge,
  ErrorBanner,
  HealthDot,
  Loading,
  Meter,
  Notice,
  Sparkline,
  useSignal
} from './components';
import { WorkbenchError } from './api';
import { formatBytes, formatPercent } from './format';
import { gpuHistoryKey, memoryPercent } from './history';
import { gpuIcon } from './icons';
import { CommandIDs, PanelIDs } from './ids';
import { GpuMonitor, WorkbenchModel } from './model';
import { WorkbenchPanel } from './panel';
import { GpuProcess, GpuReading, GpuSample } from './types';

export function createGpuPanel(model: WorkbenchModel, commands: CommandRegistry): WorkbenchPanel {
  const panel = new WorkbenchPanel({ id: PanelIDs.gpus, label: 'GPUs', icon: gpuIcon, model, topics: [] });
  panel.addSection('Devices', () => <DevicesView panel={panel} />, 'jp-wb-GpuSection');
  panel.addSection('Processes', () => <ProcessesView panel={panel} commands={commands} />);
  panel.setSectionSizes([3, 2]);
  return panel;
}

const STREAM_LOST = new WorkbenchError(
  'The live GPU stream is not connected',
  'Reconnecting by itself; if it stays away, check that the Jupyter server still runs.',
  'network',
  0
);

function SourceLine(props: { sample: GpuSample }): JSX.Element {
  const { sample } = props;
  return (
    <div className="jp-wb-Meta" data-testid="gpu-source">
      {sample.simulated && (
        <Badge tone="warn" title="Made-up readings for demos and tests (WORKBENCH_GPU_SOURCE=simulated)">
          simulated
        </Badge>
      )}
      <span>
        {sample.host} · source {sample.source}
        {sample.driver_version && ` · driver ${sample.driver_version}`}
      </span>
    </div>
  );
}

function DevicesView(props: { panel: WorkbenchPanel }): JSX.Element {
  const gpu = props.panel.model.gpu;
  useSignal(gpu.changed);
  const sample = gpu.sample;
  return (
    <div className="jp-wb-Gpus">
      {gpu.state === 'closed' && <ErrorBanner error={STREAM_LOST} />}
      {!sample && <Loading what="GPU readings" />}
      {sample && <SourceLine sample={sample} />}
      {sample && !sample.available && (
        <Notice tone="neutral" className="jp-wb-NoGpu">
          <strong>No GPUs to show.</strong> {sample.reason}
        </Notice>
      )}
      {sample?.gpus.map(reading => (
        <GpuCard key={gpuHistoryKey(reading)} reading={reading} monitor={gpu} />
      ))}
    </div>
  );
}

function GpuCard(props: { reading: GpuReading; monitor: GpuMonitor }): JSX.Element {
  const { reading } = props;
  const history = props.monitor.history(gpuHistoryKey(reading));
  const memory = memoryPercent(reading);
  const tone = reading.state === 'ok' ? 'ok' : 'error';
  return (
    <div className="jp-wb-GpuCard" data-gpu={reading.index} data-state={reading.state}>
      <div className="jp-wb-Row-line">
        <HealthDot tone={tone} label={reading.state} />
        <span className="jp-wb-Row-title">GPU {reading.index}</span>
        <span className="jp-wb-Row-meta" title={reading.uuid ?? undefined}>
          {reading.name}
        </span>
      </div>
      {reading.error && <div className="jp-wb-Job-error">{reading.error}</div>}
      <div className="jp-wb-GpuCard-metric">
        <span className="jp-wb-GpuCard-label">Util</span>
        <Meter
          percent={reading.utilization_gpu}
          label="GPU utilization"
          text={formatPercent(reading.utilization_gpu)}
        />
        <Sparkline values={history?.utilization ?? []} label={`GPU ${reading.index} utilization history`} width={90} />
      </div>
      <div className="jp-wb-GpuCard-metric">
        <span className="jp-wb-GpuCard-label">Mem</span>
        <Meter
          percent={memory}
          label="Memory used"
          text={`${formatBytes(reading.memory_used)} / ${formatBytes(reading.memory_total)}`}
        />
        <Sparkline values={history?.memory ?? []} label={`GPU ${reading.index} memory history`} width={90} />
      </div>
      <div className="jp-wb-Row-meta jp-wb-GpuCard-extra">
        {reading.temperature !== null ? `${Math.round(reading.temperature)}°C` : 'temp n/a'}
        {' · '}
        {reading.power !== null ? `${Math.round(reading.power)} W` : 'power n/a'}
        {reading.power_limit !== null && ` of ${Math.round(reading.power_limit)} W`}
        {reading.sm_clock !== null && ` · ${reading.sm_clock} MHz`}
        {reading.mig_mode && ' · MIG'}
      </div>
    </div>
  );
}

function ProcessesView(props: { panel: WorkbenchPanel; commands: CommandRegistry }): JSX.Element {
  const gpu = props.panel.model.gpu;
  useSignal(gpu.changed);
  useSignal(props.panel.model.actionErrorChanged);
  const sample = gpu.sample;
  const processes = sample?.processes ?? [];
  return (
    <div className="jp-wb-Processes">
      <ErrorBanner
        error={props.panel.model.actionError('gpus')}
        onDismiss={() => props.panel.model.setActionError('gpus', null)}
      />
      {sample && sample.available && processes.length === 0 && <Notice>No process holds GPU memory.</Notice>}
      {sample && !sample.available && <Notice tone="neutral">No GPU, so no GPU processes.</Notice>}
      <ul className="jp-wb-List" aria-label="GPU processes">
        {processes.map(process => (
          <ProcessRow
            key={`${process.host}:${process.pid}:${process.gpu_index}`}
            process={process}
            commands={props.commands}
          />
        ))}
      </ul>
    </div>
  );
}

function ProcessRow(props: { process: GpuProcess; commands: CommandRegistry }): JSX.Element {
  const { process, commands } = props;
  return (
    <li className="jp-wb-Row jp-wb-Process" data-pid={process.pid}>
      <div className="jp-wb-Row-line">
        <span className="jp-wb-Row-title">
          {process.user ?? '?'} · pid {process.pid}
        </span>
        <span className="jp-wb-Row-meta">
          GPU {process.gpu_index} · {formatBytes(process.used_memory)}
          {process.sm_utilization !== null && ` · ${formatPercent(process.sm_utilization)} SM`}
        </span>
      </div>
      <code className="jp-wb-Process-cmd" title={process.command ?? undefined}>
        {process.command ?? '(command unknown)'}
      </code>
      {process.kernel_id && (
        <div className="jp-wb-Process-kernel">
          <Badge tone="info">kernel</Badge>
          <span className="jp-wb-Process-notebook" title={process.notebook_path ?? process.kernel_id}>
            {process.notebook_path ?? `kernel ${process.kernel_id.slice(0, 8)}`}
          </span>
          <div className="jp-wb-Actions">
            <ActionButton
              label="Interrupt"
              onClick={() =>
                void commands.execute(CommandIDs.interruptKernel, {
                  kernelId: process.kernel_id,
                  notebook: process.notebook_path
                })
              }
            />
            <ActionButton
              label="Shut down"
              accent="warn"
              onClick={() =>
                void commands.execute(CommandIDs.shutdownKernel, {
                  kernelId: process.kernel_id,
                  notebook: process.notebook_path
                })
              }
            />
          </div>
        </div>
      )}
    </li>
  );
}
