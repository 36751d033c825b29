/** The ids of Workbench's commands and widgets. */

export namespace CommandIDs {
  export const openData = 'workbench:open-data';
  export const openExperiments = 'workbench:open-experiments';
  export const openModels = 'workbench:open-models';
  export const openGpus = 'workbench:open-gpus';
  export const refresh = 'workbench:refresh';
  export const openDashboard = 'workbench:open-dashboard';
  export const dataPush = 'workbench:data-push';
  export const dataPull = 'workbench:data-pull';
  export const dataCheckout = 'workbench:data-checkout';
  export const compareRuns = 'workbench:compare-runs';
  export const insertRunCode = 'workbench:insert-run-code';
  export const insertModelCode = 'workbench:insert-model-code';
  export const promote = 'workbench:promote';
  export const rollback = 'workbench:rollback';
  export const deploy = 'workbench:deploy';
  export const stopDeployment = 'workbench:stop-deployment';
  export const restartDeployment = 'workbench:restart-deployment';
  export const tryDeployment = 'workbench:try-deployment';
  export const interruptKernel = 'workbench:interrupt-kernel';
  export const shutdownKernel = 'workbench:shutdown-kernel';
}

export namespace PanelIDs {
  export const data = 'workbench-data';
  export const experiments = 'workbench-experiments';
  export const models = 'workbench-models';
  export const gpus = 'workbench-gpus';
}
