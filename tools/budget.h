/* Input budgets of the command line, decided before any work: how large a
 * file, a decoded image, an array or a dataset may be, and how much arena a
 * model may plan. Each is one flag any command takes (stripped from argv by
 * cli_take_limits before the command parses it); a refusal is one line that
 * names the limit and the flag. */
#ifndef EEX_CLI_BUDGET_H
#define EEX_CLI_BUDGET_H

#include <stddef.h>

typedef struct cli_limits {
    size_t input_bytes;   /* --max-input-mb: a file read, an image decoded (4 to 9 bytes a pixel), a .npy's
                             data, an IDX file decompressed; default 64 MB */
    size_t arena_bytes;   /* --max-arena-mb: the activation arena a session plans; default 1024 MB */
} cli_limits;

extern cli_limits cli_lim;

#define CLI_INPUT_FLAG "--max-input-mb"
#define CLI_ARENA_FLAG "--max-arena-mb"

/* Takes --max-input-mb N and --max-arena-mb N (N in 1..1048576) out of
 * argv[first..argc), wherever they are; 0, or -1 with a message in err. */
int cli_take_limits(int *argc, char **argv, int first, char *err, size_t errlen);

/* Reads a whole regular file into a new buffer (free with free()). `what`
 * names it in messages ("image", "model"). Opens with O_NONBLOCK, so a FIFO
 * or a device cannot block the open, and refuses anything but a regular
 * file (fstat) before a byte is read; refuses a file larger than max bytes
 * ("... the limit is N MB (flag)") and one whose size changes while it is
 * read. 0, or -1 with a one-line message in err. */
int cli_read_file(const char *path, const char *what, size_t max, const char *flag, unsigned char **buf,
                  size_t *size, char *err, size_t errlen);
/* What a file is, for messages: "a directory", "a FIFO", ... */
const char *cli_file_kind(unsigned mode);
/* "N MB" for messages (MiB, as the flags count). */
double cli_mb(size_t bytes);

#endif
