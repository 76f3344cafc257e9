/* gptprio: choose the BOOT partition to boot from its GPT attribute bits and use up one try.
 * Shared by the GRUB module (gptprio.c) and brl's host test harness, so both run the same code. */
#ifndef BRL_GPTPRIO_CORE_H
#define BRL_GPTPRIO_CORE_H 1

#ifdef GRUB_FILE
#include <grub/types.h>
typedef grub_uint8_t gptprio_u8;
typedef grub_uint32_t gptprio_u32;
typedef grub_uint64_t gptprio_u64;
typedef grub_size_t gptprio_size;
#else
#include <stddef.h>
#include <stdint.h>
typedef uint8_t gptprio_u8;
typedef uint32_t gptprio_u32;
typedef uint64_t gptprio_u64;
typedef size_t gptprio_size;
#endif

/* Bottlerocket's bit layout on a BOOT entry (image-layout.md §2). */
#define GPTPRIO_PRIORITY_SHIFT 48
#define GPTPRIO_TRIES_SHIFT 52
#define GPTPRIO_SUCCESSFUL_BIT 56

enum gptprio_status
{
  GPTPRIO_OK = 0,
  GPTPRIO_ERR_IO,
  GPTPRIO_ERR_NOMEM,
  GPTPRIO_ERR_NO_GPT,
  GPTPRIO_ERR_NOTHING_BOOTABLE,
  GPTPRIO_ERR_NO_SUCH_LABEL
};

/* Byte-addressed access to the whole disk; callbacks return 0 on success. */
struct gptprio_io
{
  void *ctx;
  gptprio_u32 sector_size;
  /* Size of the disk in sectors, or 0 when unknown (the primary's backup pointer is used). */
  gptprio_u64 total_sectors;
  int (*read) (void *ctx, gptprio_u64 offset, gptprio_u32 length, void *buf);
  int (*write) (void *ctx, gptprio_u64 offset, gptprio_u32 length, const void *buf);
  void *(*alloc) (gptprio_size size);
  void (*free) (void *ptr);
};

struct gptprio_choice
{
  /* GPT partition number, 1-based (GRUB's "gptN"). */
  gptprio_u32 number;
  gptprio_u8 unique_guid[16];
  unsigned priority;
  /* Tries left before this boot, and whether one was used up and written back. */
  unsigned tries_before;
  int successful;
  int decremented;
};

/* Picks among `count` entries of `entry_size` bytes: the BOOT-type entry with the highest priority
 * that is successful or has tries left; priority 0 never boots; ties go to the lower number.
 * Returns the entry index, or -1 when nothing is bootable. */
int gptprio_pick (const gptprio_u8 *entries, gptprio_u32 count, gptprio_u32 entry_size);

/* gptprio.next: reads the GPT (the backup when the primary is damaged), picks, and when the choice
 * has tries left decrements them and writes both copies back (backup first) before returning. */
enum gptprio_status gptprio_next (const struct gptprio_io *io, struct gptprio_choice *choice);

/* Finds the partition whose GPT name is `label` (ASCII), for locating PRIVATE on the boot disk. */
enum gptprio_status gptprio_find_label (const struct gptprio_io *io, const char *label, gptprio_u32 *number);

/* The GUID in its usual lowercase text form; `out` holds 37 bytes. */
void gptprio_format_guid (const gptprio_u8 guid[16], char *out);

const char *gptprio_strerror (enum gptprio_status status);

/* IEEE 802.3 CRC-32, as the GPT headers use. */
gptprio_u32 gptprio_crc32 (const void *data, gptprio_size length);

#endif
