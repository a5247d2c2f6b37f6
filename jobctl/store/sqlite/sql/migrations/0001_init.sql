-- jobctl schema 1: jobs, their errors and progress, processes, paused queues, throughput.
-- Times are REAL seconds since the Unix epoch (UTC).

CREATE TABLE jobctl_jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,   -- AUTOINCREMENT: ids are never reused
    queue         TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL CHECK
        (state IN ('scheduled', 'ready', 'claimed', 'blocked', 'finished', 'failed', 'discarded')),
    arguments     TEXT    NOT NULL,
    key           TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    crashes       INTEGER NOT NULL DEFAULT 0,
    attempts_base INTEGER NOT NULL DEFAULT 0,
    enqueued_at   REAL    NOT NULL,
    scheduled_at  REAL    NOT NULL,
    claimed_at    REAL,
    finished_at   REAL,
    claim_token   INTEGER,
    process_id    INTEGER
);

CREATE INDEX jobctl_jobs_ready_any ON jobctl_jobs (priority, id) WHERE state = 'ready';
CREATE INDEX jobctl_jobs_ready_queue ON jobctl_jobs (queue, priority, id) WHERE state = 'ready';
CREATE INDEX jobctl_jobs_due ON jobctl_jobs (scheduled_at) WHERE state = 'scheduled';
CREATE INDEX jobctl_jobs_claimed ON jobctl_jobs (process_id) WHERE state = 'claimed';
CREATE INDEX jobctl_jobs_failed ON jobctl_jobs (id) WHERE state = 'failed';
CREATE INDEX jobctl_jobs_finished_at ON jobctl_jobs (finished_at) WHERE state = 'finished';
CREATE UNIQUE INDEX jobctl_jobs_active_key ON jobctl_jobs (key)
    WHERE key IS NOT NULL AND state IN ('scheduled', 'ready', 'blocked', 'claimed');

CREATE TABLE jobctl_errors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    class      TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    traceback  TEXT,
    at         REAL    NOT NULL
);
CREATE INDEX jobctl_errors_job ON jobctl_errors (job_id);

CREATE TABLE jobctl_progress (
    job_id   INTEGER PRIMARY KEY,
    done     REAL NOT NULL,
    total    REAL,
    message  TEXT,
    at       REAL NOT NULL
);

CREATE TABLE jobctl_processes (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    kind               TEXT    NOT NULL,
    hostname           TEXT    NOT NULL,
    pid                INTEGER NOT NULL,
    supervisor_id      INTEGER,
    queues             TEXT,
    threads            INTEGER,
    busy               INTEGER NOT NULL DEFAULT 0,
    metadata           TEXT,
    last_heartbeat_at  REAL    NOT NULL,
    started_at         REAL    NOT NULL
);

CREATE TABLE jobctl_pauses (
    queue      TEXT PRIMARY KEY,
    paused_at  REAL NOT NULL
);

CREATE TABLE jobctl_throughput (
    minute      REAL    NOT NULL,
    source      INTEGER NOT NULL,
    finished    INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, source)
);
