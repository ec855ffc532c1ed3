/* ic_validate.h - what makes an ImageCache spec acceptable to the admission webhook. The controller does not
 * re-judge stored objects by these rules (an object created under upstream's webhook, or over a limit, must
 * still be cached and purged): it caches the valid images and reports the others (ic_plan.h).
 *
 * Upstream's four rules keep their exact messages (clients match on them):
 *   No images specified within image list
 *   Duplicate image names within image list: <image>
 *   Mismatch in no. of image lists                   (UPDATE)
 *   Mismatch in node selector                        (UPDATE)
 * Our additional rules name the field and the value, e.g.
 *   spec.cacheSpec[0].images[2]: invalid image reference "nginx;reboot": invalid character ';' in repository name */
#ifndef IC_VALIDATE_H
#define IC_VALIDATE_H

#include "ic_types.h"
#include "util/strbuf.h"

/* Validates spec (and, for an UPDATE, against old; old = NULL for CREATE). Returns 0 when acceptable, or
 * -1 with the denial message in msg. Upstream's rules are checked first, in upstream's order, so an
 * object upstream denied is denied with upstream's message. */
int ic_validate(const struct ic_spec *spec, const struct ic_spec *old, struct strbuf *msg);

#endif
