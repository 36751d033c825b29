"""Panel + HoloViews views over the Workbench services: the standalone dashboard and its pages.

Each page is a ``pn.viewable.Viewer`` over the workspace settings that works
in the standalone app, in a JupyterLab main-area tab and inline in a
notebook::

    import panel as pn
    from dashboards.experiments import ExperimentsPage
    from workbench.config import load_settings

    pn.extension("tabulator")
    ExperimentsPage(load_settings())

Pages: :mod:`dashboards.overview`, :mod:`dashboards.data`,
:mod:`dashboards.experiments`, :mod:`dashboards.registry`,
:mod:`dashboards.gpus`. The app and its server: :mod:`dashboards.app`
(``create_app``, ``serve``); the command: :mod:`dashboards.cli`
(``workbench dashboard``). Views only call the services in :mod:`workbench`;
they never import MLflow, DVC or NVML themselves.
"""
