-- jobctl schema 8: which process a failed or crashed run ran in (the last run's is the job's own
-- process_id), so every run of a job can name its worker.

ALTER TABLE jobctl_errors ADD COLUMN process_id bigint;
