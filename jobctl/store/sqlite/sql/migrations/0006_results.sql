-- jobctl schema 6: a job's return value, when it returned one (SPEC 11). A job returning None has no
-- row, so the drain of jobs without results writes nothing more than before.

CREATE TABLE jobctl_results (
    job_id  INTEGER PRIMARY KEY,
    value   TEXT    NOT NULL
);
