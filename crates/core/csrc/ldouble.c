/* INCRBYFLOAT arithmetic in C's long double, the type Redis computes in, so
 * that sums and their printed form are identical to Redis's. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHARS (5 * 1024)

static int parse_ld(const char *s, size_t len, long double *out) {
    char buf[MAX_CHARS];
    char *end;
    /* A NUL inside would end the C string early and hide trailing junk. */
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || *end != '\0' ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* Returns 0 and writes the sum's text on success; 1 when a is not a float,
 * 2 when b is not, 3 when the sum is NaN or infinite, 4 when out is small. */
int dfly_ld_add(const char *a, size_t alen, const char *b, size_t blen,
                char *out, size_t cap, size_t *outlen) {
    long double x, y;
    if (!parse_ld(a, alen, &x)) return 1;
    if (!parse_ld(b, blen, &y)) return 2;
    x += y;
    if (isnan(x) || isinf(x)) return 3;
    int l = snprintf(out, cap, "%.17Lf", x);
    if (l < 0 || (size_t)l + 1 > cap) return 4;
    if (memchr(out, '.', (size_t)l) != NULL) {
        while (l > 0 && out[l - 1] == '0') l--;
        if (l > 0 && out[l - 1] == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') { out[0] = '0'; l = 1; }
    *outlen = (size_t)l;
    return 0;
}

/* Returns 1 when s is a float Redis accepts as a long double. */
int dfly_ld_valid(const char *s, size_t len) {
    long double v;
    return parse_ld(s, len, &v);
}
