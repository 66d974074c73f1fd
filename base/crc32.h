#ifndef EEX_CRC32_H
#define EEX_CRC32_H
/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32); pass 0 to start. Public:
 * eex_crc32 is declared in include/eex.h. */
#include "eex.h"
#endif
