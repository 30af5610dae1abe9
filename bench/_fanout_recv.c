/* The measured phase of bench/fanout.py's load client, in C.
 *
 * The Python client opens, upgrades and joins every connection (Trio), then
 * hands the sockets to `fanout_receive`, which does what `Subscriber.feed`
 * and `Client.receive` do in Python — one epoll loop, one recv() per readable
 * socket, every server frame parsed, `seq` checked, `now - t` counted — at a
 * fraction of the CPU, so that on a 2-core machine the load is not the
 * bottleneck it was (the Python loop needed a whole core at ~500k
 * deliveries/s). Built by bench/_native.py with the system C compiler;
 * loaded with ctypes (no Python headers needed).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    unsigned char *buf; /* bytes of an incomplete frame, kept for the next recv */
    size_t len, cap;
    int64_t expected;   /* the next seq */
    int done;
    int64_t received, recvs, resyncs, skipped, gaps, repeats, others;
} sub_t;

/* What the run found: filled for Python (ctypes.Structure of the same layout). */
typedef struct {
    int64_t done, last_ns, received, recvs, resyncs, resynced_subs, skipped, gaps, repeats, others;
    int64_t latencies;  /* how many were counted in the caller's histogram */
    int32_t close_code; /* a close frame from the server: its code (or 1005 without one) */
    int32_t error;      /* 0, or an errno (recv/epoll), or -1 timeout, -2 server closed, -3 masked frame */
    char other[208];    /* the first unexpected frame, for the report */
} result_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The decimal integer at p (up to end), as Python's int(...) of the digits before the next ','. */
static int64_t parse_int(const unsigned char *p, const unsigned char *end) {
    int64_t value = 0;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    while (p < end && *p >= '0' && *p <= '9') value = value * 10 + (*p++ - '0');
    return negative ? -value : value;
}

static void note_other(result_t *out, sub_t *sub, unsigned char first, const unsigned char *payload, size_t n) {
    sub->others++;
    if (out->other[0] == 0) {
        size_t k = n < 200 ? n : 200;
        out->other[0] = (char)first;
        memcpy(out->other + 1, payload, k);
    }
}

/* The subscriber has the row's last seq: it is done (the row's last receipt is the latest of these). */
static void finish_at(sub_t *sub, int64_t seq, int64_t events, int64_t now, result_t *out) {
    if (seq >= events && !sub->done) {
        sub->done = 1;
        out->done++;
        if (now > out->last_ns) out->last_ns = now;
    }
}

static void send_pong(sub_t *sub, const unsigned char *payload, size_t n) {
    unsigned char frame[2 + 4 + 125];
    if (n > 125) n = 125;
    frame[0] = 0x8A;
    frame[1] = 0x80 | (unsigned char)n;
    memset(frame + 2, 0, 4); /* a zero masking key: the payload goes as it is */
    memcpy(frame + 6, payload, n);
    (void)send(sub->fd, frame, 6 + n, MSG_NOSIGNAL);
}

/* Parse every whole frame in data[0:size]; returns the bytes consumed, or -1 on a fatal frame. */
/* Receipt time minus `t`, counted in buckets of `bucket_ns` (the last bucket takes everything above). */
static void count_latency(int64_t latency, uint32_t *histogram, int64_t buckets, int64_t bucket_ns, result_t *out) {
    int64_t bucket = latency < 0 ? 0 : latency / bucket_ns;
    histogram[bucket < buckets ? bucket : buckets - 1]++;
    out->latencies++;
}

static long feed(sub_t *sub, const unsigned char *data, size_t size, int64_t now, int64_t events, int runtime,
                 uint32_t *histogram, int64_t buckets, int64_t bucket_ns, result_t *out) {
    size_t pos = 0;
    while (size - pos >= 2) {
        unsigned char first = data[pos];
        uint64_t length = data[pos + 1];
        size_t start;
        if (length & 0x80) {
            out->error = -3;
            return -1;
        }
        if (length < 126) {
            start = pos + 2;
        } else if (length == 126) {
            if (size - pos < 4) break;
            length = ((uint64_t)data[pos + 2] << 8) | data[pos + 3];
            start = pos + 4;
        } else {
            if (size - pos < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = (length << 8) | data[pos + 2 + i];
            start = pos + 10;
        }
        if (length > size - start) break;
        size_t end = start + length;
        const unsigned char *payload = data + start, *stop = data + end;
        pos = end;
        if (first != 0x81 && first != 0x82) {
            unsigned char opcode = first & 0x0F;
            if (opcode == 0x9) {
                send_pong(sub, payload, length);
            } else if (opcode == 0x8) {
                out->close_code = length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
                out->error = -2;
                return -1;
            } else if (opcode != 0xA) {
                note_other(out, sub, first, payload, length);
            }
            continue;
        }
        /* One forward scan, in the order the server writes the fields (the event's "type", then
         * its data's "t", then "seq"), with a whole-frame search only when that order does not hold. */
        const unsigned char *type = runtime ? memmem(payload, length, "\"type\":\"", 8) : NULL;
        if (type != NULL && stop - type >= 13 && memcmp(type + 8, "sync\"", 5) == 0) {
            /* a fresh sync (the slow-consumer policy's resync): its item's seq is where it resumes */
            const unsigned char *s = memmem(type, (size_t)(stop - type), "\"seq\":", 6);
            int64_t seq = s ? parse_int(s + 6, stop) : 0;
            sub->resyncs++;
            if (seq >= sub->expected) {
                sub->skipped += seq - sub->expected + 1;
                sub->expected = seq + 1;
            }
            finish_at(sub, seq, events, now, out);
            continue;
        }
        const unsigned char *from = type ? type : payload;
        const unsigned char *t = memmem(from, (size_t)(stop - from), "\"t\":", 4);
        const unsigned char *s = t ? memmem(t, (size_t)(stop - t), "\"seq\":", 6) : NULL;
        if (s == NULL) s = memmem(payload, length, "\"seq\":", 6);
        if (t == NULL || s == NULL) {
            note_other(out, sub, first, payload, length);
            continue;
        }
        int64_t seq = parse_int(s + 6, stop);
        count_latency(now - parse_int(t + 4, stop), histogram, buckets, bucket_ns, out);
        sub->received++;
        if (seq != sub->expected) {
            if (seq < sub->expected) {
                sub->repeats++;
                continue;
            }
            sub->gaps++;
        }
        sub->expected = seq + 1;
        finish_at(sub, seq, events, now, out);
    }
    return (long)pos;
}

static int keep(sub_t *sub, const unsigned char *data, size_t n) {
    if (sub->len + n > sub->cap) {
        size_t cap = sub->cap ? sub->cap : 4096;
        while (cap < sub->len + n) cap *= 2;
        unsigned char *grown = realloc(sub->buf, cap);
        if (grown == NULL) return -1;
        sub->buf = grown;
        sub->cap = cap;
    }
    memcpy(sub->buf + sub->len, data, n);
    sub->len += n;
    return 0;
}

/* Receive until every subscriber has seq `events` (or the timeout). `pending[i]` (length
 * `pending_len[i]`) are bytes the Python side read past the join's answer. */
int fanout_receive(int n, const int *fds, const unsigned char **pending, const int64_t *pending_len,
                   int64_t events, int runtime, double timeout, uint32_t *histogram, int64_t buckets,
                   int64_t bucket_ns, result_t *out) {
    static unsigned char chunk[1 << 18];
    memset(out, 0, sizeof *out);
    sub_t *subs = calloc((size_t)n, sizeof *subs);
    int ep = epoll_create1(0);
    if (subs == NULL || ep < 0) {
        out->error = errno;
        free(subs);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        subs[i].fd = fds[i];
        subs[i].expected = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            out->error = errno;
            goto done;
        }
        if (pending_len[i] > 0) {
            long used = feed(&subs[i], pending[i], (size_t)pending_len[i], now_ns(), events, runtime, histogram,
                             buckets, bucket_ns, out);
            if (used < 0) goto done;
            if (keep(&subs[i], pending[i] + used, (size_t)(pending_len[i] - used)) < 0) {
                out->error = ENOMEM;
                goto done;
            }
        }
    }
    struct epoll_event ready[256];
    double deadline = mono() + timeout;
    while (out->done < n) {
        double left = deadline - mono();
        if (left <= 0) {
            out->error = -1;
            break;
        }
        int k = epoll_wait(ep, ready, 256, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (k < 0) {
            if (errno == EINTR) continue;
            out->error = errno;
            break;
        }
        for (int j = 0; j < k; j++) {
            sub_t *sub = &subs[ready[j].data.u32];
            ssize_t got = recv(sub->fd, chunk, sizeof chunk, 0);
            if (got < 0) {
                if (errno == EAGAIN || errno == EINTR) continue;
                out->error = errno;
                goto done;
            }
            if (got == 0) {
                out->error = -2;
                goto done;
            }
            sub->recvs++;
            int64_t now = now_ns();
            const unsigned char *data = chunk;
            size_t size = (size_t)got;
            if (sub->len) { /* finish the frame the last read cut */
                if (keep(sub, chunk, size) < 0) {
                    out->error = ENOMEM;
                    goto done;
                }
                data = sub->buf;
                size = sub->len;
            }
            long used = feed(sub, data, size, now, events, runtime, histogram, buckets, bucket_ns, out);
            if (used < 0) goto done;
            size_t rest = size - (size_t)used;
            if (data == sub->buf) {
                memmove(sub->buf, sub->buf + used, rest);
                sub->len = rest;
            } else if (rest && keep(sub, chunk + used, rest) < 0) {
                out->error = ENOMEM;
                goto done;
            }
        }
    }
done:
    for (int i = 0; i < n; i++) {
        sub_t *sub = &subs[i];
        out->received += sub->received;
        out->recvs += sub->recvs;
        out->resyncs += sub->resyncs;
        out->resynced_subs += sub->resyncs > 0;
        out->skipped += sub->skipped;
        out->gaps += sub->gaps;
        out->repeats += sub->repeats;
        out->others += sub->others;
        free(sub->buf);
    }
    free(subs);
    close(ep);
    return out->error ? -1 : 0;
}
