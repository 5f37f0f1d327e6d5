/* cli_sweep.c - `dimd sweep FILE.json`: a sweep (the body of POST /v1/sweeps)
 * run locally, without the daemon, by the daemon's own pieces: a state
 * directory (a SQLite store like serve's), the runner's workers, and the
 * sweep service's passes (service/sweeps.h) on this thread. Progress is the
 * sweep's events, one line each on stderr; the leaderboard (or --json, the
 * GET /v1/sweeps/{id}/leaderboard object) goes to stdout.
 * Ctrl-C or SIGTERM stops cleanly (running trials checkpoint and go back to
 * the queue); the same command with the same --state_dir continues the sweep
 * where it was (the body's sha256 is its idempotency key).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/sweep_spec.h"
#include "cmd/cli.h"
#include "service/datasets.h"
#include "service/runner.h"
#include "service/sweeps.h"
#include "store/events.h"
#include "store/jobs.h"
#include "store/sweeps.h"
#include "util/sha256.h"

static const char *const with_value[] = {"state_dir", "workers", "threads_per_worker",
                                         "data_roots", NULL};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dimd sweep FILE.json [--state_dir DIR] [--workers N] [--threads_per_worker N]\n"
            "                  [--data_roots DIR[:DIR...]] [--json]\n"
            "Runs the sweep FILE describes (the body of POST /v1/sweeps; '-' reads stdin) here,\n"
            "with N workers (default 1) of T threads (default 1), in the state directory DIR\n"
            "(default: a new one under $TMPDIR, printed). Its events go to stderr; at the end\n"
            "the leaderboard (best first) goes to stdout, or with --json the object of\n"
            "GET /v1/sweeps/{id}/leaderboard (times as *_ms). Ctrl-C stops cleanly: the same command with\n"
            "the same --state_dir continues the sweep. `dimd serve --state_dir DIR` serves its\n"
            "trials, checkpoints and the sweep afterwards. Exit status 0 when the sweep\n"
            "SUCCEEDED, 1 when it FAILED or stopped early, 2 on bad input.\n");
}

static json_t *read_body(const char *path)
{
    json_error_t jerr;
    json_t *b = strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(path, 0, &jerr);
    if (!b)
        fprintf(stderr, "dimd sweep: %s: %s (line %d)\n", path, jerr.text, jerr.line);
    return b;
}

static void print_event(const struct store_event *e)
{
    json_error_t jerr;
    json_t *d = json_loads(e->data, 0, &jerr);
    if (!d)
        return;
    const char *type = json_string_value(json_object_get(d, "type"));
    json_int_t trial = json_integer_value(json_object_get(d, "trial"));
    json_t *v = json_object_get(d, "value");
    char val[40] = "null";
    if (json_is_number(v))
        snprintf(val, sizeof val, "%.6g", json_number_value(v));
    else if (json_is_string(v))
        snprintf(val, sizeof val, "%s", json_string_value(v));
    char *params = json_dumps(json_object_get(d, "params"), JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!type) {
    } else if (strcmp(type, "trial_started") == 0) {
        fprintf(stderr, "trial %lld started: %s\n", (long long)trial, params ? params : "{}");
    } else if (strcmp(type, "rung_result") == 0) {
        fprintf(stderr, "trial %lld rung %lld (step %lld): %s\n", (long long)trial,
                (long long)json_integer_value(json_object_get(d, "rung")),
                (long long)json_integer_value(json_object_get(d, "step")), val);
    } else if (strcmp(type, "decision") == 0) {
        fprintf(stderr, "trial %lld rung %lld: %s (rank %lld of %lld)\n", (long long)trial,
                (long long)json_integer_value(json_object_get(d, "rung")),
                json_string_value(json_object_get(d, "decision")),
                (long long)json_integer_value(json_object_get(d, "rank")),
                (long long)json_integer_value(json_object_get(d, "of")));
    } else if (strcmp(type, "best") == 0) {
        fprintf(stderr, "best: trial %lld, %s at rung %lld\n", (long long)trial, val,
                (long long)json_integer_value(json_object_get(d, "rung")));
    } else if (strcmp(type, "state") == 0) {
        fprintf(stderr, "sweep %s\n", json_string_value(json_object_get(d, "state")));
    }
    free(params);
    json_decref(d);
}

static void print_board(const json_t *b)
{
    printf("sweep %lld %s, metric %s (%s)\n", (long long)json_integer_value(json_object_get(b, "id")),
           json_string_value(json_object_get(b, "state")),
           json_string_value(json_object_get(b, "metric")),
           json_string_value(json_object_get(json_object_get(b, "spec"), "direction")));
    printf("%-6s %-10s %-5s %-12s %-7s %s\n", "trial", "state", "rung", "metric", "job", "params");
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(b, "trials"), i, t) {
        json_t *m = json_object_get(t, "metric"), *r = json_object_get(t, "rung");
        char ms[32] = "-", rs[16] = "-";
        if (json_is_number(m))
            snprintf(ms, sizeof ms, "%.6g", json_number_value(m));
        else if (json_is_string(m))
            snprintf(ms, sizeof ms, "%s", json_string_value(m));
        if (json_is_integer(r))
            snprintf(rs, sizeof rs, "%lld", (long long)json_integer_value(r));
        char *p = json_dumps(json_object_get(t, "params"), JSON_COMPACT | JSON_REAL_PRECISION(6));
        printf("%-6lld %-10s %-5s %-12s %-7lld %s\n",
               (long long)json_integer_value(json_object_get(t, "trial")),
               json_string_value(json_object_get(t, "state")), rs, ms,
               (long long)json_integer_value(json_object_get(t, "job_id")), p ? p : "{}");
        free(p);
    }
}

int cli_sweep(int argc, char **argv)
{
    const char *file = NULL, *state_dir = NULL, *roots = "";
    uint64_t workers = 1, threads = 1;
    bool json = false;
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, with_value, false);
        if (r == 0) {
            if (file) {
                fprintf(stderr, "dimd sweep: unexpected argument '%s' (one FILE.json)\n", argv[i]);
                return CLI_EXIT_USAGE;
            }
            file = argv[i++];
            continue;
        }
        if (r < 0) {
            fprintf(stderr, "dimd sweep: flag %s needs a value\n", argv[i - 1]);
            return CLI_EXIT_USAGE;
        }
        if (strcmp(name, "help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(name, "json") == 0 && !val) {
            json = true;
        } else if (strcmp(name, "state_dir") == 0) {
            state_dir = val;
        } else if (strcmp(name, "data_roots") == 0) {
            roots = val;
        } else if (strcmp(name, "workers") == 0) {
            if (cli_parse_u64("sweep", name, val, 1, 64, &workers) != 0)
                return CLI_EXIT_USAGE;
        } else if (strcmp(name, "threads_per_worker") == 0) {
            if (cli_parse_u64("sweep", name, val, 1, 256, &threads) != 0)
                return CLI_EXIT_USAGE;
        } else {
            fprintf(stderr, "dimd sweep: unknown flag --%s (see dimd sweep --help)\n", name);
            return CLI_EXIT_USAGE;
        }
    }
    if (!file) {
        fprintf(stderr, "dimd sweep: which sweep? give FILE.json (see dimd sweep --help)\n");
        return CLI_EXIT_USAGE;
    }
    struct datasets ds;
    struct dim_err err;
    if (datasets_init(&ds, roots, &err) != 0) {
        fprintf(stderr, "dimd sweep: --data_roots: %s\n", err.msg);
        return CLI_EXIT_USAGE;
    }
    json_t *body = read_body(file);
    if (!body)
        return CLI_EXIT_USAGE;
    json_t *errors = json_array();
    struct sweep_spec ss;
    int bad = sweep_spec_parse(body, datasets_check, &ds, &ss, errors);
    if (bad) {
        json_t *e0 = json_array_get(errors, 0);
        fprintf(stderr, "dimd sweep: %s: %s: %s%s\n", file,
                json_string_value(json_object_get(e0, "path")),
                json_string_value(json_object_get(e0, "message")),
                bad > 1 ? " (and more)" : "");
        json_decref(errors);
        json_decref(body);
        sweep_spec_clear(&ss);
        return CLI_EXIT_USAGE;
    }
    json_decref(errors);
    json_t *resolved = sweep_spec_to_json(&ss);
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    char *text = json_dumps(resolved, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(resolved);
    json_decref(body);
    char name[JOBSPEC_NAME_MAX];
    strcpy(name, ss.name);
    sweep_spec_clear(&ss);
    char digest[65] = "", key[80];
    if (canon)
        sha256_hex(canon, strlen(canon), digest);
    free(canon);
    snprintf(key, sizeof key, "dimd-sweep-%s", digest);

    char tmp[4096];
    if (!state_dir) {
        const char *td = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/dimd-sweep-XXXXXX", td && *td ? td : "/tmp");
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "dimd sweep: cannot create a state directory %s: %s\n", tmp,
                    strerror(errno));
            free(text);
            return CLI_EXIT_FAIL;
        }
        state_dir = tmp;
    } else if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "dimd sweep: cannot create --state_dir %s: %s\n", state_dir,
                strerror(errno));
        free(text);
        return CLI_EXIT_FAIL;
    }
    fprintf(stderr, "dimd sweep: state directory %s\n", state_dir);
    char db[4200];
    snprintf(db, sizeof db, "%s/dimd.db", state_dir);
    struct dimd_store *store = NULL;
    if (store_open(&store, db, &err) != 0) {
        fprintf(stderr, "dimd sweep: %s: %s\n", db, err.msg);
        free(text);
        return CLI_EXIT_FAIL;
    }
    int status = CLI_EXIT_FAIL;
    struct runner *runner = NULL;
    struct store_sweep sw;
    memset(&sw, 0, sizeof sw);
    int requeued = 0, failed = 0;
    if (store_recover(store, 3, &requeued, &failed, &err) != STORE_OK) {
        fprintf(stderr, "dimd sweep: recovery: %s\n", err.msg);
        goto out;
    }
    int rc = store_sweep_insert(store, text, name[0] ? name : NULL, key, digest, &sw, &err);
    if (rc == STORE_REPLAY) {
        fprintf(stderr, "dimd sweep: continuing sweep %lld (%s)\n", (long long)sw.id,
                sweep_state_name(sw.state));
    } else if (rc != STORE_OK) {
        fprintf(stderr, "dimd sweep: storing the sweep: %s\n", err.msg);
        goto out;
    }
    int64_t id = sw.id;
    /* a continued sweep: only what happens from now on */
    int64_t last_event = rc == STORE_REPLAY ? sw.last_event_id : 0;
    struct runner_config rcfg = {(int)workers, (int)threads, 500, NULL, {0}}; /* no data-parallel trials */
    if (runner_start(&runner, store, &ds, &rcfg, &err) != 0) {
        fprintf(stderr, "dimd sweep: workers: %s\n", err.msg);
        goto out;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    bool terminal = false;
    while (!stop_signal) {
        if (sweeps_pass(store, &ds, runner, (int)workers, id, &err) != STORE_OK)
            fprintf(stderr, "dimd sweep: %s\n", err.msg);
        struct store_event *ev = NULL;
        size_t n = 0;
        if (store_sweep_events_after(store, id, last_event, 256, &ev, &n, &err) == STORE_OK) {
            for (size_t k = 0; k < n; k++) {
                print_event(&ev[k]);
                last_event = ev[k].id;
                store_event_clear(&ev[k]);
            }
            free(ev);
        }
        store_sweep_clear(&sw);
        if (store_sweep_get(store, id, &sw, &err) != STORE_OK) {
            fprintf(stderr, "dimd sweep: %s\n", err.msg);
            goto out;
        }
        if (sweep_state_terminal(sw.state) && n == 0) {
            terminal = true;
            break;
        }
        if (sw.state == SWEEP_PAUSED) {
            fprintf(stderr, "dimd sweep: sweep %lld is PAUSED (dimd serve can resume it)\n",
                    (long long)id);
            break;
        }
        store_event_wait(store, store_event_seq(store), 250);
    }
    runner_stop(runner);
    runner = NULL;
    if (!terminal) {
        if (stop_signal)
            fprintf(stderr, "dimd sweep: stopped; run the same command with --state_dir %s to "
                            "continue\n",
                    state_dir);
        status = stop_signal ? 130 : CLI_EXIT_FAIL;
        goto out;
    }
    json_t *b = sweeps_json(store, &sw, true, &err);
    if (!b) {
        fprintf(stderr, "dimd sweep: %s\n", err.msg);
        goto out;
    }
    if (json)
        cli_print_json(b, 15);
    else {
        print_board(b);
        json_decref(b);
    }
    status = sw.state == SWEEP_SUCCEEDED ? 0 : CLI_EXIT_FAIL;
out:
    if (runner)
        runner_stop(runner);
    store_sweep_clear(&sw);
    store_close(store);
    free(text);
    return status;
}
