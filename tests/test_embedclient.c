/* The OpenAI-compatible embeddings client and the remote encoder, against a tiny HTTP server run in a thread
 * of the test (plain sockets, one connection at a time) that answers with canned OpenAI-format responses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "magpie/embedclient.h"
#include "magpie/encoder.h"
#include "magpie/json.h"
#include "magpie/store.h"
#include "test.h"

typedef enum {
    SRV_OK,          /* vectors [i, len(text_i), 1] for input i, listed in reverse order */
    SRV_NO_INDEX,    /* in order, without `index` */
    SRV_ERR_401,     /* {"error":{"message":...}} with status 401 */
    SRV_ERR_404_STR, /* {"error":"..."} with status 404 (Ollama style) */
    SRV_ERR_500_TXT, /* a plain-text 500 */
    SRV_MALFORMED,   /* cut-off JSON */
    SRV_WRONG_COUNT, /* one vector too few */
    SRV_DUP_INDEX,   /* index 0 twice */
    SRV_BAD_DIM,     /* the second vector shorter */
    SRV_BASE64,      /* embedding as a string */
    SRV_DIM4,        /* like SRV_OK but 4 values */
} srv_mode;

typedef struct srv {
    int fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    srv_mode mode;
    int requests;       /* requests answered */
    char auth[256];     /* Authorization header of the last request */
    char model[64];     /* "model" of the last request */
    char path[128];     /* request path of the last request */
    int max_inputs;     /* largest number of inputs in one request */
} srv;

/* Reads the inputs of a request body: count and lengths (up to 256). */
static int parse_inputs(const char *body, size_t len, size_t *lens, char *model, size_t model_cap) {
    char *scratch0 = malloc(len + 16), *scratch = scratch0;
    mp_json_cur c;
    mp_json_init(&c, body, len);
    int n = -1;
    mp_str key, v;
    int done;
    if (mp_json_peek(&c) != MP_JSON_OBJECT) goto out;
    mp_json_object_begin(&c);
    while (mp_json_object_next(&c, &scratch, &key, &done) == MP_OK && !done) {
        if (key.len == 5 && !memcmp(key.ptr, "input", 5)) {
            n = 0;
            mp_json_array_begin(&c);
            while (mp_json_array_next(&c, &done) == MP_OK && !done) {
                if (mp_json_string(&c, &scratch, &v) != MP_OK) goto out;
                if (n < 256) lens[n] = v.len;
                n++;
            }
        } else if (key.len == 5 && !memcmp(key.ptr, "model", 5)) {
            if (mp_json_string(&c, &scratch, &v) != MP_OK) goto out;
            snprintf(model, model_cap, "%.*s", (int)v.len, v.ptr);
        } else {
            mp_json_skip(&c, NULL);
        }
    }
out:
    free(scratch0);
    return n;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

static void answer(srv *s, int fd, int status, const char *ctype, const char *body) {
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                      ctype, strlen(body));
    send_all(fd, head, (size_t)hl);
    send_all(fd, body, strlen(body));
}

static void handle(srv *s, int fd) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    size_t body_at = 0, clen = 0;
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
        buf[len] = 0;
        if (!body_at) {
            char *e = strstr(buf, "\r\n\r\n");
            if (!e) continue;
            body_at = (size_t)(e - buf) + 4;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            clen = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
        }
        if (len >= body_at + clen) break;
    }
    buf[len] = 0;
    size_t lens[256];
    char model[64] = "";
    int n = body_at ? parse_inputs(buf + body_at, len - body_at, lens, model, sizeof model) : -1;
    pthread_mutex_lock(&s->lock);
    s->requests++;
    if (n > s->max_inputs) s->max_inputs = n;
    snprintf(s->model, sizeof s->model, "%s", model);
    char *a = strcasestr(buf, "\r\nAuthorization: ");
    s->auth[0] = 0;
    if (a) {
        a += 17;
        size_t k = strcspn(a, "\r\n");
        snprintf(s->auth, sizeof s->auth, "%.*s", (int)k, a);
    }
    size_t pl = strcspn(buf + 5, " ");
    snprintf(s->path, sizeof s->path, "%.*s", (int)pl, buf + 5);
    srv_mode mode = s->mode;
    pthread_mutex_unlock(&s->lock);

    size_t bcap = 256 + (n > 0 ? (size_t)n : 0) * 96;
    char *out = malloc(bcap);
    size_t o = (size_t)snprintf(out, bcap, "{\"object\":\"list\",\"data\":[");
    int count = mode == SRV_WRONG_COUNT ? n - 1 : n;
    for (int k = 0; k < count; k++) {
        int i = mode == SRV_NO_INDEX ? k : n - 1 - k; /* reverse order */
        int idx = mode == SRV_DUP_INDEX ? 0 : i;
        o += (size_t)snprintf(out + o, bcap - o, "%s{\"object\":\"embedding\",", k ? "," : "");
        if (mode != SRV_NO_INDEX) o += (size_t)snprintf(out + o, bcap - o, "\"index\":%d,", idx);
        if (mode == SRV_BASE64)
            o += (size_t)snprintf(out + o, bcap - o, "\"embedding\":\"AAAA\"}");
        else if (mode == SRV_BAD_DIM && k == 1)
            o += (size_t)snprintf(out + o, bcap - o, "\"embedding\":[%d,%zu]}", i, i < 256 ? lens[i] : 0);
        else
            o += (size_t)snprintf(out + o, bcap - o, "\"embedding\":[%d,%zu,1%s]}", i, i < 256 ? lens[i] : 0,
                                  mode == SRV_DIM4 ? ",0" : "");
    }
    snprintf(out + o, bcap - o, "],\"model\":\"%s\",\"usage\":{\"prompt_tokens\":1,\"total_tokens\":1}}", model);
    switch (mode) {
    case SRV_ERR_401:
        answer(s, fd, 401, "application/json",
               "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\"}}");
        break;
    case SRV_ERR_404_STR:
        answer(s, fd, 404, "application/json", "{\"error\":\"model \\\"nope\\\" not found, try pulling it first\"}");
        break;
    case SRV_ERR_500_TXT:
        answer(s, fd, 500, "text/plain", "upstream exploded");
        break;
    case SRV_MALFORMED:
        answer(s, fd, 200, "application/json", "{\"data\":[{\"index\":0,\"embedding\":[1,2");
        break;
    default:
        answer(s, fd, 200, "application/json", out);
    }
    free(out);
    free(buf);
}

static void *srv_main(void *arg) {
    srv *s = arg;
    for (;;) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0) return NULL; /* the listening socket was shut down */
        handle(s, fd);
        close(fd);
    }
}

static int srv_start(srv *s, srv_mode mode) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 16) != 0 ||
        getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->thread, NULL, srv_main, s);
}

static void srv_set(srv *s, srv_mode mode) {
    pthread_mutex_lock(&s->lock);
    s->mode = mode;
    pthread_mutex_unlock(&s->lock);
}

static void srv_stop(srv *s) {
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
}

static int open_client(srv *s, size_t batch, const char *key, mp_embed_client **c, mp_error *err) {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", s->port);
    mp_embed_client_opts o = {.base_url = url, .model = "test-model", .api_key = key, .batch = batch,
                              .timeout_ms = 20000};
    return mp_embed_client_open(&o, c, err);
}

MP_TEST(embedclient_order_and_batches) {
    srv s;
    CHECK(srv_start(&s, SRV_OK) == 0);
    mp_error err;
    mp_embed_client *c;
    CHECK_OK(open_client(&s, 2, "sekret", &c, &err), &err);
    CHECK(strcmp(mp_embed_client_url(c), "http://127.0.0.1:0/v1/embeddings") != 0);
    CHECK_CONTAINS(mp_embed_client_url(c), "/v1/embeddings");
    CHECK_EQ(mp_embed_client_dim(c), 0);
    const char *texts[5] = {"a", "bb", "ccc \"quoted\" \\ and\nnewline", "", "h\xc3\xa9"};
    float *v = NULL;
    uint32_t dim = 0;
    CHECK_OK(mp_embed_client_embed(c, texts, NULL, 5, &v, &dim, &err), &err);
    CHECK_EQ(dim, 3);
    for (int i = 0; i < 5; i++) {
        /* the answers listed the vectors in reverse: row i must still be input i (within its batch of 2) */
        CHECK_NEAR(v[i * 3 + 0], i % 2, 0);
        CHECK_NEAR(v[i * 3 + 1], strlen(texts[i]), 0); /* the text arrived intact (decoded length) */
        CHECK_NEAR(v[i * 3 + 2], 1, 0);
    }
    free(v);
    CHECK_EQ(s.requests, 3); /* 2 + 2 + 1 */
    CHECK_EQ(s.max_inputs, 2);
    CHECK(strcmp(s.auth, "Bearer sekret") == 0);
    CHECK(strcmp(s.model, "test-model") == 0);
    CHECK(strcmp(s.path, "/v1/embeddings") == 0);
    CHECK_EQ(mp_embed_client_dim(c), 3);
    /* lens given: texts need not be NUL-terminated */
    const char *raw[1] = {"abcdef"};
    size_t lens[1] = {2};
    CHECK_OK(mp_embed_client_embed(c, raw, lens, 1, &v, &dim, &err), &err);
    CHECK_NEAR(v[1], 2, 0);
    free(v);
    /* n == 0 asks nothing */
    int before = s.requests;
    CHECK_OK(mp_embed_client_embed(c, raw, NULL, 0, &v, &dim, &err), &err);
    CHECK(v == NULL);
    CHECK_EQ(dim, 3);
    CHECK_EQ(s.requests, before);
    /* a server that leaves `index` out answers in order */
    srv_set(&s, SRV_NO_INDEX);
    CHECK_OK(mp_embed_client_embed(c, texts, NULL, 2, &v, &dim, &err), &err);
    CHECK_NEAR(v[3], 1, 0);
    free(v);
    /* a later answer of another dimension is refused */
    srv_set(&s, SRV_DIM4);
    CHECK_EQ(mp_embed_client_embed(c, texts, NULL, 2, &v, &dim, &err), MP_ECORRUPT);
    CHECK_CONTAINS(err.msg, "4 values");
    mp_embed_client_free(c);

    /* the key from the environment, else none */
    setenv("MAGPIE_EMBED_API_KEY", "from-env", 1);
    srv_set(&s, SRV_OK);
    CHECK_OK(open_client(&s, 0, NULL, &c, &err), &err);
    CHECK_OK(mp_embed_client_embed(c, texts, NULL, 1, &v, &dim, &err), &err);
    free(v);
    CHECK(strcmp(s.auth, "Bearer from-env") == 0);
    mp_embed_client_free(c);
    unsetenv("MAGPIE_EMBED_API_KEY");
    char *saved = getenv("OPENAI_API_KEY") ? strdup(getenv("OPENAI_API_KEY")) : NULL;
    unsetenv("OPENAI_API_KEY");
    CHECK_OK(open_client(&s, 0, NULL, &c, &err), &err);
    CHECK_OK(mp_embed_client_embed(c, texts, NULL, 1, &v, &dim, &err), &err);
    free(v);
    CHECK(s.auth[0] == 0);
    mp_embed_client_free(c);
    if (saved) setenv("OPENAI_API_KEY", saved, 1);
    free(saved);
    srv_stop(&s);
}

MP_TEST(embedclient_errors) {
    static const struct {
        srv_mode mode;
        int code;
        const char *want;
    } cases[] = {
        {SRV_ERR_401, MP_EINVAL, "HTTP 401: Incorrect API key provided"},
        {SRV_ERR_404_STR, MP_ENOTFOUND, "HTTP 404: model \"nope\" not found, try pulling it first"},
        {SRV_ERR_500_TXT, MP_EIO, "HTTP 500: upstream exploded"},
        {SRV_MALFORMED, MP_ECORRUPT, "malformed JSON in the answer"},
        {SRV_WRONG_COUNT, MP_ECORRUPT, "2 vectors for 3 inputs"},
        {SRV_DUP_INDEX, MP_ECORRUPT, "`index` 0 appears twice"},
        {SRV_BAD_DIM, MP_ECORRUPT, "data[1]: the vector has 2 values"},
        {SRV_BASE64, MP_ECORRUPT, "base64"},
    };
    srv s;
    CHECK(srv_start(&s, SRV_OK) == 0);
    const char *texts[3] = {"x", "yy", "zzz"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_set(&s, cases[i].mode);
        mp_error err;
        mp_embed_client *c;
        CHECK_OK(open_client(&s, 0, "k", &c, &err), &err);
        float *v = (float *)1;
        uint32_t dim;
        int rc = mp_embed_client_embed(c, texts, NULL, 3, &v, &dim, &err);
        mp_embed_client_free(c);
        CHECK_MSG(rc == cases[i].code && strstr(err.msg, cases[i].want), "case %zu: rc %s, \"%s\", want \"%s\"", i,
                  mp_err_name(rc), err.msg, cases[i].want);
        CHECK(v == NULL);
        CHECK_CONTAINS(err.msg, "/v1/embeddings"); /* every message names the endpoint */
    }
    srv_stop(&s);

    /* nothing listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", ntohs(a.sin_port));
    mp_embed_client_opts o = {.base_url = url, .model = "m", .timeout_ms = 5000};
    mp_error err;
    mp_embed_client *c;
    CHECK_OK(mp_embed_client_open(&o, &c, &err), &err);
    float *v;
    uint32_t dim;
    CHECK_EQ(mp_embed_client_embed(c, texts, NULL, 1, &v, &dim, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "is the server running");
    mp_embed_client_free(c);

    /* bad options */
    o.base_url = "localhost:11434";
    CHECK_EQ(mp_embed_client_open(&o, &c, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "http://");
    o.base_url = url;
    o.model = "";
    CHECK_EQ(mp_embed_client_open(&o, &c, &err), MP_EINVAL);
}

MP_TEST(embedclient_encoder_spec) {
    mp_error err;
    mp_encoder *e;
    CHECK_EQ(mp_encoder_open("word2vec", 0, &e, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "use-lite");
    CHECK_CONTAINS(err.msg, "openai:MODEL@URL");
    CHECK_EQ(mp_encoder_open("openai:no-url", 0, &e, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "openai:MODEL@URL");
    CHECK_OK(mp_encoder_open("openai:nomic-embed-text:v1.5@http://127.0.0.1:9/v1", 0, &e, &err), &err);
    CHECK(strcmp(mp_encoder_name(e), "openai:nomic-embed-text:v1.5") == 0);
    CHECK_EQ(mp_encoder_dim(e), 0);
    CHECK_OK(mp_encoder_prepare(e, &err), &err); /* nothing to load for a remote encoder */
    mp_encoder_free(e);
    /* a USE-Lite package folder that is not there: the error names the install command */
    CHECK_EQ(mp_encoder_open("use-lite:/nonexistent/dir", 0, &e, &err), MP_ENOTFOUND);
    CHECK_CONTAINS(err.msg, "npm install");
}

typedef struct norm_check {
    int n, bad;
} norm_check;

static int check_norm(void *ctx, uint32_t id, const float *v, uint32_t dim, uint64_t text_hash) {
    norm_check *c = ctx;
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++)
        ss += (double)v[i] * v[i];
    if (fabs(ss - 1.0) > 1e-5 || text_hash == 0) c->bad++;
    c->n++;
    return 0;
}

MP_TEST(embedclient_encoder_embed_items_cache) {
    srv s;
    CHECK(srv_start(&s, SRV_OK) == 0);
    mp_error err;
    char path[1024];
    snprintf(path, sizeof path, "%s/enc.db", mp_test_tmpdir(t));
    mp_store *st;
    CHECK_OK(mp_store_open(&st, path, MP_STORE_READWRITE, &err), &err);
    const int n_items = 150;
    for (int i = 0; i < n_items; i++) {
        char id[32], title[64];
        snprintf(id, sizeof id, "sku-%d", i);
        snprintf(title, sizeof title, "Item number %d", i);
        mp_item it = {.id = {id, strlen(id)}, .available = 1};
        if (i % 10 != 3) it.title = (mp_str){title, strlen(title)}; /* every tenth has no text at all */
        CHECK_OK(mp_store_put_item(st, (uint32_t)i, &it, &err), &err);
    }
    char spec[128];
    snprintf(spec, sizeof spec, "openai:test-model@http://127.0.0.1:%d/v1", s.port);
    mp_encoder *e;
    CHECK_OK(mp_encoder_open(spec, 3, &e, &err), &err);
    uint64_t computed = 0, cached = 0;
    CHECK_OK(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), &err);
    CHECK_EQ(computed, 135);
    CHECK_EQ(cached, 0);
    CHECK_EQ(s.max_inputs, 64); /* batched */
    CHECK_EQ(s.requests, 3);    /* 64 + 64 + 7 */
    CHECK_EQ(mp_encoder_dim(e), 3);
    norm_check nc = {0};
    CHECK_OK(mp_store_scan_embeddings(st, MP_KIND_ITEMS, "openai:test-model", check_norm, &nc, &err), &err);
    CHECK_EQ(nc.n, 135);
    CHECK_EQ(nc.bad, 0); /* unit length, with the text hash */
    /* the vector of item 7 is its own (row order kept through the batches and threads) */
    float v[3];
    uint32_t dim;
    CHECK_OK(mp_store_get_embedding(st, MP_KIND_ITEMS, 7, "openai:test-model", v, 3, &dim, NULL, &err), &err);
    const char *t7 = "Item number 7";
    /* the server answers [i_in_batch, len, 1]; item 7 is input 6 of the first batch (item 3 has no text) */
    double norm = sqrt(6.0 * 6.0 + (double)strlen(t7) * strlen(t7) + 1.0);
    CHECK_NEAR(v[0], 6.0 / norm, 1e-6);
    CHECK_NEAR(v[1], strlen(t7) / norm, 1e-6);

    /* second run: everything cached, no request */
    int before = s.requests;
    CHECK_OK(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), &err);
    CHECK_EQ(computed, 0);
    CHECK_EQ(cached, 135);
    CHECK_EQ(s.requests, before);
    /* a changed title is embedded again, an item that gained a text too */
    mp_item ch = {.id = {"sku-5", 5}, .title = {"Renamed", 7}, .available = 1};
    CHECK_OK(mp_store_put_item(st, 5, &ch, &err), &err);
    mp_item gained = {.id = {"sku-3", 5}, .description = {"now with words", 14}, .available = 1};
    CHECK_OK(mp_store_put_item(st, 3, &gained, &err), &err);
    CHECK_OK(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), &err);
    CHECK_EQ(computed, 2);
    CHECK_EQ(cached, 134);
    mp_encoder_free(e);

    /* a server that fails: the error comes back, and what was committed stays */
    srv_set(&s, SRV_ERR_500_TXT);
    CHECK_OK(mp_encoder_open(spec, 2, &e, &err), &err);
    mp_item ch2 = {.id = {"sku-6", 5}, .title = {"Renamed too", 11}, .available = 1};
    CHECK_OK(mp_store_put_item(st, 6, &ch2, &err), &err);
    CHECK_EQ(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), MP_EIO);
    CHECK_CONTAINS(err.msg, "HTTP 500");
    CHECK_EQ(computed, 0);
    mp_encoder_free(e);
    /* a changed model dimension asks to recompute */
    srv_set(&s, SRV_DIM4);
    CHECK_OK(mp_encoder_open(spec, 1, &e, &err), &err);
    CHECK_EQ(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), MP_EINVAL);
    CHECK_CONTAINS(err.msg, "--recompute");
    uint64_t dropped = 0;
    CHECK_OK(mp_store_delete_embeddings(st, MP_KIND_ITEMS, "openai:test-model", &dropped, &err), &err);
    CHECK_EQ(dropped, 136);
    CHECK_OK(mp_encoder_embed_items(e, st, NULL, &computed, &cached, &err), &err);
    CHECK_EQ(computed, 136);
    mp_encoder_free(e);
    mp_store_close(st);
    srv_stop(&s);
}
