/* sts_diag.c: fixed-capacity diagnostic list (see include/mtasts/diag.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mtasts/diag.h>

void
sts_diags_init(struct sts_diags *d)
{
	d->n = 0;
	d->n_errors = 0;
	d->n_warnings = 0;
	d->n_dropped = 0;
	d->first_error = -1;
}

void
sts_diags_add(struct sts_diags *d, enum sts_severity sev, const char *code,
	      const char *rule, size_t offset, unsigned line, unsigned column,
	      const char *fmt, ...)
{
	bool first_error = sev == STS_SEV_ERROR && d->first_error < 0;
	if (sev == STS_SEV_ERROR)
		d->n_errors++;
	else
		d->n_warnings++;

	size_t slot = d->n;
	if (slot >= STS_DIAGS_MAX) {
		/* Full: the first error still gets a slot, the last one. */
		if (!first_error) {
			d->n_dropped++;
			return;
		}
		slot = STS_DIAGS_MAX - 1;
		d->n_dropped++;
	} else {
		d->n++;
	}
	struct sts_diag *g = &d->items[slot];
	g->severity = sev;
	g->code = code;
	g->rule = rule != NULL ? rule : "";
	g->offset = offset;
	g->line = line;
	g->column = column;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g->message, sizeof g->message, fmt, ap);
	va_end(ap);
	if (first_error)
		d->first_error = (long)slot;
}

const struct sts_diag *
sts_diags_first_error(const struct sts_diags *d)
{
	return d->first_error >= 0 ? &d->items[d->first_error] : NULL;
}

bool
sts_diags_has(const struct sts_diags *d, const char *code)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->items[i].code, code) == 0)
			return true;
	return false;
}

const char *
sts_severity_name(enum sts_severity sev)
{
	return sev == STS_SEV_ERROR ? "error" : "warning";
}

char *
sts_escape(const void *p, size_t n, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : (c == '\\' ? 2 : 4);
		if (o + need + 4 > outsz) {   /* keep room for "..." and NUL */
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else if (c == '\\') {
			out[o++] = '\\';
			out[o++] = '\\';
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
