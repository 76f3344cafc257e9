/* gptprio: GPT reading, the BOOT choice and the tries write-back, free of GRUB and libc so the
 * same file builds into the GRUB module and into brl's host test harness. */
#include "gptprio-core.h"

#define GPT_HEADER_MIN_SIZE 92
#define GPT_ENTRY_MIN_SIZE 128
/* More than any real table needs (128 entries of 128 bytes is 16 KiB); bounds a damaged header. */
#define GPT_ENTRIES_MAX_BYTES (1024 * 1024)

/* Bottlerocket's BOOT type 6b636168-7420-6568-2070-6c616e657421 in on-disk byte order. */
static const gptprio_u8 boot_type_guid[16] = {
  0x68, 0x61, 0x63, 0x6b, 0x20, 0x74, 0x68, 0x65, 0x20, 0x70, 0x6c, 0x61, 0x6e, 0x65, 0x74, 0x21
};

static gptprio_u32
get32 (const gptprio_u8 *p)
{
  return (gptprio_u32) p[0] | ((gptprio_u32) p[1] << 8) | ((gptprio_u32) p[2] << 16) | ((gptprio_u32) p[3] << 24);
}

static gptprio_u64
get64 (const gptprio_u8 *p)
{
  return (gptprio_u64) get32 (p) | ((gptprio_u64) get32 (p + 4) << 32);
}

static void
put32 (gptprio_u8 *p, gptprio_u32 v)
{
  p[0] = v & 0xff;
  p[1] = (v >> 8) & 0xff;
  p[2] = (v >> 16) & 0xff;
  p[3] = (v >> 24) & 0xff;
}

static void
put64 (gptprio_u8 *p, gptprio_u64 v)
{
  put32 (p, (gptprio_u32) v);
  put32 (p + 4, (gptprio_u32) (v >> 32));
}

static void
copy_bytes (gptprio_u8 *dst, const gptprio_u8 *src, gptprio_size n)
{
  gptprio_size i;
  for (i = 0; i < n; i++)
    dst[i] = src[i];
}

gptprio_u32
gptprio_crc32 (const void *data, gptprio_size length)
{
  const gptprio_u8 *p = data;
  gptprio_u32 crc = 0xffffffff;
  gptprio_size i;
  int bit;
  for (i = 0; i < length; i++)
    {
      crc ^= p[i];
      for (bit = 0; bit < 8; bit++)
        crc = (crc >> 1) ^ (0xedb88320 & (0u - (crc & 1)));
    }
  return ~crc;
}

static int
is_boot_type (const gptprio_u8 *entry)
{
  int i;
  for (i = 0; i < 16; i++)
    if (entry[i] != boot_type_guid[i])
      return 0;
  return 1;
}

int
gptprio_pick (const gptprio_u8 *entries, gptprio_u32 count, gptprio_u32 entry_size)
{
  int best = -1;
  unsigned best_priority = 0;
  gptprio_u32 i;
  for (i = 0; i < count; i++)
    {
      const gptprio_u8 *entry = entries + (gptprio_size) i * entry_size;
      gptprio_u64 attributes;
      unsigned priority, tries;
      int successful;
      if (!is_boot_type (entry))
        continue;
      attributes = get64 (entry + 48);
      priority = (attributes >> GPTPRIO_PRIORITY_SHIFT) & 0xf;
      tries = (attributes >> GPTPRIO_TRIES_SHIFT) & 0xf;
      successful = (attributes >> GPTPRIO_SUCCESSFUL_BIT) & 1;
      /* Strictly greater: priority 0 never wins and an equal priority keeps the lower number. */
      if ((tries > 0 || successful) && priority > best_priority)
        {
          best = (int) i;
          best_priority = priority;
        }
    }
  return best;
}

/* One GPT copy as read from disk. */
struct gpt_copy
{
  gptprio_u8 *header;
  gptprio_u8 *entries;
  gptprio_u64 lba;
  int valid;
};

struct gpt
{
  const struct gptprio_io *io;
  struct gpt_copy primary, backup;
  /* The copy whose entries are used (the primary unless it is damaged). */
  struct gpt_copy *good;
  gptprio_u32 entry_count, entry_size, entries_bytes;
};

static void
gpt_free (struct gpt *gpt)
{
  const struct gptprio_io *io = gpt->io;
  io->free (gpt->primary.header);
  io->free (gpt->primary.entries);
  io->free (gpt->backup.header);
  io->free (gpt->backup.entries);
}

static gptprio_u32
header_crc (gptprio_u8 *header)
{
  gptprio_u32 saved = get32 (header + 16), crc;
  put32 (header + 16, 0);
  crc = gptprio_crc32 (header, get32 (header + 12));
  put32 (header + 16, saved);
  return crc;
}

/* Reads the header at `lba` and its entries; a damaged copy is not an error, only not valid. */
static enum gptprio_status
read_copy (struct gpt *gpt, struct gpt_copy *copy, gptprio_u64 lba)
{
  const struct gptprio_io *io = gpt->io;
  gptprio_u8 *h;
  gptprio_u32 header_size, count, size;
  gptprio_u64 bytes;

  copy->lba = lba;
  copy->header = io->alloc (io->sector_size);
  if (!copy->header)
    return GPTPRIO_ERR_NOMEM;
  if (io->read (io->ctx, lba * io->sector_size, io->sector_size, copy->header))
    return GPTPRIO_ERR_IO;
  h = copy->header;
  if (h[0] != 'E' || h[1] != 'F' || h[2] != 'I' || h[3] != ' ' || h[4] != 'P' || h[5] != 'A' || h[6] != 'R' || h[7] != 'T')
    return GPTPRIO_OK;
  header_size = get32 (h + 12);
  if (header_size < GPT_HEADER_MIN_SIZE || header_size > io->sector_size || header_crc (h) != get32 (h + 16)
      || get64 (h + 24) != lba)
    return GPTPRIO_OK;
  count = get32 (h + 80);
  size = get32 (h + 84);
  bytes = (gptprio_u64) count * size;
  if (size < GPT_ENTRY_MIN_SIZE || size % 8 != 0 || bytes == 0 || bytes > GPT_ENTRIES_MAX_BYTES)
    return GPTPRIO_OK;
  copy->entries = io->alloc ((gptprio_size) bytes);
  if (!copy->entries)
    return GPTPRIO_ERR_NOMEM;
  if (io->read (io->ctx, get64 (h + 72) * io->sector_size, (gptprio_u32) bytes, copy->entries))
    return GPTPRIO_ERR_IO;
  if (gptprio_crc32 (copy->entries, (gptprio_size) bytes) != get32 (h + 88))
    return GPTPRIO_OK;
  copy->valid = 1;
  return GPTPRIO_OK;
}

/* Reads both copies, as GRUB's and the kernel's GPT readers do: the primary wins when valid. */
static enum gptprio_status
gpt_read (struct gpt *gpt, const struct gptprio_io *io)
{
  enum gptprio_status status;
  gptprio_u64 backup_lba;

  gpt->io = io;
  gpt->primary.header = gpt->primary.entries = gpt->backup.header = gpt->backup.entries = 0;
  gpt->primary.valid = gpt->backup.valid = 0;
  status = read_copy (gpt, &gpt->primary, 1);
  if (status != GPTPRIO_OK)
    return status;
  if (gpt->primary.valid)
    backup_lba = get64 (gpt->primary.header + 32);
  else if (io->total_sectors > 1)
    backup_lba = io->total_sectors - 1;
  else
    return GPTPRIO_ERR_NO_GPT;
  if (io->total_sectors == 0 || backup_lba < io->total_sectors)
    {
      status = read_copy (gpt, &gpt->backup, backup_lba);
      if (status != GPTPRIO_OK)
        return status;
    }
  gpt->good = gpt->primary.valid ? &gpt->primary : gpt->backup.valid ? &gpt->backup : 0;
  if (!gpt->good)
    return GPTPRIO_ERR_NO_GPT;
  gpt->entry_count = get32 (gpt->good->header + 80);
  gpt->entry_size = get32 (gpt->good->header + 84);
  gpt->entries_bytes = gpt->entry_count * gpt->entry_size;
  return GPTPRIO_OK;
}

/* Makes `target` a valid copy of the good one at `lba` with its entries at `entries_lba`. */
static enum gptprio_status
rebuild_copy (struct gpt *gpt, struct gpt_copy *target, gptprio_u64 lba, gptprio_u64 alternate, gptprio_u64 entries_lba)
{
  const struct gptprio_io *io = gpt->io;
  gptprio_u32 header_size = get32 (gpt->good->header + 12), i;
  if (!target->header)
    {
      target->header = io->alloc (io->sector_size);
      if (!target->header)
        return GPTPRIO_ERR_NOMEM;
    }
  for (i = 0; i < io->sector_size; i++)
    target->header[i] = 0;
  copy_bytes (target->header, gpt->good->header, header_size);
  put64 (target->header + 24, lba);
  put64 (target->header + 32, alternate);
  put64 (target->header + 72, entries_lba);
  target->lba = lba;
  return GPTPRIO_OK;
}

/* Writes the good copy's entries to both copies with fresh CRCs: backup first, then primary, so an
 * interrupted write leaves one complete copy (old or new) for the next boot. */
static enum gptprio_status
gpt_write (struct gpt *gpt)
{
  const struct gptprio_io *io = gpt->io;
  struct gpt_copy *copies[2];
  gptprio_u32 entries_crc = gptprio_crc32 (gpt->good->entries, gpt->entries_bytes);
  gptprio_u64 entries_sectors = (gpt->entries_bytes + io->sector_size - 1) / io->sector_size;
  enum gptprio_status status;
  int i;

  if (gpt->good == &gpt->primary && !gpt->backup.valid)
    {
      gptprio_u64 backup_lba = get64 (gpt->primary.header + 32);
      status = rebuild_copy (gpt, &gpt->backup, backup_lba, 1, backup_lba - entries_sectors);
    }
  else if (gpt->good == &gpt->backup && !gpt->primary.valid)
    status = rebuild_copy (gpt, &gpt->primary, 1, gpt->backup.lba, 2);
  else
    status = GPTPRIO_OK;
  if (status != GPTPRIO_OK)
    return status;

  copies[0] = &gpt->backup;
  copies[1] = &gpt->primary;
  for (i = 0; i < 2; i++)
    {
      gptprio_u8 *h = copies[i]->header;
      put32 (h + 88, entries_crc);
      put32 (h + 16, header_crc (h));
      if (io->write (io->ctx, get64 (h + 72) * io->sector_size, gpt->entries_bytes, gpt->good->entries))
        return GPTPRIO_ERR_IO;
      if (io->write (io->ctx, copies[i]->lba * io->sector_size, io->sector_size, h))
        return GPTPRIO_ERR_IO;
    }
  return GPTPRIO_OK;
}

enum gptprio_status
gptprio_next (const struct gptprio_io *io, struct gptprio_choice *choice)
{
  struct gpt gpt;
  enum gptprio_status status = gpt_read (&gpt, io);
  gptprio_u8 *entry;
  gptprio_u64 attributes;
  int index;

  if (status != GPTPRIO_OK)
    goto out;
  index = gptprio_pick (gpt.good->entries, gpt.entry_count, gpt.entry_size);
  if (index < 0)
    {
      status = GPTPRIO_ERR_NOTHING_BOOTABLE;
      goto out;
    }
  entry = gpt.good->entries + (gptprio_size) index * gpt.entry_size;
  attributes = get64 (entry + 48);
  choice->number = (gptprio_u32) index + 1;
  copy_bytes (choice->unique_guid, entry + 16, 16);
  choice->priority = (attributes >> GPTPRIO_PRIORITY_SHIFT) & 0xf;
  choice->tries_before = (attributes >> GPTPRIO_TRIES_SHIFT) & 0xf;
  choice->successful = (attributes >> GPTPRIO_SUCCESSFUL_BIT) & 1;
  choice->decremented = 0;
  if (choice->tries_before > 0)
    {
      attributes -= (gptprio_u64) 1 << GPTPRIO_TRIES_SHIFT;
      put64 (entry + 48, attributes);
      status = gpt_write (&gpt);
      choice->decremented = status == GPTPRIO_OK;
    }
out:
  gpt_free (&gpt);
  return status;
}

/* Whether the entry's UTF-16LE name is exactly the ASCII `label`. */
static int
name_is (const gptprio_u8 *entry, gptprio_u32 entry_size, const char *label)
{
  gptprio_u32 max_chars = (entry_size - 56) / 2, i;
  for (i = 0; i < max_chars; i++)
    {
      gptprio_u32 c = entry[56 + 2 * i] | (entry[57 + 2 * i] << 8);
      if (c != (gptprio_u8) label[i])
        return 0;
      if (c == 0)
        return 1;
    }
  return label[i] == '\0';
}

enum gptprio_status
gptprio_find_label (const struct gptprio_io *io, const char *label, gptprio_u32 *number)
{
  struct gpt gpt;
  enum gptprio_status status = gpt_read (&gpt, io);
  gptprio_u32 i;

  if (status == GPTPRIO_OK)
    {
      status = GPTPRIO_ERR_NO_SUCH_LABEL;
      for (i = 0; i < gpt.entry_count; i++)
        if (name_is (gpt.good->entries + (gptprio_size) i * gpt.entry_size, gpt.entry_size, label))
          {
            *number = i + 1;
            status = GPTPRIO_OK;
            break;
          }
    }
  gpt_free (&gpt);
  return status;
}

void
gptprio_format_guid (const gptprio_u8 guid[16], char *out)
{
  /* The first three fields are little-endian on disk. */
  static const int order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
  static const char hex[] = "0123456789abcdef";
  int i, pos = 0;
  for (i = 0; i < 16; i++)
    {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        out[pos++] = '-';
      out[pos++] = hex[guid[order[i]] >> 4];
      out[pos++] = hex[guid[order[i]] & 0xf];
    }
  out[pos] = '\0';
}

const char *
gptprio_strerror (enum gptprio_status status)
{
  switch (status)
    {
    case GPTPRIO_OK:
      return "ok";
    case GPTPRIO_ERR_IO:
      return "disk read or write failed";
    case GPTPRIO_ERR_NOMEM:
      return "out of memory";
    case GPTPRIO_ERR_NO_GPT:
      return "no valid GPT (primary and backup damaged or missing)";
    case GPTPRIO_ERR_NOTHING_BOOTABLE:
      return "no bootable BOOT partition (priority 0, or no tries left and not successful)";
    case GPTPRIO_ERR_NO_SUCH_LABEL:
      return "no partition with that label";
    }
  return "unknown error";
}
