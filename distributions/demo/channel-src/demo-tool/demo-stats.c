/*
 * demo-stats: count, mean, min and max of one numeric column of a CSV file.
 *
 *   demo-stats [--column NAME] [FILE|-]   default column: temperature_c
 *                                         default file: PREFIX/share/demo-data/stations.csv,
 *                                         PREFIX being the parent of this program's bin/
 *   demo-stats --arch                     the machine this program was compiled for
 *   demo-stats --version
 *
 * A static, freestanding Linux program (no libc): a few kilobytes, runs on any Linux
 * kernel of its architecture, and builds reproducibly with Debian's gcc and
 * gcc-aarch64-linux-gnu (see scripts/build-demo-channel.py).
 *
 * Numbers are read as fixed point with three decimals, so results are exact and the
 * same on every architecture. Empty fields and "NA" count as missing.
 */

#define VERSION "0.3.0"

#if defined(__x86_64__)
#define ARCH "x86_64"
#define SYS_read 0
#define SYS_write 1
#define SYS_close 3
#define SYS_openat 257
#define SYS_readlinkat 267
#define SYS_exit_group 231
__asm__(".text\n.globl _start\n_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  hlt\n");
static long syscall3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
static long syscall4(long n, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define ARCH "aarch64"
#define SYS_read 63
#define SYS_write 64
#define SYS_close 57
#define SYS_openat 56
#define SYS_readlinkat 78
#define SYS_exit_group 94
__asm__(".text\n.globl _start\n_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  and sp, x0, #-16\n"
        "  bl start_c\n"
        "  brk #0\n");
static long syscall4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}
static long syscall3(long n, long a, long b, long c) { return syscall4(n, a, b, c, 0); }
#else
#error "demo-stats supports x86_64 and aarch64"
#endif

#define AT_FDCWD (-100)
#define O_RDONLY 0
#define MILLI 1000

typedef unsigned long size_t;

/* gcc may emit calls to these even in freestanding code */
void *memset(void *s, int c, size_t n)
{
    unsigned char *p = s;
    while (n--) *p++ = (unsigned char)c;
    return s;
}
void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *a = d;
    const unsigned char *b = s;
    while (n--) *a++ = *b++;
    return d;
}

static __attribute__((noreturn)) void sys_exit(int code)
{
    for (;;) syscall3(SYS_exit_group, code, 0, 0);
}

static int seq(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

/* ---- buffered stdout ---- */
static char out_buf[4096];
static size_t out_len;

static void flush_fd(int fd)
{
    size_t off = 0;
    while (off < out_len) {
        long n = syscall3(SYS_write, fd, (long)(out_buf + off), (long)(out_len - off));
        if (n <= 0) sys_exit(3);
        off += (size_t)n;
    }
    out_len = 0;
}

static void put(const char *s)
{
    while (*s) {
        if (out_len == sizeof out_buf) flush_fd(1);
        out_buf[out_len++] = *s++;
    }
}

static void put_long(long v)
{
    char tmp[24];
    int i = 0;
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0) put("-");
    do tmp[i++] = (char)('0' + u % 10), u /= 10; while (u);
    char s[2] = {0, 0};
    while (i) s[0] = tmp[--i], put(s);
}

/* a fixed-point value in thousandths, printed with three decimals */
static void put_milli(long v)
{
    unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
    if (v < 0) put("-");
    put_long((long)(u / MILLI));
    char frac[5] = {'.', 0, 0, 0, 0};
    unsigned long f = u % MILLI;
    frac[1] = (char)('0' + f / 100);
    frac[2] = (char)('0' + f / 10 % 10);
    frac[3] = (char)('0' + f % 10);
    put(frac);
}

static __attribute__((noreturn)) void die(const char *msg, const char *arg)
{
    flush_fd(1);
    put("demo-stats: ");
    put(msg);
    if (arg) put(arg);
    put("\n");
    flush_fd(2);
    sys_exit(2);
}

/* ---- CSV ---- */
#define MAX_LINE 4096
#define MAX_FIELDS 64

static char line[MAX_LINE];
static size_t line_len;
static char in_buf[65536];

/* split line in place at commas (no quoting: the demo data has none) */
static int split(char *s, char **fields)
{
    int n = 0;
    fields[n++] = s;
    for (; *s; s++) {
        if (*s == ',') {
            *s = 0;
            if (n == MAX_FIELDS) die("too many fields", 0);
            fields[n++] = s + 1;
        }
    }
    return n;
}

/* parse [-+]digits[.digits] into thousandths (extra decimals truncated); 0 if not a number */
static int parse_milli(const char *s, long *out)
{
    int neg = 0, digits = 0, frac_digits = 0;
    long v = 0;
    while (*s == ' ') s++;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (v > 100000000000000L) return 0;
        v = v * 10 + (*s - '0');
    }
    v *= MILLI;
    if (*s == '.') {
        long scale = MILLI / 10;
        for (s++; *s >= '0' && *s <= '9'; s++, frac_digits++) {
            v += (*s - '0') * scale;
            scale /= 10;
        }
    }
    while (*s == ' ' || *s == '\r') s++;
    if (*s || (digits == 0 && frac_digits == 0)) return 0;
    *out = neg ? -v : v;
    return 1;
}

struct stats {
    const char *column;
    int col;        /* index of the column, -1 until the header is read */
    long lineno;
    long count, missing;
    long sum, min, max;
};

static void handle_line(struct stats *st)
{
    char *fields[MAX_FIELDS];
    line[line_len] = 0;
    if (line_len && line[line_len - 1] == '\r') line[--line_len] = 0;
    st->lineno++;
    if (line_len == 0) return;
    int n = split(line, fields);
    if (st->col < 0) {
        for (int i = 0; i < n; i++)
            if (seq(fields[i], st->column)) st->col = i;
        if (st->col < 0) die("no such column: ", st->column);
        return;
    }
    long v;
    if (st->col >= n || fields[st->col][0] == 0 || seq(fields[st->col], "NA")) {
        st->missing++;
        return;
    }
    if (!parse_milli(fields[st->col], &v)) {
        flush_fd(1);
        put("demo-stats: line ");
        put_long(st->lineno);
        put(": not a number: ");
        put(fields[st->col]);
        put("\n");
        flush_fd(2);
        sys_exit(2);
    }
    if (st->count == 0 || v < st->min) st->min = v;
    if (st->count == 0 || v > st->max) st->max = v;
    st->sum += v;
    st->count++;
}

static void read_csv(int fd, struct stats *st)
{
    for (;;) {
        long n = syscall3(SYS_read, fd, (long)in_buf, sizeof in_buf);
        if (n < 0) die("read error", 0);
        if (n == 0) break;
        for (long i = 0; i < n; i++) {
            char c = in_buf[i];
            if (c == '\n') {
                handle_line(st);
                line_len = 0;
            } else {
                if (line_len == MAX_LINE - 1) die("line too long", 0);
                line[line_len++] = c;
            }
        }
    }
    if (line_len) handle_line(st);
}

/* PREFIX/share/demo-data/stations.csv, PREFIX being the parent of the folder of this program */
static char default_path[4096];

static const char *default_file(void)
{
    static const char tail[] = "share/demo-data/stations.csv";
    long n = syscall4(SYS_readlinkat, AT_FDCWD, (long)"/proc/self/exe", (long)default_path,
                      sizeof default_path - sizeof tail - 1);
    if (n <= 0) die("cannot find my own path (/proc/self/exe)", 0);
    default_path[n] = 0;
    for (int cut = 0; cut < 2; cut++) { /* strip "/demo-stats", then "bin" */
        while (n > 0 && default_path[n - 1] != '/') n--;
        if (cut == 0 && n > 0) n--;
    }
    memcpy(default_path + n, tail, sizeof tail);
    return default_path;
}

static void usage(int code)
{
    put("usage: demo-stats [--column NAME] [FILE|-]\n"
        "       demo-stats --arch | --version | --help\n"
        "Count, mean, min and max of a numeric CSV column (default: temperature_c of\n"
        "PREFIX/share/demo-data/stations.csv).\n");
    flush_fd(code ? 2 : 1);
    sys_exit(code);
}

__attribute__((used)) void start_c(long *sp)
{
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    struct stats st = {"temperature_c", -1, 0, 0, 0, 0, 0, 0};
    const char *path = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (seq(a, "--arch")) {
            put(ARCH "\n");
            flush_fd(1);
            sys_exit(0);
        } else if (seq(a, "--version")) {
            put("demo-stats " VERSION " (" ARCH ")\n");
            flush_fd(1);
            sys_exit(0);
        } else if (seq(a, "--help") || seq(a, "-h")) {
            usage(0);
        } else if (seq(a, "--column") || seq(a, "-c")) {
            if (++i == argc) usage(2);
            st.column = argv[i];
        } else if (a[0] == '-' && a[1] != 0) {
            usage(2);
        } else if (path) {
            usage(2);
        } else {
            path = a;
        }
    }
    if (!path) path = default_file();

    int fd = 0;
    if (!seq(path, "-")) {
        fd = (int)syscall4(SYS_openat, AT_FDCWD, (long)path, O_RDONLY, 0);
        if (fd < 0) die("cannot open ", path);
    }
    read_csv(fd, &st);
    if (fd) syscall3(SYS_close, fd, 0, 0);
    if (st.col < 0) die("empty file: ", path);

    put("file: ");
    put(path);
    put("\ncolumn: ");
    put(st.column);
    put("\ncount: ");
    put_long(st.count);
    put("\nmissing: ");
    put_long(st.missing);
    if (st.count) {
        /* mean rounded half away from zero, in thousandths */
        long q = st.sum / st.count, r = st.sum % st.count;
        if (2 * (r < 0 ? -r : r) >= st.count) q += st.sum < 0 ? -1 : 1;
        put("\nmean: ");
        put_milli(q);
        put("\nmin: ");
        put_milli(st.min);
        put("\nmax: ");
        put_milli(st.max);
    }
    put("\n");
    flush_fd(1);
    sys_exit(st.count ? 0 : 1);
}
