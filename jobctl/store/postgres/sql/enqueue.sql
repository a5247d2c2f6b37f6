-- Enqueueing and reading jobs, PostgreSQL. Each query starts with `-- name: NAME` and a one-line
-- description; parameters are psycopg named placeholders.

-- name: insert_job
-- Insert one job, ready now or scheduled; with an active job holding the same key, insert nothing.
WITH t AS (
    SELECT COALESCE(%(run_at)s::timestamptz, now() + %(delay)s::float8 * interval '1 second') AS at
), ins AS (
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, key, scheduled_at, concurrency_key, timeout_s,
                             batch_id, on_dependency_failure)
    SELECT %(queue)s, %(class)s, %(priority)s,
           CASE WHEN %(waits)s THEN 'waiting' WHEN t.at > now() THEN 'scheduled' ELSE %(due_state)s END,
           %(arguments)s, %(key)s, t.at, %(concurrency_key)s, %(timeout)s::float8, %(batch_id)s::bigint,
           %(on_dependency_failure)s::text
    FROM t
    ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting')
    DO NOTHING
    RETURNING id, state, queue
)
SELECT id, state, (CASE WHEN state = 'ready' THEN pg_notify('jobctl', queue) END)::text AS _
FROM ins;

-- name: insert_jobs
-- Insert many jobs in one statement (keys, waits); duplicates of active keys are skipped; one notify per queue.
WITH ins AS (
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments, key, scheduled_at, timeout_s, batch_id)
    SELECT u.q, u.c, u.p, CASE WHEN u.at > now() THEN 'scheduled' ELSE 'ready' END, u.a, u.k, u.at, u.t, u.b
    FROM (
        SELECT q, c, p, a, k, COALESCE(r, now() + d * interval '1 second') AS at, t, b, o
        FROM unnest(%(queues)s::text[], %(classes)s::text[], %(priorities)s::int[], %(arguments)s::json[],
                    %(keys)s::text[], %(run_ats)s::timestamptz[], %(delays)s::float8[], %(timeouts)s::float8[],
                    %(batch_ids)s::bigint[])
             WITH ORDINALITY AS x(q, c, p, a, k, r, d, t, b, o)
    ) u
    ORDER BY u.o
    ON CONFLICT (key) WHERE key IS NOT NULL AND state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting')
    DO NOTHING
    RETURNING state, queue
), woken AS (
    SELECT DISTINCT queue FROM ins WHERE state = 'ready'
)
SELECT (SELECT count(*) FROM ins) AS inserted,
       (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _;

-- name: copy_jobs
-- Stream ready jobs without keys or waits (the bulk fast path).
COPY jobctl_jobs (queue, class, priority, state, arguments) FROM STDIN;

-- name: notify_queues
-- Wake the workers of these queues (once per queue, after a bulk insert).
SELECT count(*) FROM unnest(%(queues)s::text[]) AS q WHERE pg_notify('jobctl', q) IS NULL;

-- name: find_active_by_key
-- The active job holding a unique key.
SELECT id, state FROM jobctl_jobs
WHERE key = %(key)s AND state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting');

-- name: job_state
-- The state of one job.
SELECT state FROM jobctl_jobs WHERE id = %(id)s;

-- name: count_jobs
-- Count jobs, optionally of one state and/or one queue.
SELECT count(*) FROM jobctl_jobs
WHERE (%(state)s::text IS NULL OR state = %(state)s) AND (%(queue)s::text IS NULL OR queue = %(queue)s);

-- name: database_identity
-- What identifies jobctl's database from any connection to it: its name, the cluster's system identifier
-- (shared by a primary and its streaming replicas, so it survives a failover) and the jobctl_jobs
-- table this connection's search_path finds (NULL: none). Never fails, so it is safe inside a caller's
-- transaction.
SELECT current_database() || '|'
       || CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'execute')
               THEN (SELECT system_identifier::text FROM pg_control_system()) ELSE '' END || '|'
       || COALESCE(to_regclass('jobctl_jobs')::oid::text, '');
