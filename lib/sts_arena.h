/* sts_arena.h (internal): one allocation per parsed object.
 *
 * A parser sizes the arena from its input before it starts, so a parse costs
 * one malloc; running out of room is a sizing bug and reported as
 * STS_ENOMEM, never an overflow. The owning struct keeps `base` as mem_. */
#ifndef STS_ARENA_H
#define STS_ARENA_H

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct sts_arena {
	char *base;
	size_t used;
	size_t cap;
};

static inline int
sts_arena_init(struct sts_arena *a, size_t cap)
{
	a->base = malloc(cap ? cap : 1);
	a->used = 0;
	a->cap = a->base != NULL ? cap : 0;
	return a->base != NULL ? 0 : -1;
}

/* Returns size bytes aligned for any object type, or NULL when full. */
static inline void *
sts_arena_alloc(struct sts_arena *a, size_t size)
{
	size_t al = alignof(max_align_t);
	size_t start = (a->used + al - 1) & ~(al - 1);
	if (start > a->cap || size > a->cap - start)
		return NULL;
	a->used = start + size;
	return a->base + start;
}

/* Copies n bytes and a NUL; returns NULL when full. */
static inline char *
sts_arena_strndup(struct sts_arena *a, const void *p, size_t n)
{
	if (n >= a->cap - a->used || a->used > a->cap)
		return NULL;
	char *s = a->base + a->used;
	memcpy(s, p, n);
	s[n] = '\0';
	a->used += n + 1;
	return s;
}

/* Arena bytes needed for n objects of type size plus alignment slack. */
#define STS_ARENA_ARRAY(n, size) ((n) * (size) + alignof(max_align_t))

#endif
