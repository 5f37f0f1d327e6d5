/* cli_train.c - `dimd train`: train DIM on a dataset, save a checkpoint, probe
 * the trained encoder against a freshly initialised one of the same architecture. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dim/checkpoint.h"
#include "dim/hparams.h"
#include "dim/trainer.h"
#include "cmd/cli.h"
#include "util/clock.h"
#include "api/jobspec.h"

struct train_opts {
    struct dim_config cfg;
    bool channels_set;
    const char *hparam_flag; /* the first hyperparameter flag given, if any */
    const char *dataset, *out, *resume;
    double epochs;
    uint64_t steps, log_every, threads, random_crop, probe_epochs;
    bool random_flip, json, probe;
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
    "threads", "random_crop", "probe_epochs", "probe",  NULL};

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
            "  --resume PATH        continue from a checkpoint (its hyperparameters apply)\n"
            "  --threads N          BLAS threads (default: online cores)\n"
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
        fprintf(f, "  --%-12s %-12s %s\n", dim_hparams[i].name, v, dim_hparams[i].help);
    }
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
        snprintf(terms + k, sizeof terms - (size_t)k, " prior %.4f disc %.4f", l->prior_enc,
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
        printf("step %llu/%llu epoch %llu%s total %.4f | %.1f img/s ETA %s\n",
               (unsigned long long)step, (unsigned long long)total, (unsigned long long)epoch,
               terms, l->total, ips, e);
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

int cli_train(int argc, char **argv)
{
    struct train_opts o;
    int rc = parse_train(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct dim_err err;
    if (o.resume && o.hparam_flag) {
        fprintf(stderr,
                "dimd train: --%s cannot be combined with --resume: a resumed run keeps "
                "its checkpoint's hyperparameters\n",
                o.hparam_flag);
        return CLI_EXIT_USAGE;
    }
    if (!o.resume) { /* refuse a bad configuration before spending time on the data */
        struct dim_config probe_cfg = o.cfg;
        if (!o.channels_set)
            probe_cfg.in_c = 1;
        if (dim_config_validate(&probe_cfg, &err) != 0) {
            fprintf(stderr, "dimd train: %s\n", err.msg);
            return CLI_EXIT_USAGE;
        }
    }
    struct dim_dataset train = {0}, test = {0};
    if (cli_load_dataset("train", o.dataset, &train, &test) != 0)
        return CLI_EXIT_USAGE;
    struct threadpool *pool = cli_threads_use((int)o.threads);
    struct dim_model *m = NULL;
    struct dim_trainer *tr = NULL;
    struct dim_train_progress prog;
    int status = CLI_EXIT_FAIL;
    if (o.resume) {
        if (dim_checkpoint_load(o.resume, &m, &prog, true, &err) != 0) {
            fprintf(stderr, "dimd train: --resume %s\n", err.msg);
            status = CLI_EXIT_USAGE;
            goto out;
        }
    } else {
        if (!o.channels_set)
            o.cfg.in_c = train.c;
        if (dim_model_create(&m, &o.cfg, true, &err) != 0) {
            fprintf(stderr, "dimd train: %s\n", err.msg);
            status = CLI_EXIT_USAGE;
            goto out;
        }
    }
    struct dim_preprocess pp = dim_model_preprocess(m);
    pp.random_crop = (int)o.random_crop;
    pp.random_flip = o.random_flip;
    if (dim_trainer_create(&tr, m, &train, &pp, &err) != 0 ||
        (o.resume && dim_trainer_restore(tr, &prog, &err) != 0)) {
        fprintf(stderr, "dimd train: %s\n", err.msg);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    const uint64_t spe = dim_trainer_steps_per_epoch(tr);
    const uint64_t total = o.steps ? o.steps : (uint64_t)ceil(o.epochs * (double)spe);
    dim_trainer_progress(tr, &prog);
    const uint64_t first = prog.step;
    if (first >= total) {
        fprintf(stderr,
                "dimd train: the checkpoint is at step %llu; --steps/--epochs ask for %llu "
                "steps in all, so nothing is left to run\n",
                (unsigned long long)first, (unsigned long long)total);
        status = CLI_EXIT_USAGE;
        goto out;
    }
    const bool tty = isatty(STDOUT_FILENO) && !o.json;
    if (!o.json || !tty)
        printf("dimd train: %s on %s (%zu images, %zux%dx%d -> %dx%dx%d), %s, alpha %g beta %g "
               "gamma %g, batch %u, %llu steps (%llu per epoch)\n",
               dim_preset_name(m->cfg.preset), o.dataset, train.n, (size_t)train.c, train.h,
               train.w, pp.c, pp.h, pp.w, dim_estimator_name(m->cfg.estimator),
               (double)m->cfg.alpha, (double)m->cfg.beta, (double)m->cfg.gamma, m->cfg.batch,
               (unsigned long long)total, (unsigned long long)spe);
    signal(SIGINT, on_sigint);
    struct window win = {0}, last = {0};
    struct dim_losses l, mean;
    double t0 = clock_mono_s();
    uint64_t done = 0;
    for (uint64_t s = first; s < total && !interrupted; s++) {
        if (dim_trainer_step(tr, &l, &err) != 0) {
            fprintf(stderr, "%sdimd train: %s\n", tty ? "\n" : "", err.msg);
            goto out;
        }
        done++;
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
    }
    const double train_seconds = clock_mono_s() - t0;
    const double ips = train_seconds > 0 ? (double)(done * m->cfg.batch) / train_seconds : 0;
    if (tty)
        printf("\n");
    if (win.n)
        last = win;
    window_mean(&last, &mean);
    dim_trainer_progress(tr, &prog);
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
        if (cli_probe_compare(m, true, &train, &test, &po, &pt) != 0)
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
    dim_trainer_free(tr);
    dim_model_free(m);
    dim_dataset_free(&train);
    dim_dataset_free(&test);
    cli_threads_release(pool);
    return status;
}
