-- jobctl schema 5: runs are counted per queue too (so operators see the queues used lately, and
-- per-queue rates), and a recurring task's run enqueued by hand is marked as such.

CREATE TABLE jobctl_throughput_by_queue (
    minute      REAL    NOT NULL,
    source      INTEGER NOT NULL,
    queue       TEXT    NOT NULL DEFAULT '',
    finished    INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, source, queue)
);
INSERT INTO jobctl_throughput_by_queue (minute, source, finished, failed)
SELECT minute, source, finished, failed FROM jobctl_throughput;
DROP TABLE jobctl_throughput;
ALTER TABLE jobctl_throughput_by_queue RENAME TO jobctl_throughput;

ALTER TABLE jobctl_recurring_runs ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
