/* cli_train.c - `dimd train`: train DIM on a dataset, save a checkpoint, probe
 * the trained encoder against a freshly initialised one of the same architecture.
 * Under mpirun (more than one rank) the run is data parallel (dist/dist.h): every
 * rank parses the same flags and loads the same dataset, rank 0 reads a --resume
 * checkpoint and broadcasts it, each rank trains on its B/N images of each global
 * batch, and rank 0 alone prints, writes --out and --losses, and probes (after MPI
 * is finalised). Other ranks print nothing; a setup failure on any rank stops all. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "dim/checkpoint.h"
#include "dim/hparams.h"
#include "dim/trainer.h"
#include "cmd/cli.h"
#include "dist/dist.h"
#include "util/clock.h"
#include "api/jobspec.h"

struct train_opts {
    struct dim_config cfg;
    bool channels_set;
    const char *hparam_flag; /* the first hyperparameter flag given, if any */
    const char *dataset, *out, *resume, *losses;
    double epochs;
    uint64_t steps, log_every, threads, random_crop, probe_epochs;
    bool random_flip, json, probe, threads_set;
    enum dim_probe_kind probe_kind;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Flags followed by a value; an unknown flag takes none, so it is reported as unknown. */
static const char *const train_with_value[] = {
    "dataset", "out",         "resume",       "epochs", "steps", "log_every",
    "threads", "random_crop", "probe_epochs", "probe",  "losses", NULL};

static void train_usage(FILE *f)
{
    struct dim_config d;
    dim_config_default(&d);
    fprintf(f,
            "usage: dimd train [flags]\n\nRun:\n"
            "  --dataset NAME|DIR   fashion-mnist (default), an IDX or CIFAR-10 directory, or an "
            "image folder\n"
            "  --epochs X           passes over the training set (default 1)\n"
            "  --steps N            steps to run instead of --epochs\n"
            "  --out PATH           write the checkpoint here at the end\n"
            "  --resume PATH        continue from a checkpoint (its hyperparameters apply, the\n"
            "                       lr schedule and its resolved lr_horizon included)\n"
            "  --threads N          compute threads (default: online cores; under mpirun,\n"
            "                       online cores / ranks on this machine)\n"
            "  --losses PATH        write every step's losses to PATH (CSV, 17 digits)\n"
            "  --log_every N        steps between progress lines (default 50)\n"
            "  --random_crop N      augmentation: pad N pixels and crop back at random\n"
            "  --random_flip        augmentation: random horizontal flips\n"
            "  --probe linear|mlp|none  probe after training (default linear)\n"
            "  --probe_epochs N     MLP probe training epochs (default 20; the linear probe\n"
            "                       is solved to convergence)\n"
            "  --json               end with one JSON object holding every final figure\n"
            "\nHyperparameters (same names as the service's job JSON):\n");
    for (size_t i = 0; i < dim_n_hparams; i++) {
        char v[64];
        dim_hparam_format(&d, &dim_hparams[i], v, sizeof v);
        fprintf(f, "  --%-15s %-10s %s\n", dim_hparams[i].name, v, dim_hparams[i].help);
    }
    fprintf(f, "\nThe lr of step t: a linear warm-up over lr_warmup steps, then constant, or a\n"
               "cosine decay to lr * lr_final, or lr_step_factor at 50 %% and 75 %%, of the\n"
               "steps up to lr_horizon (0: --steps, or --epochs' steps, of this run).\n");
}

/* The steps the run asks for: --steps, else ceil(epochs * steps per epoch). */
static uint64_t run_steps(const struct train_opts *o, uint64_t steps_per_epoch)
{
    return o->steps ? o->steps : (uint64_t)ceil(o->epochs * (double)steps_per_epoch);
}

/* Refuses a warm-up longer than a run whose horizon is its own length (saying so
 * when say is true: rank 0 speaks for the run). */
static int check_warmup(const struct dim_config *c, uint64_t total, bool say)
{
    if (c->lr_horizon != 0 || c->lr_warmup <= total)
        return 0;
    if (say)
            fprintf(stderr,
                "dimd train: --lr_warmup %llu is longer than the run's %llu steps (lr_horizon 0: "
                "the schedule spans the run)\n",
                (unsigned long long)c->lr_warmup, (unsigned long long)total);
    return CLI_EXIT_USAGE;
}

/* Returns 0, or CLI_EXIT_USAGE after printing the problem (or 1 for --help, printed). */
static int parse_train(int argc, char **argv, struct train_opts *o)
{
    memset(o, 0, sizeof *o);
    dim_config_default(&o->cfg);
    o->dataset = "fashion-mnist";
    o->epochs = 1.0;
    o->log_every = 50;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (uint64_t)cores : 1;
    o->probe = true;
    o->probe_epochs = 20;
    int i = 2;
    while (i < argc) {
        const char *name, *val;
        int r = cli_next_flag(argc, argv, &i, &name, &val, train_with_value, true);
        if (r == 0) {
            fprintf(stderr, "dimd train: unexpected argument '%s'\n", argv[i]);
            return CLI_EXIT_USAGE;
        }
        if (r < 0) {
            fprintf(stderr, "dimd train: flag %s needs a value\n", argv[i - 1]);
            return CLI_EXIT_USAGE;
        }
        const struct dim_hparam *hp = dim_hparam_find(name);
        struct dim_err err;
        int bad = 0;
        if (strcmp(name, "help") == 0) {
            train_usage(stdout);
            return 1;
        } else if (hp) {
            if (dim_hparam_parse(&o->cfg, hp, val, &err) != 0) {
                fprintf(stderr, "dimd train: --%s\n", err.msg);
                return CLI_EXIT_USAGE;
            }
            if (strcmp(name, "channels") == 0)
                o->channels_set = true;
            if (!o->hparam_flag)
                o->hparam_flag = hp->name;
        } else if (strcmp(name, "dataset") == 0) {
            o->dataset = val;
        } else if (strcmp(name, "out") == 0) {
            o->out = val;
        } else if (strcmp(name, "resume") == 0) {
            o->resume = val;
        } else if (strcmp(name, "epochs") == 0) {
            bad = cli_parse_double("train", name, val, 1e-6, 1e6, &o->epochs);
        } else if (strcmp(name, "steps") == 0) {
            bad = cli_parse_u64("train", name, val, 1, UINT64_C(1) << 40, &o->steps);
        } else if (strcmp(name, "log_every") == 0) {
            bad = cli_parse_u64("train", name, val, 1, UINT64_C(1) << 40, &o->log_every);
        } else if (strcmp(name, "threads") == 0) {
            bad = cli_parse_u64("train", name, val, 1, 256, &o->threads);
            o->threads_set = true;
        } else if (strcmp(name, "losses") == 0) {
            o->losses = val;
        } else if (strcmp(name, "random_crop") == 0) {
            bad = cli_parse_u64("train", name, val, 0, 16, &o->random_crop);
        } else if (strcmp(name, "probe_epochs") == 0) {
            bad = cli_parse_u64("train", name, val, 1, 10000, &o->probe_epochs);
        } else if (strcmp(name, "random_flip") == 0) {
            o->random_flip = true;
        } else if (strcmp(name, "json") == 0) {
            o->json = true;
        } else if (strcmp(name, "probe") == 0) {
            if (strcmp(val, "none") == 0)
                o->probe = false;
            else if (strcmp(val, "linear") == 0)
                o->probe_kind = DIM_PROBE_LINEAR;
            else if (strcmp(val, "mlp") == 0)
                o->probe_kind = DIM_PROBE_MLP;
            else {
                fprintf(stderr, "dimd train: --probe '%s' is not one of linear, mlp, none\n", val);
                return CLI_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "dimd train: unknown flag --%s (see dimd train --help)\n", name);
            return CLI_EXIT_USAGE;
        }
        if (bad)
            return CLI_EXIT_USAGE;
    }
    return 0;
}

struct window {
    struct dim_losses sum;
    uint64_t n;
};

static void window_add(struct window *w, const struct dim_losses *l)
{
    w->sum.local += l->local;
    w->sum.global += l->global;
    w->sum.prior_enc += l->prior_enc;
    w->sum.prior_disc += l->prior_disc;
    w->sum.total += l->total;
    w->n++;
}

static void window_mean(const struct window *w, struct dim_losses *out)
{
    double n = w->n ? (double)w->n : 1.0;
    out->local = w->sum.local / n;
    out->global = w->sum.global / n;
    out->prior_enc = w->sum.prior_enc / n;
    out->prior_disc = w->sum.prior_disc / n;
    out->total = w->sum.total / n;
}

static void format_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "?");
    else if (s >= 3600)
        snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else
        snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void print_progress(const struct dim_model *m, uint64_t step, uint64_t total, uint64_t epoch,
                           const struct dim_losses *l, double ips, double eta, bool tty)
{
    char terms[256], e[32];
    int k = 0;
    if (m->has_local)
        k += snprintf(terms + k, sizeof terms - (size_t)k, " local %.4f", l->local);
    if (m->has_global)
        k += snprintf(terms + k, sizeof terms - (size_t)k, " global %.4f", l->global);
    if (m->has_prior)
        k += snprintf(terms + k, sizeof terms - (size_t)k, " prior %.4f disc %.4f", l->prior_enc,
                      l->prior_disc);
    format_eta(e, sizeof e, eta);
    if (tty) {
        char bar[31];
        int fill = total ? (int)(30.0 * (double)step / (double)total) : 0;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        printf("\r[%s] %llu/%llu ep %llu%s | %.0f img/s ETA %s  ", bar, (unsigned long long)step,
               (unsigned long long)total, (unsigned long long)epoch, terms, ips, e);
    } else {
        char lr[32] = ""; /* the lr of the last step, when the schedule moves it */
        if (dim_lr_varies(&m->cfg))
            snprintf(lr, sizeof lr, " lr %.4g", (double)m->opt_main.lr);
        printf("step %llu/%llu epoch %llu%s total %.4f%s | %.1f img/s ETA %s\n",
               (unsigned long long)step, (unsigned long long)total, (unsigned long long)epoch,
               terms, l->total, lr, ips, e);
    }
    fflush(stdout);
}

static json_t *losses_json(const struct dim_model *m, const struct dim_losses *l)
{
    json_t *o = json_object();
    if (m->has_local)
        json_object_set_new(o, "local", json_real(l->local));
    if (m->has_global)
        json_object_set_new(o, "global", json_real(l->global));
    if (m->has_prior) {
        json_object_set_new(o, "prior_enc", json_real(l->prior_enc));
        json_object_set_new(o, "prior_disc", json_real(l->prior_disc));
    }
    json_object_set_new(o, "total", json_real(l->total));
    return o;
}

/* Rank 0 reads the checkpoint at path and every rank gets a model from its bytes.
 * Returns 0, or CLI_EXIT_USAGE with the message in err (on every rank). */
static int resume_ranks(struct dist *dd, const char *path, struct dim_model **m,
                        struct dim_train_progress *prog, struct dim_err *err)
{
    struct dim_membuf buf = {0};
    uint64_t n = 0;
    if (dist_rank(dd) == 0) {
        FILE *f = fopen(path, "rb");
        unsigned char chunk[65536];
        size_t got;
        while (f && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
            if (dim_membuf_write(&buf, chunk, got) != 0)
                break;
        if (!f || ferror(f) || !feof(f))
            buf.n = 0;
        n = buf.n;
        if (f)
            fclose(f);
    }
    dist_bcast(dd, &n, sizeof n);
    if (n == 0) {
        free(buf.p);
        dim_fail(err, DIM_EIO, "cannot read %s on rank 0", path);
        return CLI_EXIT_USAGE;
    }
    if (dist_rank(dd) != 0)
        buf.p = malloc(n);
    if (dist_any(dd, buf.p == NULL)) {
        free(buf.p);
        dim_fail(err, DIM_ENOMEM, "out of memory for a %llu-byte checkpoint on a rank",
                 (unsigned long long)n);
        return CLI_EXIT_FAIL;
    }
    dist_bcast(dd, buf.p, n);
    struct dim_memsrc src = {buf.p, n, 0};
    struct dim_reader rd = {dim_memsrc_read, &src};
    int rc = dim_checkpoint_read(m, prog, true, &rd, err);
    free(buf.p);
    return rc ? CLI_EXIT_USAGE : 0;
}

/* Every step's losses, one CSV row each. */
static void losses_row(FILE *f, uint64_t step, const struct dim_losses *l)
{
    fprintf(f, "%llu,%.17g,%.17g,%.17g,%.17g,%.17g\n", (unsigned long long)step, l->local,
            l->global, l->prior_enc, l->prior_disc, l->total);
}

/* The communication of a data-parallel run: per kind, calls, payload bytes and seconds
 * per step, and the total seconds per step. */
static json_t *comm_json(const struct dist_stats *st, uint64_t steps)
{
    json_t *o = json_object();
    double per = steps ? 1.0 / (double)steps : 0.0, secs = 0.0;
    for (int k = 0; k < DIST_KINDS; k++) {
        json_t *e = json_object();
        json_object_set_new(e, "calls_per_step", json_real((double)st->calls[k] * per));
        json_object_set_new(e, "bytes_per_step", json_real((double)st->bytes[k] * per));
        json_object_set_new(e, "seconds_per_step", json_real(st->seconds[k] * per));
        json_object_set_new(o, dist_kind_name((enum dist_kind)k), e);
        secs += st->seconds[k];
    }
    json_object_set_new(o, "seconds_per_step", json_real(secs * per));
    return o;
}

int cli_train(int argc, char **argv)
{
    /* under mpirun every rank runs this; rank 0 speaks for the run */
    struct dist *dd = NULL;
    const int launched = dist_launched_size();
    if (launched > 1) {
        char msg[200];
        if (dist_start(&dd, msg, sizeof msg) != 0) {
            fprintf(stderr, "dimd train: %s\n", msg);
            return CLI_EXIT_FAIL;
        }
    }
    const int ranks = dd ? dist_size(dd) : 1;
    const bool lead = !dd || dist_rank(dd) == 0;
    if (!lead && !freopen("/dev/null", "w", stdout))
        return CLI_EXIT_FAIL;
    int saved_err = -1;
    if (!lead) { /* usage errors are every rank's: rank 0 tells them */
        fflush(stderr);
        saved_err = dup(STDERR_FILENO);
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) {
            dup2(nul, STDERR_FILENO);
            close(nul);
        }
    }
    struct train_opts o;
    int rc = parse_train(argc, argv, &o);
    struct dim_err err;
    if (rc == 0 && o.resume && o.hparam_flag) {
        fprintf(stderr,
                "dimd train: --%s cannot be combined with --resume: a resumed run keeps "
                "its checkpoint's hyperparameters\n",
                o.hparam_flag);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == 0 && !o.resume) { /* refuse a bad configuration before spending time on the data */
        struct dim_config probe_cfg = o.cfg;
        if (!o.channels_set)
            probe_cfg.in_c = 1;
        if (dim_config_validate(&probe_cfg, &err) != 0) {
            fprintf(stderr, "dimd train: %s\n", err.msg);
            rc = CLI_EXIT_USAGE;
        } else if (probe_cfg.batch % (uint32_t)ranks != 0) {
            fprintf(stderr, "dimd train: --batch %u does not split evenly over %d ranks\n",
                    probe_cfg.batch, ranks);
            rc = CLI_EXIT_USAGE;
        }
        if (rc == 0 && o.steps && check_warmup(&o.cfg, o.steps, true) != 0)
            rc = CLI_EXIT_USAGE;
    }
    if (saved_err >= 0) {
        fflush(stderr);
        dup2(saved_err, STDERR_FILENO);
        close(saved_err);
    }
    if (rc) {
        dist_finish(dd);
        return rc == 1 ? 0 : rc;
    }
    if (dd && !o.threads_set) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        long per = cores / dist_launched_local_size();
        o.threads = per > 1 ? (uint64_t)per : 1;
    }
    struct dim_dataset train = {0}, test = {0};
    struct threadpool *pool = NULL;
    struct dim_model *m = NULL;
    struct dim_trainer *tr = NULL;
    struct dim_train_progress prog;
    FILE *lf = NULL;
    int status = CLI_EXIT_FAIL;
    /* setup: every rank's outcome is agreed on before the first step */
    int setup = cli_load_dataset("train", o.dataset, &train, &test) != 0 ? CLI_EXIT_USAGE : 0;
    if (setup == 0)
        pool = cli_threads_use((int)o.threads);
    if (setup == 0 && o.resume) {
        if (dd)
            setup = resume_ranks(dd, o.resume, &m, &prog, &err);
        else if (dim_checkpoint_load(o.resume, &m, &prog, true, &err) != 0)
            setup = CLI_EXIT_USAGE;
        if (setup && lead)
            fprintf(stderr, "dimd train: --resume %s\n", err.msg);
    } else if (setup == 0) {
        if (!o.channels_set)
            o.cfg.in_c = train.c;
        /* lr_horizon 0 is this run's length; the checkpoint keeps the number */
        const uint64_t run = run_steps(&o, o.cfg.batch ? train.n / o.cfg.batch : 0);
        if (check_warmup(&o.cfg, run, lead) != 0) {
            setup = CLI_EXIT_USAGE;
        } else {
            dim_config_resolve_lr(&o.cfg, run);
            if (dim_model_create(&m, &o.cfg, true, &err) != 0) {
                if (lead)
                    fprintf(stderr, "dimd train: %s\n", err.msg);
                setup = CLI_EXIT_USAGE;
            }
        }
    }
    struct dim_preprocess pp = {0};
    if (setup == 0) {
        pp = dim_model_preprocess(m);
        pp.random_crop = (int)o.random_crop;
        pp.random_flip = o.random_flip;
        if (dim_trainer_create_dist(&tr, m, &train, &pp, dd ? dist_hooks(dd) : NULL, &err) != 0 ||
            (o.resume && dim_trainer_restore(tr, &prog, &err) != 0)) {
            if (lead)
                fprintf(stderr, "dimd train: %s\n", err.msg);
            setup = CLI_EXIT_USAGE;
        }
    }
    uint64_t spe = 0, total = 0, first = 0;
    if (setup == 0) {
        spe = dim_trainer_steps_per_epoch(tr);
        total = run_steps(&o, spe);
        dim_trainer_progress(tr, &prog);
        first = prog.step;
        if (first >= total) {
            if (lead)
                fprintf(stderr,
                        "dimd train: the checkpoint is at step %llu; --steps/--epochs ask for "
                        "%llu steps in all, so nothing is left to run\n",
                        (unsigned long long)first, (unsigned long long)total);
            setup = CLI_EXIT_USAGE;
        }
    }
    if (setup == 0 && lead && o.losses && !(lf = fopen(o.losses, "w"))) {
        fprintf(stderr, "dimd train: --losses %s: cannot write it\n", o.losses);
        setup = CLI_EXIT_USAGE;
    }
    if (dd && dist_any(dd, setup != 0) && setup == 0)
        setup = CLI_EXIT_FAIL; /* another rank failed and said why */
    if (setup) {
        status = setup;
        goto out;
    }
    const bool tty = isatty(STDOUT_FILENO) && !o.json;
    if (!o.json || !tty) {
        char sched[160] = "";
        const struct dim_config *c = &m->cfg;
        if (dim_lr_varies(c))
            snprintf(sched, sizeof sched, " (%s, warm-up %llu, horizon %llu%s)",
                     dim_lr_schedule_name(c->lr_schedule), (unsigned long long)c->lr_warmup,
                     (unsigned long long)c->lr_horizon,
                     c->lr_schedule == DIM_LR_COSINE ? ", to lr * lr_final"
                     : c->lr_schedule == DIM_LR_STEP ? ", x lr_step_factor at 50 % and 75 %"
                                                     : "");
        printf("dimd train: %s on %s (%zu images, %zux%dx%d -> %dx%dx%d), %s, alpha %g beta %g "
               "gamma %g, batch %u, lr %g%s, %llu steps (%llu per epoch)",
               dim_preset_name(c->preset), o.dataset, train.n, (size_t)train.c, train.h,
               train.w, pp.c, pp.h, pp.w, dim_estimator_name(c->estimator), (double)c->alpha,
               (double)c->beta, (double)c->gamma, c->batch, (double)c->lr, sched,
               (unsigned long long)total, (unsigned long long)spe);
        if (dd)
            printf(", %d ranks x %u images x %llu threads", ranks, c->batch / (uint32_t)ranks,
                   (unsigned long long)o.threads);
        printf("\n");
    }
    signal(SIGINT, on_sigint);
    struct window win = {0}, last = {0};
    struct dim_losses l, mean;
    double t0 = clock_mono_s();
    uint64_t done = 0;
    bool stop = false;
    for (uint64_t s = first; s < total && !stop; s++) {
        if (dim_trainer_step(tr, &l, &err) != 0) { /* the same on every rank */
            if (lead)
                fprintf(stderr, "%sdimd train: %s\n", tty ? "\n" : "", err.msg);
            goto out;
        }
        done++;
        if (lf)
            losses_row(lf, s + 1, &l);
        window_add(&win, &l);
        if ((s + 1) % o.log_every == 0 || s + 1 == total) {
            double dt = clock_mono_s() - t0, ips = (double)(done * m->cfg.batch) / dt;
            window_mean(&win, &mean);
            dim_trainer_progress(tr, &prog);
            print_progress(m, s + 1, total, prog.epoch, &mean, ips,
                           (double)(total - s - 1) * m->cfg.batch / ips, tty);
            last = win;
            memset(&win, 0, sizeof win);
        }
        /* every rank stops at the same step (mpirun passes SIGINT/SIGTERM to all) */
        stop = dd ? dist_any(dd, interrupted) : interrupted;
    }
    const double train_seconds = clock_mono_s() - t0;
    const double ips = train_seconds > 0 ? (double)(done * m->cfg.batch) / train_seconds : 0;
    struct dist_stats st = {0};
    if (dd) {
        dist_stats(dd, &st);
        dist_finish(dd); /* rank 0 goes on alone */
        dd = NULL;
        if (!lead) {
            status = 0;
            goto out;
        }
    }
    if (tty)
        printf("\n");
    if (win.n)
        last = win;
    window_mean(&last, &mean);
    dim_trainer_progress(tr, &prog);
    if (lf) {
        if (fclose(lf) != 0) {
            lf = NULL;
            fprintf(stderr, "dimd train: --losses %s: write failed\n", o.losses);
            goto out;
        }
        lf = NULL;
    }
    if (ranks > 1 && (!o.json || !tty)) {
        double per = done ? 1.0 / (double)done : 0.0, secs = 0.0;
        for (int k = 0; k < DIST_KINDS; k++)
            secs += st.seconds[k];
        printf("ranks: %d, communication %.1f ms/step (%.1f%% of %.1f ms); payload per step: "
               "gradients %.2f MB, gathers %.2f MB, batch-norm and loss sums %.1f KB\n",
               ranks, 1e3 * secs * per, 100.0 * secs / (train_seconds > 0 ? train_seconds : 1),
               1e3 * train_seconds * per, (double)st.bytes[DIST_SUM_F32] * per / 1e6,
               (double)st.bytes[DIST_GATHER] * per / 1e6,
               (double)st.bytes[DIST_SUM_F64] * per / 1e3);
    }
    if (o.out) {
        if (dim_checkpoint_save(o.out, m, &prog, &err) != 0) {
            fprintf(stderr, "dimd train: %s\n", err.msg);
            goto out;
        }
        printf("checkpoint: %s (step %llu)\n", o.out, (unsigned long long)prog.step);
    }
    if (interrupted) {
        printf("interrupted at step %llu\n", (unsigned long long)prog.step);
        status = 130;
        goto out;
    }
    struct dim_probe_opts po;
    dim_probe_opts_default(&po);
    po.kind = o.probe_kind;
    po.epochs = (int)o.probe_epochs;
    struct cli_probe_table pt;
    if (o.probe) {
        if (cli_probe_compare(m, true, true, &train, &test, &po, &pt) != 0)
            goto out;
        cli_probe_print(&pt, &po);
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "command", json_string("train"));
        json_object_set_new(j, "dataset", json_string(o.dataset));
        json_object_set_new(j, "hparams", jobspec_hparams_json(&m->cfg));
        json_object_set_new(j, "steps", json_integer((json_int_t)prog.step));
        json_object_set_new(j, "steps_this_run", json_integer((json_int_t)done));
        json_object_set_new(j, "epochs", json_real((double)prog.step / (double)spe));
        json_object_set_new(j, "train_seconds", json_real(train_seconds));
        json_object_set_new(j, "images_per_second", json_real(ips));
        json_object_set_new(j, "ranks", json_integer(ranks));
        json_object_set_new(j, "threads", json_integer((json_int_t)o.threads));
        if (ranks > 1)
            json_object_set_new(j, "communication", comm_json(&st, done));
        json_object_set_new(j, "final_losses", losses_json(m, &mean));
        json_object_set_new(j, "final_losses_window", json_integer((json_int_t)last.n));
        if (o.out)
            json_object_set_new(j, "checkpoint", json_string(o.out));
        if (o.probe)
            json_object_set_new(j, "probe", cli_probe_json(&pt, &po));
        cli_print_json(j, 6);
    }
    status = 0;
out:
    if (lf)
        fclose(lf);
    dim_trainer_free(tr);
    dim_model_free(m);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
    cli_threads_release(pool);
    dist_finish(dd);
    return status;
}
