/* version_model.c - the model of a stored model version
 * (service/version_model.h). Depends on store, core; no HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dim/checkpoint.h"
#include "service/version_model.h"

int version_model_load(struct dimd_store *store, const char *name, int version,
                       struct dim_model **m, char dataset[DATASET_NAME_MAX], struct dim_err *err)
{
    *m = NULL;
    dataset[0] = '\0';
    struct store_model_version v;
    memset(&v, 0, sizeof v);
    void *data = NULL;
    int rc = store_model_get(store, name, version, &v, &data, NULL, NULL, err);
    if (rc != STORE_OK) {
        store_model_version_clear(&v);
        return rc == STORE_NOT_FOUND ? VERSION_MODEL_NOT_FOUND : VERSION_MODEL_ERROR;
    }
    struct dim_memsrc src = {data, (size_t)v.bytes, 0};
    const struct dim_reader rd = {dim_memsrc_read, &src};
    struct dim_train_progress prog;
    rc = dim_checkpoint_read(m, &prog, false, &rd, err) == 0 ? VERSION_MODEL_OK
                                                              : VERSION_MODEL_INVALID;
    free(data);
    if (rc != VERSION_MODEL_OK) {
        dim_model_free(*m);
        *m = NULL;
    }
    json_t *info = json_loads(v.info_json ? v.info_json : "{}", 0, NULL);
    const char *ds = json_string_value(json_object_get(info, "dataset"));
    snprintf(dataset, DATASET_NAME_MAX, "%s", ds ? ds : "");
    json_decref(info);
    store_model_version_clear(&v);
    return rc;
}
