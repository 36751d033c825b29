"""Panel + HoloViews views over the Workbench services (see the dashboard issue)."""
