/* udp_sendq: see udp_sendq.h. */
#include "plane/udp_sendq.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* <linux/udp.h>; glibc's <netinet/udp.h> may lack it */
#endif

void udp_sendq_init(struct udp_sendq *q, bool gso)
{
	q->fd = -1;
	q->n = 0;
	q->dgrams = 0;
	q->used = 0;
	q->gso_max = gso ? UINT16_MAX : 0;
}

static bool same_dest(const struct udp_sendq *q, unsigned i, const struct addr *to)
{
	const struct msghdr *h = &q->msg[i].msg_hdr;
	if (!to)
		return h->msg_namelen == 0;
	return h->msg_namelen == to->len && memcmp(&q->to[i], &to->ss, to->len) == 0;
}

/* Whether a datagram of len bytes to `to` can join the last message: a
 * run of equal segments whose last one is full, to the same address. */
static bool can_coalesce(const struct udp_sendq *q, const struct addr *to, size_t len)
{
	if (!q->n || len == 0)
		return false;
	unsigned i = q->n - 1;
	size_t seg = q->seg[i], have = q->iov[i].iov_len;
	return seg > 0 && seg <= q->gso_max && len <= seg && have == seg * q->nseg[i] &&
	       q->nseg[i] < UDP_SENDQ_GSO_SEGS && have + len <= UDP_SENDQ_GSO_BYTES && same_dest(q, i, to);
}

bool udp_sendq_add(struct udp_sendq *q, int fd, const struct addr *to, const uint8_t *p, size_t len)
{
	if (q->n && (q->fd != fd || q->used + len > sizeof(q->buf)))
		return false;
	if (len > UINT16_MAX)
		return false;
	if (can_coalesce(q, to, len)) {
		/* the last message's bytes end at q->buf + q->used */
		unsigned i = q->n - 1;
		memcpy(q->buf + q->used, p, len);
		q->iov[i].iov_len += len;
		q->nseg[i]++;
		q->used += len;
		q->dgrams++;
		return true;
	}
	if (q->n == UDP_SENDQ_MSGS)
		return false;
	unsigned i = q->n;
	q->fd = fd;
	if (len)
		memcpy(q->buf + q->used, p, len);
	q->iov[i] = (struct iovec){ .iov_base = q->buf + q->used, .iov_len = len };
	struct msghdr *h = &q->msg[i].msg_hdr;
	memset(h, 0, sizeof(*h));
	h->msg_iov = &q->iov[i];
	h->msg_iovlen = 1;
	if (to) {
		memcpy(&q->to[i], &to->ss, to->len);
		h->msg_name = &q->to[i];
		h->msg_namelen = to->len;
	}
	q->seg[i] = (uint16_t)len;
	q->nseg[i] = 1;
	q->used += len;
	q->n++;
	q->dgrams++;
	return true;
}

/* Attaches the UDP_SEGMENT control message to runs of more than one. */
static void set_gso(struct udp_sendq *q, unsigned i)
{
	struct msghdr *h = &q->msg[i].msg_hdr;
	if (q->nseg[i] < 2) {
		h->msg_control = NULL;
		h->msg_controllen = 0;
		return;
	}
	memset(&q->ctl[i], 0, sizeof(q->ctl[i]));
	h->msg_control = q->ctl[i].buf;
	h->msg_controllen = sizeof(q->ctl[i].buf);
	struct cmsghdr *cm = CMSG_FIRSTHDR(h);
	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	uint16_t seg = q->seg[i];
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
}

/* The kernel or the path cannot take this run coalesced. */
static bool gso_refused(int err)
{
	return err == EINVAL || err == EIO || err == EOPNOTSUPP || err == ENOPROTOOPT || err == EMSGSIZE;
}

static unsigned dgrams_after(const struct udp_sendq *q, unsigned i)
{
	unsigned d = 0;
	for (unsigned j = i + 1; j < q->n; j++)
		d += q->nseg[j];
	return d;
}

/* Sends run i datagram by datagram (after the kernel refused it whole).
 * Returns false when on_err gave up; *dropped then holds the rest of the
 * run. */
static bool send_run_singly(struct udp_sendq *q, unsigned i, udp_sendq_err_fn on_err, void *owner,
			    size_t *bytes, unsigned *sent, uint64_t *dropped)
{
	const struct msghdr *h = &q->msg[i].msg_hdr;
	const uint8_t *base = q->iov[i].iov_base;
	size_t total = q->iov[i].iov_len, seg = q->seg[i];
	unsigned left = q->nseg[i];
	size_t off = 0;
	while (left) {
		size_t len = total - off < seg ? total - off : seg;
		struct iovec v = { .iov_base = (void *)(base + off), .iov_len = len };
		struct msghdr one = { .msg_name = h->msg_name, .msg_namelen = h->msg_namelen,
				      .msg_iov = &v, .msg_iovlen = 1 };
		ssize_t r = sendmsg(q->fd, &one, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		off += len;
		left--;
		if (r >= 0) {
			*bytes += len;
			(*sent)++;
		} else if (!on_err(owner, q, i, errno, 1)) {
			*dropped += left;
			return false;
		}
	}
	return true;
}

unsigned udp_sendq_flush(struct udp_sendq *q, udp_sendq_err_fn on_err, void *owner, size_t *bytes,
			 uint64_t *dropped)
{
	unsigned i = 0, sent = 0;
	for (unsigned j = 0; j < q->n; j++)
		set_gso(q, j);
	while (i < q->n) {
		int k = sendmmsg(q->fd, q->msg + i, q->n - i, MSG_NOSIGNAL);
		if (k > 0) {
			for (unsigned j = i; j < i + (unsigned)k; j++) {
				*bytes += q->iov[j].iov_len;
				sent += q->nseg[j];
			}
			i += (unsigned)k;
			continue;
		}
		int e = k < 0 ? errno : EIO;
		if (e == EINTR)
			continue;
		if (q->nseg[i] > 1 && gso_refused(e)) {
			/* coalesce only smaller runs from now on (none when the
			 * kernel lacks UDP_SEGMENT altogether) */
			q->gso_max = e == EOPNOTSUPP || e == ENOPROTOOPT ? 0 : (size_t)q->seg[i] - 1;
			if (!send_run_singly(q, i, on_err, owner, bytes, &sent, dropped)) {
				*dropped += dgrams_after(q, i);
				break;
			}
		} else if (!on_err(owner, q, i, e, q->nseg[i])) {
			*dropped += dgrams_after(q, i);
			break;
		}
		i++;
	}
	q->n = 0;
	q->dgrams = 0;
	q->used = 0;
	return sent;
}
