/* main.c - the dimd binary: dispatches to its commands. Only main exits. */
#include <stdio.h>
#include <string.h>

#include "handlers/handlers.h"
#include "cmd/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "dimd %s - Deep InfoMax training and embeddings\n\n"
               "usage: dimd COMMAND [flags]\n"
               "  serve    run the daemon: training jobs, metrics and checkpoints over HTTP\n"
               "  routes   print the daemon's HTTP routes (method, path, token scope)\n"
               "  train    train an encoder on a dataset, save a checkpoint, report probe accuracy\n"
               "  encode   print embeddings of image files from a checkpoint (JSON lines)\n"
               "  eval     probe accuracies of a checkpoint on a dataset\n"
               "  measure  the paper's representation measures of a checkpoint: probes, SVM,\n"
               "           NDM, MINE, reconstruction (SSIM)\n"
               "  backup   copy a state directory's database consistently, also while serve runs\n"
               "  check    check a state directory's database and every stored checkpoint\n"
               "  sweep    run a hyperparameter sweep (grid, random, ASHA) here, without the daemon\n"
               "  version  print the version\n"
               "  rank     (internal) one rank of a daemon's data-parallel job, under mpirun\n"
               "Run 'dimd COMMAND --help' for a command's flags.\n",
            DIMD_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc, argv);
    if (strcmp(cmd, "routes") == 0)
        return cli_routes(argc, argv);
    if (strcmp(cmd, "train") == 0)
        return cli_train(argc, argv);
    if (strcmp(cmd, "encode") == 0)
        return cli_encode(argc, argv);
    if (strcmp(cmd, "eval") == 0)
        return cli_eval(argc, argv);
    if (strcmp(cmd, "measure") == 0)
        return cli_measure(argc, argv);
    if (strcmp(cmd, "backup") == 0)
        return cli_backup(argc, argv);
    if (strcmp(cmd, "check") == 0)
        return cli_check(argc, argv);
    if (strcmp(cmd, "sweep") == 0)
        return cli_sweep(argc, argv);
    if (strcmp(cmd, "rank") == 0)
        return cli_rank(argc, argv);
    if (strcmp(cmd, "version") == 0) {
        printf("dimd %s\n", DIMD_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "dimd: unknown command '%s' (see dimd --help)\n", cmd);
    return CLI_EXIT_USAGE;
}
