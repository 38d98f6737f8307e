/* audit_archive.format._nativecodec: the encode step's per-event loop in C, for
 * ordinary events (issue 24).
 *
 * Why it exists: on JSON-born events the encode step's CPU is mostly Python around C
 * parts: pymongo decoding each staged batch into dicts, building each event's two
 * views, orjson writing them, and re-encoding every decoded document to prove decoding
 * lost nothing (fastcodec.decode_losses). This module reads the staged BSON bytes once
 * and writes, per document, its JSONL line (byte for byte fastcodec's, i.e. pymongo's
 * json_util Relaxed Extended JSON as jsonl.relaxed_line writes it), the canonical JSON
 * of its hashed body (canonical.py; hashed by the sha256 the caller passes: hashlib),
 * and the columns the encode step needs (seq, prevHash, hash), so nothing is decoded.
 *
 * It accepts a small subset and refuses (returns None for the WHOLE chunk, and the
 * caller runs the Python path on it, unchanged) anything else: element types other
 * than double (only where orjson writes Python's repr: finite, and 0 or |v| >= 1e-4),
 * string (well-formed UTF-8 only, as Python's strict decoder), document, array (keys
 * "0", "1", ... in order), ObjectId, bool (byte 0 or 1), UTC datetime with
 * 0 <= ms < 10000-01-01, null, int32 and int64; any key starting with "$" or not
 * well-formed UTF-8; duplicate keys in any document; a top-level "_id" that is not
 * the first field (pymongo's encoder writes it first: decoding and re-encoding would
 * differ); nesting deeper than MAX_DEPTH; any size or terminator that does not add up;
 * and any document malformed.problem() would not pass at once (seq not int32/int64,
 * at not such a date, hash not 64 lowercase hex, prevHash neither absent, null nor a
 * string); and everything on a big-endian host. Since it reads every stored byte and
 * refuses whatever decoding would lose, the byte-exact re-encode check is not needed for
 * a chunk it accepts (test_nativecodec.py checks decode_losses finds nothing there).
 *
 * Tested byte for byte against json_util, canonical.py and fastcodec in
 * audit_archive_tests/format/test_nativecodec.py; the encode step on and off in
 * audit_archive_tests/archive/test_native_encode.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define END_DATETIME_MS 253402300800000LL /* 10000-01-01T00:00:00Z */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t extra) {
    Py_ssize_t want = b->len + extra;
    if (want <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < want) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

#define PUT(b, s, n)                                         \
    do {                                                     \
        if (buf_grow((b), (n)) < 0) return -1;               \
        memcpy((b)->data + (b)->len, (s), (size_t)(n));      \
        (b)->len += (n);                                     \
    } while (0)
#define PUTC(b, c)                                           \
    do {                                                     \
        if (buf_grow((b), 1) < 0) return -1;                 \
        (b)->data[(b)->len++] = (char)(c);                   \
    } while (0)

/* One element of a document: its key, type and value bytes. */
typedef struct {
    const uint8_t *key;
    Py_ssize_t klen;
    uint8_t type;
    const uint8_t *value;
    Py_ssize_t vlen;
} Elem;

typedef struct {
    Buf line;      /* the chunk's lines, joined */
    Buf canon;     /* one document's canonical JSON */
    Elem *elems;   /* a stack of the elements of the documents being sorted */
    Py_ssize_t nelems, capelems;
    long wrappers; /* "$" keys written into the current line */
} State;

#define REJECT 1 /* returned (positive) when the chunk is refused; -1 is a Python error */

static int32_t rd32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

static int64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

/* Well-formed UTF-8 (Unicode table 3-7): what Python's strict decoder accepts. */
static int utf8_ok(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* ASCII eight bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n) return 0;
            uint8_t c1 = s[i + 1];
            uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80) return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n) return 0;
            uint8_t c1 = s[i + 1];
            uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (c1 < lo || c1 > hi || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char HEX[] = "0123456789abcdef";

/* The bytes a JSON string escapes: controls, '"' and '\\'. */
static uint8_t ESCAPED[256];

static void init_escaped(void) {
    for (int c = 0; c < 0x20; c++) ESCAPED[c] = 1;
    ESCAPED['"'] = ESCAPED['\\'] = 1;
}

/* A JSON string as orjson (and json.dumps with ensure_ascii=False) writes it: '"' and
 * '\\' escaped, \b \t \n \f \r short, other controls as \u00xx, the rest as itself. */
static int put_string(Buf *b, const uint8_t *s, Py_ssize_t n) {
    if (buf_grow(b, n * 6 + 2) < 0) return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t run = i;
        while (run < n && !ESCAPED[s[run]]) run++;
        memcpy(o, s + i, (size_t)(run - i));
        o += run - i;
        if (run == n) break;
        uint8_t c = s[run];
        i = run + 1;
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    b->len = o - b->data;
    return 0;
}

static int put_int(Buf *b, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (buf_grow(b, n + 1) < 0) return -1;
    if (v < 0) b->data[b->len++] = '-';
    while (n) b->data[b->len++] = tmp[--n];
    return 0;
}

/* Python's repr of a double (float_repr), which orjson writes in this domain. */
static int put_double(Buf *b, double v) {
    char *text = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!text) return -1;
    Py_ssize_t n = (Py_ssize_t)strlen(text);
    int rc = buf_grow(b, n);
    if (rc == 0) {
        memcpy(b->data + b->len, text, (size_t)n);
        b->len += n;
    }
    PyMem_Free(text);
    return rc;
}

static int put_hex(Buf *b, const uint8_t *p, int n) {
    if (buf_grow(b, 2 * n + 2) < 0) return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    for (int i = 0; i < n; i++) {
        *o++ = HEX[p[i] >> 4];
        *o++ = HEX[p[i] & 15];
    }
    *o++ = '"';
    b->len = o - b->data;
    return 0;
}

/* ``width`` decimal digits of 0 <= v < 10**width, zero-padded (snprintf cost more than
 * the rest of a flat event's line). */
static char *digits(char *o, int v, int width) {
    for (int i = width - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + width;
}

/* "YYYY-MM-DDTHH:MM:SS" then ".mmmZ" (always, canonical.date_text) or, for a line,
 * "Z" when the millis are 0 (Relaxed Extended JSON writes no ".000"). */
static int put_date(Buf *b, int64_t ms, int always_millis) {
    int64_t seconds = ms / 1000, millis = ms % 1000;
    int64_t days = seconds / 86400, rest = seconds % 86400;
    /* civil_from_days (H. Hinnant), days >= 0 here */
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    char text[32], *o = text;
    int hours = (int)(rest / 3600), minutes = (int)(rest / 60 % 60), secs = (int)(rest % 60);
    *o++ = '"';
    o = digits(o, (int)y, 4);
    *o++ = '-';
    o = digits(o, (int)m, 2);
    *o++ = '-';
    o = digits(o, (int)d, 2);
    *o++ = 'T';
    o = digits(o, hours, 2);
    *o++ = ':';
    o = digits(o, minutes, 2);
    *o++ = ':';
    o = digits(o, secs, 2);
    if (millis || always_millis) {
        *o++ = '.';
        o = digits(o, (int)millis, 3);
    }
    *o++ = 'Z';
    *o++ = '"';
    Py_ssize_t n = o - text;
    PUT(b, text, n);
    return 0;
}

static int is_repr_double(double v) {
    return isfinite(v) && (v == 0 || fabs(v) >= 1e-4);
}

/* Whether a key is ``index`` in decimal, as an array's n-th key must be. */
static int is_index(const uint8_t *key, Py_ssize_t klen, Py_ssize_t index) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + index % 10);
        index /= 10;
    } while (index);
    if (n != klen) return 0;
    for (int i = 0; i < n; i++)
        if (key[i] != (uint8_t)tmp[n - 1 - i]) return 0;
    return 1;
}

/* The elements of the document at d (size n, checked by the caller), pushed on the
 * state's stack; REJECT when a size, terminator, type, key or array index is off. */
static int split_elems(State *st, const uint8_t *d, Py_ssize_t n, int is_array, Py_ssize_t *count) {
    const uint8_t *p = d + 4, *end = d + n - 1; /* end: the document's final NUL */
    Py_ssize_t index = 0;
    *count = 0;
    while (p < end) {
        uint8_t type = *p++;
        const uint8_t *key = p;
        while (p < end && *p) p++;
        if (p >= end) return REJECT;
        Py_ssize_t klen = p - key;
        p++;
        if (is_array) {
            if (!is_index(key, klen, index)) return REJECT;
        } else if ((klen && key[0] == '$') || !utf8_ok(key, klen)) {
            return REJECT;
        }
        index++;
        Py_ssize_t left = end - p, vlen;
        switch (type) {
        case 0x01: case 0x09: case 0x12: vlen = 8; break;
        case 0x07: vlen = 12; break;
        case 0x08: vlen = 1; break;
        case 0x0A: vlen = 0; break;
        case 0x10: vlen = 4; break;
        case 0x02:
            if (left < 4) return REJECT;
            vlen = (Py_ssize_t)rd32(p) + 4;
            if (vlen < 5) return REJECT;
            break;
        case 0x03: case 0x04:
            if (left < 4) return REJECT;
            vlen = rd32(p);
            if (vlen < 5) return REJECT;
            break;
        default:
            return REJECT;
        }
        if (vlen > left) return REJECT;
        if ((type == 0x02 || type == 0x03 || type == 0x04) && p[vlen - 1] != 0) return REJECT;
        if (type == 0x08 && p[0] > 1) return REJECT;
        if (st->nelems >= st->capelems) {
            Py_ssize_t cap = st->capelems ? st->capelems * 2 : 256;
            Elem *e = PyMem_Realloc(st->elems, (size_t)cap * sizeof(Elem));
            if (!e) {
                PyErr_NoMemory();
                return -1;
            }
            st->elems = e;
            st->capelems = cap;
        }
        Elem *e = &st->elems[st->nelems++];
        e->key = key;
        e->klen = klen;
        e->type = type;
        e->value = p;
        e->vlen = vlen;
        (*count)++;
        p += vlen;
    }
    return p == end ? 0 : REJECT;
}

static int cmp_elems(const void *a, const void *b) {
    const Elem *x = a, *y = b;
    Py_ssize_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, (size_t)n);
    if (c) return c;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

static int write_doc(State *st, Buf *b, const uint8_t *d, Py_ssize_t n, int is_array,
                     int canonical, int depth, int top);

/* Keys in byte order: insertion sort for the few keys of most documents (qsort's merge
 * sort allocates), qsort beyond. */
static void sort_elems(Elem *e, Py_ssize_t n) {
    if (n > 24) {
        qsort(e, (size_t)n, sizeof(Elem), cmp_elems);
        return;
    }
    for (Py_ssize_t i = 1; i < n; i++) {
        Elem x = e[i];
        Py_ssize_t j = i;
        while (j > 0 && cmp_elems(&e[j - 1], &x) > 0) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = x;
    }
}

/* One value, in the line's form (canonical 0) or the hashed body's (canonical 1). */
static int write_value(State *st, Buf *b, const Elem *e, int canonical, int depth) {
    const uint8_t *v = e->value;
    int rc;
    switch (e->type) {
    case 0x01: {
        double x;
        memcpy(&x, v, 8);
        if (!is_repr_double(x)) return REJECT;
        return put_double(b, x);
    }
    case 0x02: {
        Py_ssize_t len = e->vlen - 5;
        if (!canonical && !utf8_ok(v + 4, len)) return REJECT; /* the line pass comes first */
        return put_string(b, v + 4, len);
    }
    case 0x03: case 0x04:
        return write_doc(st, b, v, e->vlen, e->type == 0x04, canonical, depth + 1, 0);
    case 0x07:
        if (canonical) return put_hex(b, v, 12);
        PUT(b, "{\"$oid\":", 8);
        st->wrappers++;
        if ((rc = put_hex(b, v, 12))) return rc;
        PUTC(b, '}');
        return 0;
    case 0x08:
        if (v[0]) PUT(b, "true", 4);
        else PUT(b, "false", 5);
        return 0;
    case 0x09: {
        int64_t ms = rd64(v);
        if (ms < 0 || ms >= END_DATETIME_MS) return REJECT;
        if (canonical) return put_date(b, ms, 1);
        PUT(b, "{\"$date\":", 9);
        st->wrappers++;
        if ((rc = put_date(b, ms, 0))) return rc;
        PUTC(b, '}');
        return 0;
    }
    case 0x0A:
        PUT(b, "null", 4);
        return 0;
    case 0x10:
        return put_int(b, rd32(v));
    case 0x12:
        return put_int(b, rd64(v));
    }
    return REJECT;
}

static int is_key(const Elem *e, const char *name) {
    size_t n = strlen(name);
    return (size_t)e->klen == n && memcmp(e->key, name, n) == 0;
}

/* A document or array: the line's in stored order; the hashed body's with keys sorted
 * (orjson OPT_SORT_KEYS: UTF-8 bytes, i.e. code points) and, at the top, without "_id"
 * and "hash". Duplicate keys are refused where they are sorted (the canonical pass). */
static int write_doc(State *st, Buf *b, const uint8_t *d, Py_ssize_t n, int is_array,
                     int canonical, int depth, int top) {
    if (depth > MAX_DEPTH) return REJECT;
    Py_ssize_t base = st->nelems, count;
    int rc = split_elems(st, d, n, is_array, &count);
    if (rc) return rc;
    if (canonical && !is_array && count > 1) {
        sort_elems(st->elems + base, count);
        for (Py_ssize_t i = base + 1; i < base + count; i++)
            if (cmp_elems(&st->elems[i - 1], &st->elems[i]) == 0) return REJECT;
    }
    PUTC(b, is_array ? '[' : '{');
    int first = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        Elem e = st->elems[base + i]; /* a copy: the stack may move under the recursion */
        if (canonical && top && (is_key(&e, "_id") || is_key(&e, "hash"))) continue;
        if (!first) PUTC(b, ',');
        first = 0;
        if (!is_array) {
            if ((rc = put_string(b, e.key, e.klen))) return rc;
            PUTC(b, ':');
        }
        if ((rc = write_value(st, b, &e, canonical, depth))) return rc;
    }
    PUTC(b, is_array ? ']' : '}');
    st->nelems = base;
    return 0;
}

/* The top-level fields the encode step reads, checked as malformed.problem() passes
 * an event at once; REJECT otherwise. New references in *seq, *prev, *hash. */
static int top_fields(State *st, const uint8_t *d, Py_ssize_t n, PyObject *int64_type,
                      PyObject **seq, PyObject **prev, PyObject **hash) {
    Py_ssize_t count;
    int rc = split_elems(st, d, n, 0, &count);
    if (rc) return rc;
    const Elem *es = st->elems + st->nelems - count, *s = NULL, *a = NULL, *h = NULL, *p = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Elem *e = &es[i];
        if (is_key(e, "_id") && i != 0) rc = REJECT;
        else if (is_key(e, "seq")) s = e;
        else if (is_key(e, "at")) a = e;
        else if (is_key(e, "hash")) h = e;
        else if (is_key(e, "prevHash")) p = e;
    }
    st->nelems -= count;
    if (rc || !s || !a || !h || a->type != 0x09) return REJECT;
    if (rd64(a->value) < 0 || rd64(a->value) >= END_DATETIME_MS) return REJECT;
    if (h->type != 0x02 || h->vlen != 64 + 5) return REJECT;
    for (int i = 0; i < 64; i++) {
        uint8_t c = h->value[4 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return REJECT;
    }
    if (p && p->type != 0x0A && (p->type != 0x02 || !utf8_ok(p->value + 4, p->vlen - 5)))
        return REJECT;
    if (s->type == 0x10) {
        *seq = PyLong_FromLong(rd32(s->value));
    } else if (s->type == 0x12) {
        PyObject *value = PyLong_FromLongLong(rd64(s->value));
        *seq = value ? PyObject_CallOneArg(int64_type, value) : NULL;
        Py_XDECREF(value);
    } else {
        return REJECT;
    }
    if (!*seq) return -1;
    *hash = PyUnicode_FromStringAndSize((const char *)h->value + 4, 64);
    if (!p || p->type == 0x0A) *prev = Py_NewRef(Py_None);
    else *prev = PyUnicode_DecodeUTF8((const char *)p->value + 4, p->vlen - 5, "strict");
    if (!*hash || !*prev) return -1;
    return 0;
}

static PyObject *hexdigest_name;

/* One document: its line appended to st->line, its canonical JSON hashed; the
 * columns and counts appended to the lists. */
static int encode_one(State *st, const uint8_t *d, Py_ssize_t n, PyObject *sha256,
                      PyObject *int64_type, PyObject **lists) {
    PyObject *seq = NULL, *prev = NULL, *hash = NULL, *digest = NULL;
    int rc = top_fields(st, d, n, int64_type, &seq, &prev, &hash);
    if (rc) goto done;
    st->wrappers = 0;
    if ((rc = write_doc(st, &st->line, d, n, 0, 0, 0, 1))) goto done;
    if (buf_grow(&st->line, 1) < 0) {
        rc = -1;
        goto done;
    }
    st->line.data[st->line.len++] = '\n';
    st->canon.len = 0;
    if ((rc = write_doc(st, &st->canon, d, n, 0, 1, 0, 1))) goto done;
    PyObject *text = PyBytes_FromStringAndSize(st->canon.data, st->canon.len);
    PyObject *hasher = text ? PyObject_CallOneArg(sha256, text) : NULL;
    Py_XDECREF(text);
    digest = hasher ? PyObject_CallMethodNoArgs(hasher, hexdigest_name) : NULL;
    Py_XDECREF(hasher);
    PyObject *wrote = digest ? PyLong_FromLong(st->wrappers) : NULL;
    if (!wrote || PyList_Append(lists[0], digest) || PyList_Append(lists[1], wrote) ||
        PyList_Append(lists[2], seq) || PyList_Append(lists[3], prev) ||
        PyList_Append(lists[4], hash))
        rc = -1;
    Py_XDECREF(wrote);
done:
    Py_XDECREF(seq);
    Py_XDECREF(prev);
    Py_XDECREF(hash);
    Py_XDECREF(digest);
    return rc;
}

static PyObject *encode_chunk(PyObject *self, PyObject *args) {
    Py_buffer view;
    PyObject *sha256, *int64_type, *lists[5] = {NULL}, *result = NULL;
    if (!PyArg_ParseTuple(args, "y*OO", &view, &sha256, &int64_type)) return NULL;
    State st = {0};
    const uint8_t *p = view.buf, *end = p + view.len;
    int rc = view.len ? 0 : REJECT;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    rc = REJECT; /* doubles are read with memcpy: little-endian hosts only */
#endif
    for (int i = 0; i < 5 && !rc; i++)
        if (!(lists[i] = PyList_New(0))) rc = -1;
    while (!rc && p < end) {
        if (end - p < 5) {
            rc = REJECT;
            break;
        }
        Py_ssize_t n = rd32(p);
        if (n < 5 || n > end - p || p[n - 1] != 0) {
            rc = REJECT;
            break;
        }
        rc = encode_one(&st, p, n, sha256, int64_type, lists);
        p += n;
    }
    if (rc == 0) {
        PyObject *joined = PyBytes_FromStringAndSize(st.line.data, st.line.len);
        if (joined)
            result = PyTuple_Pack(6, joined, lists[0], lists[1], lists[2], lists[3], lists[4]);
        Py_XDECREF(joined);
    } else if (rc == REJECT) {
        result = Py_NewRef(Py_None);
    }
    for (int i = 0; i < 5; i++) Py_XDECREF(lists[i]);
    PyMem_Free(st.line.data);
    PyMem_Free(st.canon.data);
    PyMem_Free(st.elems);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_chunk", encode_chunk, METH_VARARGS,
     "encode_chunk(chunk, sha256, int64_type) -> (joined, rehashes, wrote, seqs, prevs, "
     "hashes) or None: a staged batch's JSONL lines and event hashes (see the module's C "
     "header for what it refuses)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nativecodec",
    "The encode step's per-event loop in C for ordinary events (nativecodec.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nativecodec(void) {
    init_escaped();
    hexdigest_name = PyUnicode_InternFromString("hexdigest");
    if (!hexdigest_name) return NULL;
    return PyModule_Create(&module);
}
