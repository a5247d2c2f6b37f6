-- jobctl schema 2: recurring tasks as schedulers last saw them, and one row per enqueued tick.

CREATE TABLE jobctl_recurring_tasks (
    key          text PRIMARY KEY,
    schedule     text NOT NULL,
    cron         text NOT NULL,
    class        text,
    command      text,
    arguments    json NOT NULL,
    queue        text,
    priority     integer,
    description  text,
    next_run_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Exactly one enqueue per task and tick, however many schedulers run, whatever is pruned from jobs.
CREATE TABLE jobctl_recurring_runs (
    task_key  text        NOT NULL,
    run_at    timestamptz NOT NULL,
    job_id    bigint      NOT NULL,
    PRIMARY KEY (task_key, run_at)
);
