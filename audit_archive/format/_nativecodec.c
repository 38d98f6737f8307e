/* audit_archive.format._nativecodec: the encode step's per-event loop in C, for
 * events of every BSON type (issue 24).
 *
 * Why it exists: on JSON-born events the encode step's CPU is mostly Python around C
 * parts: pymongo decoding each staged batch into dicts, building each event's two
 * views, orjson writing them, and re-encoding every decoded document to prove decoding
 * lost nothing (fastcodec.decode_losses). This module reads the staged BSON bytes once
 * and writes, per document, its JSONL line (byte for byte fastcodec's, i.e. pymongo's
 * json_util Relaxed Extended JSON as jsonl.relaxed_line writes it), the canonical JSON
 * of its hashed body (canonical.py) with its SHA-256 (the module's own, or hashlib's),
 * and the columns the encode step needs (seq, prevHash, hash), so nothing is decoded.
 *
 * It takes every BSON type the Python path writes: double (repr when finite; NaN and
 * the infinities as {"$numberDouble"} in a line, bare in the hashed body), string,
 * document, array (keys "0", "1", ... in order), binary of any subtype (subtype 2
 * without its inner length, which must agree), ObjectId, bool (byte 0 or 1), UTC
 * datetime of any int64 (ISO text from 1970 to 9999 in a line, years 1 to 9999 in the
 * hashed body, {"$date": {"$numberLong"}} beyond), null, regex, code, code with scope,
 * int32, timestamp, int64, Decimal128 (decimaltext's text for any bits), MinKey,
 * MaxKey; a document decoding makes a DBRef of ("$ref" a string, "$id", "$db" absent,
 * a string or null) is written as fastcodec writes the DBRef; other keys starting with
 * "$" are written as themselves, not counted. What the Python path reads back, the
 * line's "wrote" says so (-1, as fastcodec's "sure" and decode_losses have it): a
 * NaN whose bits "NaN" does not give back, a Decimal128 its text does not, regex
 * options decoding drops or reorders, a DBRef stored in another order than pymongo's
 * or with a null "$db", and the types decoding loses (symbol, undefined, DBPointer).
 *
 * It refuses (returns None for the WHOLE chunk, and the caller runs the Python path on
 * it, unchanged): unknown element types; strings, codes, keys and regex patterns not
 * well-formed UTF-8 (Python's strict decoder), regex options beyond ASCII; a "$ref"
 * or "$db" of a type decoding reads as another (symbol, code, undefined); duplicate keys in
 * any document (a scope and a DBRef's included); a top-level "_id" that is not the
 * first field (pymongo's encoder writes it first: decoding and re-encoding would
 * differ); nesting deeper than MAX_DEPTH; any size, inner length or terminator that
 * does not add up (a code with scope's three, a binary subtype 2's, a DBPointer's);
 * and any document malformed.problem() would not pass at once (seq not int32/int64,
 * at not a date from 1970 to 9999, hash not 64 lowercase hex, prevHash neither absent,
 * null nor a string); and everything on a big-endian host. Since it reads every stored
 * byte and marks for read-back whatever decoding would lose, the byte-exact re-encode
 * check (fastcodec.decode_losses) is not needed for a chunk it takes: its lines to read
 * back are the Python path's (test_nativecodec.py and test_nativecodec_rare.py check
 * them against fastcodec.lines_to_check).
 *
 * Tested byte for byte against json_util, canonical.py and fastcodec in
 * audit_archive_tests/format/test_nativecodec.py and test_nativecodec_rare.py (every
 * rare type, its raw anomalies); the encode step on and off in
 * audit_archive_tests/archive/test_native_encode.py.
 *
 * More per-event loops live here, each with its Python function the fallback:
 * int_seqs (bsonpeek.int_seqs: each staged event's seq, for extract; None for input it
 * finds malformed; test_nativecodec_seqs.py), merkle_extend (MerkleBuilder.add_all: the
 * part's Merkle tree, SHA-256 by the x86 SHA extensions where the CPU has them, else
 * portable C; test_merkle.py), and the read's framing (issue 24, sixth round:
 * complete_prefix, document_offsets and array_documents, bsonpeek's walks over
 * concatenated BSON and a cursor reply's batch; test_framing.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MIN_DATETIME_MS (-62135596800000LL) /* 0001-01-01T00:00:00Z */
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
    int unsure;    /* the line must be read back (fastcodec's wrote -1) */
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

/* The size of the whole document at p (end - p bytes left), or 0 when none fits. */
static Py_ssize_t whole_doc(const uint8_t *p, const uint8_t *end) {
    Py_ssize_t n = end - p >= 5 ? rd32(p) : 0;
    return n >= 5 && n <= end - p ? n : 0;
}

/* whole_doc, and only if the document ends in its terminator. */
static Py_ssize_t framed_doc(const uint8_t *p, const uint8_t *end) {
    Py_ssize_t n = whole_doc(p, end);
    return n && p[n - 1] == 0 ? n : 0;
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

/* Floor division (C's / truncates toward zero). */
static int64_t floor_div(int64_t a, int64_t b) {
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* "YYYY-MM-DDTHH:MM:SS" then ".mmmZ" (always, canonical.date_text) or, for a line,
 * "Z" when the millis are 0 (Relaxed Extended JSON writes no ".000"); for
 * MIN_DATETIME_MS <= ms < END_DATETIME_MS (years 1 to 9999). */
static int put_date(Buf *b, int64_t ms, int always_millis) {
    int64_t seconds = floor_div(ms, 1000), millis = ms - seconds * 1000;
    int64_t days = floor_div(seconds, 86400), rest = seconds - days * 86400;
    /* civil_from_days (H. Hinnant); z >= 0 from year 1 on */
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

/* Offset just past the value of type ``kind`` at d[at], or -1 when it does not fit
 * before ``last`` (the document's final NUL) or the type is unknown. */
static Py_ssize_t value_end(const uint8_t *d, uint8_t kind, Py_ssize_t at, Py_ssize_t last) {
    Py_ssize_t next, extra = 0;
    switch (kind) {
    case 0x06: case 0x0A: case 0x7F: case 0xFF: next = at; break;
    case 0x08: next = at + 1; break;
    case 0x10: next = at + 4; break;
    case 0x01: case 0x09: case 0x11: case 0x12: next = at + 8; break;
    case 0x07: next = at + 12; break;
    case 0x13: next = at + 16; break;
    case 0x02: case 0x0D: case 0x0E: extra = 4; goto prefixed;
    case 0x05: extra = 5; goto prefixed;
    case 0x0C: extra = 16; goto prefixed;
    case 0x03: case 0x04: case 0x0F:
    prefixed:
        if (at + 4 > last) return -1;
        if (rd32(d + at) < 0) return -1;
        next = at + rd32(d + at) + extra;
        break;
    case 0x0B: { /* regex: two C strings */
        const uint8_t *z = memchr(d + at, 0, (size_t)(last - at));
        z = z ? memchr(z + 1, 0, (size_t)(last - (z + 1 - d))) : NULL;
        if (!z) return -1;
        next = z + 1 - d;
        break;
    }
    default: return -1;
    }
    return next <= last ? next : -1;
}

/* Whether a code with scope's sizes add up as pymongo's decoder demands: the whole
 * (vlen), the code string (NUL-terminated) and the scope document (its size its own,
 * NUL-terminated), with nothing between or after them. */
static int code_scope_ok(const uint8_t *v, Py_ssize_t vlen) {
    if (vlen < 14 || rd32(v) != vlen) return 0;
    int32_t code = rd32(v + 4);
    if (code < 1 || code > vlen - 13 || v[8 + code - 1] != 0) return 0;
    int32_t scope = rd32(v + 8 + code);
    return scope >= 5 && 8 + (Py_ssize_t)code + scope == vlen && v[vlen - 1] == 0;
}

/* The checks of a value's own bytes that its size (value_end) does not make: REJECT
 * when a length inside it lies, a terminator is missing, a bool byte is not 0 or 1. */
static int check_value(uint8_t type, const uint8_t *p, Py_ssize_t vlen) {
    switch (type) {
    case 0x02: case 0x03: case 0x04: case 0x0D: case 0x0E:
        return vlen >= 5 && p[vlen - 1] == 0 ? 0 : REJECT;
    case 0x08: return p[0] > 1 ? REJECT : 0;
    case 0x05: /* the old binary subtype 2 holds its length again: it must agree */
        return p[4] != 2 || (vlen >= 9 && rd32(p + 5) == vlen - 9) ? 0 : REJECT;
    case 0x0C: return vlen >= 17 && p[vlen - 13] == 0 ? 0 : REJECT;
    case 0x0F: return code_scope_ok(p, vlen) ? 0 : REJECT;
    }
    return 0;
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
        } else if (!utf8_ok(key, klen)) {
            return REJECT;
        }
        index++;
        Py_ssize_t next = value_end(d, type, p - d, end - d); /* -1: unknown type too */
        if (next < 0) return REJECT;
        Py_ssize_t vlen = next - (p - d);
        if (check_value(type, p, vlen)) return REJECT;
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

/* How a document is written: LINE (the JSONL line: stored order, Relaxed Extended JSON
 * wrappers, each "$" key the encoder writes counted), CANON (the hashed body: keys
 * sorted, canonical.py's values) or MEMBERS (a Code with scope's or a DBRef's members
 * in the hashed body: keys sorted, the line's wrappers, as fastcodec's
 * _canonical_members writes them). */
enum { LINE = 0, CANON = 1, MEMBERS = 2 };
/* Which document: the event, a document value (decoding makes a DBRef of some), an
 * array, a code's scope. */
enum { EVENT = 0, SUBDOC = 1, ARRAY = 2, SCOPE = 3 };

static int write_doc(State *st, Buf *b, const uint8_t *d, Py_ssize_t n, int kind, int mode,
                     int depth);

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

/* A wrapper's "$" keys, counted in the line only (fastcodec's _LineHooks.dollars). */
static void count_wrappers(State *st, int mode, long n) {
    if (mode == LINE) st->wrappers += n;
}

#define PUTS(b, lit) PUT((b), "" lit, (Py_ssize_t)(sizeof(lit) - 1)) /* literals only */

/* A double: Python's repr when finite (orjson's, or fastcodec's Fragment of repr where
 * orjson's would differ); NaN and the infinities bare in the hashed body, else
 * {"$numberDouble": ...}, a NaN whose bits a parser would not give back (sign,
 * payload) marking the line for read-back as fastcodec does. */
static int write_double(State *st, Buf *b, const uint8_t *v, int mode) {
    double x;
    uint64_t bits;
    memcpy(&x, v, 8);
    memcpy(&bits, v, 8);
    if (isfinite(x)) return put_double(b, x);
    const char *name = isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
    Py_ssize_t n = (Py_ssize_t)strlen(name);
    if (mode == CANON) {
        PUT(b, name, n);
        return 0;
    }
    count_wrappers(st, mode, 1);
    if (mode == LINE && isnan(x) && bits != 0x7FF8000000000000ULL) st->unsure = 1;
    PUTS(b, "{\"$numberDouble\":\"");
    PUT(b, name, n);
    PUTS(b, "\"}");
    return 0;
}

/* A date: canonical.date_text in the hashed body for years 1 to 9999, else (and in a
 * line or members) {"$date": "...Z"} from 1970 to 9999 and {"$date": {"$numberLong":
 * "ms"}} outside it, as fastcodec writes them. */
static int write_datetime(State *st, Buf *b, const uint8_t *v, int mode) {
    int64_t ms = rd64(v);
    if (mode == CANON && ms >= MIN_DATETIME_MS && ms < END_DATETIME_MS)
        return put_date(b, ms, 1);
    if (mode != CANON && ms >= 0 && ms < END_DATETIME_MS) {
        count_wrappers(st, mode, 1);
        PUTS(b, "{\"$date\":");
        if (put_date(b, ms, 0)) return -1;
        PUTC(b, '}');
        return 0;
    }
    count_wrappers(st, mode, 2);
    PUTS(b, "{\"$date\":{\"$numberLong\":\"");
    if (put_int(b, ms)) return -1;
    PUTS(b, "\"}}");
    return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* base64.b64encode of n bytes, quoted. */
static int put_base64(Buf *b, const uint8_t *s, Py_ssize_t n) {
    if (buf_grow(b, (n + 2) / 3 * 4 + 2) < 0) return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = B64[w >> 18];
        *o++ = B64[w >> 12 & 63];
        *o++ = B64[w >> 6 & 63];
        *o++ = B64[w & 63];
    }
    if (i < n) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = B64[w >> 18];
        *o++ = B64[w >> 12 & 63];
        *o++ = i + 1 < n ? B64[w >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    b->len = o - b->data;
    return 0;
}

/* A binary of any subtype (decoded as bytes or Binary; subtype 2 without its inner
 * length): its base64 in the hashed body, else {"$binary": {"base64", "subType"}}. */
static int write_binary(State *st, Buf *b, const uint8_t *v, int mode) {
    Py_ssize_t n = rd32(v);
    uint8_t subtype = v[4];
    const uint8_t *data = v + 5;
    if (subtype == 2) {
        data += 4;
        n -= 4;
    }
    if (mode == CANON) return put_base64(b, data, n);
    count_wrappers(st, mode, 1);
    PUTS(b, "{\"$binary\":{\"base64\":");
    if (put_base64(b, data, n)) return -1;
    char tail[] = ",\"subType\":\"xx\"}}";
    tail[12] = HEX[subtype >> 4];
    tail[13] = HEX[subtype & 15];
    PUT(b, tail, (Py_ssize_t)sizeof(tail) - 1);
    return 0;
}

/* A regex as {"$regularExpression": {"pattern", "options"}} (keys sorted outside a
 * line), its options those of "ilmsux" it holds, in that order, as pymongo decodes
 * them; options it would drop, repeat or reorder are lost by decoding (the line is
 * read back, as fastcodec.decode_losses has it); options beyond ASCII are refused. */
static int write_regex(State *st, Buf *b, const Elem *e, int mode) {
    const uint8_t *pattern = e->value;
    Py_ssize_t plen = (Py_ssize_t)strlen((const char *)pattern);
    const uint8_t *flags = pattern + plen + 1;
    Py_ssize_t flen = e->vlen - plen - 2;
    static const char LETTERS[] = "ilmsux";
    char options[8];
    int seen = 0, n = 0, last = -1;
    if (!utf8_ok(pattern, plen)) return REJECT;
    for (Py_ssize_t i = 0; i < flen; i++) {
        const char *at = flags[i] ? strchr(LETTERS, flags[i]) : NULL;
        if (flags[i] >= 0x80) return REJECT;
        if (!at || at - LETTERS <= last) {
            if (mode == LINE) st->unsure = 1;
        }
        if (at) {
            seen |= 1 << (at - LETTERS);
            last = (int)(at - LETTERS);
        }
    }
    for (int i = 0; i < 6; i++)
        if (seen & 1 << i) options[n++] = LETTERS[i];
    count_wrappers(st, mode, 1);
    PUTS(b, "{\"$regularExpression\":{");
    if (mode == LINE) {
        PUTS(b, "\"pattern\":");
        if (put_string(b, pattern, plen)) return -1;
        PUTS(b, ",\"options\":");
        if (put_string(b, (const uint8_t *)options, n)) return -1;
    } else {
        PUTS(b, "\"options\":");
        if (put_string(b, (const uint8_t *)options, n)) return -1;
        PUTS(b, ",\"pattern\":");
        if (put_string(b, pattern, plen)) return -1;
    }
    PUTS(b, "}}");
    return 0;
}

/* A timestamp as {"$timestamp": {"t", "i"}} ("i" first where keys are sorted). */
static int write_timestamp(State *st, Buf *b, const uint8_t *v, int mode) {
    int64_t inc = (uint32_t)rd32(v), time = (uint32_t)rd32(v + 4);
    count_wrappers(st, mode, 1);
    int line = mode == LINE;
    PUTS(b, "{\"$timestamp\":{\"");
    PUTC(b, line ? 't' : 'i');
    PUTS(b, "\":");
    if (put_int(b, line ? time : inc)) return -1;
    PUTS(b, ",\"");
    PUTC(b, line ? 'i' : 't');
    PUTS(b, "\":");
    if (put_int(b, line ? inc : time)) return -1;
    PUTS(b, "}}");
    return 0;
}

/* decimaltext.decimal_text (str of pymongo's Decimal128) of the 16 bytes at v, in
 * text; *exact: whether Decimal128(text) gives back the same bytes (rare_decimal's
 * test): the canonical NaN, infinities and finite values, not a NaN's sign or payload,
 * an sNaN, stray bits, the large-coefficient form or a coefficient beyond 34 digits
 * (both written as a coefficient of 0). */
static Py_ssize_t decimal_text(const uint8_t *v, char *text, int *exact) {
    uint64_t low = (uint64_t)rd64(v), high = (uint64_t)rd64(v + 8);
    int negative = (int)(high >> 63);
    *exact = 1;
    if ((high & 0x7C00000000000000ULL) == 0x7C00000000000000ULL) {
        *exact = high == 0x7C00000000000000ULL && low == 0;
        memcpy(text, "NaN", 3);
        return 3;
    }
    if ((high & 0x7800000000000000ULL) == 0x7800000000000000ULL) {
        *exact = (high & 0x7FFFFFFFFFFFFFFFULL) == 0x7800000000000000ULL && low == 0;
        const char *name = negative ? "-Infinity" : "Infinity";
        memcpy(text, name, strlen(name));
        return (Py_ssize_t)strlen(name);
    }
    int64_t exponent;
    unsigned __int128 coefficient = 0;
    if ((high & 0x6000000000000000ULL) == 0x6000000000000000ULL) {
        exponent = (int64_t)((high & 0x1FFFE00000000000ULL) >> 47) - 6176;
        *exact = 0;
    } else {
        exponent = (int64_t)((high & 0x7FFF800000000000ULL) >> 49) - 6176;
        coefficient = (unsigned __int128)(high & 0x0001FFFFFFFFFFFFULL) << 64 | low;
        unsigned __int128 max = (unsigned __int128)999999999999999999ULL * 10000000000000000ULL +
                                9999999999999999ULL; /* 10**34 - 1 */
        if (coefficient > max) {
            coefficient = 0;
            *exact = 0;
        }
    }
    char digits_[40];
    int n = 0;
    do {
        digits_[39 - n++] = (char)('0' + (int)(coefficient % 10));
        coefficient /= 10;
    } while (coefficient);
    const char *dg = digits_ + 40 - n;
    char *o = text;
    int64_t adjusted = exponent + n - 1;
    if (negative) *o++ = '-';
    if (exponent <= 0 && adjusted >= -6) {
        int64_t point = n + exponent;
        if (exponent == 0) {
            memcpy(o, dg, (size_t)n);
            o += n;
        } else if (point > 0) {
            memcpy(o, dg, (size_t)point);
            o += point;
            *o++ = '.';
            memcpy(o, dg + point, (size_t)(n - point));
            o += n - point;
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int64_t i = 0; i < -point; i++) *o++ = '0';
            memcpy(o, dg, (size_t)n);
            o += n;
        }
    } else {
        *o++ = dg[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, dg + 1, (size_t)(n - 1));
            o += n - 1;
        }
        o += sprintf(o, "E%+lld", (long long)adjusted);
    }
    return o - text;
}

/* A Decimal128: its text in the hashed body, else {"$numberDecimal": text}; a value
 * the text does not give back marks the line for read-back (fastcodec's sure). */
static int write_decimal(State *st, Buf *b, const uint8_t *v, int mode) {
    char text[80];
    int exact;
    Py_ssize_t n = decimal_text(v, text, &exact);
    if (mode == CANON) return put_string(b, (const uint8_t *)text, n);
    count_wrappers(st, mode, 1);
    if (mode == LINE && !exact) st->unsure = 1;
    PUTS(b, "{\"$numberDecimal\":");
    if (put_string(b, (const uint8_t *)text, n)) return -1;
    PUTC(b, '}');
    return 0;
}

/* A string-like value (string, code, symbol): its text, well-formed UTF-8 only. */
static int write_text(State *st, Buf *b, const uint8_t *v, int mode) {
    Py_ssize_t len = rd32(v) - 1;
    if (mode == LINE && !utf8_ok(v + 4, len)) return REJECT; /* the line pass comes first */
    return put_string(b, v + 4, len);
}

/* A code, with its scope or not: {"$code": ...} and, with one, "$scope" the scope
 * document (its keys sorted outside a line: MEMBERS). */
static int write_code(State *st, Buf *b, const Elem *e, int mode, int depth) {
    const uint8_t *v = e->value;
    int scoped = e->type == 0x0F;
    count_wrappers(st, mode, scoped ? 2 : 1);
    PUTS(b, "{\"$code\":");
    int rc = write_text(st, b, scoped ? v + 4 : v, mode);
    if (rc || !scoped) {
        if (!rc) PUTC(b, '}');
        return rc;
    }
    PUTS(b, ",\"$scope\":");
    const uint8_t *scope = v + 8 + rd32(v + 4);
    rc = write_doc(st, b, scope, rd32(scope), SCOPE, mode == LINE ? LINE : MEMBERS, depth + 1);
    if (rc) return rc;
    PUTC(b, '}');
    return 0;
}

/* A DBPointer, which decoding makes a DBRef (collection, ObjectId): its members as a
 * DBRef's; decoding loses the type, so the line is read back. */
static int write_dbpointer(State *st, Buf *b, const uint8_t *v, int mode) {
    Py_ssize_t len = rd32(v) - 1;
    const uint8_t *oid = v + 4 + len + 1;
    if (mode == LINE && !utf8_ok(v + 4, len)) return REJECT;
    count_wrappers(st, mode, 3); /* "$ref", "$id" and the ObjectId's "$oid" */
    if (mode == LINE) st->unsure = 1;
    if (mode == LINE) {
        PUTS(b, "{\"$ref\":");
        if (put_string(b, v + 4, len)) return -1;
        PUTS(b, ",\"$id\":{\"$oid\":");
        if (put_hex(b, oid, 12)) return -1;
        PUTS(b, "}}");
    } else {
        PUTS(b, "{\"$id\":{\"$oid\":");
        if (put_hex(b, oid, 12)) return -1;
        PUTS(b, "},\"$ref\":");
        if (put_string(b, v + 4, len)) return -1;
        PUTC(b, '}');
    }
    return 0;
}

/* One value, in the given mode (LINE, CANON or MEMBERS). */
static int write_value(State *st, Buf *b, const Elem *e, int mode, int depth) {
    const uint8_t *v = e->value;
    int rc;
    switch (e->type) {
    case 0x01: return write_double(st, b, v, mode);
    case 0x0E: /* symbol: decoded as a str, so written as one, but its type is lost */
        if (mode == LINE) st->unsure = 1;
        /* fall through */
    case 0x02: return write_text(st, b, v, mode);
    case 0x03: case 0x04:
        return write_doc(st, b, v, e->vlen, e->type == 0x04 ? ARRAY : SUBDOC, mode, depth + 1);
    case 0x05: return write_binary(st, b, v, mode);
    case 0x07:
        if (mode == CANON) return put_hex(b, v, 12);
        PUTS(b, "{\"$oid\":");
        count_wrappers(st, mode, 1);
        if ((rc = put_hex(b, v, 12))) return rc;
        PUTC(b, '}');
        return 0;
    case 0x08:
        if (v[0]) PUTS(b, "true");
        else PUTS(b, "false");
        return 0;
    case 0x09: return write_datetime(st, b, v, mode);
    case 0x06: /* undefined: decoded as None, its type lost */
        if (mode == LINE) st->unsure = 1;
        /* fall through */
    case 0x0A:
        PUTS(b, "null");
        return 0;
    case 0x0B: return write_regex(st, b, e, mode);
    case 0x0C: return write_dbpointer(st, b, v, mode);
    case 0x0D: case 0x0F: return write_code(st, b, e, mode, depth);
    case 0x10: return put_int(b, rd32(v));
    case 0x11: return write_timestamp(st, b, v, mode);
    case 0x12: return put_int(b, rd64(v));
    case 0x13: return write_decimal(st, b, v, mode);
    case 0x7F: case 0xFF:
        count_wrappers(st, mode, 1);
        if (e->type == 0x7F) PUTS(b, "{\"$maxKey\":1}");
        else PUTS(b, "{\"$minKey\":1}");
        return 0;
    }
    return REJECT;
}

static int is_key(const Elem *e, const char *name) {
    size_t n = strlen(name);
    return (size_t)e->klen == n && memcmp(e->key, name, n) == 0;
}

/* Where a document's DBRef keys are (-1: absent), found among its count elements. */
typedef struct {
    Py_ssize_t ref, id, db;
} RefKeys;

/* Whether decoding makes a DBRef of this document (pymongo: "$ref" a str, "$id"
 * present, "$db" absent, a str or None): 1 yes, 0 no, -1 (refuse) for the shapes
 * decoding reads through another type (a symbol or a code, with or without scope, as
 * "$ref" or "$db": pymongo's Code is a str, so a code "$ref" makes a DBRef of a Code;
 * an undefined "$db"). */
static int dbref_keys(const Elem *es, Py_ssize_t count, RefKeys *k) {
    k->ref = k->id = k->db = -1;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (es[i].klen < 3 || es[i].key[0] != '$') continue;
        if (is_key(&es[i], "$ref")) k->ref = i;
        else if (is_key(&es[i], "$id")) k->id = i;
        else if (is_key(&es[i], "$db")) k->db = i;
    }
    if (k->ref < 0) return 0;
    uint8_t ref = es[k->ref].type, db = k->db < 0 ? 0x02 : es[k->db].type;
    /* symbol, code, code with scope: a str to pymongo; an undefined "$db": None */
    if (ref == 0x0E || ref == 0x0D || ref == 0x0F || db == 0x0E || db == 0x0D || db == 0x0F ||
        db == 0x06)
        return -1;
    return ref == 0x02 && k->id >= 0 && (db == 0x02 || db == 0x0A);
}

/* One member: a comma unless first, its key unless in an array, its value. */
static int put_member(State *st, Buf *b, Py_ssize_t at, int is_array, int *first, int mode,
                      int depth) {
    Elem e = st->elems[at]; /* a copy: the stack may move under the recursion */
    int rc;
    if (!*first) PUTC(b, ',');
    *first = 0;
    if (!is_array) {
        if ((rc = put_string(b, e.key, e.klen))) return rc;
        PUTC(b, ':');
    }
    return write_value(st, b, &e, mode, depth);
}

/* A DBRef's members (elements base.. of the stack, sorted outside a line): in a line
 * "$ref", "$id", "$db" then the others in stored order, as fastcodec's _with_members
 * (pymongo's as_doc) has them; a null "$db" left out. Stored in another order, or
 * with a null "$db", the document is not what decoding gives back: read back. */
static int write_dbref(State *st, Buf *b, Py_ssize_t base, Py_ssize_t count, RefKeys k,
                       int mode, int depth) {
    int null_db = k.db >= 0 && st->elems[base + k.db].type == 0x0A, first = 1, rc;
    Py_ssize_t own[3] = {k.ref, k.id, null_db ? -1 : k.db};
    count_wrappers(st, mode, own[2] < 0 ? 2 : 3);
    if (mode == LINE && (null_db || k.ref != 0 || k.id != 1 || (k.db >= 0 && k.db != 2)))
        st->unsure = 1;
    int inner = mode == LINE ? LINE : MEMBERS;
    PUTC(b, '{');
    for (int j = 0; j < 3 && mode == LINE; j++)
        if (own[j] >= 0 && (rc = put_member(st, b, base + own[j], 0, &first, inner, depth)))
            return rc;
    for (Py_ssize_t i = 0; i < count; i++) {
        int is_own = i == k.ref || i == k.id || i == k.db;
        if ((mode == LINE && is_own) || (i == k.db && null_db)) continue;
        if ((rc = put_member(st, b, base + i, 0, &first, inner, depth))) return rc;
    }
    PUTC(b, '}');
    st->nelems = base;
    return 0;
}

/* A document or array: the line's in stored order; the hashed body's with keys sorted
 * (orjson OPT_SORT_KEYS: UTF-8 bytes, i.e. code points) and, at the top, without "_id"
 * and "hash". Duplicate keys are refused where they are sorted (the canonical pass). */
static int write_doc(State *st, Buf *b, const uint8_t *d, Py_ssize_t n, int kind, int mode,
                     int depth) {
    if (depth > MAX_DEPTH) return REJECT;
    int is_array = kind == ARRAY;
    Py_ssize_t base = st->nelems, count;
    int rc = split_elems(st, d, n, is_array, &count);
    if (rc) return rc;
    if (mode != LINE && !is_array && count > 1) {
        sort_elems(st->elems + base, count);
        for (Py_ssize_t i = base + 1; i < base + count; i++)
            if (cmp_elems(&st->elems[i - 1], &st->elems[i]) == 0) return REJECT;
    }
    if (kind == SUBDOC) {
        RefKeys k;
        rc = dbref_keys(st->elems + base, count, &k);
        if (rc < 0) return REJECT;
        if (rc) return write_dbref(st, b, base, count, k, mode, depth);
    }
    PUTC(b, is_array ? '[' : '{');
    int first = 1, body = kind == EVENT && mode == CANON;
    for (Py_ssize_t i = 0; i < count; i++) {
        const Elem *e = &st->elems[base + i];
        if (body && (is_key(e, "_id") || is_key(e, "hash"))) continue;
        if ((rc = put_member(st, b, base + i, is_array, &first, mode, depth))) return rc;
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

/* Which SHA-256 the encoder's re-hashes and merkle_extend use: HASHLIB calls the sha256
 * passed in (hashlib: OpenSSL) for each; PORTABLE is sha256_block; BEST (the default)
 * is SHA-NI where the CPU has it, else PORTABLE. The first two are kept for the tests
 * and bench_parts. */
enum { HASHLIB = 0, PORTABLE = 1, BEST = 2 };
static int hash_bytes(PyObject *sha256, int impl, const uint8_t *m, Py_ssize_t n,
                      uint8_t out[32]);

/* The sha256 hex of an event's canonical JSON, as hashlib's hexdigest() gives it. */
static PyObject *rehash_hex(PyObject *sha256, int impl, const char *m, Py_ssize_t n) {
    uint8_t raw[32];
    if (hash_bytes(sha256, impl, (const uint8_t *)m, n, raw) < 0) return NULL;
    PyObject *hex = PyUnicode_New(64, 127);
    if (!hex) return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(hex);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = (Py_UCS1)HEX[raw[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)HEX[raw[i] & 15];
    }
    return hex;
}

/* One document: its line appended to st->line, its canonical JSON hashed; the
 * columns and counts appended to the lists. */
static int encode_one(State *st, const uint8_t *d, Py_ssize_t n, PyObject *sha256,
                      int impl, PyObject *int64_type, PyObject **lists) {
    PyObject *seq = NULL, *prev = NULL, *hash = NULL, *digest = NULL;
    int rc = top_fields(st, d, n, int64_type, &seq, &prev, &hash);
    if (rc) goto done;
    st->wrappers = 0;
    st->unsure = 0;
    if ((rc = write_doc(st, &st->line, d, n, EVENT, LINE, 0))) goto done;
    if (buf_grow(&st->line, 1) < 0) {
        rc = -1;
        goto done;
    }
    st->line.data[st->line.len++] = '\n';
    st->canon.len = 0;
    if ((rc = write_doc(st, &st->canon, d, n, EVENT, CANON, 0))) goto done;
    digest = rehash_hex(sha256, impl, st->canon.data, st->canon.len);
    PyObject *wrote = digest ? PyLong_FromLong(st->unsure ? -1 : st->wrappers) : NULL;
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
    int impl = BEST;
    if (!PyArg_ParseTuple(args, "y*OO|i", &view, &sha256, &int64_type, &impl)) return NULL;
    State st = {0};
    const uint8_t *p = view.buf, *end = p + view.len;
    int rc = view.len ? 0 : REJECT;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    rc = REJECT; /* doubles are read with memcpy: little-endian hosts only */
#endif
    for (int i = 0; i < 5 && !rc; i++)
        if (!(lists[i] = PyList_New(0))) rc = -1;
    while (!rc && p < end) {
        Py_ssize_t n = framed_doc(p, end);
        if (!n) {
            rc = REJECT;
            break;
        }
        rc = encode_one(&st, p, n, sha256, impl, int64_type, lists);
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

/* ---- int_seqs: bsonpeek.int_seqs in C (issue 24) ----
 * Each document's top-level "seq" as an int when it is an int32 or int64, else None,
 * exactly as bsonpeek.int_seqs reads it: the usual layout (an ObjectId "_id" first,
 * "seq" second) in place, otherwise the FIRST top-level "seq" of a walk over the
 * elements (bsonpeek.find), so a nested "seq" never counts. Anything malformed or
 * truncated (a size, name or value that does not fit its document, an unknown type)
 * returns None for the whole input: the caller then runs bsonpeek.int_seqs, as before. */

/* The document's seq (a new reference: int or None), or NULL with *bad set (malformed)
 * or with a Python error (bad unset). */
static PyObject *doc_seq(const uint8_t *d, Py_ssize_t n, const uint8_t *end, int *bad) {
    Py_ssize_t last = n - 1, at = 4, name_end;
    uint8_t kind;
    if (end - d >= 26 && memcmp(d + 4, "\x07_id\0", 5) == 0 && memcmp(d + 22, "seq\0", 4) == 0) {
        kind = d[21]; /* the usual layout, as bsonpeek reads it */
        at = 26;
        goto found;
    }
    while (at < last) {
        kind = d[at];
        const uint8_t *z = memchr(d + at + 1, 0, (size_t)(last - at - 1));
        if (!z) break;
        name_end = z - d;
        if (name_end - at - 1 == 3 && memcmp(d + at + 1, "seq", 3) == 0) {
            at = name_end + 1;
            goto found;
        }
        at = value_end(d, kind, name_end + 1, last);
        if (at < 0) break;
    }
    if (at == last) Py_RETURN_NONE;
    *bad = 1;
    return NULL;
found:
    if (kind != 0x10 && kind != 0x12) {
        if (at > last) *bad = 1;
        return *bad ? NULL : Py_NewRef(Py_None);
    }
    if (at + (kind == 0x10 ? 4 : 8) > last) {
        *bad = 1;
        return NULL;
    }
    return kind == 0x10 ? PyLong_FromLong(rd32(d + at)) : PyLong_FromLongLong(rd64(d + at));
}

static PyObject *int_seqs(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *p = view.buf, *end = p + view.len;
    PyObject *out = PyList_New(0);
    int bad = 0;
    while (out && p < end) {
        Py_ssize_t n = framed_doc(p, end);
        if (!n) {
            bad = 1;
            break;
        }
        PyObject *seq = doc_seq(p, n, end, &bad);
        if (!seq || PyList_Append(out, seq) < 0) {
            Py_XDECREF(seq);
            break;
        }
        Py_DECREF(seq);
        p += n;
    }
    PyBuffer_Release(&view);
    if (out && p < end) Py_CLEAR(out); /* stopped early: malformed, or a Python error */
    return out || !bad ? out : Py_NewRef(Py_None);
}

/* ---- framing: bsonpeek's walks over concatenated BSON in C (issue 24, sixth round) ----
 * Each is a per-event Python loop on the read's path otherwise (~0.4 us an event each):
 * complete_prefix (bsonpeek.complete_prefix: staged chunks cut on document boundaries),
 * document_offsets (bsonpeek.document_offsets: where each staged document starts) and
 * array_documents (bsonpeek.array_documents: a cursor reply's batch, an array of
 * documents, as the concatenated documents the archive stages). */

static PyObject *complete_prefix(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *start = view.buf, *p = start, *end = p + view.len;
    Py_ssize_t n;
    while ((n = whole_doc(p, end)) > 0) p += n;
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(p - start);
}

static PyObject *document_offsets(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *start = view.buf, *p = start, *end = p + view.len;
    Buf out = {0};
    int64_t at = 0;
    int failed = 0;
    for (;;) {
        if (buf_grow(&out, 8) < 0) {
            failed = 1;
            break;
        }
        memcpy(out.data + out.len, &at, 8); /* native order: read back as array("q") */
        out.len += 8;
        Py_ssize_t n = framed_doc(p, end);
        if (p == end || !n) break;
        p += n;
        at = (int64_t)(p - start);
    }
    PyBuffer_Release(&view);
    PyObject *result = NULL;
    if (!failed)
        result = p == end ? PyBytes_FromStringAndSize(out.data, out.len) : Py_NewRef(Py_None);
    PyMem_Free(out.data);
    return result;
}

static PyObject *array_documents(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *p = view.buf, *end = p + view.len;
    Py_ssize_t size = framed_doc(p, end);
    PyObject *result = NULL;
    Buf out = {0};
    int ok = size > 0 && size == view.len;
    p += 4;
    end = (const uint8_t *)view.buf + size - 1; /* the terminator */
    while (ok && p < end) {
        const uint8_t *key_end = p + 1 < end ? memchr(p + 1, 0, (size_t)(end - p - 1)) : NULL;
        Py_ssize_t n = key_end ? framed_doc(key_end + 1, end) : 0;
        if (*p != 0x03 || !n) {
            ok = 0;
            break;
        }
        if (buf_grow(&out, n) < 0) goto done;
        memcpy(out.data + out.len, key_end + 1, (size_t)n);
        out.len += n;
        p = key_end + 1 + n;
    }
    result = ok && p == end ? PyBytes_FromStringAndSize(out.data, out.len) : Py_NewRef(Py_None);
done:
    PyMem_Free(out.data);
    PyBuffer_Release(&view);
    return result;
}

/* ---- merkle_extend: merkle.MerkleBuilder.add_all over tlog.TreeBuilder in C ----
 * Each leaf is SHA-256(0x00 || bytes.fromhex(event hash)), merged into the compact-range
 * stack (roots of the perfect subtrees, largest first) with nodes SHA-256(0x01 || left
 * || right), as tlog.TreeBuilder.extend does. A hash that is not 64 hex digits goes
 * through bytes.fromhex itself, so it hashes or raises exactly as the Python path. */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha256_block(uint32_t h[8], const uint8_t *b) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b_ = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b_) ^ (a & c) ^ (b_ & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b_;
        b_ = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b_, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1

/* One block with the x86 SHA extensions (SHA-NI), where the CPU has them: what
 * OpenSSL uses here, without the call into hashlib around each 1- or 2-block hash. */
__attribute__((target("sha,sse4.1"))) static void sha256_block_ni(uint32_t h[8],
                                                                  const uint8_t *b) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B);
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8); /* ABEF */
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);      /* CDGH */
    __m128i abef = s0, cdgh = s1, w[4];
    for (int i = 0; i < 4; i++)
        w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(b + 16 * i)), swap);
    for (int i = 0; i < 16; i++) { /* four rounds each */
        __m128i m = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)(K256 + 4 * i)));
        s1 = _mm_sha256rnds2_epu32(s1, s0, m);
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));
        if (i < 12) { /* the schedule's next four words, in the slot just used */
            __m128i x = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
            x = _mm_add_epi32(x, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
            w[i & 3] = _mm_sha256msg2_epu32(x, w[(i + 3) & 3]);
        }
    }
    s0 = _mm_add_epi32(s0, abef);
    s1 = _mm_add_epi32(s1, cdgh);
    tmp = _mm_shuffle_epi32(s0, 0x1B);                                      /* FEBA */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                                       /* DCHG */
    _mm_storeu_si128((__m128i *)h, _mm_blend_epi16(tmp, s1, 0xF0));        /* DCBA */
    _mm_storeu_si128((__m128i *)(h + 4), _mm_alignr_epi8(s1, tmp, 8));     /* HGFE */
}

static int cpu_has_sha_ni(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
}
#else
#define HAVE_SHA_NI_CODE 0
#endif

typedef void (*BlockFn)(uint32_t h[8], const uint8_t *b);
static BlockFn best_block = sha256_block; /* sha256_block_ni where the CPU has it */

/* SHA-256 of n bytes, any n: the whole blocks straight from the message, then the
 * tail padded (one or two blocks). */
static void sha256_any(BlockFn block, const uint8_t *m, size_t n, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t whole = n / 64, rest = n % 64;
    for (size_t i = 0; i < whole; i++) block(h, m + 64 * i);
    uint8_t b[128] = {0};
    size_t blocks = rest + 9 <= 64 ? 1 : 2;
    memcpy(b, m + 64 * whole, rest);
    b[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) b[blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < blocks; i++) block(h, b + 64 * i);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

static PyObject *digest_name;

/* SHA-256 of n bytes: in C unless impl is HASHLIB, else sha256(...).digest(). */
static int hash_bytes(PyObject *sha256, int impl, const uint8_t *m, Py_ssize_t n,
                      uint8_t out[32]) {
    if (impl != HASHLIB) {
        sha256_any(impl == BEST ? best_block : sha256_block, m, (size_t)n, out);
        return 0;
    }
    PyObject *text = PyBytes_FromStringAndSize((const char *)m, n);
    PyObject *hasher = text ? PyObject_CallOneArg(sha256, text) : NULL;
    Py_XDECREF(text);
    PyObject *digest = hasher ? PyObject_CallMethodNoArgs(hasher, digest_name) : NULL;
    Py_XDECREF(hasher);
    if (!digest) return -1;
    if (!PyBytes_Check(digest) || PyBytes_GET_SIZE(digest) != 32) {
        Py_DECREF(digest);
        PyErr_SetString(PyExc_TypeError, "sha256 must give a 32-byte digest");
        return -1;
    }
    memcpy(out, PyBytes_AS_STRING(digest), 32);
    Py_DECREF(digest);
    return 0;
}

/* Each byte's value as a hex digit, or -1 (a table: random digits defeat branches). */
static int8_t HEXVAL[256];

static void init_hexval(void) {
    memset(HEXVAL, -1, sizeof HEXVAL);
    for (int c = 0; c < 10; c++) HEXVAL['0' + c] = (int8_t)c;
    for (int c = 0; c < 6; c++) HEXVAL['a' + c] = HEXVAL['A' + c] = (int8_t)(10 + c);
}

/* The leaf hash of one event hash: 64 hex digits decoded here, anything else through
 * bytes.fromhex (which raises as the Python path does). */
static int leaf_hash(PyObject *item, PyObject *sha256, int impl, uint8_t out[32]) {
    uint8_t buf[33] = {0};
    if (PyUnicode_Check(item) && PyUnicode_IS_ASCII(item) && PyUnicode_GET_LENGTH(item) == 64) {
        const uint8_t *t = PyUnicode_1BYTE_DATA(item);
        int bad = 0;
        for (int i = 0; i < 32; i++) {
            int hi = HEXVAL[t[2 * i]], lo = HEXVAL[t[2 * i + 1]];
            bad |= hi | lo; /* negative once any is not a digit */
            buf[1 + i] = (uint8_t)((unsigned)hi << 4 | (unsigned)lo);
        }
        if (bad >= 0) return hash_bytes(sha256, impl, buf, 33, out);
    }
    PyObject *raw = PyObject_CallMethod((PyObject *)&PyBytes_Type, "fromhex", "O", item);
    PyObject *text = raw ? PyBytes_FromStringAndSize("\0", 1) : NULL;
    if (text) PyBytes_Concat(&text, raw);
    Py_XDECREF(raw);
    if (!text) return -1;
    int rc = hash_bytes(sha256, impl, (const uint8_t *)PyBytes_AS_STRING(text),
                        PyBytes_GET_SIZE(text), out);
    Py_DECREF(text);
    return rc;
}

/* The compact range is read into a C array first and written back at the end, so the
 * loop makes no Python object but for an odd hash; on an error the stack and size are
 * left as they were. */
static PyObject *merkle_extend(PyObject *self, PyObject *args) {
    PyObject *stack, *hashes, *sha256;
    long long size;
    int impl = BEST;
    if (!PyArg_ParseTuple(args, "O!LOO|i", &PyList_Type, &stack, &size, &hashes, &sha256, &impl))
        return NULL;
    uint8_t nodes[64][32], pair[65] = {1}; /* pair: 0x01 || left || right */
    Py_ssize_t held = PyList_GET_SIZE(stack);
    int bits = 0;
    for (long long rest = size; rest > 0; rest &= rest - 1) bits++;
    if (size < 0 || held != bits) {
        PyErr_SetString(PyExc_ValueError, "the stack does not hold a tree of that size");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < held; i++) {
        PyObject *node = PyList_GET_ITEM(stack, i);
        if (!PyBytes_Check(node) || PyBytes_GET_SIZE(node) != 32) {
            PyErr_SetString(PyExc_ValueError, "the stack holds something not a 32-byte hash");
            return NULL;
        }
        memcpy(nodes[i], PyBytes_AS_STRING(node), 32);
    }
    PyObject *seq = PySequence_Fast(hashes, "event hashes must be iterable");
    if (!seq) return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < count; i++) {
        if (leaf_hash(items[i], sha256, impl, pair + 33) < 0) goto error;
        for (long long merges = ++size; !(merges & 1); merges >>= 1) {
            memcpy(pair + 1, nodes[--held], 32);
            if (hash_bytes(sha256, impl, pair, 65, pair + 33) < 0) goto error;
        }
        memcpy(nodes[held++], pair + 33, 32);
    }
    Py_DECREF(seq);
    PyObject *out = PyList_New(held);
    for (Py_ssize_t i = 0; out && i < held; i++) {
        PyObject *node = PyBytes_FromStringAndSize((const char *)nodes[i], 32);
        if (!node) Py_CLEAR(out);
        else PyList_SET_ITEM(out, i, node);
    }
    if (!out || PyList_SetSlice(stack, 0, PyList_GET_SIZE(stack), out) < 0) {
        Py_XDECREF(out);
        return NULL;
    }
    Py_DECREF(out);
    return PyLong_FromLongLong(size);
error:
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef methods[] = {
    {"encode_chunk", encode_chunk, METH_VARARGS,
     "encode_chunk(chunk, sha256, int64_type, impl=2) -> (joined, rehashes, wrote, seqs, "
     "prevs, hashes) or None: a staged batch's JSONL lines and event hashes (see the "
     "module's C header for what it refuses); impl as merkle_extend's."},
    {"int_seqs", int_seqs, METH_O,
     "int_seqs(data) -> list of int or None, or None: bsonpeek.int_seqs of concatenated "
     "BSON, or None when any document is malformed or truncated (the caller then runs "
     "bsonpeek.int_seqs)."},
    {"complete_prefix", complete_prefix, METH_O,
     "complete_prefix(data) -> int: bsonpeek.complete_prefix (the bytes of the whole "
     "documents at the start of concatenated BSON)."},
    {"document_offsets", document_offsets, METH_O,
     "document_offsets(data) -> bytes or None: each document's start and the end, as "
     "native int64s (array('q')), or None when the documents do not add up to data."},
    {"array_documents", array_documents, METH_O,
     "array_documents(array) -> bytes or None: the embedded documents of a BSON array "
     "concatenated, or None unless every element is a whole document and sizes add up."},
    {"merkle_extend", merkle_extend, METH_VARARGS,
     "merkle_extend(stack, size, event_hashes_hex, sha256, impl=2) -> new size: "
     "tlog.TreeBuilder.extend of merkle's leaf hashes, the stack (a list of 32-byte "
     "subtree roots) changed in place; impl 0 hashes with sha256 (hashlib), 1 with the "
     "portable C SHA-256, 2 with SHA-NI where the CPU has it (SHA256_BLOCK says which)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_nativecodec",
    "The encode step's per-event loop in C for ordinary events (nativecodec.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__nativecodec(void) {
    init_escaped();
    init_hexval();
    digest_name = PyUnicode_InternFromString("digest");
    if (!digest_name) return NULL;
#if HAVE_SHA_NI_CODE
    if (cpu_has_sha_ni()) best_block = sha256_block_ni;
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "SHA256_BLOCK", best_block == sha256_block
                                                                ? "portable" : "sha-ni") < 0)
        Py_CLEAR(m);
    return m;
}
