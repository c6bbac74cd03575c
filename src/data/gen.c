/* The deterministic synthetic demo shop (magpie/gen.h).
 *
 * Catalog: a fixed tree of leaf categories, each with brands, product nouns and adjectives in English and
 * Chinese, a log-normal price distribution and a popularity weight. Items get a category, a brand, a title
 * ("Lumière Hydrating Face Cream 50ml" with a Chinese title in attrs), a price, a latent vector near their
 * category's centroid and a Zipf-like popularity.
 * Users get 1-3 favourite categories, a price sensitivity, an activity level and a latent vector near their
 * favourites. Each user has Poisson(sessions_per_user * activity) sessions at sorted random times; a session
 * browses mostly one category, picking among a few popularity-drawn candidates the one that fits the user's
 * taste best; each view may become a click, a cart and a purchase (probabilities rising with affinity), with
 * occasional favs; some purchases get a review (rating 1-5 and matching EN/ZH text) at the start of the user's
 * next session. A user's event times strictly increase, so no (user, item, type, ts) repeats.
 *
 * Determinism: the catalog comes from its own generator stream (seed, n_items) and each user from a stream
 * seeded by (seed, user index), so output depends only on the options. Output is buffered, and the hot path
 * formats numbers by hand (no printf, no malloc per event). */
#include "magpie/gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "magpie/json.h"
#include "magpie/rng.h"

#define GEN_DIM 8               /* latent factor size */
#define GEN_CANDIDATES 3        /* candidates drawn per view; the best-fitting one is viewed */
#define GEN_MAX_PENDING 16      /* reviews waiting for the user's next session */
#define GEN_OUTBUF (1u << 20)   /* bytes buffered per output file */

/* ---- the catalog tables ---- */

typedef struct gen_word {
    const char *en, *zh;
} gen_word;

typedef struct gen_category {
    const char *top, *leaf;    /* "Beauty", "Skin Care" */
    double weight;             /* relative popularity */
    double price_median;       /* log-normal median and spread */
    double price_sigma;
    int book;                  /* titles "The <adj> <noun>" without brand or size */
    const char *brands[6];     /* NULL-terminated */
    gen_word nouns[6];
    gen_word adjs[5];
    const char *sizes[5];
} gen_category;

#define W(a, b) {a, b}
static const gen_category k_cats[] = {
    {"Beauty", "Skin Care", 9, 32, 0.5, 0, {"Lumière", "Aqualis", "Dermavera", "Petal & Pine", NULL},
     {W("Face Cream", "面霜"), W("Serum", "精华液"), W("Cleanser", "洁面乳"), W("Toner", "爽肤水"),
      W("Sunscreen SPF50", "防晒霜"), W("Eye Cream", "眼霜")},
     {W("Hydrating", "保湿"), W("Brightening", "亮白"), W("Soothing", "舒缓"), W("Anti-Aging", "抗老"), {0, 0}},
     {"30ml", "50ml", "100ml", NULL}},
    {"Beauty", "Makeup", 7, 24, 0.5, 0, {"Rouge Atelier", "Maison Belle", "Kiko Bloom", NULL},
     {W("Lipstick", "口红"), W("Foundation", "粉底液"), W("Mascara", "睫毛膏"), W("Eyeshadow Palette", "眼影盘"),
      W("Blush", "腮红"), {0, 0}},
     {W("Matte", "哑光"), W("Long-Lasting", "持久"), W("Velvet", "丝绒"), W("Natural", "自然"), {0, 0}},
     {"No. 01", "No. 05", "No. 12", NULL}},
    {"Beauty", "Hair Care", 5, 18, 0.4, 0, {"Silkroot", "Verdant", "Halo & Co", NULL},
     {W("Shampoo", "洗发水"), W("Conditioner", "护发素"), W("Hair Mask", "发膜"), W("Hair Oil", "护发精油"), {0, 0}},
     {W("Repairing", "修护"), W("Volumizing", "丰盈"), W("Smoothing", "顺滑"), {0, 0}},
     {"250ml", "500ml", NULL}},
    {"Beauty", "Fragrance", 3, 65, 0.5, 0, {"Maison Belle", "Noir Atelier", NULL},
     {W("Eau de Parfum", "香水"), W("Body Mist", "身体喷雾"), {0, 0}},
     {W("Floral", "花香"), W("Woody", "木质"), W("Citrus", "柑橘"), {0, 0}},
     {"30ml", "50ml", "100ml", NULL}},
    {"Electronics", "Phones", 6, 420, 0.5, 0, {"Nova", "Orbit", "Zephyr", NULL},
     {W("Smartphone", "智能手机"), W("Foldable Phone", "折叠屏手机"), {0, 0}},
     {W("5G", "5G"), W("Pro", "专业版"), W("Lite", "青春版"), {0, 0}},
     {"128GB", "256GB", "512GB", NULL}},
    {"Electronics", "Audio", 6, 80, 0.7, 0, {"Sonix", "Orbit", "Echo Lane", NULL},
     {W("Wireless Earbuds", "无线耳机"), W("Headphones", "头戴式耳机"), W("Bluetooth Speaker", "蓝牙音箱"), {0, 0}},
     {W("Noise-Cancelling", "降噪"), W("Deep Bass", "重低音"), W("Portable", "便携"), {0, 0}},
     {"Black", "White", "Blue", NULL}},
    {"Electronics", "Laptops", 3, 900, 0.4, 0, {"Zephyr", "Quanta", NULL},
     {W("Laptop", "笔记本电脑"), W("Ultrabook", "轻薄本"), {0, 0}},
     {W("14-inch", "14英寸"), W("16-inch", "16英寸"), W("Gaming", "游戏"), {0, 0}},
     {"16GB", "32GB", NULL}},
    {"Electronics", "Accessories", 8, 15, 0.6, 0, {"Voltio", "Nova", "Gripline", NULL},
     {W("Phone Case", "手机壳"), W("USB-C Cable", "数据线"), W("Power Bank", "充电宝"), W("Charger", "充电器"),
      {0, 0}},
     {W("Fast-Charging", "快充"), W("Slim", "超薄"), W("Rugged", "防摔"), {0, 0}},
     {"1m", "2m", "10000mAh", "20000mAh", NULL}},
    {"Electronics", "Cameras", 2, 550, 0.6, 0, {"Lumen", "Quanta", NULL},
     {W("Mirrorless Camera", "微单相机"), W("Action Camera", "运动相机"), W("Prime Lens", "定焦镜头"), {0, 0}},
     {W("Compact", "小巧"), W("4K", "4K"), W("Weatherproof", "防水"), {0, 0}},
     {"Kit", "Body", NULL}},
    {"Home", "Kitchen", 7, 40, 0.7, 0, {"Hearth & Co", "Cucina", "Mizu", NULL},
     {W("Chef's Knife", "厨师刀"), W("Nonstick Pan", "不粘锅"), W("Electric Kettle", "电热水壶"),
      W("Rice Cooker", "电饭煲"), W("Blender", "破壁机"), {0, 0}},
     {W("Stainless", "不锈钢"), W("Ceramic", "陶瓷"), W("Compact", "小巧"), {0, 0}},
     {"20cm", "24cm", "1.5L", NULL}},
    {"Home", "Furniture", 3, 150, 0.6, 0, {"Nordhus", "Oakline", NULL},
     {W("Office Chair", "办公椅"), W("Bookshelf", "书架"), W("Side Table", "边桌"), W("Desk", "书桌"), {0, 0}},
     {W("Ergonomic", "人体工学"), W("Solid Wood", "实木"), W("Minimalist", "简约"), {0, 0}},
     {"Oak", "Walnut", "White", NULL}},
    {"Home", "Bedding", 4, 60, 0.5, 0, {"Cloudnest", "Linen House", NULL},
     {W("Duvet", "羽绒被"), W("Pillow", "枕头"), W("Sheet Set", "床单套件"), {0, 0}},
     {W("Cotton", "纯棉"), W("Silk", "真丝"), W("Cooling", "凉感"), {0, 0}},
     {"Single", "Queen", "King", NULL}},
    {"Home", "Decor", 4, 25, 0.6, 0, {"Lumière Home", "Wick & Co", NULL},
     {W("Scented Candle", "香薰蜡烛"), W("Vase", "花瓶"), W("Wall Art", "装饰画"), {0, 0}},
     {W("Handmade", "手工"), W("Vintage", "复古"), W("Modern", "现代"), {0, 0}},
     {"Small", "Large", NULL}},
    {"Sports", "Running", 6, 70, 0.5, 0, {"Stride", "Apex", "Fleetfoot", NULL},
     {W("Running Shoes", "跑鞋"), W("Running Shorts", "跑步短裤"), W("Sports Watch", "运动手表"), {0, 0}},
     {W("Lightweight", "轻量"), W("Breathable", "透气"), W("Cushioned", "缓震"), {0, 0}},
     {"Size 40", "Size 42", "Size 44", NULL}},
    {"Sports", "Yoga", 4, 30, 0.5, 0, {"Lotus Form", "Apex", NULL},
     {W("Yoga Mat", "瑜伽垫"), W("Yoga Leggings", "瑜伽裤"), W("Foam Roller", "泡沫轴"), {0, 0}},
     {W("Non-Slip", "防滑"), W("Eco", "环保"), W("High-Waist", "高腰"), {0, 0}},
     {"S", "M", "L", NULL}},
    {"Sports", "Cycling", 2, 60, 0.7, 0, {"Velo", "Stride", NULL},
     {W("Bike Helmet", "骑行头盔"), W("Bike Light", "车灯"), W("Cycling Jersey", "骑行服"), {0, 0}},
     {W("Aero", "气动"), W("Reflective", "反光"), W("Lightweight", "轻量"), {0, 0}},
     {"S", "M", "L", NULL}},
    {"Sports", "Outdoor", 3, 55, 0.7, 0, {"Summit", "Trailhead", NULL},
     {W("Tent", "帐篷"), W("Hiking Backpack", "登山包"), W("Water Bottle", "水壶"), {0, 0}},
     {W("Waterproof", "防水"), W("Ultralight", "超轻"), W("Insulated", "保温"), {0, 0}},
     {"20L", "35L", "2-Person", NULL}},
    {"Books", "Fiction", 5, 14, 0.3, 1, {"Harbor Press", "Lantern Books", NULL},
     {W("Harbor", "港湾"), W("Garden", "花园"), W("River", "河流"), W("Winter", "冬天"), W("Lighthouse", "灯塔"),
      {0, 0}},
     {W("Silent", "寂静的"), W("Last", "最后的"), W("Hidden", "隐秘的"), W("Golden", "金色的"), {0, 0}},
     {NULL}},
    {"Books", "Cooking", 2, 22, 0.3, 1, {"Lantern Books", "Cucina Press", NULL},
     {W("Kitchen", "厨房"), W("Table", "餐桌"), W("Noodles", "面条"), W("Baking Book", "烘焙书"), {0, 0}},
     {W("Everyday", "家常的"), W("Simple", "简单的"), W("Weekend", "周末的"), {0, 0}},
     {NULL}},
    {"Fashion", "Bags", 4, 45, 0.7, 0, {"Maison Belle", "Carryall", NULL},
     {W("Tote Bag", "托特包"), W("Crossbody Bag", "斜挎包"), W("Wallet", "钱包"), {0, 0}},
     {W("Leather", "真皮"), W("Canvas", "帆布"), W("Quilted", "菱格"), {0, 0}},
     {"Black", "Tan", "Navy", NULL}},
    {"Fashion", "Shoes", 4, 65, 0.5, 0, {"Stride", "Carryall", NULL},
     {W("Sneakers", "运动鞋"), W("Loafers", "乐福鞋"), W("Boots", "靴子"), {0, 0}},
     {W("Classic", "经典"), W("Leather", "真皮"), W("Everyday", "百搭"), {0, 0}},
     {"Size 38", "Size 40", "Size 42", NULL}},
};
#undef W
#define N_CATS (sizeof k_cats / sizeof k_cats[0])

static const char *const k_review_en[5][3] = {
    {"Terrible, it broke after a week. Returning it.", "Very disappointed: cheap and not as described.",
     "Waste of money, would not recommend."},
    {"Not great, expected better quality.", "Meh. It works, but barely, and it feels flimsy.",
     "Below expectations, the photos are misleading."},
    {"It's okay, nothing special.", "Average quality, does the job.", "Fine for the price, but I've seen better."},
    {"Good value, works as described.", "Nice quality, fast delivery.", "Pretty happy with it, minor flaws."},
    {"Absolutely love it, would buy again!", "Excellent quality, exceeded my expectations.",
     "Perfect, my new favourite. Five stars."},
};
static const char *const k_review_zh[5][3] = {
    {"很差，用了一周就坏了，已退货。", "非常失望，质量差，与描述不符。", "浪费钱，不推荐。"},
    {"不太好，质量一般。", "勉强能用，做工粗糙。", "低于预期，图片有误导。"},
    {"一般般，没什么特别的。", "质量中等，能用。", "这个价格还行吧。"},
    {"性价比不错，和描述一致。", "质量挺好，物流很快。", "比较满意，有些小瑕疵。"},
    {"非常喜欢，会回购！", "质量超出预期，太棒了。", "完美，五星好评！"},
};
static const char *const k_cities_en[] = {"London", "New York", "Berlin", "Sydney", "Toronto", "Paris", "Singapore"};
static const char *const k_cities_zh[] = {"上海", "北京", "深圳", "杭州", "成都", "广州"};
static const char *const k_ages[] = {"18-24", "25-34", "35-44", "45-54", "55+"};

/* ---- buffered output ---- */

typedef struct outbuf {
    FILE *f;
    const char *path;
    char *buf;
    size_t len;
    int failed; /* errno of the first failed write, or 0 */
} outbuf;

static void ob_flush(outbuf *o) {
    if (o->len && !o->failed && fwrite(o->buf, 1, o->len, o->f) != o->len) o->failed = errno ? errno : EIO;
    o->len = 0;
}

static inline void ob_reserve(outbuf *o, size_t n) {
    if (o->len + n > GEN_OUTBUF) ob_flush(o);
}

static inline void ob_mem(outbuf *o, const char *s, size_t n) {
    if (n > GEN_OUTBUF / 2) { /* never happens with our strings; keep the buffer bound honest anyway */
        ob_flush(o);
        if (!o->failed && fwrite(s, 1, n, o->f) != n) o->failed = errno ? errno : EIO;
        return;
    }
    ob_reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static inline void ob_str(outbuf *o, const char *s) { ob_mem(o, s, strlen(s)); }

static inline void ob_ch(outbuf *o, char c) {
    ob_reserve(o, 1);
    o->buf[o->len++] = c;
}

static void ob_u64(outbuf *o, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ob_reserve(o, (size_t)n);
    while (n) o->buf[o->len++] = tmp[--n];
}

static void ob_i64(outbuf *o, int64_t v) {
    if (v < 0) {
        ob_ch(o, '-');
        ob_u64(o, (uint64_t)0 - (uint64_t)v);
    } else {
        ob_u64(o, (uint64_t)v);
    }
}

/* Zero-padded to `width` digits: "user-000042". */
static void ob_u64_pad(outbuf *o, uint64_t v, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width && n < 20) tmp[n++] = '0';
    ob_reserve(o, (size_t)n);
    while (n) o->buf[o->len++] = tmp[--n];
}

/* A JSON string literal (mp_json_escape), written straight into the output buffer. */
static void ob_json_str(outbuf *o, const char *s) {
    size_t len = strlen(s), need = mp_json_escape(NULL, 0, s, len);
    if (need + 1 > GEN_OUTBUF / 2) { /* never with our strings */
        char *t = malloc(need + 1);
        if (!t) {
            o->failed = ENOMEM;
            return;
        }
        mp_json_escape(t, need + 1, s, len);
        ob_mem(o, t, need);
        free(t);
        return;
    }
    ob_reserve(o, need + 1);
    mp_json_escape(o->buf + o->len, need + 1, s, len);
    o->len += need;
}

/* A CSV field: quoted (with doubled quotes) when it holds a comma, quote or line break. */
static void ob_csv_field(outbuf *o, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        ob_str(o, s);
        return;
    }
    ob_ch(o, '"');
    for (; *s; s++) {
        if (*s == '"') ob_ch(o, '"');
        ob_ch(o, *s);
    }
    ob_ch(o, '"');
}

/* A price with two decimals. */
static void ob_price(outbuf *o, double p) {
    uint64_t cents = (uint64_t)llround(p * 100);
    ob_u64(o, cents / 100);
    ob_ch(o, '.');
    ob_u64_pad(o, cents % 100, 2);
}

static int ob_open(outbuf *o, const char *path, mp_error *err) {
    memset(o, 0, sizeof *o);
    o->path = path;
    o->buf = malloc(GEN_OUTBUF);
    if (!o->buf) return mp_error_set(err, MP_ENOMEM, "gen-demo: out of memory");
    o->f = fopen(path, "wb");
    if (!o->f) {
        int e = errno;
        free(o->buf);
        o->buf = NULL;
        return mp_error_set(err, MP_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    return MP_OK;
}

/* Flushes and closes; reports the first write error. Safe on a never-opened (zeroed) outbuf. */
static int ob_close(outbuf *o, int rc, mp_error *err) {
    if (!o->f) {
        free(o->buf);
        return rc;
    }
    ob_flush(o);
    if (fclose(o->f) != 0 && !o->failed) o->failed = errno ? errno : EIO;
    o->f = NULL;
    free(o->buf);
    o->buf = NULL;
    if (rc == MP_OK && o->failed)
        return mp_error_set(err, MP_EIO, "%s: write failed: %s", o->path, strerror(o->failed));
    return rc;
}

/* ---- the model of the shop ---- */

typedef struct gen_item {
    uint16_t cat;
    float vec[GEN_DIM];
    float log_price_z; /* (log price - category median) / sigma */
} gen_item;

typedef struct gen_shop {
    const mp_gen_opts *o;
    gen_item *items;             /* [n_items] */
    float centroid[N_CATS][GEN_DIM];
    double cat_cdf[N_CATS];      /* cumulative category weights (normalised) */
    uint32_t *cat_items;         /* items grouped by category: cat_start[c] .. cat_start[c+1] */
    uint32_t cat_start[N_CATS + 1];
    double *cat_item_cdf;        /* [n_items] cumulative popularity within each category's group */
} gen_shop;

static size_t count_words(const gen_word *w, size_t cap) {
    size_t n = 0;
    while (n < cap && w[n].en) n++;
    return n;
}
static size_t count_strs(const char *const *s, size_t cap) {
    size_t n = 0;
    while (n < cap && s[n]) n++;
    return n;
}

static uint32_t pick_cdf(const double *cdf, uint32_t n, double u) {
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static uint32_t pick_category(const gen_shop *s, mp_rng *rng) {
    return pick_cdf(s->cat_cdf, N_CATS, mp_rng_uniform(rng));
}

static float dotv(const float *a, const float *b) {
    float d = 0;
    for (int k = 0; k < GEN_DIM; k++) d += a[k] * b[k];
    return d;
}

static int write_items(gen_shop *s, const char *dir, const mp_progress *progress, mp_error *err) {
    const mp_gen_opts *o = s->o;
    uint32_t n = o->n_items;
    mp_rng rng;
    mp_rng_seed(&rng, o->seed * 0x9E3779B97F4A7C15ull + 1);

    double total = 0;
    for (size_t c = 0; c < N_CATS; c++) total += k_cats[c].weight;
    double acc = 0;
    for (size_t c = 0; c < N_CATS; c++) {
        acc += k_cats[c].weight / total;
        s->cat_cdf[c] = acc;
        for (int k = 0; k < GEN_DIM; k++) s->centroid[c][k] = (float)(mp_rng_normal(&rng) * 0.6);
    }
    s->cat_cdf[N_CATS - 1] = 1.0;

    /* Popularity: a random permutation of Zipf(0.9) weights. */
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    double *popw = malloc((size_t)n * sizeof *popw);
    if (!perm || !popw) {
        free(perm);
        free(popw);
        return mp_error_set(err, MP_ENOMEM, "gen-demo: out of memory for %u items", n);
    }
    for (uint32_t i = 0; i < n; i++) perm[i] = i;
    mp_rng_shuffle_u32(&rng, perm, n);
    for (uint32_t i = 0; i < n; i++) popw[perm[i]] = 1.0 / pow((double)i + 1.0, 0.9);
    free(perm);

    char path[4096];
    snprintf(path, sizeof path, "%s/items.jsonl", dir);
    outbuf ob;
    int rc = ob_open(&ob, path, err);
    if (rc) {
        free(popw);
        return rc;
    }
    uint32_t counts[N_CATS] = {0};
    char title[256], title_zh[256], desc[512];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = pick_category(s, &rng);
        const gen_category *gc = &k_cats[c];
        gen_item *it = &s->items[i];
        it->cat = (uint16_t)c;
        counts[c]++;
        for (int k = 0; k < GEN_DIM; k++) it->vec[k] = s->centroid[c][k] + (float)(mp_rng_normal(&rng) * 0.5);
        double z = mp_rng_normal(&rng);
        it->log_price_z = (float)z;
        double price = gc->price_median * exp(z * gc->price_sigma);
        price = floor(price) + 0.99;
        const char *brand = gc->brands[mp_rng_below(&rng, count_strs(gc->brands, 6))];
        const gen_word *noun = &gc->nouns[mp_rng_below(&rng, count_words(gc->nouns, 6))];
        const gen_word *adj = &gc->adjs[mp_rng_below(&rng, count_words(gc->adjs, 5))];
        size_t n_sizes = count_strs(gc->sizes, 5);
        const char *size = n_sizes ? gc->sizes[mp_rng_below(&rng, n_sizes)] : NULL;
        if (gc->book) {
            snprintf(title, sizeof title, "The %s %s", adj->en, noun->en);
            snprintf(title_zh, sizeof title_zh, "%s%s", adj->zh, noun->zh);
            snprintf(desc, sizeof desc, "A %s from %s. Paperback, %u pages.",
                     strcmp(gc->leaf, "Fiction") == 0 ? "novel" : "cookbook", brand,
                     180 + (unsigned)mp_rng_below(&rng, 300));
        } else {
            snprintf(title, sizeof title, "%s %s %s %s", brand, adj->en, noun->en, size);
            snprintf(title_zh, sizeof title_zh, "%s %s%s %s", brand, adj->zh, noun->zh, size);
            snprintf(desc, sizeof desc, "%s %s by %s, %s. Part of our %s range.", adj->en, noun->en, brand, size,
                     gc->leaf);
        }
        int available = mp_rng_below(&rng, 100) >= 3;

        ob_str(&ob, "{\"id\":\"sku-");
        ob_u64_pad(&ob, i + 1, 6);
        ob_str(&ob, "\",\"title\":");
        ob_json_str(&ob, title);
        ob_str(&ob, ",\"description\":");
        ob_json_str(&ob, desc);
        ob_str(&ob, ",\"category\":[");
        ob_json_str(&ob, gc->top);
        ob_ch(&ob, ',');
        ob_json_str(&ob, gc->leaf);
        ob_str(&ob, "],\"brand\":");
        ob_json_str(&ob, brand);
        ob_str(&ob, ",\"price\":");
        ob_price(&ob, price);
        ob_str(&ob, ",\"attrs\":{\"title_zh\":");
        ob_json_str(&ob, title_zh);
        if (size) {
            ob_str(&ob, ",\"variant\":");
            ob_json_str(&ob, size);
        }
        ob_str(&ob, "},\"available\":");
        ob_str(&ob, available ? "true" : "false");
        ob_str(&ob, "}\n");
        if ((i & 0xFFF) == 0xFFF) mp_progress_report(progress, "items", i + 1, n);
    }
    mp_progress_report(progress, "items", n, n);
    rc = ob_close(&ob, MP_OK, err);

    /* Group items by category with cumulative popularity, for sampling. */
    s->cat_start[0] = 0;
    for (size_t c = 0; c < N_CATS; c++) s->cat_start[c + 1] = s->cat_start[c] + counts[c];
    uint32_t fill[N_CATS];
    for (size_t c = 0; c < N_CATS; c++) fill[c] = s->cat_start[c];
    for (uint32_t i = 0; i < n; i++) s->cat_items[fill[s->items[i].cat]++] = i;
    for (size_t c = 0; c < N_CATS; c++) {
        double sum = 0;
        for (uint32_t j = s->cat_start[c]; j < s->cat_start[c + 1]; j++) sum += popw[s->cat_items[j]];
        double run = 0;
        for (uint32_t j = s->cat_start[c]; j < s->cat_start[c + 1]; j++) {
            run += popw[s->cat_items[j]] / sum;
            s->cat_item_cdf[j] = run;
        }
        if (s->cat_start[c + 1] > s->cat_start[c]) s->cat_item_cdf[s->cat_start[c + 1] - 1] = 1.0;
    }
    free(popw);
    return rc;
}

/* ---- users and sessions ---- */

typedef struct gen_user {
    uint32_t fav[3];
    double fav_w[3]; /* cumulative probabilities of the favourites */
    int n_fav;
    float vec[GEN_DIM];
    double price_sens; /* how much a high price (for the category) lowers affinity */
    double activity;
    int zh;
} gen_user;

typedef struct pending_review {
    uint32_t item;
    int rating;
} pending_review;

typedef struct gen_writer {
    outbuf ob;
    int csv;
    uint64_t n_events, max_events;
    mp_gen_report *rep;
} gen_writer;

static int writer_full(const gen_writer *w) { return w->max_events && w->n_events >= w->max_events; }

static void write_event(gen_writer *w, uint32_t user, uint32_t item, int type, int64_t ts, int rating,
                        const char *text, uint32_t session_user, int session_no) {
    if (writer_full(w)) return;
    outbuf *o = &w->ob;
    if (w->csv) {
        ob_str(o, "user-");
        ob_u64_pad(o, user + 1, 6);
        ob_str(o, ",sku-");
        ob_u64_pad(o, item + 1, 6);
        ob_ch(o, ',');
        ob_str(o, mp_event_type_name(type));
        ob_ch(o, ',');
        ob_i64(o, ts);
        ob_ch(o, ',');
        if (rating) ob_u64(o, (uint64_t)rating);
        ob_ch(o, ',');
        if (text) ob_csv_field(o, text);
        ob_ch(o, ',');
        if (session_no >= 0) {
            ob_ch(o, 's');
            ob_u64(o, session_user + 1);
            ob_ch(o, '-');
            ob_u64(o, (uint64_t)session_no + 1);
        }
        ob_ch(o, '\n');
    } else {
        ob_str(o, "{\"user\":\"user-");
        ob_u64_pad(o, user + 1, 6);
        ob_str(o, "\",\"item\":\"sku-");
        ob_u64_pad(o, item + 1, 6);
        ob_str(o, "\",\"type\":\"");
        ob_str(o, mp_event_type_name(type));
        ob_str(o, "\",\"ts\":");
        ob_i64(o, ts);
        if (rating) {
            ob_str(o, ",\"value\":");
            ob_u64(o, (uint64_t)rating);
        }
        if (text) {
            ob_str(o, ",\"text\":");
            ob_json_str(o, text);
        }
        if (session_no >= 0) {
            ob_str(o, ",\"session\":\"s");
            ob_u64(o, session_user + 1);
            ob_ch(o, '-');
            ob_u64(o, (uint64_t)session_no + 1);
            ob_ch(o, '"');
        }
        ob_str(o, "}\n");
    }
    w->n_events++;
    w->rep->per_type[type]++;
    if (type == MP_EV_REVIEW) w->rep->n_reviews++;
}

static void make_user(const gen_shop *s, mp_rng *rng, gen_user *u) {
    u->n_fav = 1 + (int)mp_rng_below(rng, 3);
    double wsum = 0, w[3];
    for (int f = 0; f < u->n_fav; f++) {
        u->fav[f] = pick_category(s, rng);
        w[f] = 1.0 / (f + 1);
        wsum += w[f];
    }
    double acc = 0;
    for (int f = 0; f < u->n_fav; f++) {
        acc += w[f] / wsum;
        u->fav_w[f] = acc;
    }
    u->fav_w[u->n_fav - 1] = 1.0;
    for (int k = 0; k < GEN_DIM; k++) {
        float v = 0;
        for (int f = 0; f < u->n_fav; f++) v += s->centroid[u->fav[f]][k] / (float)u->n_fav;
        u->vec[k] = v + (float)(mp_rng_normal(rng) * 0.5);
    }
    u->price_sens = fabs(mp_rng_normal(rng)) * 0.8;
    u->activity = exp(mp_rng_normal(rng) * 0.7 - 0.245); /* mean ~1 */
    u->zh = mp_rng_below(rng, 100) < 40;
}

static uint32_t poisson(mp_rng *rng, double lambda) {
    if (lambda <= 0) return 0;
    if (lambda > 30) {
        double v = lambda + sqrt(lambda) * mp_rng_normal(rng);
        return v < 0 ? 0 : (uint32_t)llround(v);
    }
    double l = exp(-lambda), p = 1.0;
    uint32_t k = 0;
    do {
        k++;
        p *= mp_rng_uniform(rng);
    } while (p > l);
    return k - 1;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Affinity in (0, 1) of user u for item i. */
static double affinity(const gen_shop *s, const gen_user *u, uint32_t i) {
    const gen_item *it = &s->items[i];
    double x = 1.2 * dotv(u->vec, it->vec) / sqrt((double)GEN_DIM) - u->price_sens * it->log_price_z - 0.5;
    return 1.0 / (1.0 + exp(-x));
}

static uint32_t draw_item(const gen_shop *s, const gen_user *u, uint32_t cat, mp_rng *rng) {
    uint32_t a = s->cat_start[cat], b = s->cat_start[cat + 1];
    if (a == b) { /* an empty category (tiny catalogs): any item */
        return (uint32_t)mp_rng_below(rng, s->o->n_items);
    }
    uint32_t best = 0;
    double best_fit = -1e300;
    for (int k = 0; k < GEN_CANDIDATES; k++) {
        uint32_t j = a + pick_cdf(s->cat_item_cdf + a, b - a, mp_rng_uniform(rng));
        uint32_t item = s->cat_items[j];
        double fit = dotv(u->vec, s->items[item].vec) + mp_rng_uniform(rng) * 1.5;
        if (fit > best_fit) {
            best_fit = fit;
            best = item;
        }
    }
    return best;
}

static int review_rating(double aff, mp_rng *rng) {
    double r = 1.0 + 4.6 * aff + mp_rng_normal(rng) * 0.8;
    int v = (int)lround(r);
    return v < 1 ? 1 : v > 5 ? 5 : v;
}

static void gen_user_events(const gen_shop *s, uint32_t uidx, gen_writer *w) {
    const mp_gen_opts *o = s->o;
    mp_rng rng;
    mp_rng_seed(&rng, (o->seed ^ 0xD1B54A32D192ED03ull) + (uint64_t)uidx * 0x9E3779B97F4A7C15ull);
    gen_user u;
    make_user(s, &rng, &u);
    uint32_t n_sessions = poisson(&rng, o->sessions_per_user * u.activity);
    if (n_sessions > 1000) n_sessions = 1000;
    int64_t span = (int64_t)o->days * 86400;
    if (span <= 0) span = 86400;
    int64_t starts[1000];
    for (uint32_t k = 0; k < n_sessions; k++) starts[k] = o->start_ts + (int64_t)mp_rng_below(&rng, (uint64_t)span);
    qsort(starts, n_sessions, sizeof starts[0], cmp_i64);

    pending_review pend[GEN_MAX_PENDING];
    int n_pend = 0;
    int64_t ts = INT64_MIN;
    for (uint32_t k = 0; k < n_sessions && !writer_full(w); k++) {
        ts = starts[k] > ts ? starts[k] : ts + 600;
        /* Reviews of earlier purchases arrive first (outside any browsing session). */
        for (int r = 0; r < n_pend; r++) {
            const char *text = u.zh ? k_review_zh[pend[r].rating - 1][mp_rng_below(&rng, 3)]
                                    : k_review_en[pend[r].rating - 1][mp_rng_below(&rng, 3)];
            write_event(w, uidx, pend[r].item, MP_EV_REVIEW, ts, pend[r].rating, text, 0, -1);
            ts += 30 + (int64_t)mp_rng_below(&rng, 120);
        }
        n_pend = 0;
        /* Session category: mostly a favourite. */
        uint32_t cat;
        if (mp_rng_uniform(&rng) < 0.8) {
            double x = mp_rng_uniform(&rng);
            int f = 0;
            while (f < u.n_fav - 1 && x >= u.fav_w[f]) f++;
            cat = u.fav[f];
        } else {
            cat = pick_category(s, &rng);
        }
        uint32_t n_views = 1;
        while (n_views < 40 && mp_rng_uniform(&rng) < 0.78) n_views++;
        for (uint32_t v = 0; v < n_views && !writer_full(w); v++) {
            uint32_t c = mp_rng_uniform(&rng) < 0.75 ? cat : pick_category(s, &rng);
            uint32_t item = draw_item(s, &u, c, &rng);
            double aff = affinity(s, &u, item);
            write_event(w, uidx, item, MP_EV_VIEW, ts, 0, NULL, uidx, (int)k);
            ts += 10 + (int64_t)mp_rng_below(&rng, 90);
            if (mp_rng_uniform(&rng) >= 0.08 + 0.45 * aff) continue;
            write_event(w, uidx, item, MP_EV_CLICK, ts, 0, NULL, uidx, (int)k);
            ts += 20 + (int64_t)mp_rng_below(&rng, 200);
            if (mp_rng_uniform(&rng) < 0.02 + 0.10 * aff) {
                write_event(w, uidx, item, MP_EV_FAV, ts, 0, NULL, uidx, (int)k);
                ts += 5 + (int64_t)mp_rng_below(&rng, 30);
            }
            if (mp_rng_uniform(&rng) >= 0.05 + 0.40 * aff) continue;
            write_event(w, uidx, item, MP_EV_CART, ts, 0, NULL, uidx, (int)k);
            ts += 10 + (int64_t)mp_rng_below(&rng, 120);
            if (mp_rng_uniform(&rng) >= 0.20 + 0.50 * aff) continue;
            write_event(w, uidx, item, MP_EV_PURCHASE, ts, 0, NULL, uidx, (int)k);
            ts += 30 + (int64_t)mp_rng_below(&rng, 300);
            if (n_pend < GEN_MAX_PENDING && mp_rng_uniform(&rng) < 0.35)
                pend[n_pend++] = (pending_review){item, review_rating(aff, &rng)};
        }
    }
    /* Reviews still pending come up to two days after the last session, within the time span if possible. */
    if (n_pend > 0 && !writer_full(w)) {
        int64_t end = o->start_ts + span;
        int64_t at = ts + 3600 + (int64_t)mp_rng_below(&rng, 2 * 86400);
        if (at > end) at = end > ts + 60 ? end : ts + 60;
        ts = at;
        for (int r = 0; r < n_pend; r++) {
            const char *text = u.zh ? k_review_zh[pend[r].rating - 1][mp_rng_below(&rng, 3)]
                                    : k_review_en[pend[r].rating - 1][mp_rng_below(&rng, 3)];
            write_event(w, uidx, pend[r].item, MP_EV_REVIEW, ts, pend[r].rating, text, 0, -1);
            ts += 30 + (int64_t)mp_rng_below(&rng, 120);
        }
    }
}

static int write_users(const gen_shop *s, const char *dir, mp_error *err) {
    const mp_gen_opts *o = s->o;
    char path[4096];
    snprintf(path, sizeof path, "%s/users.jsonl", dir);
    outbuf ob;
    int rc = ob_open(&ob, path, err);
    if (rc) return rc;
    for (uint32_t i = 0; i < o->n_users; i++) {
        /* The same stream as the user's events, so attributes and behaviour agree (language of reviews). */
        mp_rng rng;
        mp_rng_seed(&rng, (o->seed ^ 0xD1B54A32D192ED03ull) + (uint64_t)i * 0x9E3779B97F4A7C15ull);
        gen_user u;
        make_user(s, &rng, &u);
        mp_rng attr;
        mp_rng_seed(&attr, o->seed * 31 + i + 7);
        const char *city = u.zh ? k_cities_zh[mp_rng_below(&attr, sizeof k_cities_zh / sizeof k_cities_zh[0])]
                                : k_cities_en[mp_rng_below(&attr, sizeof k_cities_en / sizeof k_cities_en[0])];
        ob_str(&ob, "{\"id\":\"user-");
        ob_u64_pad(&ob, i + 1, 6);
        ob_str(&ob, "\",\"attrs\":{\"age\":\"");
        ob_str(&ob, k_ages[mp_rng_below(&attr, 5)]);
        ob_str(&ob, "\",\"city\":");
        ob_json_str(&ob, city);
        ob_str(&ob, ",\"lang\":\"");
        ob_str(&ob, u.zh ? "zh" : "en");
        ob_str(&ob, "\"}}\n");
    }
    return ob_close(&ob, MP_OK, err);
}

void mp_gen_opts_default(mp_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_users = 1000;
    o->n_items = 500;
    o->seed = 42;
    o->sessions_per_user = 4;
    o->format = MP_FORMAT_JSONL;
    o->start_ts = 1735689600; /* 2025-01-01T00:00:00Z */
    o->days = 60;
    o->max_events = 0;
}

static int make_dirs(const char *dir, mp_error *err) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return mp_error_set(err, MP_EINVAL, "gen-demo: bad output directory \"%s\"", dir);
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            return mp_error_set(err, MP_EIO, "%s: cannot create directory: %s", buf, strerror(e));
        }
        buf[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mp_error_set(err, MP_EIO, "%s: not a directory", dir);
    return MP_OK;
}

int mp_gen_demo(const char *dir, const mp_gen_opts *opts, const mp_progress *progress, mp_gen_report *rep,
                mp_error *err) {
    mp_gen_opts o;
    if (opts) o = *opts;
    else mp_gen_opts_default(&o);
    if (o.n_users == 0 || o.n_items == 0)
        return mp_error_set(err, MP_EINVAL, "gen-demo: need at least one user and one item (got %u users, %u items)",
                            o.n_users, o.n_items);
    if (!(o.sessions_per_user >= 0) || !isfinite(o.sessions_per_user) || o.sessions_per_user > 500)
        return mp_error_set(err, MP_EINVAL, "gen-demo: sessions per user must be between 0 and 500, got %g",
                            o.sessions_per_user);
    if (o.days == 0 || o.days > 36500)
        return mp_error_set(err, MP_EINVAL, "gen-demo: days must be between 1 and 36500, got %u", o.days);
    if (o.format != MP_FORMAT_JSONL && o.format != MP_FORMAT_CSV) o.format = MP_FORMAT_JSONL;
    mp_gen_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    int rc = make_dirs(dir, err);
    if (rc) return rc;

    gen_shop s;
    memset(&s, 0, sizeof s);
    s.o = &o;
    s.items = calloc(o.n_items, sizeof *s.items);
    s.cat_items = calloc(o.n_items, sizeof *s.cat_items);
    s.cat_item_cdf = calloc(o.n_items, sizeof *s.cat_item_cdf);
    if (!s.items || !s.cat_items || !s.cat_item_cdf) {
        rc = mp_error_set(err, MP_ENOMEM, "gen-demo: out of memory for %u items", o.n_items);
        goto done;
    }
    if ((rc = write_items(&s, dir, progress, err))) goto done;
    if ((rc = write_users(&s, dir, err))) goto done;

    char path[4096];
    snprintf(path, sizeof path, "%s/events.%s", dir, o.format == MP_FORMAT_CSV ? "csv" : "jsonl");
    gen_writer w;
    memset(&w, 0, sizeof w);
    w.csv = o.format == MP_FORMAT_CSV;
    w.max_events = o.max_events;
    w.rep = rep;
    if ((rc = ob_open(&w.ob, path, err))) goto done;
    if (w.csv) ob_str(&w.ob, "user,item,type,ts,value,text,session\n");
    for (uint32_t u = 0; u < o.n_users && !writer_full(&w); u++) {
        gen_user_events(&s, u, &w);
        if ((u & 0x3FF) == 0x3FF) mp_progress_report(progress, "events", u + 1, o.n_users);
        if (w.ob.failed) break;
    }
    mp_progress_report(progress, "events", o.n_users, o.n_users);
    rc = ob_close(&w.ob, MP_OK, err);
    rep->n_events = w.n_events;
    rep->n_users = o.n_users;
    rep->n_items = o.n_items;
done:
    free(s.items);
    free(s.cat_items);
    free(s.cat_item_cdf);
    return rc;
}
