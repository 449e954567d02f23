/* udp_frame: the reader of UDP frames on a data channel. See udp_frame.h
 * for the contract.
 *
 * A state machine over the three parts of a frame (length byte, header,
 * payload). A payload that is whole in the input is returned in place
 * (no copy); one that arrives in pieces is gathered in the parser. */
#include "codec/udp_frame.h"

#include <string.h>

#include "base/err.h"

void udp_parser_init(struct udp_parser *p)
{
	p->state = UDP_PARSE_HLEN;
	p->err = 0;
	p->hlen = 0;
	p->len = 0;
	p->got = 0;
}

ssize_t udp_parser_feed(struct udp_parser *p, const uint8_t *in, size_t len, struct udp_frame *f,
			bool *done)
{
	size_t pos = 0;
	*done = false;
	for (;;) {
		switch (p->state) {
		case UDP_PARSE_HLEN:
			if (pos == len)
				return (ssize_t)pos;
			p->hlen = in[pos++];
			p->got = 0;
			p->state = UDP_PARSE_HDR;
			continue;
		case UDP_PARSE_HDR: {
			size_t n = p->hlen - p->got;
			if (n > len - pos)
				n = len - pos;
			if (n) {
				memcpy(p->hdr + p->got, in + pos, n);
				p->got += n;
				pos += n;
			}
			if (p->got < p->hlen)
				return (ssize_t)pos;
			int r = proto_decode_udp_hdr(p->hdr, p->hlen, &p->from, &p->len);
			if (r < 0) {
				p->state = UDP_PARSE_FAILED;
				p->err = r;
				return r;
			}
			p->got = 0;
			if (p->len == 0) {
				f->from = p->from;
				f->payload = p->buf;
				f->len = 0;
				p->state = UDP_PARSE_HLEN;
				*done = true;
				return (ssize_t)pos;
			}
			p->state = UDP_PARSE_PAYLOAD;
			continue;
		}
		case UDP_PARSE_PAYLOAD: {
			size_t need = (size_t)p->len - p->got;
			if (p->got == 0 && len - pos >= need) {
				/* the whole payload is in the input: no copy */
				f->payload = in + pos;
				pos += need;
			} else {
				size_t n = need < len - pos ? need : len - pos;
				if (n) {
					memcpy(p->buf + p->got, in + pos, n);
					p->got += n;
					pos += n;
				}
				if (p->got < p->len)
					return (ssize_t)pos;
				f->payload = p->buf;
			}
			f->from = p->from;
			f->len = p->len;
			p->got = 0;
			p->state = UDP_PARSE_HLEN;
			*done = true;
			return (ssize_t)pos;
		}
		case UDP_PARSE_FAILED:
		default:
			return p->err ? p->err : MR_EPROTO_TAG;
		}
	}
}

