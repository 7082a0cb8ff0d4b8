/* sts_cache_memory.c: bounded in-memory LRU cache backend.
 * A hash table (open chaining, FNV-1a) over a doubly linked recency list;
 * the least recently used entry is evicted when the bound is reached. */
#include <stdlib.h>
#include <string.h>

#include <mtasts/cache.h>
#include <mtasts/status.h>

struct mem_node {
	struct sts_cache_entry e;
	struct mem_node *hnext;          /* hash chain */
	struct mem_node *prev, *next;    /* recency: head = most recent */
};

struct mem_cache {
	struct sts_cache base;
	size_t max, count, nbuckets;
	struct mem_node **buckets;
	struct mem_node *head, *tail;
};

static size_t
hash_name(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)(h % n);
}

static void
lru_unlink(struct mem_cache *m, struct mem_node *x)
{
	if (x->prev) x->prev->next = x->next; else m->head = x->next;
	if (x->next) x->next->prev = x->prev; else m->tail = x->prev;
	x->prev = x->next = NULL;
}

static void
lru_push(struct mem_cache *m, struct mem_node *x)
{
	x->prev = NULL;
	x->next = m->head;
	if (m->head) m->head->prev = x;
	m->head = x;
	if (m->tail == NULL) m->tail = x;
}

static struct mem_node **
find_slot(struct mem_cache *m, const char *domain)
{
	struct mem_node **pp = &m->buckets[hash_name(domain, m->nbuckets)];
	while (*pp != NULL && strcmp((*pp)->e.domain, domain) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
remove_node(struct mem_cache *m, struct mem_node **slot)
{
	struct mem_node *x = *slot;
	*slot = x->hnext;
	lru_unlink(m, x);
	sts_cache_entry_clear(&x->e);
	free(x);
	m->count--;
}

static void
mem_get(struct sts_cache *c, const char *domain, sts_cache_get_cb cb, void *arg)
{
	struct mem_cache *m = (struct mem_cache *)c;
	struct mem_node **slot = find_slot(m, domain);
	if (*slot == NULL) {
		cb(arg, 0, NULL);
		return;
	}
	lru_unlink(m, *slot);
	lru_push(m, *slot);
	cb(arg, 1, &(*slot)->e);
}

static void
mem_put(struct sts_cache *c, const struct sts_cache_entry *e, sts_cache_done_cb cb, void *arg)
{
	struct mem_cache *m = (struct mem_cache *)c;
	char *copy = malloc(e->policy_len + 1);
	if (copy == NULL) {
		if (cb) cb(arg, STS_ENOMEM);
		return;
	}
	memcpy(copy, e->policy, e->policy_len);
	copy[e->policy_len] = '\0';
	struct mem_node **slot = find_slot(m, e->domain);
	struct mem_node *x = *slot;
	if (x != NULL) {
		free(x->e.policy);
		lru_unlink(m, x);
	} else {
		if (m->count >= m->max) {
			/* Evict the least recently used entry. */
			struct mem_node **old = find_slot(m, m->tail->e.domain);
			remove_node(m, old);
			slot = find_slot(m, e->domain);
		}
		x = calloc(1, sizeof *x);
		if (x == NULL) {
			free(copy);
			if (cb) cb(arg, STS_ENOMEM);
			return;
		}
		x->hnext = NULL;
		*slot = x;
		m->count++;
	}
	x->e = *e;
	x->e.policy = copy;
	lru_push(m, x);
	if (cb) cb(arg, 0);
}

static void
mem_del(struct sts_cache *c, const char *domain, sts_cache_done_cb cb, void *arg)
{
	struct mem_cache *m = (struct mem_cache *)c;
	struct mem_node **slot = find_slot(m, domain);
	int found = *slot != NULL;
	if (found)
		remove_node(m, slot);
	if (cb) cb(arg, found);
}

static void
mem_scan(struct sts_cache *c, sts_cache_each_cb each, sts_cache_done_cb done, void *arg)
{
	struct mem_cache *m = (struct mem_cache *)c;
	for (struct mem_node *x = m->head; x != NULL; x = x->next)
		if (each(arg, &x->e) != 0)
			break;
	if (done) done(arg, 0);
}

static void
mem_close(struct sts_cache *c)
{
	struct mem_cache *m = (struct mem_cache *)c;
	while (m->head != NULL)
		remove_node(m, find_slot(m, m->head->e.domain));
	free(m->buckets);
	free(m);
}

static const struct sts_cache_ops mem_ops = {
	.name = "memory",
	.get = mem_get,
	.put = mem_put,
	.del = mem_del,
	.scan = mem_scan,
	.close = mem_close,
};

int
sts_cache_memory_open(size_t max_entries, const struct sts_logger *log, struct sts_cache **out)
{
	*out = NULL;
	if (max_entries == 0)
		return STS_EINVAL;
	struct mem_cache *m = calloc(1, sizeof *m);
	if (m == NULL)
		return STS_ENOMEM;
	m->max = max_entries;
	m->nbuckets = max_entries < 64 ? 64 : max_entries;
	m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
	if (m->buckets == NULL) {
		free(m);
		return STS_ENOMEM;
	}
	m->base.ops = &mem_ops;
	if (log != NULL)
		m->base.log = *log;
	*out = &m->base;
	return STS_OK;
}
