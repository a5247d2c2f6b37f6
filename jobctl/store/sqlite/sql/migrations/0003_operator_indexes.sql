-- jobctl schema 3: operators count and list discarded jobs without scanning finished history.

CREATE INDEX jobctl_jobs_discarded ON jobctl_jobs (id) WHERE state = 'discarded';
