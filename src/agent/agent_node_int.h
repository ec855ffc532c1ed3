/* agent_node_int.h - helpers shared by agent_node.c (spec, observation, plan, results) and
 * agent_spec.c (the spec) and agent_status.c (the delete guard, the status object). Not for other rooms. */
#ifndef AGENT_NODE_INT_H
#define AGENT_NODE_INT_H

#include "agent_node.h"

/* Index of key in n's table, or -(insertion point) - 1. Call with n->mu held. */
long agent_node_find(const struct agent_node *n, const char *key);
/* The entry for key, or NULL. Call with n->mu held. */
struct agent_entry *agent_node_get(struct agent_node *n, const char *key);
/* Moves e to state s (lastTransitionTime when it changes) with reason, cause and message (NULL or "" =
 * none). */
int agent_entry_set_state(struct agent_entry *e, enum agent_state s, const char *reason, const char *cause,
			  const char *message); /* 1 when something changed */
void agent_entry_free(struct agent_entry *e);
void agent_secrets_free(struct agent_secret_ref *s, size_t n);
/* The reference as the spec writes it. */
const char *agent_entry_image(const struct agent_entry *e);
/* Replaces *dst by a copy of src (NULL for NULL or ""); 1 when it changed. */
int agent_set_str(char **dst, const char *src);

#endif
