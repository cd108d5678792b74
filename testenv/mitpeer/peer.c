//go:build ignore

/*
 * peer.c - a GSS-API interop peer built on MIT Kerberos (libgssapi_krb5).
 *
 * This is a standalone test program (not cgo). The Go package
 * github.com/gssocks/gssocks/testenv/mitpeer compiles and drives it so that
 * the pure-Go GSS implementation can be tested against MIT in both roles.
 *
 * The "//go:build ignore" line above keeps the go tool from rejecting a C
 * file in a package without cgo; the Go package only embeds this source.
 *
 * Build:
 *   cc -O2 -Wall -Wextra -Werror peer.c \
 *      $(krb5-config --cflags gssapi) $(krb5-config --libs gssapi)
 *
 * Usage:
 *   peer initiator TARGET [--no-mutual] [--no-sequence] [--no-replay]
 *                         [--spnego]
 *   peer acceptor
 *
 * TARGET is a host-based service name such as "rcmd@localhost". With
 * --spnego the initiator asks for the SPNEGO mechanism (RFC 4178, OID
 * 1.3.6.1.5.5.2) instead of Kerberos V5: MIT then sends a NegTokenInit
 * with its Kerberos token as the optimistic token. The
 * environment selects the Kerberos setup: KRB5_CONFIG, KRB5CCNAME
 * (initiator credentials), KRB5_KTNAME (acceptor keytab).
 *
 * Line protocol (stdin -> requests, stdout -> replies, stderr -> diagnostics).
 * Binary data is lowercase hex; an empty byte string is written as "-".
 *
 * Handshake. Every context-establishment step is answered by two lines:
 *   TOKEN <hex>            output token of this step ("-" if none)
 *   READY <flags> [name]   context established; flags are the decimal
 *                          ret_flags, the acceptor adds the client name
 *   CONTINUE               more tokens are needed: send "TOKEN <hex>"
 * The initiator performs its first step immediately on start-up; the
 * acceptor waits for "TOKEN <hex>". A failing step is answered by
 * "ERR <major> <minor> <text>" and the program exits with status 1.
 *
 * Per-message commands, one reply line each:
 *   WRAP <0|1> <hex msg>          -> OK <hex token>
 *   UNWRAP <hex token>            -> OK <conf 0|1> <hex msg>
 *   MIC <hex msg>                 -> OK <hex token>
 *   VERIFYMIC <hex msg> <hex tok> -> OK
 *   WRAPSIZE <0|1> <max output>   -> OK <max input>
 *   INFO                          -> OK <enctype> <acceptor subkey 0|1>
 *   QUIT                          -> (exit 0, no reply)
 * Any failure is answered by "ERR <major> <minor> <text>" and the loop goes
 * on. UNWRAP and VERIFYMIC also answer ERR for supplementary status bits
 * (duplicate, old, unsequenced or gap token), which GSS-API otherwise reports
 * alongside a successful result.
 *
 * INFO exports the context as a lucid context, which in MIT deletes the GSS
 * context: it must be the last command; later commands answer ERR.
 * EOF on stdin ends the program with status 0.
 */

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>

static gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
static int ctx_exported;

/* 1.3.6.1.5.5.2: the SPNEGO pseudo-mechanism (RFC 4178). */
static gss_OID_desc spnego_oid = {6, (void *)"\x2b\x06\x01\x05\x05\x02"};

/* ---- output helpers ---------------------------------------------------- */

static void put_hex(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char *s;
    size_t i;

    if (len == 0) {
        fputs("-", stdout);
        return;
    }
    s = malloc(len * 2);
    if (s == NULL) {
        fprintf(stderr, "peer: out of memory\n");
        exit(2);
    }
    for (i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 0x0f];
    }
    fwrite(s, 1, len * 2, stdout);
    free(s);
}

static void put_buffer(const gss_buffer_t buf)
{
    put_hex(buf->value, buf->length);
}

static void reply_end(void)
{
    fputc('\n', stdout);
    fflush(stdout);
}

/* Appends the display text of one status code to line (one line, no \n). */
static void append_status(char *line, size_t size, OM_uint32 code, int type)
{
    OM_uint32 major, minor, msg_ctx = 0;
    gss_buffer_desc msg;
    size_t used;
    char *p;

    do {
        msg.length = 0;
        msg.value = NULL;
        major = gss_display_status(&minor, code, type, (gss_OID)gss_mech_krb5,
                                   &msg_ctx, &msg);
        if (GSS_ERROR(major))
            break;
        used = strlen(line);
        if (msg.length > 0 && used + 3 < size) {
            snprintf(line + used, size - used, "%s%.*s", used ? "; " : "",
                     (int)msg.length, (char *)msg.value);
        }
        gss_release_buffer(&minor, &msg);
    } while (msg_ctx != 0);

    for (p = line; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
}

static void reply_err(OM_uint32 major, OM_uint32 minor)
{
    char text[1024] = "";

    if (major != GSS_S_COMPLETE)
        append_status(text, sizeof(text), major, GSS_C_GSS_CODE);
    if (minor != 0)
        append_status(text, sizeof(text), minor, GSS_C_MECH_CODE);
    if (text[0] == '\0')
        strcpy(text, "unknown error");
    printf("ERR %lu %lu %s\n", (unsigned long)major, (unsigned long)minor,
           text);
    fflush(stdout);
}

static void reply_err_text(const char *text)
{
    printf("ERR 0 0 %s\n", text);
    fflush(stdout);
}

/* ---- input helpers ----------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes hex (or "-" for empty) into a malloc'ed buffer owned by the
 * caller (free buf->value). Returns 0 on success, -1 on malformed input.
 */
static int parse_hex(const char *s, gss_buffer_t buf)
{
    size_t n, i;
    unsigned char *p;

    buf->length = 0;
    buf->value = NULL;
    if (s == NULL)
        return -1;
    if (strcmp(s, "-") == 0)
        return 0;
    n = strlen(s);
    if (n == 0 || n % 2 != 0)
        return -1;
    p = malloc(n / 2);
    if (p == NULL)
        return -1;
    for (i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]);
        int lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            return -1;
        }
        p[i] = (unsigned char)(hi << 4 | lo);
    }
    buf->value = p;
    buf->length = n / 2;
    return 0;
}

/* Parses "0" or "1". Returns -1 otherwise. */
static int parse_bool(const char *s)
{
    if (s != NULL && strcmp(s, "0") == 0)
        return 0;
    if (s != NULL && strcmp(s, "1") == 0)
        return 1;
    return -1;
}

#define MAX_FIELDS 4

/*
 * Reads one line and splits it into space-separated fields. Returns the
 * number of fields, or -1 on EOF. Fields point into *line (reused buffer).
 */
static int read_fields(char **line, size_t *cap, char *fields[MAX_FIELDS])
{
    ssize_t n;
    int count = 0;
    char *p, *save = NULL;

    n = getline(line, cap, stdin);
    if (n < 0)
        return -1;
    while (n > 0 && ((*line)[n - 1] == '\n' || (*line)[n - 1] == '\r'))
        (*line)[--n] = '\0';
    for (p = strtok_r(*line, " ", &save); p != NULL;
         p = strtok_r(NULL, " ", &save)) {
        if (count == MAX_FIELDS)
            return MAX_FIELDS + 1; /* too many: callers reject it */
        fields[count++] = p;
    }
    return count;
}

/* ---- context establishment -------------------------------------------- */

/*
 * Reads the next "TOKEN <hex>" line of the handshake into buf. Exits on
 * EOF or QUIT (status 0) and on malformed input (status 1).
 */
static void read_token(char **line, size_t *cap, gss_buffer_t buf)
{
    char *f[MAX_FIELDS];
    int n = read_fields(line, cap, f);

    if (n < 0 || (n == 1 && strcmp(f[0], "QUIT") == 0))
        exit(0);
    if (n != 2 || strcmp(f[0], "TOKEN") != 0) {
        reply_err_text("expected TOKEN <hex>");
        exit(1);
    }
    if (parse_hex(f[1], buf) != 0) {
        reply_err_text("bad hex");
        exit(1);
    }
}

static void print_step_token(gss_buffer_t out)
{
    OM_uint32 minor;

    fputs("TOKEN ", stdout);
    put_buffer(out);
    reply_end();
    gss_release_buffer(&minor, out);
}

static void run_initiator(const char *target, OM_uint32 req_flags,
                          gss_OID mech, char **line, size_t *cap)
{
    OM_uint32 major, minor, ret_flags = 0;
    gss_buffer_desc name_buf, in = GSS_C_EMPTY_BUFFER, out;
    gss_name_t target_name = GSS_C_NO_NAME;

    name_buf.value = (void *)target;
    name_buf.length = strlen(target);
    major = gss_import_name(&minor, &name_buf, GSS_C_NT_HOSTBASED_SERVICE,
                            &target_name);
    if (GSS_ERROR(major)) {
        reply_err(major, minor);
        exit(1);
    }

    for (;;) {
        out.length = 0;
        out.value = NULL;
        major = gss_init_sec_context(&minor, GSS_C_NO_CREDENTIAL, &ctx,
                                     target_name, mech,
                                     req_flags, 0, GSS_C_NO_CHANNEL_BINDINGS,
                                     &in, NULL, &out, &ret_flags, NULL);
        free(in.value);
        in.value = NULL;
        in.length = 0;
        if (GSS_ERROR(major)) {
            reply_err(major, minor);
            gss_release_buffer(&minor, &out);
            exit(1);
        }
        print_step_token(&out);
        if (major != GSS_S_CONTINUE_NEEDED)
            break;
        puts("CONTINUE");
        fflush(stdout);
        read_token(line, cap, &in);
    }
    gss_release_name(&minor, &target_name);
    printf("READY %lu\n", (unsigned long)ret_flags);
    fflush(stdout);
}

static void run_acceptor(char **line, size_t *cap)
{
    OM_uint32 major, minor, ret_flags = 0;
    gss_buffer_desc in, out, name_text;
    gss_name_t client = GSS_C_NO_NAME;

    for (;;) {
        read_token(line, cap, &in);
        out.length = 0;
        out.value = NULL;
        major = gss_accept_sec_context(&minor, &ctx, GSS_C_NO_CREDENTIAL, &in,
                                       GSS_C_NO_CHANNEL_BINDINGS, &client,
                                       NULL, &out, &ret_flags, NULL, NULL);
        free(in.value);
        if (GSS_ERROR(major)) {
            reply_err(major, minor);
            gss_release_buffer(&minor, &out);
            exit(1);
        }
        print_step_token(&out);
        if (major != GSS_S_CONTINUE_NEEDED)
            break;
        puts("CONTINUE");
        fflush(stdout);
    }

    major = gss_display_name(&minor, client, &name_text, NULL);
    if (GSS_ERROR(major)) {
        reply_err(major, minor);
        exit(1);
    }
    printf("READY %lu %.*s\n", (unsigned long)ret_flags,
           (int)name_text.length, (char *)name_text.value);
    fflush(stdout);
    gss_release_buffer(&minor, &name_text);
    gss_release_name(&minor, &client);
}

/* ---- per-message commands ---------------------------------------------- */

static void cmd_wrap(int conf, gss_buffer_t msg)
{
    OM_uint32 major, minor;
    int conf_state = 0;
    gss_buffer_desc out = GSS_C_EMPTY_BUFFER;

    major = gss_wrap(&minor, ctx, conf, GSS_C_QOP_DEFAULT, msg, &conf_state,
                     &out);
    if (GSS_ERROR(major)) {
        reply_err(major, minor);
    } else if (conf && !conf_state) {
        reply_err_text("confidentiality requested but not applied");
    } else {
        fputs("OK ", stdout);
        put_buffer(&out);
        reply_end();
    }
    gss_release_buffer(&minor, &out);
}

static void cmd_unwrap(gss_buffer_t token)
{
    OM_uint32 major, minor;
    int conf_state = 0;
    gss_qop_t qop = 0;
    gss_buffer_desc out = GSS_C_EMPTY_BUFFER;

    major = gss_unwrap(&minor, ctx, token, &out, &conf_state, &qop);
    if (major != GSS_S_COMPLETE) {
        reply_err(major, minor);
    } else {
        printf("OK %d ", conf_state ? 1 : 0);
        put_buffer(&out);
        reply_end();
    }
    gss_release_buffer(&minor, &out);
}

static void cmd_mic(gss_buffer_t msg)
{
    OM_uint32 major, minor;
    gss_buffer_desc out = GSS_C_EMPTY_BUFFER;

    major = gss_get_mic(&minor, ctx, GSS_C_QOP_DEFAULT, msg, &out);
    if (GSS_ERROR(major)) {
        reply_err(major, minor);
    } else {
        fputs("OK ", stdout);
        put_buffer(&out);
        reply_end();
    }
    gss_release_buffer(&minor, &out);
}

static void cmd_verifymic(gss_buffer_t msg, gss_buffer_t token)
{
    OM_uint32 major, minor;
    gss_qop_t qop = 0;

    major = gss_verify_mic(&minor, ctx, msg, token, &qop);
    if (major != GSS_S_COMPLETE)
        reply_err(major, minor);
    else {
        fputs("OK", stdout);
        reply_end();
    }
}

static void cmd_wrapsize(int conf, const char *max_s)
{
    OM_uint32 major, minor, max_in = 0;
    unsigned long max_out;
    char *end;

    errno = 0;
    max_out = strtoul(max_s, &end, 10);
    if (errno != 0 || *end != '\0' || *max_s == '\0' || max_out > UINT32_MAX) {
        reply_err_text("bad size");
        return;
    }
    major = gss_wrap_size_limit(&minor, ctx, conf, GSS_C_QOP_DEFAULT,
                                (OM_uint32)max_out, &max_in);
    if (GSS_ERROR(major))
        reply_err(major, minor);
    else {
        printf("OK %lu", (unsigned long)max_in);
        reply_end();
    }
}

static void cmd_info(void)
{
    OM_uint32 major, minor, enctype;
    int subkey = 0;
    void *lucid = NULL;
    gss_krb5_lucid_context_v1_t *lc;

    major = gss_krb5_export_lucid_sec_context(&minor, &ctx, 1, &lucid);
    /* MIT deletes the GSS context on export, successful or not. */
    ctx_exported = 1;
    if (GSS_ERROR(major)) {
        reply_err(major, minor);
        return;
    }
    lc = lucid;
    if (lc->protocol == 1) {
        subkey = lc->cfx_kd.have_acceptor_subkey != 0;
        enctype = subkey ? lc->cfx_kd.acceptor_subkey.type
                         : lc->cfx_kd.ctx_key.type;
    } else {
        enctype = lc->rfc1964_kd.ctx_key.type;
    }
    printf("OK %lu %d", (unsigned long)enctype, subkey);
    reply_end();
    gss_krb5_free_lucid_sec_context(&minor, lucid);
}

/* Executes one command line; returns 0 to go on, 1 on QUIT. */
static int dispatch(char *f[MAX_FIELDS], int n)
{
    gss_buffer_desc a = GSS_C_EMPTY_BUFFER, b = GSS_C_EMPTY_BUFFER;
    const char *cmd = n > 0 ? f[0] : "";
    int conf;

    if (strcmp(cmd, "QUIT") == 0)
        return 1;
    if (strcmp(cmd, "WRAP") != 0 && strcmp(cmd, "UNWRAP") != 0 &&
        strcmp(cmd, "MIC") != 0 && strcmp(cmd, "VERIFYMIC") != 0 &&
        strcmp(cmd, "WRAPSIZE") != 0 && strcmp(cmd, "INFO") != 0) {
        reply_err_text("unknown command");
        return 0;
    }
    if (ctx_exported || ctx == GSS_C_NO_CONTEXT) {
        reply_err_text("no context (INFO must be the last command)");
        return 0;
    }

    if (strcmp(cmd, "WRAP") == 0) {
        conf = n == 3 ? parse_bool(f[1]) : -1;
        if (conf < 0 || parse_hex(f[2], &a) != 0)
            reply_err_text("usage: WRAP <0|1> <hex>");
        else
            cmd_wrap(conf, &a);
    } else if (strcmp(cmd, "UNWRAP") == 0) {
        if (n != 2 || parse_hex(f[1], &a) != 0)
            reply_err_text("usage: UNWRAP <hex>");
        else
            cmd_unwrap(&a);
    } else if (strcmp(cmd, "MIC") == 0) {
        if (n != 2 || parse_hex(f[1], &a) != 0)
            reply_err_text("usage: MIC <hex>");
        else
            cmd_mic(&a);
    } else if (strcmp(cmd, "VERIFYMIC") == 0) {
        if (n != 3 || parse_hex(f[1], &a) != 0 || parse_hex(f[2], &b) != 0)
            reply_err_text("usage: VERIFYMIC <hex msg> <hex token>");
        else
            cmd_verifymic(&a, &b);
    } else if (strcmp(cmd, "WRAPSIZE") == 0) {
        conf = n == 3 ? parse_bool(f[1]) : -1;
        if (conf < 0)
            reply_err_text("usage: WRAPSIZE <0|1> <max>");
        else
            cmd_wrapsize(conf, f[2]);
    } else if (n != 1) {
        reply_err_text("usage: INFO");
    } else {
        cmd_info();
    }
    free(a.value);
    free(b.value);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: peer initiator TARGET [--no-mutual] "
                    "[--no-sequence] [--no-replay] [--spnego]\n"
                    "       peer acceptor\n");
    exit(2);
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    char *f[MAX_FIELDS];
    OM_uint32 minor;
    int n, i;

    if (argc >= 3 && strcmp(argv[1], "initiator") == 0) {
        OM_uint32 req = GSS_C_MUTUAL_FLAG | GSS_C_REPLAY_FLAG |
                        GSS_C_SEQUENCE_FLAG | GSS_C_CONF_FLAG |
                        GSS_C_INTEG_FLAG;
        gss_OID mech = (gss_OID)gss_mech_krb5;
        for (i = 3; i < argc; i++) {
            if (strcmp(argv[i], "--no-mutual") == 0)
                req &= ~GSS_C_MUTUAL_FLAG;
            else if (strcmp(argv[i], "--no-sequence") == 0)
                req &= ~GSS_C_SEQUENCE_FLAG;
            else if (strcmp(argv[i], "--no-replay") == 0)
                req &= ~GSS_C_REPLAY_FLAG;
            else if (strcmp(argv[i], "--spnego") == 0)
                mech = &spnego_oid;
            else
                usage();
        }
        run_initiator(argv[2], req, mech, &line, &cap);
    } else if (argc == 2 && strcmp(argv[1], "acceptor") == 0) {
        run_acceptor(&line, &cap);
    } else {
        usage();
    }

    while ((n = read_fields(&line, &cap, f)) >= 0) {
        if (n > MAX_FIELDS) {
            reply_err_text("too many fields");
            continue;
        }
        if (dispatch(f, n))
            break;
    }

    free(line);
    if (ctx != GSS_C_NO_CONTEXT)
        gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
    return 0;
}
