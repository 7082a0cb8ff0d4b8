/* sts_cache.c: backend-independent cache helpers. */
#include <stdlib.h>
#include <string.h>

#include <mtasts/cache.h>

void
sts_cache_entry_clear(struct sts_cache_entry *e)
{
	free(e->policy);
	memset(e, 0, sizeof *e);
}

void
sts_cache_close(struct sts_cache **c)
{
	if (c == NULL || *c == NULL)
		return;
	(*c)->ops->close(*c);
	*c = NULL;
}
