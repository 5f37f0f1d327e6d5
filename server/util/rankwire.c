/* rankwire.c - framing of the worker / rank 0 messages (util/rankwire.h). */
#include "util/rankwire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int rankwire_send(int fd, uint32_t type, const void *a, size_t na, const void *b, size_t nb)
{
    unsigned char h[16];
    put_u32(h, type);
    put_u32(h + 4, 0);
    put_u64(h + 8, (uint64_t)na + (uint64_t)nb);
    if (write_all(fd, h, sizeof h) != 0)
        return -1;
    if (na && write_all(fd, a, na) != 0)
        return -1;
    if (nb && write_all(fd, b, nb) != 0)
        return -1;
    return 0;
}

int rankwire_read(int fd, void *buf, size_t n)
{
    unsigned char *c = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, c + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0) {
            if (got == 0)
                return 1;
            errno = EPIPE;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

int rankwire_recv_hdr(int fd, struct rankwire_hdr *h)
{
    unsigned char b[16];
    int rc = rankwire_read(fd, b, sizeof b);
    if (rc != 0)
        return rc;
    uint32_t type = 0, zero = 0;
    uint64_t len = 0;
    for (int i = 0; i < 4; i++) {
        type |= (uint32_t)b[i] << (8 * i);
        zero |= (uint32_t)b[4 + i] << (8 * i);
    }
    for (int i = 0; i < 8; i++)
        len |= (uint64_t)b[8 + i] << (8 * i);
    if (type < RANKWIRE_HELLO || type > RANKWIRE_DONE || zero != 0 ||
        len > RANKWIRE_MAX_PAYLOAD) {
        errno = EPROTO;
        return -1;
    }
    h->type = type;
    h->len = len;
    return 0;
}

int rankwire_skip(int fd, uint64_t n)
{
    unsigned char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (rankwire_read(fd, buf, k) != 0)
            return -1;
        n -= k;
    }
    return 0;
}
