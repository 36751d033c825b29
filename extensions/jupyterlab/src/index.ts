/**
 * Workbench in JupyterLab: four sidebar panels (Data, Experiments, Models &
 * Deploy, GPUs), a Compare tab, a GPU status-bar item, palette commands and
 * settings. Everything goes through the Workbench server extension's API.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  CommandToolbarButton,
  ICommandPalette,
  IFrame,
  MainAreaWidget,
  Notification,
  WidgetTracker
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { WorkbenchError, requestAPI } from './api';
import { registerCommands } from './commands';
import { createDataPanel } from './data';
import { RunSelection, createExperimentsPanel } from './experiments';
import { createGpuPanel } from './gpus';
import { CommandIDs, PanelIDs } from './ids';
import { dashboardIcon } from './icons';
import { WorkbenchModel } from './model';
import { optionsFrom, serverOverridesFrom } from './options';
import { createModelsPanel } from './models';
import { GpuStatusItem } from './statusbar';

const PLUGIN_ID = '@mlworkbench/jupyterlab:plugin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Workbench panels: data versions, experiments, models and deploy, live GPUs.',
  autoStart: true,
  optional: [ICommandPalette, ISettingRegistry, IStatusBar, INotebookTracker, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    statusBar: IStatusBar | null,
    notebooks: INotebookTracker | null,
    restorer: ILayoutRestorer | null
  ) => {
    const model = new WorkbenchModel();
    const selection = new RunSelection();
    const panels = [
      createDataPanel(model, app.commands),
      createExperimentsPanel(model, app.commands, selection),
      createModelsPanel(model, app.commands),
      createGpuPanel(model, app.commands)
    ];
    const dashboardPages = ['data', 'experiments', 'registry', 'gpus'];
    panels.forEach((panel, i) => {
      // each panel's toolbar opens its full dashboard page in the main area
      panel.toolbar.addItem(
        'dashboard',
        new CommandToolbarButton({
          commands: app.commands,
          id: CommandIDs.openDashboard,
          args: { page: dashboardPages[i] },
          icon: dashboardIcon,
          label: ''
        })
      );
      app.shell.add(panel, 'left', { rank: 600 + i });
      restorer?.add(panel, panel.id);
    });
    const refreshAll = (): void => panels.forEach(panel => panel.refresh());

    const dashboards = new WidgetTracker<MainAreaWidget<IFrame>>({ namespace: 'workbench-dashboard' });
    registerCommands({ app, model, selection, notebooks, palette, dashboards, refreshAll });
    void restorer?.restore(dashboards, {
      command: CommandIDs.openDashboard,
      args: widget => ({ page: widget.id.replace('workbench-dashboard-', '') }),
      name: widget => widget.id
    });

    statusBar?.registerStatusItem(`${PLUGIN_ID}:gpu-status`, {
      item: new GpuStatusItem(model.gpu, () => app.shell.activateById(PanelIDs.gpus)),
      align: 'left',
      rank: 50
    });

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          let sent = '';
          const apply = (): void => {
            model.configure(optionsFrom(settings.composite));
            // where the panels read from: the server applies it (and refuses bad values with a hint)
            const overrides = serverOverridesFrom(settings.composite);
            if (JSON.stringify(overrides) === sent) {
              return;
            }
            requestAPI('settings', { method: 'PUT', body: overrides })
              .then(() => {
                const before = sent === '' ? '' : JSON.parse(sent).gpu_source;
                const gpuChanged = before !== overrides.gpu_source;
                sent = JSON.stringify(overrides);
                if (gpuChanged) {
                  model.gpu.restart();
                }
                refreshAll();
              })
              .catch(reason => {
                const error = WorkbenchError.from(reason);
                Notification.error(`Workbench settings not applied: ${error.message}. ${error.hint}`, {
                  autoClose: false
                });
              });
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('Workbench: could not load its settings, using defaults.', reason));
    }
  }
};

export default plugin;
