/* cli_backup.c - `dimd backup` (a consistent copy of a state directory's
 * database, safe while the daemon runs: store/backup.h) and `dimd check` (its
 * integrity: store/check.h). Neither writes the state directory. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cli.h"
#include "store/backup.h"
#include "store/check.h"

static const char *const with_value[] = {"state_dir", "out", "pages_per_step", NULL};

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupted = 1;
}

static bool backup_cancelled(void *ctx)
{
    (void)ctx;
    return interrupted != 0;
}

/* STATE_DIR/dimd.db into db[n]; prints the problem and returns false when
 * state_dir is missing or holds no database. */
static bool state_db(const char *cmd, const char *state_dir, char *db, size_t n)
{
    if (!state_dir) {
        fprintf(stderr, "dimd %s: --state_dir is required\n", cmd);
        return false;
    }
    struct stat st;
    if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "dimd %s: --state_dir %s is not a directory\n", cmd, state_dir);
        return false;
    }
    if ((size_t)snprintf(db, n, "%s/dimd.db", state_dir) >= n) {
        fprintf(stderr, "dimd %s: --state_dir is too long\n", cmd);
        return false;
    }
    if (stat(db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "dimd %s: %s: no database (dimd.db) in the state directory\n", cmd, db);
        return false;
    }
    return true;
}

int cli_backup(int argc, char **argv)
{
    const char *state_dir = NULL, *out = NULL;
    uint64_t pages = STORE_BACKUP_PAGES_PER_STEP;
    bool json = false;
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, with_value, false);
        if (r == 0) {
            fprintf(stderr, "dimd backup: unexpected argument '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
        if (r < 0) {
            fprintf(stderr, "dimd backup: flag %s needs a value\n", argv[i - 1]);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0) {
            printf("usage: dimd backup --state_dir DIR --out FILE [--pages_per_step N] [--json]\n"
                   "Copies DIR/dimd.db to FILE, consistently, also while dimd serve runs on DIR\n"
                   "(SQLite's online backup API, N pages per step, default %d). FILE is written\n"
                   "as FILE.tmp and renamed, so it is always a complete backup. Restore: copy\n"
                   "FILE to NEWDIR/dimd.db and run dimd serve --state_dir NEWDIR.\n",
                   STORE_BACKUP_PAGES_PER_STEP);
            return 0;
        } else if (strcmp(name, "state_dir") == 0) {
            state_dir = val;
        } else if (strcmp(name, "out") == 0) {
            out = val;
        } else if (strcmp(name, "pages_per_step") == 0) {
            if (cli_parse_u64("backup", name, val, 1, 1u << 30, &pages))
                return CLI_EXIT_USAGE;
        } else if (strcmp(name, "json") == 0 && !val) {
            json = true;
        } else {
            fprintf(stderr, "dimd backup: unknown flag --%s\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    char db[PATH_MAX + 16];
    if (!state_db("backup", state_dir, db, sizeof db))
        return CLI_EXIT_USAGE;
    if (!out || !*out) {
        fprintf(stderr, "dimd backup: --out FILE is required\n");
        return CLI_EXIT_USAGE;
    }
    struct stat so, sd;
    if (stat(out, &so) == 0 && stat(db, &sd) == 0 && so.st_dev == sd.st_dev &&
        so.st_ino == sd.st_ino) {
        fprintf(stderr, "dimd backup: --out %s is the database itself\n", out);
        return CLI_EXIT_USAGE;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct store_backup_info info;
    struct dim_err err;
    if (store_backup_file(db, out, (int)pages, backup_cancelled, NULL, &info, &err) != STORE_OK) {
        fprintf(stderr, "dimd backup: %s\n", err.msg);
        return interrupted ? 130 : CLI_EXIT_FAIL;
    }
    if (json)
        cli_print_json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:f}", "command", "backup",
                                 "database", db, "out", out, "bytes", (json_int_t)info.bytes,
                                 "pages", (json_int_t)info.pages, "page_size",
                                 (json_int_t)info.page_size, "steps", info.steps, "seconds",
                                 info.seconds),
                       6);
    else
        printf("dimd backup: %s -> %s: %lld pages of %lld bytes (%lld bytes) in %d steps, "
               "%.3f s\n",
               db, out, (long long)info.pages, (long long)info.page_size, (long long)info.bytes,
               info.steps, info.seconds);
    return 0;
}

/* Each problem: a line on stdout, or (--json) an element of the array ctx. */
static void on_problem(void *ctx, const char *problem)
{
    if (ctx) {
        json_array_append_new(ctx, json_string(problem));
        return;
    }
    printf("problem: %s\n", problem);
    fflush(stdout);
}

int cli_check(int argc, char **argv)
{
    const char *state_dir = NULL;
    bool json = false;
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, with_value, false);
        if (r == 0) {
            fprintf(stderr, "dimd check: unexpected argument '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
        if (r < 0) {
            fprintf(stderr, "dimd check: flag %s needs a value\n", argv[i - 1]);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0) {
            printf("usage: dimd check --state_dir DIR [--json]\n"
                   "Checks DIR/dimd.db (read-only; also while dimd serve runs on DIR): SQLite's\n"
                   "integrity_check and foreign_key_check, and the sha256 of every checkpoint\n"
                   "and model version against the one recorded with it. Prints one line per\n"
                   "problem, then a summary; exit status 0 when there is none, 1 otherwise.\n");
            return 0;
        } else if (strcmp(name, "state_dir") == 0) {
            state_dir = val;
        } else if (strcmp(name, "json") == 0 && !val) {
            json = true;
        } else {
            fprintf(stderr, "dimd check: unknown flag --%s\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    char db[PATH_MAX + 16];
    if (!state_db("check", state_dir, db, sizeof db))
        return CLI_EXIT_USAGE;
    struct store_check_report r;
    struct dim_err err;
    json_t *problems = json ? json_array() : NULL;
    if (store_check(db, on_problem, problems, &r, &err) != STORE_OK) {
        json_decref(problems);
        fprintf(stderr, "dimd check: %s\n", err.msg);
        return CLI_EXIT_FAIL;
    }
    if (json)
        cli_print_json(json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}",
                                 "command", "check", "database", db, "ok", r.problems == 0, "pages",
                                 (json_int_t)r.pages, "page_size", (json_int_t)r.page_size, "jobs",
                                 (json_int_t)r.jobs, "checkpoints", (json_int_t)r.checkpoints,
                                 "checkpoint_bytes", (json_int_t)r.checkpoint_bytes,
                                 "model_versions", (json_int_t)r.versions, "model_version_bytes",
                                 (json_int_t)r.version_bytes, "seconds", r.seconds, "problems",
                                 problems),
                       6);
    else
        printf("dimd check: %s: %lld pages of %lld bytes, %lld jobs, %lld checkpoints (%lld "
               "bytes) and %lld model versions (%lld bytes) verified in %.3f s: %lld problem%s\n",
               db, (long long)r.pages, (long long)r.page_size, (long long)r.jobs,
               (long long)r.checkpoints, (long long)r.checkpoint_bytes, (long long)r.versions,
               (long long)r.version_bytes, r.seconds, (long long)r.problems,
               r.problems == 1 ? "" : "s");
    return r.problems ? CLI_EXIT_FAIL : 0;
}
