#ifndef EEX_CRC32_H
#define EEX_CRC32_H
#include <stddef.h>
#include <stdint.h>
/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32); pass 0 to start. */
uint32_t eex_crc32(uint32_t crc, const void *data, size_t n);
#endif
