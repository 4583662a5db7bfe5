"""Management reports: funnel, time in stage, agencies, messaging, kept by rollups."""
