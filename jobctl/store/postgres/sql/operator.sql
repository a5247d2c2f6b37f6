-- Operators' named queries for PostgreSQL (CLI verbs, the monitor, the testing helpers). Reads
-- touch partial indexes or small tables only, so they stay fast with millions of finished jobs.

-- name: queue_counts
-- The database's time, then active and failed jobs per queue and state with each queue's oldest
-- ready due time (a first row of NULLs but the time when there are none).
-- The states are ORed, not `IN (...)`: only then can the planner combine the states' partial indexes
-- (a BitmapOr); with an IN list it scanned the whole table, finished history included (850 ms at 10M).
SELECT now() AS now, c.queue, c.state, c.n, c.oldest_ready_at
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT queue, state, count(*) AS n, min(scheduled_at) FILTER (WHERE state = 'ready') AS oldest_ready_at
    FROM jobctl_jobs
    WHERE state = 'scheduled' OR state = 'ready' OR state = 'claimed' OR state = 'blocked' OR state = 'waiting'
       OR state = 'failed'
    GROUP BY queue, state
) AS c ON true;

-- name: metrics_reading
-- For metrics, in one statement: the database's time; active and failed jobs per queue and state with
-- each queue's oldest ready due time; processes per kind and host, those that beat within the threshold
-- and the age of the least recent heartbeat.
SELECT 'now' AS what, NULL AS a, NULL AS b, 0::bigint AS n, now() AS at, NULL::double precision AS age
UNION ALL
SELECT 'jobs', queue, state, count(*), min(scheduled_at) FILTER (WHERE state = 'ready'), NULL
FROM jobctl_jobs
WHERE state = 'scheduled' OR state = 'ready' OR state = 'claimed' OR state = 'blocked' OR state = 'waiting'
   OR state = 'failed'  -- ORed, as in queue_counts, so the states' partial indexes serve it
GROUP BY queue, state
UNION ALL
SELECT 'processes', kind, hostname,
       count(*) FILTER (WHERE last_heartbeat_at >= now() - %(threshold)s * interval '1 second'), NULL,
       extract(epoch FROM now() - min(last_heartbeat_at))::double precision
FROM jobctl_processes
GROUP BY kind, hostname;

-- name: count_in_state
-- Exact count of one state (finished and discarded have partial indexes of their own).
SELECT count(*) AS n FROM jobctl_jobs WHERE state = %(state)s;

-- name: paused_queues
-- Every paused queue.
SELECT queue FROM jobctl_pauses ORDER BY queue;

-- name: throughput
-- Finished and failed runs per minute over the last hour and a bit.
SELECT minute, sum(finished) AS finished, sum(failed) AS failed
FROM jobctl_throughput WHERE minute >= date_trunc('minute', now()) - interval '61 minutes'
GROUP BY minute;

-- name: throughput_totals
-- Runs finished and failed since the counters began (the monitor's rates are deltas of these).
SELECT COALESCE(sum(finished), 0) AS finished, COALESCE(sum(failed), 0) AS failed, now() AS now
FROM jobctl_throughput;

-- name: live_process_count
-- Processes whose heartbeat is recent.
SELECT count(*) AS n FROM jobctl_processes WHERE last_heartbeat_at >= now() - %(threshold)s * interval '1 second';

-- name: list_jobs
-- One page of jobs, newest first, optionally filtered; `after` is the last id of the previous page.
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs
WHERE (%(state)s::text IS NULL OR state = %(state)s) AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(class)s::text IS NULL OR class = %(class)s) AND (%(after)s::bigint IS NULL OR id < %(after)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: jobs_by_ids
-- Jobs by id.
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id DESC;

-- name: errors_of_jobs
-- Every error of some jobs, oldest first.
SELECT job_id, attempt, class, message, traceback, at, process_id FROM jobctl_errors
WHERE job_id = ANY(%(ids)s::bigint[]) ORDER BY job_id, id;

-- name: progress_of_jobs
-- Last reported progress of some jobs.
SELECT job_id, done, total, message, at FROM jobctl_progress WHERE job_id = ANY(%(ids)s::bigint[]);

-- name: results_of_jobs
-- What some finished jobs returned (jobs that returned None have no row).
SELECT job_id, value FROM jobctl_results WHERE job_id = ANY(%(ids)s::bigint[]);

-- name: match_jobs
-- Ids and states of the jobs a bulk verb would touch.
SELECT id, state FROM jobctl_jobs
WHERE state = ANY(%(states)s::text[]) AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(class)s::text IS NULL OR class = %(class)s)
  AND (%(older_than)s::float8 IS NULL
       OR COALESCE(finished_at, enqueued_at) < now() - %(older_than)s::float8 * interval '1 second')
ORDER BY id;

-- name: failed_page
-- A page of failed jobs (oldest first, after an id) as the Failures panel's rows: queue, class,
-- attempts, when it failed and its last error. The monitor's filter runs on them in Python (str.lower).
SELECT j.id, j.queue, j.class, j.attempts, j.finished_at, last.error_class, last.error_message
FROM jobctl_jobs AS j
LEFT JOIN LATERAL (
    SELECT e.class AS error_class, e.message AS error_message
    FROM jobctl_errors AS e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1
) AS last ON true
WHERE j.state = 'failed' AND j.id > %(after)s::bigint
ORDER BY j.id
LIMIT %(limit)s::integer;

-- name: retry_failed
-- Failed jobs back to ready with a fresh retry budget; one whose key another active job holds is left.
WITH r AS (
    UPDATE jobctl_jobs AS j
    SET state = 'ready', scheduled_at = now(), finished_at = NULL, claim_token = NULL,
        attempts_base = attempts, crashes = 0
    WHERE id = ANY(%(ids)s::bigint[]) AND state = 'failed'
      AND (key IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobctl_jobs AS a
          WHERE a.key = j.key AND a.state IN ('scheduled', 'ready', 'blocked', 'claimed', 'waiting')))
    RETURNING id, queue
), woken AS (
    SELECT DISTINCT queue FROM r
)
SELECT id, (SELECT count(*) FROM woken WHERE pg_notify('jobctl', queue) IS NULL) AS _ FROM r;

-- name: discard_jobs
-- Failed, ready, scheduled, blocked or waiting jobs to discarded.
UPDATE jobctl_jobs SET state = 'discarded', finished_at = now(), claim_token = NULL
WHERE id = ANY(%(ids)s::bigint[]) AND state IN ('failed', 'ready', 'scheduled', 'blocked', 'waiting')
RETURNING id;

-- name: delete_jobs
-- Delete jobs with their errors, progress and results.
WITH gone AS (
    DELETE FROM jobctl_jobs WHERE id = ANY(%(ids)s::bigint[]) RETURNING id
), errors AS (
    DELETE FROM jobctl_errors WHERE job_id IN (SELECT id FROM gone)
), progress AS (
    DELETE FROM jobctl_progress WHERE job_id IN (SELECT id FROM gone)
), results AS (
    DELETE FROM jobctl_results WHERE job_id IN (SELECT id FROM gone)
)
SELECT id FROM gone;

-- name: pause_queue
-- Stop claiming from a queue (it need not have jobs yet).
INSERT INTO jobctl_pauses (queue) VALUES (%(queue)s) ON CONFLICT DO NOTHING RETURNING queue;

-- name: resume_queue
-- Claim from a queue again, and wake its workers.
WITH r AS (DELETE FROM jobctl_pauses WHERE queue = %(queue)s RETURNING queue)
SELECT queue, (pg_notify('jobctl', queue))::text AS _ FROM r;

-- name: processes
-- Every registered process.
SELECT id, kind, hostname, pid, supervisor_id, queues, threads, busy, last_heartbeat_at, started_at, wakeup
FROM jobctl_processes ORDER BY id;

-- name: recurring_tasks
-- Recurring tasks as schedulers registered them, with their last run (a tick, or one made by hand).
SELECT t.key, t.schedule, t.cron, t.class, t.command, t.arguments, t.queue, t.priority, t.description,
       t.next_run_at, (SELECT max(run_at) FROM jobctl_recurring_runs AS r WHERE r.task_key = t.key) AS last_run_at,
       (SELECT manual FROM jobctl_recurring_runs AS r WHERE r.task_key = t.key ORDER BY run_at DESC LIMIT 1)
           AS last_run_manual
FROM jobctl_recurring_tasks AS t ORDER BY t.key;

-- name: queues_used
-- Queues with runs counted (finished or failed) within the last `within` seconds.
SELECT DISTINCT queue FROM jobctl_throughput
WHERE minute >= date_trunc('minute', now() - %(within)s::float8 * interval '1 second') AND queue <> ''
ORDER BY queue;

-- name: enqueue_recurring_now
-- Enqueue a registered task's job now, outside its schedule, recorded as a run made by hand.
WITH task AS (
    SELECT key, class, arguments, queue, priority FROM jobctl_recurring_tasks WHERE key = %(key)s
), job AS (
    INSERT INTO jobctl_jobs (queue, class, priority, state, arguments)
    SELECT queue, class, priority, 'ready', arguments FROM task
    RETURNING id, queue
), run AS (
    INSERT INTO jobctl_recurring_runs (task_key, run_at, job_id, manual)
    SELECT %(key)s, clock_timestamp(), id, true FROM job
)
SELECT id, (pg_notify('jobctl', queue))::text AS _ FROM job;

-- name: claimed_executions
-- Claimed jobs with the process holding them and their progress, oldest claim first (bounded).
SELECT j.id, j.class, j.queue, j.claimed_at, j.attempts, j.attempts_base, j.process_id,
       p.hostname, p.pid, p.kind, g.done, g.total, g.message AS progress_message, g.at AS progress_at
FROM jobctl_jobs AS j
LEFT JOIN jobctl_processes AS p ON p.id = j.process_id
LEFT JOIN jobctl_progress AS g ON g.job_id = j.id
WHERE j.state = 'claimed' ORDER BY j.claimed_at, j.id LIMIT %(limit)s;

-- name: recurring_task
-- What one recurring task's ticks enqueue.
SELECT key, schedule, cron, class, command, arguments::text, queue, priority, description, next_run_at
FROM jobctl_recurring_tasks WHERE key = %(key)s;

-- name: make_scheduled_due
-- The testing helpers skip waits: every scheduled job becomes due now.
UPDATE jobctl_jobs SET scheduled_at = now() WHERE state = 'scheduled' RETURNING id;

-- name: waiting_jobs
-- Jobs enqueued and not yet run (scheduled, ready, blocked or waiting), oldest first (the testing
-- helpers' view).
SELECT id, class, queue, priority, state, arguments, attempts, crashes, key, enqueued_at, scheduled_at,
       claimed_at, finished_at, process_id, batch_id
FROM jobctl_jobs WHERE state IN ('scheduled', 'ready', 'blocked', 'waiting') ORDER BY id;
