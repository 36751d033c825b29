/**
 * Workbench in JupyterLab: four sidebar panels (Data, Experiments, Models &
 * Deploy, GPUs), a Compare tab, a GPU status-bar item, palette commands and
 * settings. Everything goes through the Workbench server extension's API.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { registerCommands } from './commands';
import { createDataPanel } from './data';
import { RunSelection, createExperimentsPanel } from './experiments';
import { createGpuPanel } from './gpus';
import { PanelIDs } from './ids';
import { WorkbenchModel } from './model';
import { optionsFrom } from './options';
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
    panels.forEach((panel, i) => {
      app.shell.add(panel, 'left', { rank: 600 + i });
      restorer?.add(panel, panel.id);
    });

    registerCommands({
      app,
      model,
      selection,
      notebooks,
      palette,
      refreshAll: () => panels.forEach(panel => panel.refresh())
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
          const apply = (): void => model.configure(optionsFrom(settings.composite));
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('Workbench: could not load its settings, using defaults.', reason));
    }
  }
};

export default plugin;
