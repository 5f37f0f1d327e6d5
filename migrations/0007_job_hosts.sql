-- 0007_job_hosts.sql - the hosts a data-parallel job's ranks ran on ("ranks" > 1 in
-- its spec): a JSON array of host names, rank 0 first, written by the worker when
-- the ranks of an attempt have started (NULL: the job ran in the daemon, or has not
-- started ranks yet).
ALTER TABLE jobs ADD COLUMN hosts TEXT;
