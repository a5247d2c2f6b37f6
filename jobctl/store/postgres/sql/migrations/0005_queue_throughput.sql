-- jobctl schema 5: runs are counted per queue too (so operators see the queues used lately, and
-- per-queue rates), and a recurring task's run enqueued by hand is marked as such.

ALTER TABLE jobctl_throughput ADD COLUMN queue text NOT NULL DEFAULT '';
ALTER TABLE jobctl_throughput DROP CONSTRAINT jobctl_throughput_pkey;
ALTER TABLE jobctl_throughput ADD PRIMARY KEY (minute, source, queue);

ALTER TABLE jobctl_recurring_runs ADD COLUMN manual boolean NOT NULL DEFAULT false;
