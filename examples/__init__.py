"""jobctl's example app: the job patterns of Rails' "writing jobs" guide over the app's own tables.

See README.md here.
"""
