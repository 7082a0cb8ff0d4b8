/* sts_check_state.h (internal): the id-discipline memory of `check --state`. */
#ifndef STS_CHECK_STATE_H
#define STS_CHECK_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <mtasts/txt.h>

struct sts_check_state {
	char id[STS_ID_MAX + 1];
	int64_t seen_at;
	uint32_t max_age;
	bool id_with_old_body;   /* this id first appeared serving the previous id's policy */
	char *canonical;         /* owned */
};

/* STS_OK, STS_ENOTFOUND (first check), STS_ESTATE (unreadable: start over), STS_EIO. */
int sts_check_state_load(const char *dir, const char *domain, struct sts_check_state *s);
int sts_check_state_save(const char *dir, const char *domain, const struct sts_check_state *s);
void sts_check_state_clear(struct sts_check_state *s);

#endif
