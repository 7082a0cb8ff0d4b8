/* sts_policy_canon.c: canonical form (meaning comparison) and rendering. */
#include <stdlib.h>
#include <string.h>

#include <mtasts/policy.h>
#include <mtasts/status.h>

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
cmp_ext(const void *a, const void *b)
{
	return strcmp(((const struct sts_ext *)a)->name, ((const struct sts_ext *)b)->name);
}

int
sts_policy_canonical(const struct sts_policy *p, struct sts_buf *out)
{
	int rc = STS_OK;
	const char **mx = NULL;
	struct sts_ext *ext = NULL;
	if (p->n_mx > 0 && (mx = malloc(p->n_mx * sizeof *mx)) == NULL)
		return STS_ENOMEM;
	if (p->n_ext > 0 && (ext = malloc(p->n_ext * sizeof *ext)) == NULL) {
		free(mx);
		return STS_ENOMEM;
	}
	if (p->n_mx > 0)
		memcpy(mx, p->mx, p->n_mx * sizeof *mx);
	if (p->n_ext > 0)
		memcpy(ext, p->ext, p->n_ext * sizeof *ext);
	if (p->n_mx > 1)
		qsort(mx, p->n_mx, sizeof *mx, cmp_str);
	if (p->n_ext > 1)
		qsort(ext, p->n_ext, sizeof *ext, cmp_ext);

	if (p->has_version)
		rc = sts_buf_puts(out, "version: STSv1\n");
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "mode: %s\n", sts_mode_name(p->mode));
	if (rc == STS_OK && p->has_max_age)
		rc = sts_buf_printf(out, "max_age: %u\n", (unsigned)p->max_age);
	for (size_t i = 0; rc == STS_OK && i < p->n_mx; i++)
		if (i == 0 || strcmp(mx[i], mx[i - 1]) != 0)
			rc = sts_buf_printf(out, "mx: %s\n", mx[i]);
	for (size_t i = 0; rc == STS_OK && i < p->n_ext; i++)
		rc = sts_buf_printf(out, "%s: %s\n", ext[i].name, ext[i].value);
	free(mx);
	free(ext);
	return rc;
}

bool
sts_policy_same_meaning(const struct sts_policy *a, const struct sts_policy *b)
{
	struct sts_buf ca, cb;
	sts_buf_init(&ca, 4 * STS_POLICY_MAX);
	sts_buf_init(&cb, 4 * STS_POLICY_MAX);
	bool same = sts_policy_canonical(a, &ca) == STS_OK && sts_policy_canonical(b, &cb) == STS_OK &&
		    ca.len == cb.len && memcmp(sts_buf_cstr(&ca), sts_buf_cstr(&cb), ca.len) == 0;
	sts_buf_free(&ca);
	sts_buf_free(&cb);
	return same;
}

int
sts_policy_render(const struct sts_policy *p, struct sts_buf *out)
{
	int rc = sts_buf_puts(out, "version: STSv1\r\n");
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "mode: %s\r\n", sts_mode_name(p->mode));
	for (size_t i = 0; rc == STS_OK && i < p->n_mx; i++)
		rc = sts_buf_printf(out, "mx: %s\r\n", p->mx[i]);
	if (rc == STS_OK)
		rc = sts_buf_printf(out, "max_age: %u\r\n", (unsigned)p->max_age);
	for (size_t i = 0; rc == STS_OK && i < p->n_ext; i++)
		rc = sts_buf_printf(out, "%s: %s\r\n", p->ext[i].name, p->ext[i].value);
	return rc;
}
