/*
 * echo.c: a one-thread TCP echo server on io_uring (liburing), the
 * "c-liburing" row of `bench compare`. Written for the bench as a good
 * hand-written C reference point, not as a library:
 *
 *   - one ring, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
 *     (Linux 6.1+; falls back to COOP_TASKRUN, then to no flags), the ring
 *     descriptor registered (IORING_REGISTER_RING_FDS, 5.18+) when possible;
 *   - one multishot accept (5.19+) into the fixed file table (direct
 *     descriptors; plain descriptors with -plain-fds or when the sparse
 *     table cannot be registered);
 *   - one multishot recv per connection (6.0+) selecting buffers from a
 *     registered provided-buffer ring (5.19+);
 *   - each received buffer is sent back as it is (no copy); a connection
 *     has at most one send in flight so replies keep their order; a short
 *     send is resubmitted for the rest; a buffer goes back to the ring when
 *     all of it has been sent;
 *   - a recv that ends with -ENOBUFS (every buffer is waiting to be sent)
 *     is re-armed once buffers have come back.
 *
 * Usage: echo -addr HOST:PORT [-bufsize BYTES] [-nbufs N] [-plain-fds] [-no-defer]
 * Prints "READY HOST:PORT" on stdout once listening; SIGTERM or SIGINT
 * stops it with exit status 0. Build: gcc -O2 -o echo echo.c -luring
 * (liburing 2.3 or later).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_SIGNAL, OP_IGNORE };

#define MAX_CONNS 16384
#define BGID 7

struct conn {
	unsigned char open, recv_armed, send_inflight, eof, dead, waiting;
	int qhead, qtail; /* queue of buffer ids to send, -1 when empty */
	unsigned qoff;    /* bytes of the head buffer already sent */
};

static struct io_uring ring;
static struct conn conns[MAX_CONNS];
static int fixed = 1;           /* connections are direct descriptors */
static unsigned bufsize = 65536, nbufs = 256;
static char *bufbase;
static struct io_uring_buf_ring *br;
static int *bufnext;            /* per buffer: next in its connection's queue */
static unsigned *buflen;        /* per buffer: bytes received into it */
static int nreturn;             /* buffers added to the ring, not yet published */
static int waiting[MAX_CONNS];  /* connections whose recv ended with ENOBUFS */
static int nwaiting;
static int listenfd;
static struct signalfd_siginfo sigbuf;
static int stopping;
/* Counters printed on stderr at exit (the test checks the paths it forces). */
static unsigned long n_accepted, n_closed, n_short_sends, n_enobufs;

static void die(const char *what, int err)
{
	fprintf(stderr, "c-liburing echo: %s: %s\n", what, strerror(err));
	exit(1);
}

static inline uint64_t ud(int op, int idx) { return ((uint64_t)op << 32) | (uint32_t)idx; }

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
		if (!sqe)
			die("no submission queue entry", EBUSY);
	}
	return sqe;
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = sqe_get();
	if (fixed)
		io_uring_prep_multishot_accept_direct(sqe, listenfd, NULL, NULL, 0);
	else
		io_uring_prep_multishot_accept(sqe, listenfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud(OP_ACCEPT, 0));
}

static void arm_recv(int idx)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_recv_multishot(sqe, idx, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT | (fixed ? IOSQE_FIXED_FILE : 0);
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, ud(OP_RECV, idx));
	conns[idx].recv_armed = 1;
}

static void send_head(int idx)
{
	struct conn *c = &conns[idx];
	int bid = c->qhead;
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_send(sqe, idx, bufbase + (size_t)bid * bufsize + c->qoff, buflen[bid] - c->qoff, MSG_NOSIGNAL);
	if (fixed)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, ud(OP_SEND, idx));
	c->send_inflight = 1;
}

/* recycle gives buffer bid back to the ring (published by publish_buffers). */
static void recycle(int bid)
{
	io_uring_buf_ring_add(br, bufbase + (size_t)bid * bufsize, bufsize, (unsigned short)bid,
			      io_uring_buf_ring_mask(nbufs), nreturn++);
}

/* publish_buffers makes the recycled buffers visible to the kernel and
 * reports whether there were any. */
static int publish_buffers(void)
{
	int n = nreturn;
	if (n) {
		io_uring_buf_ring_advance(br, n);
		nreturn = 0;
	}
	return n;
}

static void drop_queue(struct conn *c)
{
	while (c->qhead >= 0) {
		int bid = c->qhead;
		c->qhead = bufnext[bid];
		recycle(bid);
	}
	c->qtail = -1;
	c->qoff = 0;
}

/* maybe_close closes a finished connection once nothing is in flight on it. */
static void maybe_close(int idx)
{
	struct conn *c = &conns[idx];
	if (!c->open || !(c->eof || c->dead) || c->recv_armed || c->send_inflight || c->waiting)
		return;
	if (!c->dead && c->qhead >= 0)
		return;
	drop_queue(c);
	c->open = 0;
	n_closed++;
	if (fixed) {
		struct io_uring_sqe *sqe = sqe_get();
		io_uring_prep_close_direct(sqe, idx);
		io_uring_sqe_set_data64(sqe, ud(OP_IGNORE, idx));
	} else {
		close(idx);
	}
}

/* kill ends a connection after an error: queued data is dropped and the
 * recv, if armed, is cancelled. */
static void kill_conn(int idx)
{
	struct conn *c = &conns[idx];
	if (c->dead)
		return;
	c->dead = 1;
	if (!c->send_inflight)
		drop_queue(c);
	if (c->recv_armed) {
		struct io_uring_sqe *sqe = sqe_get();
		io_uring_prep_cancel64(sqe, ud(OP_RECV, idx), 0);
		io_uring_sqe_set_data64(sqe, ud(OP_IGNORE, idx));
	}
	maybe_close(idx);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE) && !stopping)
		arm_accept();
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED)
			fprintf(stderr, "c-liburing echo: accept: %s\n", strerror(-cqe->res));
		return;
	}
	int idx = cqe->res;
	if (idx >= MAX_CONNS) { /* plain descriptors only: the table is full */
		close(idx);
		return;
	}
	struct conn *c = &conns[idx];
	n_accepted++;
	memset(c, 0, sizeof *c);
	c->open = 1;
	c->qhead = c->qtail = -1;
	arm_recv(idx);
}

static void on_recv(struct io_uring_cqe *cqe, int idx)
{
	struct conn *c = &conns[idx];
	int more = cqe->flags & IORING_CQE_F_MORE;
	if (!more)
		c->recv_armed = 0;
	if (cqe->res > 0) {
		int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (c->dead) {
			recycle(bid);
		} else {
			buflen[bid] = (unsigned)cqe->res;
			bufnext[bid] = -1;
			if (c->qtail >= 0)
				bufnext[c->qtail] = bid;
			else
				c->qhead = bid;
			c->qtail = bid;
			if (!c->send_inflight)
				send_head(idx);
		}
		if (!more && !c->dead)
			arm_recv(idx);
	} else if (cqe->res == 0) {
		c->eof = 1;
	} else if (cqe->res == -ENOBUFS) {
		n_enobufs++;
		if (!c->dead && !c->waiting) {
			c->waiting = 1;
			waiting[nwaiting++] = idx;
		}
	} else if (cqe->res != -ECANCELED) {
		kill_conn(idx);
	}
	maybe_close(idx);
}

static void on_send(struct io_uring_cqe *cqe, int idx)
{
	struct conn *c = &conns[idx];
	c->send_inflight = 0;
	if (cqe->res <= 0) {
		kill_conn(idx);
		drop_queue(c);
		maybe_close(idx);
		return;
	}
	if (c->dead) {
		drop_queue(c);
		maybe_close(idx);
		return;
	}
	c->qoff += (unsigned)cqe->res;
	int bid = c->qhead;
	if (c->qoff >= buflen[bid]) {
		c->qhead = bufnext[bid];
		if (c->qhead < 0)
			c->qtail = -1;
		c->qoff = 0;
		recycle(bid);
	} else {
		n_short_sends++;
	}
	if (c->qhead >= 0)
		send_head(idx);
	else
		maybe_close(idx);
}

static void rearm_waiting(void)
{
	int n = nwaiting;
	nwaiting = 0;
	for (int i = 0; i < n; i++) {
		int idx = waiting[i];
		struct conn *c = &conns[idx];
		c->waiting = 0;
		if (c->open && !c->dead && !c->eof && !c->recv_armed)
			arm_recv(idx);
		else
			maybe_close(idx);
	}
}

static void arm_signal(int sfd)
{
	struct io_uring_sqe *sqe = sqe_get();
	io_uring_prep_read(sqe, sfd, &sigbuf, sizeof sigbuf, 0);
	io_uring_sqe_set_data64(sqe, ud(OP_SIGNAL, 0));
}

static int listen_on(const char *addr, char *bound, size_t boundlen)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host) {
		fprintf(stderr, "c-liburing echo: -addr %s: want HOST:PORT\n", addr);
		exit(2);
	}
	memcpy(host, addr, colon - addr);
	host[colon - addr] = 0;
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = 0;
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res;
	int err = getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res);
	if (err) {
		fprintf(stderr, "c-liburing echo: -addr %s: %s\n", addr, gai_strerror(err));
		exit(2);
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket", errno);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
		die("bind", errno);
	freeaddrinfo(res);
	if (listen(fd, 4096) < 0)
		die("listen", errno);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	char ip[INET6_ADDRSTRLEN];
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		snprintf(bound, boundlen, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(bound, boundlen, "%s:%u", ip, ntohs(s4->sin_port));
	}
	return fd;
}

static int setup_ring(int defer)
{
	static const unsigned modes[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	for (unsigned i = defer ? 0 : 1; i < sizeof modes / sizeof modes[0]; i++) {
		struct io_uring_params p;
		memset(&p, 0, sizeof p);
		p.flags = modes[i] | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
		p.cq_entries = 16384;
		int ret = io_uring_queue_init_params(1024, &ring, &p);
		if (ret == 0)
			return (int)modes[i];
		if (ret != -EINVAL)
			die("io_uring_queue_init_params", -ret);
	}
	die("io_uring_queue_init_params", EINVAL);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: echo -addr HOST:PORT [-bufsize BYTES] [-nbufs N] [-plain-fds] [-no-defer]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *addr = NULL;
	int defer = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-')
			a++;
		if (!strcmp(a, "-addr") && i + 1 < argc)
			addr = argv[++i];
		else if (!strncmp(a, "-addr=", 6))
			addr = a + 6;
		else if (!strcmp(a, "-bufsize") && i + 1 < argc)
			bufsize = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "-nbufs") && i + 1 < argc)
			nbufs = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(a, "-plain-fds"))
			fixed = 0;
		else if (!strcmp(a, "-no-defer"))
			defer = 0;
		else
			usage();
	}
	if (!addr || bufsize == 0 || nbufs == 0 || nbufs > 32768 || (nbufs & (nbufs - 1)))
		usage();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd", errno);

	char bound[300];
	listenfd = listen_on(addr, bound, sizeof bound);
	int mode = setup_ring(defer);
	io_uring_register_ring_fd(&ring); /* optional (5.18+) */
	if (fixed && io_uring_register_files_sparse(&ring, MAX_CONNS) < 0)
		fixed = 0;

	size_t ringbytes = (size_t)nbufs * sizeof(struct io_uring_buf);
	br = mmap(NULL, ringbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufbase = mmap(NULL, (size_t)nbufs * bufsize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufnext = calloc(nbufs, sizeof *bufnext);
	buflen = calloc(nbufs, sizeof *buflen);
	if (br == MAP_FAILED || bufbase == MAP_FAILED || !bufnext || !buflen)
		die("buffers", ENOMEM);
	io_uring_buf_ring_init(br);
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = nbufs, .bgid = BGID};
	int ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret < 0)
		die("io_uring_register_buf_ring", -ret);
	for (unsigned i = 0; i < nbufs; i++)
		recycle((int)i);
	publish_buffers();

	arm_accept();
	arm_signal(sfd);
	printf("READY %s\n", bound);
	fflush(stdout);
	fprintf(stderr, "c-liburing echo: listening on %s (%s, %s descriptors, %u buffers of %u B)\n", bound,
		mode & IORING_SETUP_DEFER_TASKRUN ? "SINGLE_ISSUER|DEFER_TASKRUN"
		: mode ? "COOP_TASKRUN" : "no taskrun flags",
		fixed ? "direct" : "plain", nbufs, bufsize);

	while (!stopping) {
		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME)
			die("io_uring_submit_and_wait", -ret);
		unsigned head, n = 0;
		struct io_uring_cqe *cqe;
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t u = io_uring_cqe_get_data64(cqe);
			int idx = (int)(uint32_t)u;
			switch ((int)(u >> 32)) {
			case OP_ACCEPT: on_accept(cqe); break;
			case OP_RECV: on_recv(cqe, idx); break;
			case OP_SEND: on_send(cqe, idx); break;
			case OP_SIGNAL: stopping = 1; break;
			default: break;
			}
			n++;
		}
		io_uring_cq_advance(&ring, n);
		/* A recv that ran out of buffers is re-armed only once some
		 * came back, so it cannot spin on -ENOBUFS. */
		if (publish_buffers() && nwaiting)
			rearm_waiting();
	}
	io_uring_queue_exit(&ring);
	fprintf(stderr, "c-liburing echo: stats accepted=%lu closed=%lu short_sends=%lu enobufs=%lu\n",
		n_accepted, n_closed, n_short_sends, n_enobufs);
	return 0;
}
