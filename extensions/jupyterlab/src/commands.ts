/**
 * Every panel action is a command, so the command palette reaches all of them
 * and the panels' buttons run the same code. Without arguments (from the
 * palette) a command asks for what it needs.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  IFrame,
  InputDialog,
  MainAreaWidget,
  Notification,
  WidgetTracker,
  showDialog
} from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { WorkbenchError, requestAPI } from './api';
import { createCompareWidget } from './compare';
import { createDashboardWidget } from './dashboard';
import { RunSelection } from './experiments';
import { CommandIDs, PanelIDs } from './ids';
import { dashboardIcon } from './icons';
import { Topic, WorkbenchModel } from './model';
import { promotionBody } from './promote';
import { registeredModelSnippet, runModelSnippet } from './runs';
import {
  AliasMove,
  AliasStep,
  Deployment,
  Job,
  ModelDetail,
  ModelInfo,
  PredictionResult,
  PromotionComparison,
  RunDetail
} from './types';
import { DASHBOARD_PAGES, segment } from './url';

export interface CommandContext {
  app: JupyterFrontEnd;
  model: WorkbenchModel;
  selection: RunSelection;
  notebooks: INotebookTracker | null;
  palette: ICommandPalette | null;
  dashboards: WidgetTracker<MainAreaWidget<IFrame>>;
  refreshAll: () => void;
}

const CATEGORY = 'Workbench';

const TOPIC_PANEL: Record<Topic, string> = {
  data: PanelIDs.data,
  experiments: PanelIDs.experiments,
  models: PanelIDs.models,
  deployments: PanelIDs.models,
  gpus: PanelIDs.gpus
};

function text(args: ReadonlyPartialJSONObject, name: string): string | null {
  const value = args[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

function texts(args: ReadonlyPartialJSONObject, name: string): string[] | null {
  const value = args[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : null;
}

/** Ask for one of `items`; null when cancelled. */
async function pick(title: string, label: string, items: string[]): Promise<string | null> {
  if (items.length === 0) {
    return null;
  }
  const result = await InputDialog.getItem({ title, label, items, current: 0 });
  return result.button.accept ? result.value : null;
}

async function confirm(title: string, body: string, label: string, warn = false): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), warn ? Dialog.warnButton({ label }) : Dialog.okButton({ label })]
  });
  return result.button.accept;
}

export function registerCommands(ctx: CommandContext): void {
  const { app, model, selection } = ctx;
  const { commands, shell } = app;

  /** Run an action; a failure shows, with its hint, in the panel of `topic`. */
  const attempt = async <T>(topic: Topic, action: () => Promise<T>): Promise<T | null> => {
    try {
      const result = await action();
      model.setActionError(topic, null);
      return result;
    } catch (reason) {
      model.setActionError(topic, WorkbenchError.from(reason));
      shell.activateById(TOPIC_PANEL[topic]);
      return null;
    }
  };

  const open = (id: string, panel: string, label: string, caption: string): void => {
    commands.addCommand(id, { label, caption, execute: () => shell.activateById(panel) });
  };
  open(CommandIDs.openData, PanelIDs.data, 'Open Data', 'Tracked data, revisions, diffs, pipeline, push/pull');
  open(CommandIDs.openExperiments, PanelIDs.experiments, 'Open Experiments', 'MLflow experiments and runs');
  open(CommandIDs.openModels, PanelIDs.models, 'Open Models & Deploy', 'Registered models, promote, deploy');
  open(CommandIDs.openGpus, PanelIDs.gpus, 'Open GPUs', 'Live GPU utilization, memory and processes');

  commands.addCommand(CommandIDs.openDashboard, {
    label: args => {
      const page = text(args, 'page');
      return page ? `Open ${DASHBOARD_PAGES[page] ?? page} Dashboard` : 'Open a Dashboard Page…';
    },
    caption: 'The full dashboard page (Panel) in a main-area tab',
    icon: dashboardIcon,
    execute: async args => {
      let page = text(args, 'page');
      if (!page) {
        const title = await pick('Open a Dashboard Page', 'Page', Object.values(DASHBOARD_PAGES));
        page = Object.keys(DASHBOARD_PAGES).find(slug => DASHBOARD_PAGES[slug] === title) ?? null;
      }
      if (!page) {
        return null;
      }
      const open = ctx.dashboards.find(widget => widget.id === `workbench-dashboard-${page}`);
      if (open) {
        shell.activateById(open.id);
        return open;
      }
      const widget = createDashboardWidget(page);
      await ctx.dashboards.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      return widget;
    }
  });

  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Workbench Panels',
    caption: 'Read data, runs, models and deployments again',
    execute: () => ctx.refreshAll()
  });

  for (const [id, action] of [
    [CommandIDs.dataPush, 'push'],
    [CommandIDs.dataPull, 'pull'],
    [CommandIDs.dataCheckout, 'checkout']
  ] as const) {
    commands.addCommand(id, {
      label: args => {
        const targets = texts(args, 'targets');
        return `Data: ${action[0].toUpperCase()}${action.slice(1)} ${targets ? targets.join(', ') : 'All'}`;
      },
      caption: `dvc ${action} as a job with progress (targets: all tracked data unless given)`,
      execute: async args => {
        shell.activateById(PanelIDs.data);
        const targets = texts(args, 'targets');
        const job = await attempt('data', () =>
          requestAPI<Job>(`data/${action}`, { method: 'POST', body: targets ? { targets } : {} })
        );
        if (job) {
          model.jobs.track(job);
        }
        return job;
      }
    });
  }

  commands.addCommand(CommandIDs.compareRuns, {
    label: 'Compare Selected Runs',
    caption: 'Open a tab with the runs’ metric curves and the params that differ',
    isEnabled: args => (texts(args, 'runIds') ?? selection.ids).length >= 2,
    execute: args => {
      const runIds = texts(args, 'runIds') ?? selection.ids;
      const widget = createCompareWidget(runIds);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
      return widget.id;
    }
  });

  const insertCode = async (code: string, topic: Topic): Promise<boolean> => {
    const current = ctx.notebooks?.currentWidget ?? null;
    if (!current) {
      model.setActionError(
        topic,
        new WorkbenchError(
          'No notebook to insert the code into',
          'Open (or click into) a notebook, then try again.',
          'no_notebook',
          0
        )
      );
      return false;
    }
    const notebook = current.content;
    if (notebook.activeCell?.model.sharedModel.getSource().trim() !== '') {
      NotebookActions.insertBelow(notebook);
    }
    notebook.activeCell?.model.sharedModel.setSource(code);
    shell.activateById(current.id);
    return true;
  };

  commands.addCommand(CommandIDs.insertRunCode, {
    label: 'Insert Code Loading the Selected Run’s Model',
    caption: 'A new cell below the active one in the current notebook',
    isEnabled: args => text(args, 'runId') !== null || selection.ids.length === 1,
    execute: async args => {
      const runId = text(args, 'runId') ?? selection.ids[0];
      const run = await attempt('experiments', () => requestAPI<RunDetail>(`runs/${segment(runId)}`));
      if (!run) {
        return false;
      }
      if (run.models.length === 0) {
        model.setActionError(
          'experiments',
          new WorkbenchError(
            `Run ${run.run_name || runId} logged no model`,
            'Pick a run that logged one (mlflow.<flavor>.log_model(..., name="model")), or load its artifacts instead.',
            'no_model',
            0
          )
        );
        return false;
      }
      // the newest model the run logged, or the one the user picks when there are several
      let chosen = run.models[run.models.length - 1];
      if (run.models.length > 1) {
        const name = await pick(
          'Model of this run',
          'Model',
          run.models.map(m => `${m.name} (${m.model_id})`).reverse()
        );
        const found = run.models.find(m => `${m.name} (${m.model_id})` === name);
        if (!found) {
          return false;
        }
        chosen = found;
      }
      return insertCode(runModelSnippet(runId, chosen.uri, await model.trackingUri()), 'experiments');
    }
  });

  commands.addCommand(CommandIDs.insertModelCode, {
    label: args =>
      text(args, 'model') ? `Insert Code Loading ${text(args, 'model')}` : 'Insert Code Loading a Registered Model',
    caption: 'A new cell below the active one in the current notebook',
    execute: async args => {
      const name = text(args, 'model') ?? (await pickModel());
      if (!name) {
        return false;
      }
      return insertCode(
        registeredModelSnippet(name, text(args, 'version') ?? 'champion', await model.trackingUri()),
        'models'
      );
    }
  });

  const pickModel = async (): Promise<string | null> => {
    const models = await attempt('models', () => requestAPI<ModelInfo[]>('models'));
    return models
      ? pick(
          'Registered model',
          'Model',
          models.map(m => m.name)
        )
      : null;
  };

  const pickVersion = async (name: string): Promise<string | null> => {
    const detail = await attempt('models', () => requestAPI<ModelDetail>(`models/${segment(name)}`));
    return detail
      ? pick(
          `Version of ${name}`,
          'Version',
          detail.versions.map(v => v.version)
        )
      : null;
  };

  commands.addCommand(CommandIDs.promote, {
    label: 'Promote a Model Version…',
    caption: 'Compare with the alias’s current holder and the gates, then move the alias',
    execute: async args => {
      const name = text(args, 'model') ?? (await pickModel());
      const version = name ? (text(args, 'version') ?? (await pickVersion(name))) : null;
      if (!name || !version) {
        return null;
      }
      const alias = text(args, 'alias') ?? 'champion';
      const comparison = await attempt('models', () =>
        requestAPI<PromotionComparison>(`models/${segment(name)}/promotion`, { query: { version, alias } })
      );
      if (!comparison) {
        return null;
      }
      const passed = comparison.gates_passed;
      const result = await showDialog({
        title: `Promote ${name} v${version} to @${alias}`,
        body: promotionBody(comparison),
        buttons: [
          Dialog.cancelButton(),
          passed ? Dialog.okButton({ label: 'Promote' }) : Dialog.warnButton({ label: 'Override gates and promote' })
        ]
      });
      if (!result.button.accept) {
        return null;
      }
      const move = await attempt('models', () =>
        requestAPI<AliasMove>(`models/${segment(name)}/promote`, {
          method: 'POST',
          body: { version, alias, override_gates: !passed }
        })
      );
      if (move) {
        model.notify('models');
        model.notify('deployments');
        Notification.success(`@${alias} of ${name}: v${move.before ?? '–'} → v${move.after}`, { autoClose: 4000 });
        move.deployment_errors.forEach(error => Notification.warning(`${error.error} ${error.hint}`));
      }
      return move;
    }
  });

  commands.addCommand(CommandIDs.rollback, {
    label: 'Roll Back a Model Alias…',
    caption: 'Move the alias back to the version that held it before',
    execute: async args => {
      const name = text(args, 'model') ?? (await pickModel());
      if (!name) {
        return null;
      }
      const alias = text(args, 'alias') ?? 'champion';
      const history = await attempt('models', () =>
        requestAPI<AliasStep[]>(`models/${segment(name)}/aliases/${segment(alias)}/history`)
      );
      if (!history) {
        return null;
      }
      const last = history[history.length - 1];
      const question = last
        ? `Move @${alias} of ${name} from v${last.by} back to ${last.v ? `v${last.v}` : 'no version (remove the alias)'}?`
        : `@${alias} of ${name} has no recorded earlier holder; the server will say whether a rollback is possible.`;
      if (!(await confirm(`Roll back @${alias}`, question, 'Roll back', true))) {
        return null;
      }
      const move = await attempt('models', () =>
        requestAPI<AliasMove>(`models/${segment(name)}/rollback`, { method: 'POST', body: { alias } })
      );
      if (move) {
        model.notify('models');
        model.notify('deployments');
        Notification.success(`@${alias} of ${name}: v${move.before ?? '–'} → v${move.after ?? '–'}`, {
          autoClose: 4000
        });
      }
      return move;
    }
  });

  commands.addCommand(CommandIDs.deploy, {
    label: 'Deploy a Model…',
    caption: 'Serve NAME@ALIAS or NAME/VERSION as a health-checked REST endpoint',
    execute: async args => {
      let ref = text(args, 'model');
      if (!ref) {
        const answer = await InputDialog.getText({
          title: 'Deploy a model',
          label: 'Model (NAME@ALIAS or NAME/VERSION)',
          placeholder: 'wine-classifier@champion'
        });
        ref = answer.button.accept ? answer.value : null;
      }
      if (!ref) {
        return null;
      }
      shell.activateById(PanelIDs.models);
      const modelRef = ref;
      const deployment = await attempt('models', () =>
        requestAPI<Deployment>('deployments', { method: 'POST', body: { model: modelRef } })
      );
      if (deployment) {
        model.notify('deployments');
      }
      return deployment;
    }
  });

  const pickDeployment = async (args: ReadonlyPartialJSONObject): Promise<string | null> => {
    const given = text(args, 'name');
    if (given) {
      return given;
    }
    const list = await attempt('deployments', () => requestAPI<Deployment[]>('deployments'));
    return list
      ? pick(
          'Deployment',
          'Deployment',
          list.map(d => d.name)
        )
      : null;
  };

  commands.addCommand(CommandIDs.stopDeployment, {
    label: 'Stop a Deployment…',
    caption: 'Stop the model server of a deployment',
    execute: async args => {
      const name = await pickDeployment(args);
      if (!name || !(await confirm('Stop deployment', `Stop ${name}? Its endpoint stops answering.`, 'Stop', true))) {
        return null;
      }
      const stopped = await attempt('deployments', () =>
        requestAPI<Deployment>(`deployments/${segment(name)}`, { method: 'DELETE' })
      );
      model.notify('deployments');
      return stopped;
    }
  });

  commands.addCommand(CommandIDs.restartDeployment, {
    label: 'Restart a Deployment…',
    caption: 'Restart the model server of a deployment (picks up a moved alias)',
    execute: async args => {
      const name = await pickDeployment(args);
      if (!name) {
        return null;
      }
      const restarted = await attempt('deployments', () =>
        requestAPI<Deployment>(`deployments/${segment(name)}/restart`, { method: 'POST' })
      );
      model.notify('deployments');
      return restarted;
    }
  });

  commands.addCommand(CommandIDs.tryDeployment, {
    label: 'Try a Deployment…',
    caption: 'Send a sample input (from the model’s input example) and show the prediction',
    execute: async args => {
      const fromPanel = text(args, 'name') !== null;
      const name = await pickDeployment(args);
      if (!name) {
        return null;
      }
      const result = await attempt('deployments', () =>
        requestAPI<PredictionResult>(`deployments/${segment(name)}/predict`, { method: 'POST', body: {} })
      );
      if (result && !fromPanel) {
        const body = new Widget();
        const pre = document.createElement('pre');
        pre.textContent = `${JSON.stringify(result.request)}\n→ ${JSON.stringify(result.response)}\n(${result.latency_ms.toFixed(0)} ms)`;
        body.node.appendChild(pre);
        await showDialog({ title: `Prediction from ${name}`, body, buttons: [Dialog.okButton()] });
      }
      return result;
    }
  });

  const kernelCommand = (id: string, action: 'interrupt' | 'shutdown', label: string): void => {
    commands.addCommand(id, {
      label,
      caption: `${label.replace('…', '')} of a GPU process (audited)`,
      execute: async args => {
        let kernelId = text(args, 'kernelId');
        if (!kernelId) {
          const kernels = (model.gpu.sample?.processes ?? []).filter(p => p.kernel_id);
          const labels = kernels.map(p => `${p.notebook_path ?? p.kernel_id} (pid ${p.pid})`);
          const choice = await pick('Kernel on a GPU', 'Kernel', labels);
          kernelId = choice === null ? null : kernels[labels.indexOf(choice)].kernel_id;
        }
        if (!kernelId) {
          return null;
        }
        const what = text(args, 'notebook') ?? `kernel ${kernelId.slice(0, 8)}`;
        if (
          action === 'shutdown' &&
          !(await confirm(
            'Shut down kernel',
            `Shut down the kernel of ${what}? Its variables are lost.`,
            'Shut down',
            true
          ))
        ) {
          return null;
        }
        const id = kernelId;
        const done = await attempt('gpus', () =>
          requestAPI(`gpu/kernels/${segment(id)}/${action}`, { method: 'POST' })
        );
        if (done) {
          Notification.success(`${action === 'interrupt' ? 'Interrupted' : 'Shut down'} ${what}`, { autoClose: 4000 });
        }
        return done;
      }
    });
  };
  kernelCommand(CommandIDs.interruptKernel, 'interrupt', 'Interrupt a GPU Kernel…');
  kernelCommand(CommandIDs.shutdownKernel, 'shutdown', 'Shut Down a GPU Kernel…');

  if (ctx.palette) {
    for (const command of Object.values(CommandIDs)) {
      ctx.palette.addItem({ command, category: CATEGORY });
    }
    for (const page of Object.keys(DASHBOARD_PAGES)) {
      ctx.palette.addItem({ command: CommandIDs.openDashboard, args: { page }, category: CATEGORY });
    }
  }
}
