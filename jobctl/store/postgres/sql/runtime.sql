-- The runtime's named queries for PostgreSQL: processes, claims, completions, dispatching,
-- pruning. Each starts with `-- name: NAME` and a one-line description; parameters are psycopg
-- named placeholders. Statement shapes are kept plan-stable: claims and completions are
-- primary-key lookups by `id = ANY(array)`.

-- name: register_process
-- Register a supervisor, worker, dispatcher or scheduler.
INSERT INTO jobctl_processes (kind, hostname, host_id, pid, supervisor_id, queues, threads, wakeup, metadata)
VALUES (%(kind)s, %(hostname)s, %(host_id)s, %(pid)s, %(supervisor_id)s, %(queues)s, %(threads)s, %(wakeup)s,
        %(metadata)s)
RETURNING id;

-- name: heartbeat
-- Beat for a supervisor and its children in one statement; returns the ids still registered.
UPDATE jobctl_processes AS p SET last_heartbeat_at = now(), busy = b.busy
FROM unnest(%(ids)s::bigint[], %(busy)s::int[]) AS b(id, busy)
WHERE p.id = b.id
RETURNING p.id;

-- name: deregister_processes
-- Return every job these processes hold to ready (not counted as a run) and forget the processes.
WITH released AS (
    UPDATE jobctl_jobs SET state = 'ready', claim_token = NULL, claimed_at = NULL
    WHERE state = 'claimed' AND process_id = ANY(%(ids)s::bigint[])
    RETURNING queue
), gone AS (
    DELETE FROM jobctl_processes WHERE id = ANY(%(ids)s::bigint[]) RETURNING id
), woken AS (
    SELECT DISTINCT queue FROM released
)
SELECT (SELECT count(*) FROM released) AS released,
       (SELECT count(*) FROM gone) AS gone,
       (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _;

-- name: send_probe
-- A round trip of our own: a listener that hears this knows notifications reach it.
SELECT pg_notify('jobctl', %(payload)s);

-- name: stale_processes
-- Processes on any host whose heartbeat is older than the threshold (seconds).
SELECT id, hostname, host_id, pid, kind, supervisor_id FROM jobctl_processes
WHERE last_heartbeat_at < now() - %(threshold)s::float8 * interval '1 second';

-- name: host_processes
-- Processes registered from one host: the same hostname, boot and PID namespace (to find whose pid is gone).
SELECT id, hostname, host_id, pid, kind, supervisor_id FROM jobctl_processes WHERE host_id = %(host_id)s;

-- name: set_wakeup
-- How these processes' workers wake now: `listening` (NOTIFY) or `polling`.
UPDATE jobctl_processes SET wakeup = %(wakeup)s WHERE id = ANY(%(ids)s::bigint[]);

-- name: crash_jobs
-- Jobs that were executing when their process died: count the run and the crash; fail after max_crashes.
WITH crashed AS (
    UPDATE jobctl_jobs
    SET attempts = attempts + 1, crashes = crashes + 1, claim_token = NULL, claimed_at = NULL,
        state = CASE WHEN crashes + 1 >= %(max_crashes)s THEN 'failed' ELSE 'ready' END,
        finished_at = CASE WHEN crashes + 1 >= %(max_crashes)s THEN now() END
    WHERE id = ANY(%(ids)s::bigint[]) AND state = 'claimed' AND process_id = %(process_id)s
    RETURNING id, attempts, state, queue
), errors AS (
    INSERT INTO jobctl_errors (job_id, attempt, class, message, process_id)
    SELECT id, attempts, 'jobctl.WorkerCrashed', %(message)s, %(process_id)s FROM crashed
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, failed)
    SELECT date_trunc('minute', now()), %(process_id)s, queue, count(*) FROM crashed GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET failed = jobctl_throughput.failed + EXCLUDED.failed
)
SELECT id, state FROM crashed;

-- name: job_summaries
-- Jobs by id, as the supervisor counts and reports crashed runs.
SELECT id, queue, class, attempts - attempts_base, arguments::text FROM jobctl_jobs WHERE id = ANY(%(ids)s);

-- name: claim_any
-- Finish the previous batch and claim the next from every queue while none is paused: priority, then age.
-- (A paused-queue filter here would make the planner expect it to keep ~no rows and sort the whole
-- ready set instead of walking the index; with pauses the marker row sends us to claim_any_paused.)
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members, which counts them
    RETURNING queue
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
), claimed AS (
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = now(), claim_token = %(token)s::bigint,
                       process_id = %(process_id)s::bigint
WHERE id = ANY(ARRAY(
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND (priority, id) > (%(after_priority)s::integer, %(after_id)s::bigint)
      AND NOT EXISTS (SELECT 1 FROM jobctl_pauses)
    ORDER BY priority, id
    LIMIT %(limit)s::integer
    FOR UPDATE SKIP LOCKED))
RETURNING id, queue, class, priority, arguments::text, attempts, attempts_base, timeout_s, batch_id
)
SELECT * FROM claimed
UNION ALL  -- a row of NULLs says "some queue is paused: claim again with the statement that skips them"
SELECT NULL::bigint, NULL::text, NULL::text, NULL::integer, NULL::text, NULL::integer, NULL::integer, NULL::float8,
       NULL::bigint
WHERE EXISTS (SELECT 1 FROM jobctl_pauses);

-- name: claim_any_paused
-- Claim the next batch from every unpaused queue (some queue is paused): priority, then age.
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members, which counts them
    RETURNING queue
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = now(), claim_token = %(token)s::bigint,
                       process_id = %(process_id)s::bigint
WHERE id = ANY(ARRAY(
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND (priority, id) > (%(after_priority)s::integer, %(after_id)s::bigint)
      AND queue <> ALL(ARRAY(SELECT queue FROM jobctl_pauses))
    ORDER BY priority, id
    LIMIT %(limit)s::integer
    FOR UPDATE SKIP LOCKED))
RETURNING id, queue, class, priority, arguments::text, attempts, attempts_base, timeout_s, batch_id;

-- name: claim_queue
-- Finish the previous batch and claim the next from one queue (unless paused): priority, then age.
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members, which counts them
    RETURNING queue
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = now(), claim_token = %(token)s::bigint,
                       process_id = %(process_id)s::bigint
WHERE id = ANY(ARRAY(
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND queue = %(queue)s AND (priority, id) > (%(after_priority)s::integer, %(after_id)s::bigint)
      AND NOT EXISTS (SELECT 1 FROM jobctl_pauses WHERE queue = %(queue)s)
    ORDER BY priority, id
    LIMIT %(limit)s::integer
    FOR UPDATE SKIP LOCKED))
RETURNING id, queue, class, priority, arguments::text, attempts, attempts_base, timeout_s, batch_id;

-- name: claim_prefix
-- Finish the previous batch and claim the next from queues matching a LIKE pattern while none is paused.
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members, which counts them
    RETURNING queue
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
), claimed AS (
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = now(), claim_token = %(token)s::bigint,
                       process_id = %(process_id)s::bigint
WHERE id = ANY(ARRAY(
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND queue LIKE %(pattern)s AND (priority, id) > (%(after_priority)s::integer, %(after_id)s::bigint)
      AND NOT EXISTS (SELECT 1 FROM jobctl_pauses)
    ORDER BY priority, id
    LIMIT %(limit)s::integer
    FOR UPDATE SKIP LOCKED))
RETURNING id, queue, class, priority, arguments::text, attempts, attempts_base, timeout_s, batch_id
)
SELECT * FROM claimed
UNION ALL  -- a row of NULLs says "some queue is paused: claim again with the statement that skips them"
SELECT NULL::bigint, NULL::text, NULL::text, NULL::integer, NULL::text, NULL::integer, NULL::integer, NULL::float8,
       NULL::bigint
WHERE EXISTS (SELECT 1 FROM jobctl_pauses);

-- name: claim_prefix_paused
-- Claim the next batch from unpaused queues matching a LIKE pattern (some queue is paused).
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members, which counts them
    RETURNING queue
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
UPDATE jobctl_jobs SET state = 'claimed', claimed_at = now(), claim_token = %(token)s::bigint,
                       process_id = %(process_id)s::bigint
WHERE id = ANY(ARRAY(
    SELECT id FROM jobctl_jobs
    WHERE state = 'ready' AND queue LIKE %(pattern)s AND (priority, id) > (%(after_priority)s::integer, %(after_id)s::bigint)
      AND queue <> ALL(ARRAY(SELECT queue FROM jobctl_pauses))
    ORDER BY priority, id
    LIMIT %(limit)s::integer
    FOR UPDATE SKIP LOCKED))
RETURNING id, queue, class, priority, arguments::text, attempts, attempts_base, timeout_s, batch_id;

-- name: finish_with_results
-- Mark jobs finished and keep what they returned (fenced by the claim token, like every completion).
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(ids)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
      AND batch_id IS NULL  -- batch members finish through finish_members_with_results
    RETURNING id, queue
), stored AS (
    INSERT INTO jobctl_results (job_id, value)
    SELECT g.id, g.value FROM unnest(%(ids)s::bigint[], %(values)s::json[]) AS g(id, value)
    WHERE g.id IN (SELECT id FROM done)
    ON CONFLICT (job_id) DO UPDATE SET value = EXCLUDED.value
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
SELECT count(*) FROM done;

-- name: finish_members_with_results
-- finish_with_results for batch members: each batch counts its finished members here, one row per batch.
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(ids)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
    RETURNING id, queue, batch_id
), batched AS (  -- batch members count as finished here, one row per batch (nothing for unbatched jobs)
    UPDATE jobctl_batches AS b SET finished = b.finished + (SELECT count(*) FROM done WHERE done.batch_id = b.id)
    WHERE b.id = ANY(ARRAY(SELECT DISTINCT batch_id FROM done WHERE batch_id IS NOT NULL ORDER BY 1))
    RETURNING b.id
), stored AS (
    INSERT INTO jobctl_results (job_id, value)
    SELECT g.id, g.value FROM unnest(%(ids)s::bigint[], %(values)s::json[]) AS g(id, value)
    WHERE g.id IN (SELECT id FROM done)
    ON CONFLICT (job_id) DO UPDATE SET value = EXCLUDED.value
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
SELECT count(*) FROM done;

-- name: finish_members
-- Mark batch members finished (fenced) and count them in their batches: one UPDATE per batch, in id order
-- (two workers finishing members of the same batches lock them in the same order).
WITH done AS (
    UPDATE jobctl_jobs SET state = 'finished', finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = ANY(%(done)s::bigint[]) AND claim_token = %(token)s::bigint AND state = 'claimed'
    RETURNING queue, batch_id
), batched AS (
    UPDATE jobctl_batches AS b SET finished = b.finished + (SELECT count(*) FROM done WHERE done.batch_id = b.id)
    WHERE b.id = ANY(ARRAY(SELECT DISTINCT batch_id FROM done WHERE batch_id IS NOT NULL ORDER BY 1))
    RETURNING b.id
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, finished)
    SELECT date_trunc('minute', now()), %(process_id)s::bigint, queue, count(*) FROM done GROUP BY queue
    ON CONFLICT (minute, source, queue) DO UPDATE SET finished = jobctl_throughput.finished + EXCLUDED.finished
)
SELECT count(*) FROM done;

-- name: retry_job
-- A run raised a retryable error: keep the error, count the run, schedule the next (fenced).
WITH ran AS (
    SELECT queue FROM jobctl_jobs WHERE id = %(id)s
), u AS (
    UPDATE jobctl_jobs
    SET state = CASE WHEN %(delay)s::float8 > 0 THEN 'scheduled' ELSE 'ready' END,
        scheduled_at = now() + %(delay)s::float8 * interval '1 second',
        attempts = attempts + 1, claim_token = NULL, claimed_at = NULL,
        queue = COALESCE(%(queue)s, queue), priority = COALESCE(%(priority)s, priority)
    WHERE id = %(id)s AND claim_token = %(token)s AND state = 'claimed'
    RETURNING id, attempts, state, queue, scheduled_at
), e AS (
    INSERT INTO jobctl_errors (job_id, attempt, class, message, traceback, process_id)
    SELECT id, attempts, %(class)s, %(message)s, %(traceback)s, %(process_id)s FROM u
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, failed)
    SELECT date_trunc('minute', now()), %(process_id)s, ran.queue, 1 FROM u, ran
    ON CONFLICT (minute, source, queue) DO UPDATE SET failed = jobctl_throughput.failed + EXCLUDED.failed
)
SELECT id, state, scheduled_at, (CASE WHEN state = 'ready' THEN pg_notify('jobctl', queue) END)::text AS _ FROM u;

-- name: end_job
-- A run ended for good as failed or discarded: keep the error (or discard reason), count the run (fenced).
WITH u AS (
    UPDATE jobctl_jobs SET state = %(state)s, finished_at = now(), attempts = attempts + 1, claim_token = NULL
    WHERE id = %(id)s AND claim_token = %(token)s AND state = 'claimed'
    RETURNING id, attempts, state, queue
), e AS (
    INSERT INTO jobctl_errors (job_id, attempt, class, message, traceback, process_id)
    SELECT id, attempts, %(class)s, %(message)s, %(traceback)s, %(process_id)s FROM u
), counted AS (
    INSERT INTO jobctl_throughput (minute, source, queue, failed)
    SELECT date_trunc('minute', now()), %(process_id)s, queue, 1 FROM u WHERE state = 'failed'
    ON CONFLICT (minute, source, queue) DO UPDATE SET failed = jobctl_throughput.failed + EXCLUDED.failed
)
SELECT id FROM u;

-- name: dispatch_due
-- Move due scheduled jobs to ready, oldest first, in one batch; wake their queues.
WITH due AS (
    UPDATE jobctl_jobs SET state = 'ready'
    WHERE id = ANY(ARRAY(
        SELECT id FROM jobctl_jobs WHERE state = 'scheduled' AND scheduled_at <= now()
        ORDER BY scheduled_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
    RETURNING queue
), woken AS (
    SELECT DISTINCT queue FROM due
)
SELECT (SELECT count(*) FROM due) AS moved, (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _;

-- name: dispatch_and_unblock
-- The dispatcher's tick in one round trip: a batch of due jobs to ready, then jobctl_unblock_all().
WITH due AS (
    UPDATE jobctl_jobs SET state = 'ready'
    WHERE id = ANY(ARRAY(
        SELECT id FROM jobctl_jobs WHERE state = 'scheduled' AND scheduled_at <= now()
        ORDER BY scheduled_at LIMIT %(limit)s::integer FOR UPDATE SKIP LOCKED))
    RETURNING queue
), woken AS (
    SELECT DISTINCT queue FROM due
)
SELECT (SELECT count(*) FROM due) AS moved, jobctl_unblock_all() AS unblocked,
       (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _;

-- name: prune_finished
-- Delete one batch of finished jobs older than the retention (seconds), with their errors, progress and results.
WITH gone AS (
    DELETE FROM jobctl_jobs
    WHERE id = ANY(ARRAY(
        SELECT id FROM jobctl_jobs
        WHERE state = 'finished' AND finished_at < now() - %(age)s::float8 * interval '1 second'
        ORDER BY finished_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED))
    RETURNING id
), errors AS (
    DELETE FROM jobctl_errors WHERE job_id IN (SELECT id FROM gone)
), progress AS (
    DELETE FROM jobctl_progress WHERE job_id IN (SELECT id FROM gone)
), results AS (
    DELETE FROM jobctl_results WHERE job_id IN (SELECT id FROM gone)
)
SELECT count(*) FROM gone;

-- name: prune_throughput
-- Forget throughput counters older than the given age (seconds).
DELETE FROM jobctl_throughput WHERE minute < now() - %(age)s::float8 * interval '1 second';

-- ---------------------------------------------------------------------------------------
-- Recurring tasks.

-- name: database_now
-- The database's clock: every tick, due time and heartbeat is judged by it.
SELECT now();

-- name: upsert_recurring_task
-- Record a task as this scheduler loaded it.
INSERT INTO jobctl_recurring_tasks (key, schedule, cron, class, command, arguments, queue, priority, description,
                                    next_run_at, updated_at)
VALUES (%(key)s, %(schedule)s, %(cron)s, %(class)s, %(command)s, %(arguments)s, %(queue)s, %(priority)s,
        %(description)s, %(next_run_at)s, now())
ON CONFLICT (key) DO UPDATE SET schedule = EXCLUDED.schedule, cron = EXCLUDED.cron, class = EXCLUDED.class,
    command = EXCLUDED.command, arguments = EXCLUDED.arguments, queue = EXCLUDED.queue,
    priority = EXCLUDED.priority, description = EXCLUDED.description, next_run_at = EXCLUDED.next_run_at,
    updated_at = now();

-- name: enqueue_tick
-- Enqueue one tick of a task unless any scheduler already did (the run's primary key decides).
WITH new_id AS (
    SELECT nextval(pg_get_serial_sequence('jobctl_jobs', 'id')) AS id
), run AS (
    INSERT INTO jobctl_recurring_runs (task_key, run_at, job_id)
    SELECT %(key)s, %(run_at)s, id FROM new_id
    ON CONFLICT DO NOTHING
    RETURNING job_id
), job AS (
    INSERT INTO jobctl_jobs (id, queue, class, priority, state, arguments)
    SELECT job_id, %(queue)s, %(class)s, %(priority)s, 'ready', %(arguments)s FROM run
    RETURNING id, queue
)
SELECT id, (pg_notify('jobctl', queue))::text AS _ FROM job;

-- name: set_next_run
-- Show operators when a task runs next.
UPDATE jobctl_recurring_tasks SET next_run_at = %(next_run_at)s, updated_at = now() WHERE key = %(key)s;

-- name: prune_recurring_runs
-- Forget ticks older than the given age (seconds): far older than any scheduler could still enqueue.
DELETE FROM jobctl_recurring_runs WHERE run_at < now() - %(age)s::float8 * interval '1 second';

-- ---------------------------------------------------------------------------------------
-- Concurrency limits (the rules live in migration 0004's triggers).

-- name: ensure_slots
-- Make sure a concurrency key has `to` slots (extra free ones go when a limit shrinks).
WITH added AS (
    INSERT INTO jobctl_slots (key, slot, duration_s)
    SELECT %(key)s, n, %(duration)s FROM generate_series(1, %(to)s) AS n
    ON CONFLICT DO NOTHING
    RETURNING 1
)
DELETE FROM jobctl_slots WHERE key = %(key)s AND slot > %(to)s AND job_id IS NULL;

-- name: unblock_key
-- Hand a concurrency key's free slots to its blocked jobs (after inserting a limited job).
SELECT jobctl_unblock(%(key)s);

-- name: discard_blocked
-- A job that found no free slot, with on_conflict="discard": discarded, the reason kept.
WITH d AS (
    UPDATE jobctl_jobs SET state = 'discarded', finished_at = now()
    WHERE id = %(id)s AND state = 'blocked'
    RETURNING id
), e AS (
    INSERT INTO jobctl_errors (job_id, attempt, class, message)
    SELECT id, 0, 'jobctl.ConcurrencyLimitReached', %(message)s FROM d
)
SELECT id FROM d;

-- name: unblock_all
-- The dispatcher's fail-safe: reclaim leaked slots and hand free slots to blocked jobs.
SELECT jobctl_unblock_all();

-- name: set_progress
-- Record a running job's progress (last report wins).
INSERT INTO jobctl_progress (job_id, done, total, message, at)
VALUES (%(id)s, %(done)s, %(total)s, %(message)s, now())
ON CONFLICT (job_id) DO UPDATE SET done = EXCLUDED.done, total = EXCLUDED.total, message = EXCLUDED.message,
    at = EXCLUDED.at;

-- name: release_claims
-- Return a live process's claimed jobs to ready, except those it is executing (after it lost track).
WITH released AS (
    UPDATE jobctl_jobs SET state = 'ready', claim_token = NULL, claimed_at = NULL
    WHERE state = 'claimed' AND process_id = %(process_id)s AND NOT (id = ANY(%(keep)s::bigint[]))
    RETURNING queue
), woken AS (
    SELECT DISTINCT queue FROM released
)
SELECT (SELECT count(*) FROM released) AS released, (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _;
