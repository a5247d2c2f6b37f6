-- jobctl schema 7: a process's host identity (hostname, boot and PID namespace: containers sharing a
-- hostname are told apart), how its workers wake (listening or polling), and per-job run timeouts.

ALTER TABLE jobctl_processes ADD COLUMN host_id TEXT;
ALTER TABLE jobctl_processes ADD COLUMN wakeup TEXT;
CREATE INDEX jobctl_processes_host ON jobctl_processes (host_id);

ALTER TABLE jobctl_jobs ADD COLUMN timeout_s REAL;
