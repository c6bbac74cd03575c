/* bench/bare_http.c: the bare HTTP stack under `magpie serve`, as a yardstick for bench/serve_load.sh.
 *
 * A libmicrohttpd server in the same threading mode as the real server (MHD_USE_INTERNAL_POLLING_THREAD with
 * epoll when the library has it, a pool of N polling threads, N = cores by default) that answers every request,
 * whatever its method or path, with one fixed JSON body shaped like a 10-item GET /v1/recommend answer. What
 * the full server costs above this is routing, authentication, the store, the model and the JSON it builds.
 *
 *   build/bench/bare_http [--port P] [--threads N] [--listen ADDR] [--body-items K]
 *
 * --port 0 (the default) picks a free port. Ready when it prints "bare_http: listening on http://ADDR:PORT" on
 * stderr; SIGTERM or SIGINT stop it (exit 0) after the requests in flight are answered. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What the request handler needs; read-only while the daemon runs. */
typedef struct bare_ctx {
    const char *body; /* the fixed answer (owned by main) */
    size_t body_len;
} bare_ctx;

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload_data, size_t *upload_data_size,
                              void **req_cls) {
    const bare_ctx *ctx = cls;
    /* The first call for a request only announces its headers; a request body (if any) is read and dropped in
     * the calls that follow, and the answer is queued once the body is complete, as a real server would. */
    if (*req_cls == NULL) {
        *req_cls = (void *)ctx;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* One response per request, as the real server builds one per answer. PERSISTENT: the body outlives it. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(ctx->body_len, (void *)ctx->body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* A body like a GET /v1/recommend answer with k items. Returns malloc'ed text (caller frees) or NULL. */
static char *make_body(int k, size_t *len) {
    size_t cap = 256 + (size_t)k * 160;
    char *b = malloc(cap);
    if (b == NULL)
        return NULL;
    size_t n = (size_t)snprintf(b, cap,
                                "{\"user\":\"user-000001\",\"model\":\"als\",\"model_version\":1,\"fallback\":false,"
                                "\"history\":42,\"items\":[");
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(b + n, cap - n,
                              "%s{\"item\":\"sku-%06d\",\"title\":\"Aqualis Brightening Serum 100ml\","
                              "\"category\":\"Beauty > Skin Care\",\"score\":0.%04d}",
                              i ? "," : "", 1000 + i * 37, 9000 - i * 13);
    n += (size_t)snprintf(b + n, cap - n, "]}");
    *len = n;
    return b;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "bare_http: %s: expected an integer in %ld..%ld, got \"%s\"\n", flag, lo, hi,
                s ? s : "(missing)");
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    long port = 0, threads = 0, body_items = 10;
    const char *listen_addr = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0) {
            if (parse_int(a, v, 0, 65535, &port))
                return 2;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if (parse_int(a, v, 0, 1024, &threads))
                return 2;
            i++;
        } else if (strcmp(a, "--body-items") == 0) {
            if (parse_int(a, v, 0, 1000, &body_items))
                return 2;
            i++;
        } else if (strcmp(a, "--listen") == 0 && v != NULL) {
            listen_addr = v;
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: bare_http [--port P (0: any free port)] [--threads N (0: cores)] [--listen ADDR]\n"
                   "                 [--body-items K (items in the fixed answer, default 10)]\n");
            return 0;
        } else {
            fprintf(stderr, "bare_http: unknown option \"%s\" (see --help)\n", a);
            return 2;
        }
    }
    if (threads == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? cores : 1;
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, listen_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "bare_http: --listen: expected an IPv4 address like 127.0.0.1, got \"%s\"\n", listen_addr);
        return 2;
    }

    bare_ctx ctx;
    char *body = make_body((int)body_items, &ctx.body_len);
    if (body == NULL) {
        fprintf(stderr, "bare_http: out of memory\n");
        return 1;
    }
    ctx.body = body;

    /* SIGTERM / SIGINT are taken synchronously by sigwait below: block them before MHD starts its threads so
     * that every thread inherits the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, 0, NULL, NULL, answer, &ctx, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned int)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)15, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "bare_http: cannot start the HTTP daemon on %s:%ld (port in use? try --port 0)\n",
                listen_addr, port);
        free(body);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned int bound = info ? info->port : (unsigned int)port;
    fprintf(stderr, "bare_http: %ld threads%s, %zu-byte answer\n", threads,
            (flags & MHD_USE_EPOLL) ? ", epoll" : "", ctx.body_len);
    fprintf(stderr, "bare_http: listening on http://%s:%u\n", listen_addr, bound);
    fflush(stderr);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    free(body);
    fprintf(stderr, "bare_http: stopped (signal %d)\n", sig);
    return 0;
}
