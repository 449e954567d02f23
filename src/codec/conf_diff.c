/* conf_diff: hot reload (protocol.md#p-reload-diff): compares two validated configs with
 * the schema's tables (codec/conf_schema.h). tdef_equal is the generic
 * deep equality of two structs of a table; a general change (a section
 * added or removed, a key of reload class general) wins over service
 * changes, which are listed by name per section. */
#include "codec/conf_diff.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/conf_schema.h"

static bool str_equal(const struct row *r, const void *a, const void *b)
{
	const char *x = *(char *const *)cfield(a, r->off), *y = *(char *const *)cfield(b, r->off);
	if (!x || !y)
		return x == y;
	size_t xn = (r->flags & RF_LEN) ? *(const size_t *)cfield(a, r->off_n) : strlen(x);
	size_t yn = (r->flags & RF_LEN) ? *(const size_t *)cfield(b, r->off_n) : strlen(y);
	return xn == yn && memcmp(x, y, xn) == 0;
}

/* Deep equality of two structs of table d. With skip_hot, rows of the hot
 * reload class are not compared. */
static bool tdef_equal(const struct tdef *d, const void *a, const void *b, bool skip_hot)
{
	if (d->has_present &&
	    *(const bool *)cfield(a, d->present_off) != *(const bool *)cfield(b, d->present_off))
		return false;
	for (size_t i = 0; i < d->n_rows; i++) {
		const struct row *r = &d->rows[i];
		const void *fa = cfield(a, r->off), *fb = cfield(b, r->off);
		if (skip_hot && r->reload == CONF_RELOAD_HOT)
			continue;
		switch (r->type) {
		case R_STRING:
			if (!str_equal(r, a, b))
				return false;
			break;
		case R_U64:
			if (*(const uint64_t *)fa != *(const uint64_t *)fb)
				return false;
			break;
		case R_BOOL:
			if (*(const bool *)fa != *(const bool *)fb)
				return false;
			break;
		case R_OPTBOOL:
		case R_ENUM:
			if (*(const int *)fa != *(const int *)fb)
				return false;
			break;
		case R_TABLE:
			if (r->flags & RF_PTR) {
				const void *pa = *(void *const *)fa, *pb = *(void *const *)fb;
				if (!pa || !pb) {
					if (pa != pb)
						return false;
				} else if (!tdef_equal(r->sub, pa, pb, skip_hot)) {
					return false;
				}
			} else if (!tdef_equal(r->sub, fa, fb, skip_hot)) {
				return false;
			}
			break;
		case R_MAP: {
			const struct conf_service *sa = *(struct conf_service *const *)fa;
			const struct conf_service *sb = *(struct conf_service *const *)fb;
			size_t na = *(const size_t *)cfield(a, r->off_n), nb = *(const size_t *)cfield(b, r->off_n);
			if (na != nb)
				return false;
			for (size_t k = 0; k < na; k++) {
				const struct conf_service *o =
					conf_service_find(sb, nb, sa[k].name, sa[k].name_len);
				if (!o || !tdef_equal(r->sub, &sa[k], o, false))
					return false;
			}
			break;
		}
		}
	}
	return true;
}

void conf_diff_free(struct conf_diff *d)
{
	if (!d)
		return;
	free(d->server_deleted);
	free(d->server_added);
	free(d->client_deleted);
	free(d->client_added);
	memset(d, 0, sizeof(*d));
}

static int diff_services(const struct tdef *sd, const struct conf_service *o, size_t no,
			 const struct conf_service *n, size_t nn, const struct conf_service ***del,
			 size_t *ndel, const struct conf_service ***add, size_t *nadd)
{
	*del = no ? calloc(no, sizeof(**del)) : NULL;
	*add = nn ? calloc(nn, sizeof(**add)) : NULL;
	if ((no && !*del) || (nn && !*add))
		return -ENOMEM;
	for (size_t i = 0; i < no; i++)
		if (!conf_service_find(n, nn, o[i].name, o[i].name_len))
			(*del)[(*ndel)++] = &o[i];
	for (size_t i = 0; i < nn; i++) {
		const struct conf_service *old = conf_service_find(o, no, n[i].name, n[i].name_len);
		if (!old || !tdef_equal(sd, old, &n[i], false))
			(*add)[(*nadd)++] = &n[i];
	}
	return 0;
}

int conf_diff(const struct conf *old_c, const struct conf *new_c, struct conf_diff *out)
{
	memset(out, 0, sizeof(*out));
	/* a section added or removed, or a general key changed: restart */
	if (!tdef_equal(&conf_root_def, old_c, new_c, true)) {
		out->change = CONF_GENERAL;
		return 0;
	}
	int rc = 0;
	if (old_c->server)
		rc = diff_services(&conf_server_svc_def, old_c->server->services,
				   old_c->server->n_services, new_c->server->services,
				   new_c->server->n_services,
				   &out->server_deleted, &out->n_server_deleted, &out->server_added,
				   &out->n_server_added);
	if (rc == 0 && old_c->client)
		rc = diff_services(&conf_client_svc_def, old_c->client->services,
				   old_c->client->n_services, new_c->client->services,
				   new_c->client->n_services,
				   &out->client_deleted, &out->n_client_deleted, &out->client_added,
				   &out->n_client_added);
	if (rc != 0) {
		conf_diff_free(out);
		return rc;
	}
	if (out->n_server_deleted + out->n_server_added + out->n_client_deleted + out->n_client_added)
		out->change = CONF_SERVICES;
	else
		conf_diff_free(out);   /* CONF_SAME */
	return 0;
}

/* Appends "what: "a", "b"" for the services of list that are (restarted)
 * or are not (!restarted) in old_svcs; nothing when none is. */
static void describe_list(char *out, size_t cap, size_t *o, const char *what,
			  const struct conf_service *const *list, size_t n,
			  const struct conf_service *old_svcs, size_t n_old, int restarted)
{
	size_t shown = 0;
	for (size_t i = 0; i < n && *o < cap; i++) {
		int in_old = old_svcs && conf_service_find(old_svcs, n_old, list[i]->name, list[i]->name_len);
		if (restarted >= 0 && in_old != restarted)
			continue;
		char q[80];
		conf_quote(q, sizeof(q), list[i]->name, list[i]->name_len, 64);
		int k = snprintf(out + *o, cap - *o, "%s%s%s", shown ? ", " : (*o ? "; " : ""),
				 shown ? "" : what, q);
		if (k < 0 || (size_t)k >= cap - *o) {
			*o = cap - 1;
			return;
		}
		*o += (size_t)k;
		shown++;
	}
}

void conf_diff_describe(const struct conf_diff *d, const struct conf *old_c, enum conf_mode mode,
			char *out, size_t cap)
{
	if (!cap)
		return;
	out[0] = '\0';
	if (d->change != CONF_SERVICES) {
		snprintf(out, cap, "%s", d->change == CONF_SAME ? "no change" : "general change");
		return;
	}
	bool server = mode == CONF_MODE_SERVER;
	const struct conf_service *const *add = server ? d->server_added : d->client_added;
	const struct conf_service *const *del = server ? d->server_deleted : d->client_deleted;
	size_t n_add = server ? d->n_server_added : d->n_client_added;
	size_t n_del = server ? d->n_server_deleted : d->n_client_deleted;
	const struct conf_service *old_svcs = NULL;
	size_t n_old = 0;
	if (server && old_c->server) {
		old_svcs = old_c->server->services;
		n_old = old_c->server->n_services;
	} else if (!server && old_c->client) {
		old_svcs = old_c->client->services;
		n_old = old_c->client->n_services;
	}
	size_t o = 0;
	describe_list(out, cap, &o, "services added: ", add, n_add, old_svcs, n_old, 0);
	describe_list(out, cap, &o, "services restarted: ", add, n_add, old_svcs, n_old, 1);
	describe_list(out, cap, &o, "services removed: ", del, n_del, NULL, 0, -1);
	size_t n_other = server ? d->n_client_added + d->n_client_deleted
				: d->n_server_added + d->n_server_deleted;
	if (n_other && o < cap)
		snprintf(out + o, cap - o, "%s[%s] services changed, ignored by the %s", o ? "; " : "",
			 server ? "client" : "server", server ? "server" : "client");
	else if (!o)
		snprintf(out, cap, "no change");
}
