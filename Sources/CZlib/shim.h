#ifndef VEIL_CZLIB_SHIM_H
#define VEIL_CZLIB_SHIM_H

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/// Inflates a whole gzip member. On success returns Z_OK and a malloc'ed buffer in *out that
/// the caller frees; otherwise a zlib error code and *out = NULL. (inflateInit2 is a macro,
/// which Swift cannot call.)
static inline int veil_gunzip(const unsigned char *in, size_t in_len, unsigned char **out, size_t *out_len) {
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    *out = NULL;
    *out_len = 0;
    int code = inflateInit2(&stream, 16 + MAX_WBITS);
    if (code != Z_OK) { return code; }
    size_t capacity = in_len * 4 + 1024;
    unsigned char *buffer = malloc(capacity);
    if (buffer == NULL) { inflateEnd(&stream); return Z_MEM_ERROR; }
    stream.next_in = (unsigned char *)in;
    stream.avail_in = (uInt)in_len;
    do {
        if (stream.total_out == capacity) {
            capacity *= 2;
            unsigned char *grown = realloc(buffer, capacity);
            if (grown == NULL) { free(buffer); inflateEnd(&stream); return Z_MEM_ERROR; }
            buffer = grown;
        }
        stream.next_out = buffer + stream.total_out;
        stream.avail_out = (uInt)(capacity - stream.total_out);
        code = inflate(&stream, Z_NO_FLUSH);
    } while (code == Z_OK);
    size_t produced = stream.total_out;
    inflateEnd(&stream);
    if (code != Z_STREAM_END) { free(buffer); return code == Z_BUF_ERROR ? Z_DATA_ERROR : code; }
    *out = buffer;
    *out_len = produced;
    return Z_OK;
}

#endif
