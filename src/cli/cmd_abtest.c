/* magpie abtest: A/B test analysis (z-test and bootstrap intervals), sample sizes, A/A simulation, assignment. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "magpie/abtest.h"
#include "magpie/buf.h"
#include "magpie/explore.h"
#include "magpie/strmap.h"

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: magpie abtest --a USERS:CONVERSIONS --b USERS:CONVERSIONS [options]\n"
        "       magpie abtest --csv FILE [--control NAME] [options]\n"
        "       magpie abtest --sample-size --baseline P --mde D [--relative] [--alpha A] [--power W]\n"
        "       magpie abtest --aa --rate P --users N [--sims K] [--alpha A] [--seed S]\n"
        "       magpie abtest --assign USER --salt SALT [--weights W1,W2,...]\n"
        "\n"
        "Compares the conversion rate of a treatment (B) with a control (A): difference pB - pA and relative lift\n"
        "(pB - pA) / pA, each with a confidence interval from the two-proportion z-test (Wald interval, delta\n"
        "method for the lift; the p-value uses the pooled rate) and from a bootstrap over users (percentiles).\n"
        "\n"
        "  --a N:C, --b N:C     users and converted users of the control and the treatment\n"
        "  --csv FILE           per-user outcomes with header variant,user,converted[,value] (converted 0/1,\n"
        "                       one line per user); every variant is compared with the control; with a value\n"
        "                       column the mean value per user is compared too (normal interval)\n"
        "  --control NAME       the control variant of --csv (default: the first variant in the file)\n"
        "  --alpha A            1 - confidence level (default 0.05)\n"
        "  --bootstrap B        bootstrap resamples (default 2000; 0: none)\n"
        "  --seed N             bootstrap / simulation seed (default 12345)\n"
        "  --sample-size        users per arm needed to detect an absolute change D of the baseline rate P with a\n"
        "                       two-sided test at --alpha and --power (default 0.8); --relative: D is relative\n"
        "                       (0.1 = +10%%)\n"
        "  --aa                 A/A simulation: K (default 2000) experiments whose arms both convert at P with N\n"
        "                       users each; prints the share called significant (should be close to alpha)\n"
        "  --assign USER        the variant index USER gets for SALT and the weights (default 50,50), as the\n"
        "                       server assigns it (hash of salt and user id)\n"
        "  -h, --help           this text\n"
        "\n"
        "examples:\n"
        "  magpie abtest --a 10000:500 --b 10000:560\n"
        "  magpie abtest --sample-size --baseline 0.10 --mde 0.02\n"
        "  magpie abtest --aa --rate 0.05 --users 5000 --sims 2000\n");
}

static int parse_arm(const char *opt, const char *s, mp_abtest_arm *arm) {
    char *e;
    unsigned long long n = strtoull(s, &e, 10);
    if (e == s || *e != ':') return cli_usage_error("abtest", "%s: expected USERS:CONVERSIONS, got \"%s\"", opt, s);
    const char *c = e + 1;
    unsigned long long k = strtoull(c, &e, 10);
    if (e == c || *e || *s == '-' || *c == '-')
        return cli_usage_error("abtest", "%s: expected USERS:CONVERSIONS, got \"%s\"", opt, s);
    if (k > n) return cli_usage_error("abtest", "%s: %llu conversions but only %llu users", opt, k, n);
    arm->n = n;
    arm->conv = k;
    return 0;
}

static void print_compare(const char *name_a, const char *name_b, const mp_abtest_arm *a, const mp_abtest_arm *b,
                          const mp_abtest_result *r, double alpha, unsigned long long boot) {
    int level = (int)lround(100 * (1 - alpha));
    printf("%-12s %10llu users %9llu conversions  rate %.6f\n", name_a, (unsigned long long)a->n,
           (unsigned long long)a->conv, r->p_a);
    printf("%-12s %10llu users %9llu conversions  rate %.6f\n", name_b, (unsigned long long)b->n,
           (unsigned long long)b->conv, r->p_b);
    printf("difference   %+.6f   z-test %d%% CI [%+.6f, %+.6f]", r->diff, level, r->diff_lo, r->diff_hi);
    if (boot) printf("   bootstrap [%+.6f, %+.6f]", r->boot_diff_lo, r->boot_diff_hi);
    printf("\nlift         %+.4f%%  z-test %d%% CI [%+.4f%%, %+.4f%%]", 100 * r->lift, level, 100 * r->lift_lo,
           100 * r->lift_hi);
    if (boot) printf("   bootstrap [%+.4f%%, %+.4f%%]", 100 * r->boot_lift_lo, 100 * r->boot_lift_hi);
    printf("\nz = %.4f, p-value = %.6g: %s at alpha %g\n", r->z, r->p_value,
           r->significant ? "significant" : "not significant", alpha);
}

typedef struct {
    mp_abtest_arm arm;
    double vsum, vsq; /* value sums */
} variant_stats;

static int analyse_csv(const char *path, const char *control, const mp_abtest_opts *o) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail("abtest", "%s: cannot open", path);
    mp_strmap *variants = NULL, *users = NULL;
    variant_stats *vs = NULL;
    size_t nv = 0, cap = 0, ln = 0;
    int has_value = -1, rc = 1;
    char line[4096];
    if (mp_strmap_create(&variants, 8) || mp_strmap_create(&users, 1024)) {
        cli_fail("abtest", "out of memory");
        goto done;
    }
    while (fgets(line, sizeof line, f)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        if (has_value < 0) {
            if (!strcmp(line, "variant,user,converted")) has_value = 0;
            else if (!strcmp(line, "variant,user,converted,value")) has_value = 1;
            else {
                cli_fail("abtest", "%s:%zu: expected the header variant,user,converted[,value]", path, ln);
                goto done;
            }
            continue;
        }
        char *fld[5];
        int nf = 0;
        for (char *p = line; nf < 5;) {
            fld[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = 0;
            p = c + 1;
        }
        if (nf != 3 + has_value) {
            cli_fail("abtest", "%s:%zu: expected %d fields, got %d", path, ln, 3 + has_value, nf);
            goto done;
        }
        if (!fld[0][0] || !fld[1][0]) {
            cli_fail("abtest", "%s:%zu: empty variant or user", path, ln);
            goto done;
        }
        if (strcmp(fld[2], "0") && strcmp(fld[2], "1")) {
            cli_fail("abtest", "%s:%zu: column `converted`: expected 0 or 1, got \"%s\"", path, ln, fld[2]);
            goto done;
        }
        double value = 0;
        if (has_value) {
            char *e;
            value = strtod(fld[3], &e);
            if (e == fld[3] || *e || !isfinite(value)) {
                cli_fail("abtest", "%s:%zu: column `value`: expected a number, got \"%s\"", path, ln, fld[3]);
                goto done;
            }
        }
        uint32_t uid, vid;
        int ins;
        if (mp_strmap_intern(users, fld[1], strlen(fld[1]), &uid, &ins) ||
            mp_strmap_intern(variants, fld[0], strlen(fld[0]), &vid, NULL)) {
            cli_fail("abtest", "out of memory");
            goto done;
        }
        if (!ins) {
            cli_fail("abtest", "%s:%zu: user \"%s\" appears twice (one line per user)", path, ln, fld[1]);
            goto done;
        }
        if (mp_grow((void **)&vs, &cap, (size_t)vid + 1, sizeof *vs) != MP_OK) {
            cli_fail("abtest", "out of memory");
            goto done;
        }
        if (vid >= nv) {
            memset(&vs[vid], 0, sizeof vs[vid]);
            nv = vid + 1;
        }
        vs[vid].arm.n++;
        vs[vid].arm.conv += fld[2][0] == '1';
        vs[vid].vsum += value;
        vs[vid].vsq += value * value;
    }
    if (nv < 2) {
        cli_fail("abtest", "%s: need at least two variants, found %zu", path, nv);
        goto done;
    }
    uint32_t ctl = 0;
    if (control) {
        ctl = mp_strmap_get(variants, control, strlen(control));
        if (ctl == MP_STRMAP_NONE) {
            cli_fail("abtest", "%s: no variant \"%s\"", path, control);
            goto done;
        }
    }
    const char *cname = mp_strmap_key(variants, ctl, NULL);
    int first = 1;
    for (uint32_t v = 0; v < nv; v++) {
        if (v == ctl) continue;
        mp_abtest_result r;
        mp_error err;
        if (mp_abtest_compare(&vs[ctl].arm, &vs[v].arm, o, &r, &err)) {
            cli_fail("abtest", "%s", err.msg);
            goto done;
        }
        if (!first) printf("\n");
        first = 0;
        print_compare(cname, mp_strmap_key(variants, v, NULL), &vs[ctl].arm, &vs[v].arm, &r, o->alpha, o->bootstrap);
        if (has_value) {
            double na = (double)vs[ctl].arm.n, nb = (double)vs[v].arm.n;
            double ma = vs[ctl].vsum / na, mb = vs[v].vsum / nb;
            double va = na > 1 ? (vs[ctl].vsq - na * ma * ma) / (na - 1) : 0;
            double vb = nb > 1 ? (vs[v].vsq - nb * mb * mb) / (nb - 1) : 0;
            double se = sqrt(va / na + vb / nb), zq = mp_norm_quantile(1 - o->alpha / 2);
            printf("value/user   %.4f -> %.4f, difference %+.4f, normal %d%% CI [%+.4f, %+.4f]\n", ma, mb, mb - ma,
                   (int)lround(100 * (1 - o->alpha)), mb - ma - zq * se, mb - ma + zq * se);
        }
    }
    rc = 0;
done:
    fclose(f);
    free(vs);
    mp_strmap_destroy(variants);
    mp_strmap_destroy(users);
    return rc;
}

int cmd_abtest(int argc, char **argv) {
    static const struct option longopts[] = {
        {"a", required_argument, NULL, 'A'},         {"b", required_argument, NULL, 'B'},
        {"csv", required_argument, NULL, 'c'},       {"control", required_argument, NULL, 'C'},
        {"alpha", required_argument, NULL, 'a'},     {"bootstrap", required_argument, NULL, 'b'},
        {"seed", required_argument, NULL, 's'},      {"sample-size", no_argument, NULL, 'S'},
        {"baseline", required_argument, NULL, 'p'},  {"mde", required_argument, NULL, 'm'},
        {"relative", no_argument, NULL, 'r'},        {"power", required_argument, NULL, 'w'},
        {"aa", no_argument, NULL, 'x'},              {"rate", required_argument, NULL, 'R'},
        {"users", required_argument, NULL, 'u'},     {"sims", required_argument, NULL, 'k'},
        {"assign", required_argument, NULL, 'g'},    {"salt", required_argument, NULL, 't'},
        {"weights", required_argument, NULL, 'W'},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    mp_abtest_arm a = {0}, b = {0};
    int have_a = 0, have_b = 0, sample_size = 0, relative = 0, aa = 0, c;
    const char *csv = NULL, *control = NULL, *assign = NULL, *salt = "", *weights_s = "50,50";
    double alpha = 0.05, baseline = NAN, mde = NAN, power = 0.8, rate = NAN;
    unsigned long long boot = 2000, seed = 12345, users = 0, sims = 2000;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'A':
            if (parse_arm("--a", optarg, &a)) return 2;
            have_a = 1;
            break;
        case 'B':
            if (parse_arm("--b", optarg, &b)) return 2;
            have_b = 1;
            break;
        case 'c': csv = optarg; break;
        case 'C': control = optarg; break;
        case 'a':
            if (cli_parse_double("abtest", "--alpha", optarg, &alpha)) return 2;
            if (!(alpha > 0 && alpha < 1)) return cli_usage_error("abtest", "--alpha: must be in (0, 1)");
            break;
        case 'b':
            if (cli_parse_u64("abtest", "--bootstrap", optarg, &boot)) return 2;
            if (boot > 1000000) return cli_usage_error("abtest", "--bootstrap: at most 1000000");
            break;
        case 's':
            if (cli_parse_u64("abtest", "--seed", optarg, &seed)) return 2;
            break;
        case 'S': sample_size = 1; break;
        case 'p':
            if (cli_parse_double("abtest", "--baseline", optarg, &baseline)) return 2;
            break;
        case 'm':
            if (cli_parse_double("abtest", "--mde", optarg, &mde)) return 2;
            break;
        case 'r': relative = 1; break;
        case 'w':
            if (cli_parse_double("abtest", "--power", optarg, &power)) return 2;
            break;
        case 'x': aa = 1; break;
        case 'R':
            if (cli_parse_double("abtest", "--rate", optarg, &rate)) return 2;
            break;
        case 'u':
            if (cli_parse_u64("abtest", "--users", optarg, &users)) return 2;
            break;
        case 'k':
            if (cli_parse_u64("abtest", "--sims", optarg, &sims)) return 2;
            if (sims < 1 || sims > 10000000) return cli_usage_error("abtest", "--sims: must be 1..10000000");
            break;
        case 'g': assign = optarg; break;
        case 't': salt = optarg; break;
        case 'W': weights_s = optarg; break;
        case 'h': usage(stdout); return 0;
        default: return cli_usage_error("abtest", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("abtest", "unexpected argument \"%s\"", argv[optind]);
    int modes = (have_a || have_b) + (csv != NULL) + sample_size + aa + (assign != NULL);
    if (modes != 1)
        return cli_usage_error("abtest", "give exactly one of --a/--b, --csv, --sample-size, --aa or --assign");
    mp_error err;
    mp_error_clear(&err);
    mp_abtest_opts o = {alpha, (uint32_t)boot, seed};
    if (assign) {
        double w[64];
        size_t nw = 0;
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", weights_s);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (nw == 64) return cli_usage_error("abtest", "--weights: at most 64 variants");
            if (cli_parse_double("abtest", "--weights", tok, &w[nw])) return 2;
            nw++;
        }
        int v = mp_abtest_assign(assign, salt, w, nw);
        if (v < 0) return cli_usage_error("abtest", "--weights: need non-negative weights with a positive sum");
        printf("%d\n", v);
        return 0;
    }
    if (sample_size) {
        if (isnan(baseline) || isnan(mde)) return cli_usage_error("abtest", "--sample-size needs --baseline and --mde");
        double d = relative ? mde * baseline : mde;
        uint64_t n;
        if (mp_abtest_sample_size(baseline, d, alpha, power, &n, &err)) return cli_fail("abtest", "%s", err.msg);
        printf("baseline %.6g, detectable change %+.6g (to %.6g), alpha %g (two-sided), power %g\n", baseline, d,
               baseline + d, alpha, power);
        printf("users per arm: %llu (total %llu)\n", (unsigned long long)n, 2ULL * (unsigned long long)n);
        return 0;
    }
    if (aa) {
        if (isnan(rate) || users == 0) return cli_usage_error("abtest", "--aa needs --rate and --users");
        double fpr;
        if (mp_abtest_aa_simulate(rate, users, (uint32_t)sims, alpha, seed, &fpr, &err))
            return cli_fail("abtest", "%s", err.msg);
        double se = sqrt(alpha * (1 - alpha) / (double)sims);
        printf("A/A simulation: %llu experiments, %llu users per arm, rate %g in both arms, seed %llu\n", sims, users,
               rate, seed);
        printf("false-positive rate %.4f (expected %.4f +- %.4f at 2 standard errors)\n", fpr, alpha, 2 * se);
        return 0;
    }
    if (csv) return analyse_csv(csv, control, &o);
    if (!have_a || !have_b) return cli_usage_error("abtest", "give both --a and --b");
    mp_abtest_result r;
    if (mp_abtest_compare(&a, &b, &o, &r, &err)) return cli_fail("abtest", "%s", err.msg);
    print_compare("A (control)", "B", &a, &b, &r, alpha, boot);
    return 0;
}
