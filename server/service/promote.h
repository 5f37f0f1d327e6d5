/* promote.h - promotion: a job's checkpoint becomes the next immutable version
 * of a named model.
 *
 * DESIGN
 * - What can be promoted: any stored checkpoint of an existing job, whatever
 *   the job's state (a running job's latest checkpoint is fine): the latest,
 *   a given step, or the best by the job spec's best_metric (larger is better
 *   for "probe_*" metrics, smaller for losses; the later step wins a tie).
 * - The version's checkpoint is the source's model without its optimiser state
 *   (an inference-only checkpoint, a third of the size), re-serialised.
 * - Its neighbours index is the unit Y embeddings of up to index_max_images
 *   training images of the job's dataset, evenly spaced
 *   (service/embeddings.h); index_max_images 0 makes a version without one.
 * - The work runs on the calling thread (a compute pool of the machine's other
 *   cores while it embeds), then one store transaction (store_model_create).
 *   Before it, the storage guard must admit the version's bytes (its
 *   checkpoint and index, as store_checkpoint_need counts a blob), so a
 *   promotion never fills the disk: PROMOTE_NO_ROOM.
 * Depends on store, service/datasets, service/embeddings, api (jobspec, real), core.
 */
#ifndef DIMD_SERVICE_PROMOTE_H
#define DIMD_SERVICE_PROMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "service/datasets.h"
#include "service/storage.h"
#include "store/jobs.h"
#include "store/models.h"

enum promote_rc {
    PROMOTE_OK = 0,
    PROMOTE_NO_JOB = 1,        /* no job job_id (err: "no job 7") */
    PROMOTE_NO_CHECKPOINT = 2, /* the job has no such checkpoint (err names job and step) */
    PROMOTE_JOB_DELETED = 3,   /* the job was deleted while the version was being made */
    PROMOTE_NO_DATASET = 4,    /* the index's dataset cannot be loaded (err: why) */
    PROMOTE_FULL = 5,          /* storing the version failed for lack of space (STORE_FULL) */
    PROMOTE_NO_ROOM = 6,       /* the storage guard refused the version's bytes (err: why) */
    PROMOTE_ERROR = -1         /* store, checkpoint or memory failure (err: what failed) */
};

#define PROMOTE_LATEST (-1) /* promote_request.step: the newest checkpoint */
#define PROMOTE_BEST (-2)   /* promote_request.step: the best by best_metric */

struct promote_request {
    const char *name; /* a valid model name (api/model_name.h), not checked here */
    int64_t job_id;
    int64_t step;     /* a step >= 0, PROMOTE_LATEST or PROMOTE_BEST */
    bool pinned;
    struct storage *storage; /* asked before the version is stored (service/storage.h); NULL: not */
};

/* Promotes the checkpoint rq names to the next version of model rq->name,
 * with a neighbours index of up to index_max_images training images of the
 * job's dataset (resolved through ds). On PROMOTE_OK *out gets the new
 * version's row (clear it with store_model_version_clear); otherwise *out is
 * zeroed and err says why (see enum promote_rc).
 * Thread-safety: as the store; any number of promotions may run at once. */
int promote_checkpoint(struct dimd_store *store, const struct datasets *ds,
                       const struct promote_request *rq, size_t index_max_images,
                       struct store_model_version *out, struct dim_err *err);

/* The step of job's best checkpoint by its spec's best_metric, or -1 when the
 * spec names none or no checkpoint has that metric. */
int64_t promote_best_step(struct dimd_store *store, const struct store_job *job);

#endif
