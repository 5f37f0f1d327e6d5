/* fixtures.c - temporary directories, file helpers and a JPEG encoder for tests. */
#include "fixtures.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

char *fixtures_mkdtemp(void)
{
    char tmpl[] = "/tmp/dimd-test-XXXXXX";
    if (!mkdtemp(tmpl))
        return NULL;
    return strdup(tmpl);
}

int fixtures_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d)
            return -1;
        struct dirent *e;
        char child[4096];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            fixtures_join(child, sizeof child, path, e->d_name);
            fixtures_rmtree(child);
        }
        closedir(d);
        return rmdir(path);
    }
    return unlink(path);
}

int fixtures_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return put == len && rc == 0 ? 0 : -1;
}

int fixtures_read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

char *fixtures_join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
    return out;
}

int fixtures_encode_jpeg(const uint8_t *px, int c, int h, int w, int quality, uint8_t **out,
                         size_t *out_len)
{
    if ((c != 1 && c != 3) || h <= 0 || w <= 0)
        return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr); /* tests only: libjpeg's default handler exits on error */
    jpeg_create_compress(&ci);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    size_t plane = (size_t)h * (size_t)w;
    unsigned char *row = malloc((size_t)w * (size_t)c);
    if (!row) {
        jpeg_destroy_compress(&ci);
        free(buf);
        return -1;
    }
    while (ci.next_scanline < ci.image_height) {
        size_t y = ci.next_scanline;
        for (size_t x = 0; x < (size_t)w; x++)
            for (size_t k = 0; k < (size_t)c; k++)
                row[x * (size_t)c + k] = px[k * plane + y * (size_t)w + x];
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&ci, rows, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    *out = buf;
    *out_len = len;
    return 0;
}

int fixtures_write_jpeg(const char *path, const uint8_t *px, int c, int h, int w, int quality)
{
    uint8_t *buf;
    size_t len;
    if (fixtures_encode_jpeg(px, c, h, w, quality, &buf, &len) != 0)
        return -1;
    int rc = fixtures_write_file(path, buf, len);
    free(buf);
    return rc;
}
