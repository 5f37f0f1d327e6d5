/* hparams.h - the table of model hyperparameters: name, type, bounds, help.
 *
 * One table gives the CLI its flags (--name value), the service its job JSON
 * keys and the stored run its field names, so a user can move between them.
 * Values live in a struct dim_config; defaults are dim_config_default's.
 * Depends on dim/model.
 */
#ifndef DIM_DIM_HPARAMS_H
#define DIM_DIM_HPARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "dim/model.h"

enum dim_hp_type { DIM_HP_INT, DIM_HP_U32, DIM_HP_U64, DIM_HP_FLOAT, DIM_HP_PRESET,
                   DIM_HP_ESTIMATOR, DIM_HP_SCHEDULE };

struct dim_hparam {
    const char *name;
    enum dim_hp_type type;
    size_t offset;   /* into struct dim_config */
    double min, max; /* inclusive bounds for numbers */
    const char *help;
};

extern const struct dim_hparam dim_hparams[];
extern const size_t dim_n_hparams;

/* Whether h's values are names (preset, estimator, lr_schedule): its choices are the
 * names of the numbers min..max, as dim_hparam_format gives them. */
bool dim_hparam_is_text(const struct dim_hparam *h);
/* The entry called name, or NULL. */
const struct dim_hparam *dim_hparam_find(const char *name);
/* Parses text as h's type and bounds into cfg. DIM_EINVAL names the parameter and the value. */
int dim_hparam_parse(struct dim_config *cfg, const struct dim_hparam *h, const char *text,
                     struct dim_err *err);
/* Sets a number (checked against bounds and, for integers, wholeness). */
int dim_hparam_set_number(struct dim_config *cfg, const struct dim_hparam *h, double v,
                          struct dim_err *err);
/* Reads h's value as a number (enums: their index). */
double dim_hparam_get_number(const struct dim_config *cfg, const struct dim_hparam *h);
/* Formats h's value in cfg as text ("basic32x32", "0.0001", "64"). */
void dim_hparam_format(const struct dim_config *cfg, const struct dim_hparam *h, char *buf,
                       size_t n);

#endif
