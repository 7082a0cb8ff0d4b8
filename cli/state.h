/* state.h: the per-domain state directory of `mta-sts publish`.
 *
 * Layout: STATE/DOMAIN/state.json (the last published policy and every id
 * issued for DOMAIN) and STATE/DOMAIN/lock (flock'ed for the whole publish,
 * so concurrent runs serialise). DOMAIN is the validated A-label form, which
 * cannot contain '/' or be "." or "..". */
#ifndef MTASTS_CLI_STATE_H
#define MTASTS_CLI_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include <mtasts/policy.h>

#include "stsid.h"

#define CLI_STATE_FORMAT 1
#define CLI_STATE_HISTORY_MAX 100   /* issued ids listed; the highest is kept apart */

struct cli_state_dir {
	char *dir;     /* STATE/DOMAIN */
	char *file;    /* STATE/DOMAIN/state.json */
	char *lock;    /* STATE/DOMAIN/lock */
	int lock_fd;   /* -1 when not locked */
};

/* The last publication, read from state.json. Strings borrow from root. */
struct cli_state {
	json_t *root;              /* owned; NULL when there is no state yet */
	const char *id;            /* current id */
	const char *highest;       /* highest id ever issued for the domain */
	const char *published_at;  /* when the current id was issued */
	const char *canonical;     /* sts_policy_canonical of the current policy */
	const char *mode;
	uint32_t max_age;
	json_t *mx;                /* array of strings, borrowed */
};

/* Creates STATE/DOMAIN when missing, opens the lock file and waits for the
 * lock. Prints errors as "mta-sts CMD: ..." and returns false. */
bool cli_state_open(const char *cmd, const char *state_dir, const char *domain,
		    struct cli_state_dir *sd);
/* Releases the lock and frees the paths. Safe on a zeroed or closed sd. */
void cli_state_close(struct cli_state_dir *sd);

/* Reads and checks state.json. Returns 1 loaded, 0 no state yet, -1 error
 * (printed: a corrupt file is named together with what to do). */
int cli_state_load(const char *cmd, const struct cli_state_dir *sd, const char *domain,
		   struct cli_state *st);
void cli_state_free(struct cli_state *st);

/* Builds the document for a new id: `prev` (may have no root) supplies the
 * history. raw is the policy file as published. Returns NULL on ENOMEM. */
json_t *cli_state_new_id(const struct cli_state *prev, const char *domain, const char *id,
			 int64_t now, const struct sts_policy *p, const char *canonical,
			 const void *raw, size_t raw_len);
/* Builds the document for the same meaning in new bytes: prev with the raw
 * policy replaced. Returns NULL on ENOMEM. */
json_t *cli_state_new_bytes(const struct cli_state *prev, int64_t now, const void *raw,
			    size_t raw_len);
/* True when the recorded raw policy equals raw. */
bool cli_state_same_bytes(const struct cli_state *st, const void *raw, size_t raw_len);

/* Writes doc to state.json atomically. Prints errors and returns false. */
bool cli_state_save(const char *cmd, const struct cli_state_dir *sd, json_t *doc);

#endif
