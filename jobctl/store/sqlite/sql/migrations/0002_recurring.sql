-- jobctl schema 2: recurring tasks as schedulers last saw them, and one row per enqueued tick.

CREATE TABLE jobctl_recurring_tasks (
    key          TEXT PRIMARY KEY,
    schedule     TEXT NOT NULL,
    cron         TEXT NOT NULL,
    class        TEXT,
    command      TEXT,
    arguments    TEXT NOT NULL,
    queue        TEXT,
    priority     INTEGER,
    description  TEXT,
    next_run_at  REAL,
    updated_at   REAL NOT NULL
);

CREATE TABLE jobctl_recurring_runs (
    task_key  TEXT    NOT NULL,
    run_at    REAL    NOT NULL,
    job_id    INTEGER NOT NULL,
    PRIMARY KEY (task_key, run_at)
);
